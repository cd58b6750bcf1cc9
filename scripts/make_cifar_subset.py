#!/usr/bin/env python3
"""Rebuild data/cifar10_subset.bin.zst, the balanced CIFAR-10 subset embedded by src/data/cifar.rs.

Records taken (exact original pixels, from the lossless files of the offline CIFAR-10 copy):

  train: from lossless/train_first4000.bin.xz (= official data_batch_1 records 0-3999),
         the first TRAIN_PER_CLASS (100) records of each class, scanning in record order.
         (150 per class was the first target, but compressed to 5.4 MB, over the 4 MB budget;
         100 per class compresses to about 4.04 MB = 3.85 MiB.)
  test:  from lossless/test_first1000.bin.xz (= official test_batch records 0-999),
         the first TEST_PER_CLASS (50) records of each class, scanning in record order.

Within each split the chosen records keep their original relative order (they are NOT
grouped by class), so the subset is a stable, order-preserving filter of the source.

Output layout (before zstd compression):

  8 bytes   magic b"HNCIFAR1"
  u32 LE    train record count (1000)
  u32 LE    test record count (500)
  records   train records, then test records; each record is the standard CIFAR-10 binary
            record: 1 label byte (0-9) + 3072 pixel bytes, CHW (1024 R, 1024 G, 1024 B),
            each channel 32x32 row-major.

Compression: the `zstd` command-line tool, level 19 (`zstd -19`), single frame.

Usage: python3 scripts/make_cifar_subset.py [CIFAR10_DIR] [OUTPUT]
  CIFAR10_DIR defaults to ../shared/data/cifar10 relative to the crate root,
  OUTPUT defaults to data/cifar10_subset.bin.zst relative to the crate root.
Python standard library only (lzma for .xz); needs the `zstd` executable on PATH.
"""

import lzma
import pathlib
import struct
import subprocess
import sys

MAGIC = b"HNCIFAR1"
RECORD_BYTES = 3073
NUM_CLASSES = 10
TRAIN_PER_CLASS = 100
TEST_PER_CLASS = 50
ZSTD_LEVEL = 19

CRATE_ROOT = pathlib.Path(__file__).resolve().parent.parent


def read_records(path):
    """Decompress one .bin.xz file and split it into 3073-byte records."""
    raw = lzma.open(path).read()
    if len(raw) % RECORD_BYTES != 0:
        sys.exit(f"{path}: {len(raw)} bytes is not a multiple of {RECORD_BYTES}")
    return [raw[i : i + RECORD_BYTES] for i in range(0, len(raw), RECORD_BYTES)]


def first_per_class(records, per_class, path):
    """The first `per_class` records of every class, in record order."""
    taken = [0] * NUM_CLASSES
    chosen = []
    for rec in records:
        label = rec[0]
        if label >= NUM_CLASSES:
            sys.exit(f"{path}: label byte {label} is not a CIFAR-10 class")
        if taken[label] < per_class:
            taken[label] += 1
            chosen.append(rec)
    if any(n < per_class for n in taken):
        sys.exit(f"{path}: not enough records per class: {taken}")
    return chosen


def main():
    src = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else CRATE_ROOT.parent / "shared/data/cifar10"
    out = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else CRATE_ROOT / "data/cifar10_subset.bin.zst"
    train_path = src / "lossless/train_first4000.bin.xz"
    test_path = src / "lossless/test_first1000.bin.xz"
    train = first_per_class(read_records(train_path), TRAIN_PER_CLASS, train_path)
    test = first_per_class(read_records(test_path), TEST_PER_CLASS, test_path)
    payload = MAGIC + struct.pack("<II", len(train), len(test)) + b"".join(train) + b"".join(test)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["zstd", f"-{ZSTD_LEVEL}", "-q", "-f", "-o", str(out)],
        input=payload,
        check=True,
    )
    print(f"{out}: {len(train)} train + {len(test)} test records, "
          f"{len(payload)} bytes raw, {out.stat().st_size} bytes compressed")


if __name__ == "__main__":
    main()
