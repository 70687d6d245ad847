"""Tables of sdf_experiment.py's results: per seed accuracy, paired deltas B - A with
their standard error over the same test crops.

    python summary.py results.json
"""

import json
import sys
from pathlib import Path

import numpy as np

path = Path(sys.argv[1])
doc = json.loads(path.read_text())
preds = dict(np.load(path.with_name(path.stem + "_preds.npz")))
rows = {(r["variant"], r["hold"], r["seed"]): r for r in doc["rows"]}


def acc(r, name):
    return r["scores"][name]["accuracy"] * 100


def poz(r, name):
    wrong, n = r["scores"][name]["pozidriv_as_phillips"]
    return f"{wrong}/{n}"


print(
    "| variant | seed | held-out generator | accuracy on it | in-family (other varied gen) "
    "| sdf test | Pozidriv as Phillips (held out) | train s |"
)
print("|---|---:|---|---:|---:|---:|---:|---:|")
for (v, hold, seed), r in sorted(rows.items()):
    if v in ("C", "D"):
        continue
    other = {"render3d": "render2d", "render2d": "render3d"}[hold]
    print(
        f"| {v} | {seed} | {hold} | {acc(r, hold):.1f} % | {acc(r, other):.1f} % | "
        f"{acc(r, 'sdf'):.1f} % | {poz(r, hold)} | {r['train_seconds']:.0f} |"
    )
print()
print("| held out | seed | A | B | B - A | s.e. of the paired difference |")
print("|---|---:|---:|---:|---:|---:|")
for hold in ("render3d", "render2d"):
    for seed in (0, 1, 2):
        a, b = rows.get(("A", hold, seed)), rows.get(("B", hold, seed))
        if not (a and b):
            continue
        ca = preds[f"A_{hold}_s{seed}_{hold}"] == preds[f"A_{hold}_s{seed}_{hold}_y"]
        cb = preds[f"B_{hold}_s{seed}_{hold}"] == preds[f"B_{hold}_s{seed}_{hold}_y"]
        d = cb.astype(float) - ca.astype(float)
        se = d.std(ddof=1) / np.sqrt(len(d)) * 100
        print(
            f"| {hold} | {seed} | {acc(a, hold):.1f} % | {acc(b, hold):.1f} % | "
            f"{d.mean() * 100:+.1f} | {se:.1f} |"
        )
print()
for (v, _hold, seed), r in sorted(rows.items()):
    if v == "D":
        print(
            f"D seed {seed} (classic + sdf): render3d {acc(r, 'render3d'):.1f} %, render2d "
            f"{acc(r, 'render2d'):.1f} % (both unseen), sdf {acc(r, 'sdf'):.1f} %"
        )
print()
for (v, _hold, seed), r in sorted(rows.items()):
    if v == "C":
        print(
            f"C seed {seed}: sdf {acc(r, 'sdf'):.1f} %, render2d {acc(r, 'render2d'):.1f} %, "
            f"render3d {acc(r, 'render3d'):.1f} % (in-family), Pozidriv as Phillips on sdf "
            f"{poz(r, 'sdf')}"
        )
        fam = r["scores"]["sdf"]["per_family"]
        for key in ("light", "view", "style", "finish", "bg"):
            vals = ", ".join(
                f"{k} {v['accuracy'] * 100:.0f}" for k, v in sorted(fam.get(key, {}).items())
            )
            print(f"  {key}: {vals}")
