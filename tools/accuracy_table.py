#!/usr/bin/env python3
"""Markdown tables of the accuracy grid (issue 4) from tools/sweep_accuracy.sh runs.

Usage: tools/accuracy_table.py ROOT

Every ROOT/TAG/PART-sSEED run (its configuration read from run.json) with eval_valid.json and eval_test.json is one
observation of its configuration; refinement evaluations written by
`morphokd eval --out RUN/SCORE-TTA-POOLS` (tools/refine_accuracy.sh) are further
configurations. Ensembles in ROOT/ensembles/TAG~SCORE-TTA-POOLS/PART are listed apart. Cells show valid / test
AUC, as mean ± sd over seeds when there are several.
"""
import collections
import json
import os
import statistics
import sys

PARTS = ["head", "vacuole", "acrosome", "tail"]
PAPER = {"head": 0.704, "vacuole": 0.876, "acrosome": 0.711}


def load(path):
    with open(path) as f:
        return json.load(f)


def cell(values):
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def collect(root):
    grid = collections.defaultdict(lambda: collections.defaultdict(lambda: {"valid": [], "test": []}))
    for tag in sorted(os.listdir(root)):
        tdir = os.path.join(root, tag)
        if "~" not in tag or not os.path.isdir(tdir) or tag == "ensembles":
            continue
        for run in sorted(os.listdir(tdir)):
            rdir = os.path.join(tdir, run)
            if not os.path.isfile(os.path.join(rdir, "run.json")):
                continue
            cfg = load(os.path.join(rdir, "run.json"))["config"]
            part = cfg["part"]
            for sub in [""] + sorted(os.listdir(rdir)):
                edir = os.path.join(rdir, sub)
                if not (os.path.isfile(os.path.join(edir, "eval_valid.json")) and os.path.isfile(os.path.join(edir, "eval_test.json"))):
                    continue
                ev, et = load(os.path.join(edir, "eval_valid.json")), load(os.path.join(edir, "eval_test.json"))
                key = (cfg["teacher"], cfg["input_norm"], str(cfg["epochs"]), et.get("score", "sum"), et.get("tta", "none"),
                       et.get("score_critical", "3,4,5"))
                grid[key][part]["valid"].append(ev["auc"])
                grid[key][part]["test"].append(et["auc"])
    return grid


def main(root):
    grid = collect(root)
    print("| teacher | input | epochs | score | tta | pools | seeds | " + " | ".join(f"{p} valid / test" for p in PARTS) + " | mean valid |")
    print("|---|---|---|---|---|---|---|" + "---|" * (len(PARTS) + 1))
    for key in sorted(grid, key=lambda k: -statistics.mean([statistics.mean(grid[k][p]["valid"]) for p in PARTS if grid[k][p]["valid"]] or [0])):
        parts = grid[key]
        seeds = max(len(parts[p]["test"]) for p in PARTS)
        cells = [f"{cell(parts[p]['valid'])} / {cell(parts[p]['test'])}" for p in PARTS]
        valid_means = [statistics.mean(parts[p]["valid"]) for p in PARTS if parts[p]["valid"]]
        mean_valid = f"{statistics.mean(valid_means):.3f}" if len(valid_means) == len(PARTS) else "–"
        print(f"| {' | '.join(key)} | {seeds} | " + " | ".join(cells) + f" | {mean_valid} |")
    ens = os.path.join(root, "ensembles")
    if os.path.isdir(ens):
        print("\n| ensemble | " + " | ".join(f"{p} valid / test (95 % CI)" for p in PARTS) + " |")
        print("|---|" + "---|" * len(PARTS))
        for tag in sorted(os.listdir(ens)):
            row = []
            for p in PARTS:
                d = os.path.join(ens, tag, p)
                if os.path.isfile(os.path.join(d, "eval_test.json")):
                    ev, et = load(os.path.join(d, "eval_valid.json")), load(os.path.join(d, "eval_test.json"))
                    lo, hi = et["auc_ci95"]
                    row.append(f"{ev['auc']:.3f} / {et['auc']:.3f} ({lo:.3f}–{hi:.3f})")
                else:
                    row.append("–")
            print(f"| {tag} | " + " | ".join(row) + " |")
    print("\nPaper (ImageNet VGG16, test): " + ", ".join(f"{p} {v:.3f}" for p, v in PAPER.items()))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
