#!/usr/bin/env python3
"""Markdown table of test results from run directories (run.json + eval_test.json), for the README.

Usage: tools/results_table.py RUN_DIR [RUN_DIR ...]
"""
import json
import os
import sys

PAPER_AUC = {"head": 70.4, "vacuole": 87.6, "acrosome": 71.1}  # METHOD.md, ImageNet teacher


def main(runs):
    print("| part | teacher | input | student | epochs | augment | valid AUC | test AUC (95 % CI) | "
          "test F1 / MCC (abnormal positive, f1 threshold) | paper AUC |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        cfg = json.load(open(os.path.join(run, "run.json")))["config"]
        ev = json.load(open(os.path.join(run, "eval_test.json")))
        log = [json.loads(line) for line in open(os.path.join(run, "train_log.jsonl"))]
        ab = ev["abnormal_positive"]
        lo, hi = ev["auc_ci95"]
        paper = PAPER_AUC.get(cfg["part"])
        print(f"| {cfg['part']} | {cfg['teacher']} | {cfg['input_norm']} | {cfg['student']} | {cfg['epochs']} | "
              f"{cfg['augment']} | {log[-1].get('valid_auc', float('nan')):.3f} | {ev['auc']:.3f} ({lo:.3f}-{hi:.3f}) | "
              f"{ab['f1']:.3f} / {ab['mcc']:.3f} | {f'{paper / 100:.3f}' if paper else '-'} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
