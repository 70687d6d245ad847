"""Test-time augmentation on the shipped bundle: cost in LiteRT time and accuracy.

    python -P tta_bench.py [BUNDLE] [TEST_POOL]

Cost: `Classifier.classify` (2 threads) on the views of 1 head (1, 4 or 8 crops) and
of 5 heads (5, 20 or 40 crops), including stacking the views
(`screwcam.adapter.view_stack`) and averaging the softmax; the variants interleaved
round-robin so that machine load hits them alike; 300 runs each after 20 warm-up
runs, median. Accuracy: the bundle (int8) on the test pool (a `screwcam synth`
dataset, default the recipe's held-out render2d+render3d set), plain and averaged over
4 and 8 dihedral views, per generator.
"""

import os
import sys
import time

import numpy as np

from screwcam.adapter import view_stack
from screwcam.classes import CLASSES
from screwcam.classifier import Classifier
from screwcam.training import holdout as H

BUNDLE = sys.argv[1] if len(sys.argv) > 1 else "models/default"
TEST = sys.argv[2] if len(sys.argv) > 2 else "build/default-model/heldout-families"


def tta(clf: Classifier, crops: np.ndarray, views: int) -> np.ndarray:
    if views == 1:
        return clf.classify(crops)
    p = clf.classify(view_stack(crops, views))
    return p.reshape(views, len(crops), -1).mean(axis=0)


def main() -> None:
    clf = Classifier(BUNDLE, num_threads=2)
    pool = H._load_pool(TEST)
    rng = np.random.default_rng(0)
    heads = pool.x[rng.choice(len(pool.x), 5, replace=False)]
    cases = [(n, v) for n in (1, 5) for v in (1, 4, 8)]
    times: dict = {c: [] for c in cases}
    for _ in range(20):
        for n, v in cases:
            tta(clf, heads[:n], v)
    for _ in range(300):
        for n, v in cases:
            t0 = time.perf_counter()
            tta(clf, heads[:n], v)
            times[(n, v)].append(time.perf_counter() - t0)
    print(f"load average {os.getloadavg()[0]:.1f}")
    for n, v in cases:
        med = np.median(times[(n, v)]) * 1e3
        each = med / n
        print(f"{n} head(s) x {v} view(s): median {med:.3f} ms per classify ({each:.3f} per head)")
    poz, phil = CLASSES.index("pozidriv"), CLASSES.index("philips")
    for gen in ("render2d", "render3d"):
        sub = H._subset(pool, H._has(pool.conditions, "gen", gen))
        for v in (1, 4, 8):
            pred = np.concatenate(
                [tta(clf, sub.x[i : i + 32], v).argmax(1) for i in range(0, len(sub.x), 32)]
            )
            acc = (pred == sub.y).mean() * 100
            pp = int(((sub.y == poz) & (pred == phil)).sum())
            print(f"{gen} ({len(sub.y)} crops) views {v}: {acc:.2f} %, Pozidriv as Phillips {pp}")


if __name__ == "__main__":
    main()
