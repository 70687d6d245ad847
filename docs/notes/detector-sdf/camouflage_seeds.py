"""Paired table of `train-detector` runs without and with `--camouflage`, over seeds.

    python3 docs/notes/detector-sdf/camouflage_seeds.py EVAL.json

EVAL.json is written by evaluate.py for detector folders named
`{base,camo}-without-{FAMILY}-s{SEED}` (base: the recipe's leave-FAMILY-out command,
camo: the same with --camouflage 0.25; each with a verifier of its own). Per held-out
family and test family: F1 of the heat map alone and with the verifier, each at its best
threshold (the same oracle choice for both arms) and at the shipped thresholds, per seed,
base -> camo, and the mean change in points.

camouflage-seeds.json (session 14) was made with, for HELD in gen2 photo (REST the other
two of render,photo,gen2) and SEED in 20 21, ARM base (no option) and camo:

    screwcam train-detector W/ARM-without-HELD-sSEED --families REST --scenes 6000 \
        --epochs 10 --seed SEED [--camouflage 0.25] --test-families render --test-scenes 20
    screwcam train-verifier W/ARM-without-HELD-sSEED --scenes 800 --epochs 12 --seed 0 \
        --thresholds 0.2,0.5 --test-families render --test-scenes 20
    SCENE_CACHE=W/cache python -P docs/notes/detector-sdf/evaluate.py camouflage-seeds.json \
        gen2,photo,sdf,pbr,render,demo 150 W/base-without-gen2-s20 W/camo-without-gen2-s20 ...

(the seed-20 baselines are the recipe's build/default-detector/without-{gen2,photo});
verifier-seeds.json: W/base-without-gen2-s21 and two copies of it whose verifiers were
retrained with --seed 1 and --seed 2 (-v1, -v2), then three more with the learning rate
decayed over training, seeds 0-2 (-c0..-c2: docs/notes/verifier/lr_decay.py DIR SEED).
"""

from __future__ import annotations

import json
import re
import sys

NAME = re.compile(r"(base|camo)-without-(\w+)-s(\d+)$")


def f1(row: dict) -> float:
    r, p = row["recall"], row["precision"]
    return 2 * r * p / (r + p) if r + p else 0.0


COLUMNS = {
    "best F1 alone": lambda row: row["best_f1_alone"][0],
    "best F1 with verifier": lambda row: row["best_f1_verifier"][0],
    "F1 with verifier at 0.2, 0.5": lambda row: f1(row["with_verifier"]),
}


def main() -> None:
    detectors = json.load(open(sys.argv[1]))["detectors"]
    runs: dict[tuple[str, str, str], dict] = {}
    for spec, result in detectors.items():
        m = NAME.search(spec.rstrip("/"))
        if m:
            runs[(m.group(2), m.group(3), m.group(1))] = result
    first = next(iter(detectors.values()))
    families = [f for f, v in first.items() if isinstance(v, dict)]
    for held in sorted({h for h, _, _ in runs}):
        seeds = sorted({s for h, s, _ in runs if h == held})
        trained = ", ".join(runs[(held, seeds[0], "base")]["trained_on"])
        print(f"\n{held} held out (trained on {trained})")
        for column, value in COLUMNS.items():
            print(f"\n| {column} | " + " | ".join(f"seed {s}" for s in seeds) + " | mean change |")
            print("|---|" + "---|" * (len(seeds) + 1))
            for family in families:
                cells, deltas = [], []
                for s in seeds:
                    a, b = runs.get((held, s, "base")), runs.get((held, s, "camo"))
                    if a is None or b is None:
                        cells.append("—")
                        continue
                    va, vb = value(a[family]), value(b[family])
                    cells.append(f"{va:.3f} → {vb:.3f}")
                    deltas.append(100 * (vb - va))
                mean = f"{sum(deltas) / len(deltas):+.1f}" if deltas else "—"
                print(f"| {family} | " + " | ".join(cells) + f" | {mean} |")


if __name__ == "__main__":
    main()
