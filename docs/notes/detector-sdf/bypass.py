"""Which (heat, P(head), keep-heat) triple would the verifier's validation choose?

    .venv/bin/python -P docs/notes/detector-sdf/bypass.py DETECTOR_DIR

Mines the validation scenes `train-verifier` uses (100 per training family, the
validation seed) and the demo validation frames (seeds 5-9), scores every box with the
folder's verifier (LiteRT), and prints the best validation F1 for each rule: the
verifier vetoes every box (keep-heat never), or only boxes whose heat-map score is
below keep-heat; with and without the constraint that no demo head is lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from screwcam.detector import DETECTOR_FILE, VERIFIER_FILE, Detector, Verifier
from screwcam.training.detector import VALIDATION_SEED, read_entry
from screwcam.training.verifier import (
    HEAT_CHOICES,
    P_CHOICES,
    VALIDATION_DEMO_SEEDS,
    _demo_candidates,
    _probabilities,
    mine,
)

d = Path(sys.argv[1])
entry = read_entry(d)
det = Detector(d / DETECTOR_FILE, {k: v for k, v in entry.items() if k != "verifier"}, 2)
ver = Verifier(d / VERIFIER_FILE, entry["verifier"])
val = [mine(det, f, 100, VALIDATION_SEED) for f in entry["training"]["families"]]
sets = [(c, _probabilities(ver, c.arrays()[0])) for c in val]
demo = _demo_candidates(det, 75, VALIDATION_DEMO_SEEDS, step=6)
pd = _probabilities(ver, demo.arrays()[0])
demo_all = demo.counts(np.array(demo.heat) >= min(HEAT_CHOICES))[0]


def keep(c, p, heat: float, p_min: float, keep_heat: float) -> np.ndarray:
    """The boxes kept: heat >= heat, and P(head) >= p_min unless heat >= keep_heat."""
    h = np.array(c.heat)
    return (h >= heat) & ((p >= p_min) | (h >= keep_heat))


rows = []
for keep_heat in (0.6, 0.7, 0.8, 0.9, 0.95, 1.01):
    for heat in HEAT_CHOICES:
        for p_min in P_CHOICES:
            t = (heat, p_min, keep_heat)
            tp, fp, fn = sum((c.counts(keep(c, p, *t)) for c, p in sets), np.zeros(3, np.int64))
            f1 = 2 * tp / max(1, 2 * tp + fp + fn)
            whole = demo.counts(keep(demo, pd, *t))[0] >= demo_all
            rows.append((keep_heat, heat, p_min, f1, whole))
for keep_heat in (0.6, 0.7, 0.8, 0.9, 0.95, 1.01):
    mine_rows = [r for r in rows if r[0] == keep_heat]
    best = max(mine_rows, key=lambda r: r[3])
    best_whole = max((r for r in mine_rows if r[4]), key=lambda r: r[3], default=None)
    print(
        f"keep-heat {keep_heat}: best F1 {best[3]:.4f} (heat {best[1]}, P {best[2]}, "
        f"demo whole {best[4]}); keeping the demo whole: {best_whole}"
    )
heads = np.array(demo.label) == 1
print("demo heads' P(head), lowest 10:", np.sort(pd[heads])[:10])
print("their heat:", np.array(demo.heat)[heads][np.argsort(pd[heads])[:10]])
