#!/usr/bin/env python3
"""Rebuild data/nb101.csv.zst and data/darts.csv.zst, the NAS-Bench-101 and DARTS tables
embedded by src/data/mod.rs, from the shared copies of NASLib's zero-cost tables.

nb101: ../shared/data/nasbench101/nb101_naslib_zc_subset.csv (500 rows). Its `adjacency`
  column holds the *unpruned* 7x7 matrix NASLib sampled (so some rows show more than 9 edges:
  the benchmark counts edges after pruning). Each row is pruned as nasbench's ModelSpec does
  (nodes not on an input-output path dropped), written in our canonical compact form
  `ADJACENCY:OPS`, and rows whose cells are isomorphic (equal nasbench graph hash) are
  merged: NASLib queried one random seed of three per row, so the merged accuracy is the
  mean over the queries and `queries` says how many there were.
  Columns: arch, val_acc, params, flops, queries, graph_hash.

darts: ../shared/data/darts_nb301/nb301_naslib_zc_subset.csv (1,218 rows, NAS-Bench-301
  surrogate labels). Kept as is, only the columns the tool uses.
  Columns: arch (the DARTS Genotype string), compact, val_acc, params, flops.

Compression: the `zstd` command-line tool, level 19.
Usage: python3 scripts/make_nb101_darts_tables.py [SHARED_DATA_DIR]
Python standard library only; needs the `zstd` executable on PATH.
"""

import csv
import hashlib
import pathlib
import sys

from zst_table import write_zst

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
LABELS = {"conv3x3-bn-relu": 0, "conv1x1-bn-relu": 1, "maxpool3x3": 2}


def prune(matrix, ops):
    n = len(ops)
    from_input = [False] * n
    from_input[0] = True
    for j in range(1, n):
        from_input[j] = any(from_input[i] and matrix[i][j] for i in range(j))
    to_output = [False] * n
    to_output[n - 1] = True
    for i in range(n - 2, -1, -1):
        to_output[i] = any(to_output[j] and matrix[i][j] for j in range(i + 1, n))
    assert from_input[n - 1], "disconnected cell"
    keep = [v for v in range(n) if from_input[v] and to_output[v]]
    return [[matrix[i][j] for j in keep] for i in keep], [ops[v] for v in keep]


def md5(text):
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def graph_hash(matrix, ops):
    """nasbench.lib.graph_util.hash_module."""
    n = len(ops)
    labels = [-1] + [LABELS[o] for o in ops[1:-1]] + [-2]
    out_deg = [sum(row) for row in matrix]
    in_deg = [sum(matrix[i][j] for i in range(n)) for j in range(n)]
    hashes = [md5(str((out_deg[v], in_deg[v], labels[v]))) for v in range(n)]
    for _ in range(n):
        hashes = [
            md5(
                "".join(sorted(hashes[w] for w in range(n) if matrix[w][v]))
                + "|"
                + "".join(sorted(hashes[w] for w in range(n) if matrix[v][w]))
                + "|"
                + hashes[v]
            )
            for v in range(n)
        ]
    return md5(str(sorted(hashes)))


def nb101():
    src = SHARED / "nasbench101" / "nb101_naslib_zc_subset.csv"
    merged = {}
    for r in csv.DictReader(open(src)):
        n = int(r["n_nodes"])
        bits = r["adjacency"]
        matrix = [[int(bits[i * n + j]) for j in range(n)] for i in range(n)]
        matrix, ops = prune(matrix, r["ops"].split("|"))
        assert sum(map(sum, matrix)) <= 9
        h = graph_hash(matrix, ops)
        arch = "".join(str(v) for row in matrix for v in row) + ":" + "|".join(ops)
        entry = merged.setdefault(h, {"arch": arch, "acc": [], "params": r["params"],
                                      "flops": r["flops"]})
        entry["acc"].append(float(r["val_acc"]))
    rows = [
        [e["arch"], f"{sum(e['acc']) / len(e['acc']):.4f}", e["params"], e["flops"],
         len(e["acc"]), h]
        for h, e in merged.items()
    ]
    write_zst(rows, ["arch", "val_acc", "params", "flops", "queries", "graph_hash"],
              ROOT / "data" / "nb101.csv.zst")


def darts():
    src = SHARED / "darts_nb301" / "nb301_naslib_zc_subset.csv"
    rows = [[r["genotype"], r["compact"], r["val_acc"], r["params"], r["flops"]]
            for r in csv.DictReader(open(src))]
    write_zst(rows, ["arch", "compact", "val_acc", "params", "flops"],
              ROOT / "data" / "darts.csv.zst")


if __name__ == "__main__":
    nb101()
    darts()
