#!/usr/bin/env python3
"""Rebuild data/vit_autoformer.csv.zst, data/vit_autoformer_scratch.csv.zst (AutoFormer-Tiny)
and data/pit_autoprox.csv.zst (PiT), the ViT tables embedded by src/data/mod.rs, from the
shared copies of Auto-Prox's ground-truth files (../shared/data/vit_autoformer/
autoformer_tiny_autoprox.csv, 200 rows, and pit_autoprox.csv, 100 rows, from GitHub
lliai/Auto-Prox-AAAI24, MIT).

The source spreads an architecture over four columns (embed_dim, depth, mlp_ratio,
num_heads); the tool reads one architecture column, so they are joined here into the
canonical form of src/space/vit.rs: `d=192;L=12;mlp=3.5,4.0,...;h=4,4,3,...`.

vit_autoformer (200 rows): every architecture, with the columns all 200 rows have:
  c100_kd_acc, flower_kd_acc, chaoyang_kd_acc (top-1 %, trained with distillation) and
  imagenet_super_acc (ImageNet top-1 % with weights inherited from the AutoFormer supernet).
vit_autoformer_scratch (100 rows): the `gt_autoformer` rows, the only ones trained from
  scratch too, with every target column (c100/flower/chaoyang _base_acc and _kd_acc,
  imagenet_super_acc). The second half of the source has no from-scratch runs, and a table
  target may not have empty cells.
pit_autoprox (100 rows): the PiT rows in the canonical form of src/space/pit.rs
  (`b=32;mlp=4;L=2,6,4;h=2,4,8`) with every target column (c100/flower/chaoyang _base_acc and
  _kd_acc).

Compression: the `zstd` command-line tool, level 19.
Usage: python3 scripts/make_vit_tables.py [SHARED_DATA_DIR]
Python standard library only; needs the `zstd` executable on PATH.
"""

import csv
import pathlib
import sys

from zst_table import write_zst

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
KD = ["c100_kd_acc", "flower_kd_acc", "chaoyang_kd_acc", "imagenet_super_acc"]
ALL = ["c100_base_acc", "c100_kd_acc", "flower_base_acc", "flower_kd_acc",
       "chaoyang_base_acc", "chaoyang_kd_acc", "imagenet_super_acc"]


def arch(r):
    mlp = [f"{float(v):.1f}" for v in r["mlp_ratio"].split(",")]
    heads = [str(int(v)) for v in r["num_heads"].split(",")]
    depth = int(r["depth"])
    assert len(mlp) == depth and len(heads) == depth, r
    return f"d={int(r['embed_dim'])};L={depth};mlp={','.join(mlp)};h={','.join(heads)}"


def main():
    src = SHARED / "vit_autoformer" / "autoformer_tiny_autoprox.csv"
    rows = list(csv.DictReader(open(src)))
    archs = [arch(r) for r in rows]
    assert len(set(archs)) == len(archs), "duplicate architectures"
    write_zst([[a] + [r[c] for c in KD] for a, r in zip(archs, rows)], ["arch"] + KD,
              ROOT / "data" / "vit_autoformer.csv.zst")
    scratch = [(a, r) for a, r in zip(archs, rows) if r["source"] == "gt_autoformer"]
    assert all(r[c] != "" for _, r in scratch for c in ALL)
    write_zst([[a] + [r[c] for c in ALL] for a, r in scratch], ["arch"] + ALL,
              ROOT / "data" / "vit_autoformer_scratch.csv.zst")

    src = SHARED / "vit_autoformer" / "pit_autoprox.csv"
    pit = list(csv.DictReader(open(src)))
    pit_cols = [c for c in ALL if c != "imagenet_super_acc"]
    pit_archs = [f"b={r['base_dim']};mlp={r['mlp_ratio']};L={r['depth']};h={r['num_heads']}"
                 for r in pit]
    assert len(set(pit_archs)) == len(pit_archs), "duplicate architectures"
    assert all(r[c] != "" for r in pit for c in pit_cols)
    write_zst([[a] + [r[c] for c in pit_cols] for a, r in zip(pit_archs, pit)],
              ["arch"] + pit_cols, ROOT / "data" / "pit_autoprox.csv.zst")


main()
