"""Paired comparison of two sdf_experiment.py result files on the same held-out crops:
the baseline's variant A (classic + the other generator) against another file's
variant B (a third of the crops from sdf). Used for sdf with faint / missing Pozidriv
ticks (results_ticks.json) against the session-6 runs (results.json).

    python compare_ticks.py results.json results_ticks.json
"""

import json
import sys
from pathlib import Path

import numpy as np


def load(path: Path):
    doc = json.loads(path.read_text())
    preds = dict(np.load(path.with_name(path.stem + "_preds.npz")))
    return {(r["variant"], r["hold"], r["seed"]): r for r in doc["rows"]}, preds


base_rows, base_preds = load(Path(sys.argv[1]))
new_rows, new_preds = load(Path(sys.argv[2]))
print(
    "| held out | seed | A (no sdf) | B (sdf, this file) | paired B - A | SE "
    "| Pozidriv as Phillips A / B |"
)
print("|---|---:|---:|---:|---:|---:|---:|")
for (variant, hold, seed), row in sorted(new_rows.items(), key=lambda kv: (kv[0][1], kv[0][2])):
    if variant != "B" or ("A", hold, seed) not in base_rows:
        continue
    tag_a, tag_b = f"A_{hold}_s{seed}_{hold}", f"B_{hold}_s{seed}_{hold}"
    y = base_preds[tag_a + "_y"]
    assert np.array_equal(y, new_preds[tag_b + "_y"]), "not the same test crops"
    right_a = base_preds[tag_a] == y
    right_b = new_preds[tag_b] == y
    diff = right_b.astype(float) - right_a.astype(float)
    se = diff.std(ddof=1) / np.sqrt(len(diff)) * 100
    poz_a = base_rows[("A", hold, seed)]["scores"][hold]["pozidriv_as_phillips"][0]
    poz_b = row["scores"][hold]["pozidriv_as_phillips"][0]
    print(
        f"| {hold} | {seed} | {right_a.mean() * 100:.1f} % | {right_b.mean() * 100:.1f} % | "
        f"{diff.mean() * 100:+.1f} | {se:.1f} | {poz_a} / {poz_b} |"
    )
