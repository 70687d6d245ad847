"""Table of lofo_experiments.py results, run in the folder with its res_*.json files.

    python lofo_summary.py [MAX_PER_CLASS] [--save OUT.json]

Prints one markdown row per result file (variant and seed): held-out render3d and
render2d accuracy, in-family accuracy (the same models on the other generator's test
crops), Pozidriv read as Phillips on each held-out generator, training seconds; then
the 4- and 8-view test-time augmentation of the same models; then, where per-crop
predictions were saved, paired differences against the base model of the same seed
(standard error from the crops on which exactly one of the two is right); last, every
variant against base of the same seed on held-out and in-family accuracy (paired where
both have per-crop predictions, otherwise a plain difference marked unpaired).
--save also writes every result file, with its held-out per-crop predictions as digit
strings (one class index a crop), into one json keyed by file name.
"""

import glob
import json
import math
import os
import sys

import numpy as np

MAX = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "2000"
HOLDS = ("gen=render3d", "gen=render2d")


def load() -> list[dict]:
    docs = []
    for path in sorted(glob.glob(f"res_*_{MAX}*.json")):
        doc = json.load(open(path))
        doc["path"] = path
        doc["rows"] = {r["hold"]: r for r in doc["rows"]}
        npz = path.replace(".json", "_preds.npz")
        try:
            doc["preds"] = dict(np.load(npz))
        except FileNotFoundError:
            doc["preds"] = None
        docs.append(doc)
    return docs


def pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def paired(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(accuracy of b minus a, its standard error), both in points, same crops."""
    ra, rb = a == y, b == y
    n = len(y)
    only_b, only_a = int((rb & ~ra).sum()), int((ra & ~rb).sum())
    diff = (only_b - only_a) / n
    se = math.sqrt(max(only_a + only_b - (only_b - only_a) ** 2 / n, 0.0)) / n
    return diff * 100, se * 100


def save(docs: list[dict], out: str) -> None:
    bundle = {}
    for d in docs:
        doc = {k: v for k, v in d.items() if k not in ("path", "preds")}
        doc["rows"] = list(d["rows"].values())
        if d["preds"] is not None:
            doc["held_out_predictions"] = {
                k: "".join(map(str, v.tolist()))
                for k, v in d["preds"].items()
                if not k.startswith("in_")
            }
        bundle[d["path"]] = doc
    with open(out + ".tmp", "w") as fh:
        json.dump(bundle, fh, indent=1, default=str)
    os.replace(out + ".tmp", out)


def main() -> None:
    docs = load()
    if "--save" in sys.argv:
        save(docs, sys.argv[sys.argv.index("--save") + 1])
    print(
        "| variant | seed | held-out render3d | held-out render2d | in-family (render2d / "
        "render3d) | Pozidriv as Phillips (render3d / render2d held out) | train s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for d in docs:
        r3, r2 = d["rows"][HOLDS[0]], d["rows"][HOLDS[1]]
        print(
            f"| {d['variant']} | {d.get('seed', 0)} | {pct(r3['accuracy'])} | "
            f"{pct(r2['accuracy'])} | {pct(r3['in_family_accuracy'])} / "
            f"{pct(r2['in_family_accuracy'])} | {r3['pozidriv_as_phillips'][0]}/200 / "
            f"{r2['pozidriv_as_phillips'][0]}/200 | "
            f"{r3['train_seconds']:.0f} + {r2['train_seconds']:.0f} |"
        )
    print()
    print(
        "| variant | seed | views | held-out render3d | held-out render2d | in-family | "
        "Pozidriv as Phillips |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for d in docs:
        for v in ("plain", "tta4", "tta8"):
            t3, t2 = d["rows"][HOLDS[0]]["tta"], d["rows"][HOLDS[1]]["tta"]
            print(
                f"| {d['variant']} | {d.get('seed', 0)} | {v} | "
                f"{pct(t3['held_out'][v]['accuracy'])} | {pct(t2['held_out'][v]['accuracy'])} | "
                f"{pct(t3['in_family'][v]['accuracy'])} / {pct(t2['in_family'][v]['accuracy'])} | "
                f"{t3['held_out'][v]['pozidriv_as_phillips'][0]} / "
                f"{t2['held_out'][v]['pozidriv_as_phillips'][0]} |"
            )
    print()
    print("Paired differences (points, +- one standard error), same test crops:")
    for d in docs:
        p = d["preds"]
        if p is None:
            continue
        name = f"{d['variant']} seed {d.get('seed', 0)}"
        for h in HOLDS:
            y = p[f"{h}_y"]
            for v in ("tta4", "tta8"):
                diff, se = paired(p[f"{h}_plain"], p[f"{h}_{v}"], y)
                print(f"  {name} {h}: {v} vs plain {diff:+.1f} +- {se:.1f}")
            base = [
                b
                for b in docs
                if b["variant"] == "base" and b.get("seed", 0) == d.get("seed", 0) and b["preds"]
            ]
            if base and d["variant"] != "base":
                diff, se = paired(base[0]["preds"][f"{h}_plain"], p[f"{h}_plain"], y)
                print(
                    f"  {d['variant']} seed {d.get('seed', 0)} {h}: vs base {diff:+.1f} +- {se:.1f}"
                )
    print()
    print("Against base of the same seed, plain accuracy (points; held out / in-family):")
    for d in docs:
        base = [b for b in docs if b["variant"] == "base" and b.get("seed", 0) == d.get("seed", 0)]
        if not base or d["variant"] == "base":
            continue
        b = base[0]
        cells = []
        for h in HOLDS:
            r, rb = d["rows"][h], b["rows"][h]
            if d["preds"] is not None and b["preds"] is not None:
                y = d["preds"][f"{h}_y"]
                diff, se = paired(b["preds"][f"{h}_plain"], d["preds"][f"{h}_plain"], y)
                d8, se8 = paired(b["preds"][f"{h}_tta8"], d["preds"][f"{h}_tta8"], y)
                held = f"{diff:+.1f} +- {se:.1f} (tta8 vs base tta8 {d8:+.1f} +- {se8:.1f})"
            else:
                held = f"{(r['accuracy'] - rb['accuracy']) * 100:+.1f} (unpaired)"
            fam = (r["in_family_accuracy"] - rb["in_family_accuracy"]) * 100
            cells.append(f"{h} {held} / in-family {fam:+.1f}")
        print(f"  {d['variant']} seed {d.get('seed', 0)}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
