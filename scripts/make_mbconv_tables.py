#!/usr/bin/env python3
"""Rebuild data/ofa_mbv3.csv.zst and data/anb_mbconv.csv.zst, the two MBConv tables embedded
by src/data/mod.rs, from the shared copies of the DyNAS-T OFA log and Accel-NASBench.

ofa_mbv3: ../shared/data/ofa_mobilenetv3/ofa_mbv3_dynast_imagenet.csv (2,223 rows; ImageNet
  top-1 measured with weights inherited from the OFA MobileNetV3 w1.0 supernet, logged by
  DyNAS-T's evolutionary searches). Each row's ks/e/d/r columns become our canonical string
  `ks=K1,...,K20;e=E1,...,E20;d=D1,...,D5;r=224`, in which the kernel and expansion of the
  layers beyond a unit's depth (inactive, ignored by OFA) are written as 3 (see
  src/space/ofa_mbv3.rs). Rows that differ only in inactive layers are the same network:
  57 such groups (2,223 rows -> 2,162 architectures) are merged, `top1` being the mean of
  their `top1_mean` (repeat evaluations differ by <= 0.05 %) and `rows` counting them.
  Columns: arch, top1, params, macs, rows.

anb_mbconv: ../shared/data/mbconv_accel_nasbench/anb_imagenet.csv (5,138 rows; ImageNet
  top-1/top-5 after Accel-NASBench's proxy training schedule). The `arch` strings are kept
  as they are (they are the canonical form); the 13 strings that occur twice (independent
  trainings) are merged by the mean (`runs` counts them). Columns: arch, val_top1,
  val_top5, macs_m, params_m, runs.

Compression: the `zstd` command-line tool, level 19.
Usage: python3 scripts/make_mbconv_tables.py [SHARED_DATA_DIR]
Python standard library only; needs the `zstd` executable on PATH.
"""

import csv
import pathlib
import sys

from make_nb101_darts_tables import write_zst

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
UNITS, SLOTS = 5, 4
INACTIVE = "3"  # kernel and expansion written for layers beyond a unit's depth



def fmt(x):
    return f"{x:.4f}".rstrip("0").rstrip(".")


def ofa_canonical(ks, e, d, r):
    ks, e, d = ks.split(","), e.split(","), [int(x) for x in d.split(",")]
    assert len(ks) == len(e) == UNITS * SLOTS and len(d) == UNITS, (ks, e, d)
    for u in range(UNITS):
        for s in range(d[u], SLOTS):
            ks[u * SLOTS + s] = INACTIVE
            e[u * SLOTS + s] = INACTIVE
    return f"ks={','.join(ks)};e={','.join(e)};d={','.join(map(str, d))};r={r}"


def merge(rows, key, value_cols, keep_cols):
    """Group rows by key(row): mean of value_cols, first of keep_cols, and the group size."""
    groups = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    out = []
    for k, group in groups.items():
        first = group[0]
        for c in keep_cols:
            assert all(g[c] == first[c] for g in group), (k, c)
        means = [fmt(sum(float(g[c]) for g in group) / len(group)) for c in value_cols]
        out.append([k, *means, *(first[c] for c in keep_cols), len(group)])
    return out


def ofa():
    rows = list(csv.DictReader(open(SHARED / "ofa_mobilenetv3" / "ofa_mbv3_dynast_imagenet.csv")))
    merged = merge(rows, lambda r: ofa_canonical(r["ks"], r["e"], r["d"], r["r"]),
                   ["top1_mean"], ["params", "macs"])
    write_zst(merged, ["arch", "top1", "params", "macs", "rows"], ROOT / "data" / "ofa_mbv3.csv.zst")


def anb():
    rows = list(csv.DictReader(open(SHARED / "mbconv_accel_nasbench" / "anb_imagenet.csv")))
    # independent trainings of one architecture: the costs are measured too, so average them
    merged = merge(rows, lambda r: r["arch"],
                   ["val_top1", "val_top5", "macs_m", "params_m"], [])
    write_zst(merged, ["arch", "val_top1", "val_top5", "macs_m", "params_m", "runs"],
              ROOT / "data" / "anb_mbconv.csv.zst")


if __name__ == "__main__":
    ofa()
    anb()
