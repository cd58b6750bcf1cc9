#!/usr/bin/env python3
"""Rebuild the embedded tables of the extra benchmarks (src/data/mod.rs) from the shared copies:

nb_macro: ../shared/data/nas_bench_macro/nas_bench_macro_cifar10.csv (6,561 rows, complete).
  Columns: arch (8 digits, layer 1 -> 8), mean_acc, std (CIFAR-10 test accuracy %, mean and
  std of 3 runs), params, flops. The three single runs are dropped.

tnb101_micro: ../shared/data/transnas101/tnb101_micro_val.csv (4,096 rows, complete micro
  space). Columns: arch (`64-41414-a_bc_def`), class_scene, class_object, jigsaw,
  room_layout, segmentsemantic, normal, autoencoder (the benchmark's validation metric per
  task, see the shared README). The redundant `ops` digits column is dropped (the parser
  reads both forms). The macro subset file is not embedded.

nb_nlp: ../shared/data/nas_bench_nlp/nb_nlp_wikitext2.jsonl (341 runs, WikiText-2).
  Runs of the same cell are merged, their losses averaged (`runs` counts them): same up to
  node names and the order of the inputs of linear / elementwise sum / product nodes (the key
  of NbNlpSpace::identity, see nlp_identity). Columns: arch (the `recipe` as compact JSON, nodes in file order), neg_best_val_loss
  (-best_val_loss: higher is better, like every other target, so search maximises it),
  best_val_loss, test_loss_at_best_val, num_params, runs, recepie_id (of the first run).

nb_graph: ../shared/data/nas_bench_graph/nas_bench_graph_light.csv.gz (26,206 archs x 8
  datasets + proteins). One row per architecture: arch (`LINK:op|op|op|op`), then
  `<dataset>_valid` for the datasets in GRAPH_DATASETS (accuracy as a fraction, as stored).
  Test columns, latency, parameters and proteins (a 2,021-arch subset on other ops) are
  dropped to keep the embedded file small.

Compression: the `zstd` command-line tool, level 19.
Usage: python3 scripts/make_extra_tables.py [SHARED_DATA_DIR]
Python standard library only; needs the `zstd` executable on PATH.
"""

import csv
import gzip
import json
import pathlib
import sys

from zst_table import write_zst

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
TNB_TASKS = ["class_scene", "class_object", "jigsaw", "room_layout", "segmentsemantic",
             "normal", "autoencoder"]
GRAPH_DATASETS = ["cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv"]


def nb_macro():
    src = SHARED / "nas_bench_macro" / "nas_bench_macro_cifar10.csv"
    rows = [[r["arch"], r["mean_acc"], r["std"], r["params"], r["flops"]]
            for r in csv.DictReader(open(src))]
    assert len(rows) == 3 ** 8
    write_zst(rows, ["arch", "mean_acc", "std", "params", "flops"],
              ROOT / "data" / "nb_macro.csv.zst")


def tnb101_micro():
    src = SHARED / "transnas101" / "tnb101_micro_val.csv"
    rows = [[r["arch_str"]] + [r[t] for t in TNB_TASKS] for r in csv.DictReader(open(src))]
    assert len(rows) == 4 ** 6
    write_zst(rows, ["arch"] + TNB_TASKS, ROOT / "data" / "tnb101_micro.csv.zst")


def nlp_identity(recipe):
    """The same key as NbNlpSpace::identity: each new hidden state as an expression over the
    cell inputs, node names dropped, the inputs of the order-free ops (linear: W [inputs] + b
    with a learnt W; elementwise sum and product) sorted."""
    memo = {}

    def expr(name):
        if name not in recipe:
            return name
        if name not in memo:
            node = recipe[name]
            inputs = [expr(i) for i in node["input"]]
            if node["op"] in ("linear", "elementwise_sum", "elementwise_prod"):
                inputs.sort()
            memo[name] = node["op"] + "(" + ",".join(inputs) + ")"
        return memo[name]

    outputs = sorted(k for k in recipe if k in ("h_new_0", "h_new_1", "h_new_2"))
    return ";".join(f"{k}={expr(k)}" for k in outputs)


def nb_nlp():
    src = SHARED / "nas_bench_nlp" / "nb_nlp_wikitext2.jsonl"
    merged = {}
    for line in open(src):
        r = json.loads(line)
        # the same cell (up to node names and the order of order-free inputs) was trained more
        # than once: one row per cell, the first run's recipe, losses averaged over its runs
        entry = merged.setdefault(nlp_identity(r["recipe"]),
                                  {"recipe": r["recipe"], "val": [], "test": [],
                                   "params": r["num_params"], "id": r["recepie_id"]})
        entry["val"].append(r["best_val_loss"])
        entry["test"].append(r["test_loss_at_best_val"])
    rows = []
    for e in merged.values():
        val = sum(e["val"]) / len(e["val"])
        test = sum(e["test"]) / len(e["test"])
        rows.append([json.dumps(e["recipe"], separators=(",", ":")), f"{-val:.6f}", f"{val:.6f}",
                     f"{test:.6f}", e["params"], len(e["val"]), e["id"]])
    write_zst(rows, ["arch", "neg_best_val_loss", "best_val_loss", "test_loss_at_best_val",
                     "num_params", "runs", "recepie_id"], ROOT / "data" / "nb_nlp.csv.zst")


def nb_graph():
    src = SHARED / "nas_bench_graph" / "nas_bench_graph_light.csv.gz"
    archs = {}
    for r in csv.DictReader(gzip.open(src, "rt")):
        if r["dataset"] not in GRAPH_DATASETS:
            continue
        key = f"{r['link']}:{r['ops']}"
        archs.setdefault(key, {})[r["dataset"]] = r["valid_perf"]
    rows = [[k] + [v[d] for d in GRAPH_DATASETS] for k, v in archs.items()]
    assert len(rows) == 26_206 and all(len(r) == 1 + len(GRAPH_DATASETS) for r in rows)
    write_zst(rows, ["arch"] + [f"{d}_valid" for d in GRAPH_DATASETS],
              ROOT / "data" / "nb_graph.csv.zst")


nb_macro()
tnb101_micro()
nb_nlp()
nb_graph()
