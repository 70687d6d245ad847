"""Paired evaluation of detector folders (detector + verifier) on the same test scenes.

    .venv/bin/python -P docs/notes/detector-sdf/evaluate.py OUT.json FAMILIES N DIR...

For each family (comma separated) the N test scenes of `screwcam train-verifier` (640x480,
the test seed no training run uses) are rendered once and every detector folder is
scored on them: recall and precision at IoU >= 0.5, heads >= 24 px, detector alone and
with its verifier (the same numbers train-verifier writes into detector.json). No
TensorFlow: LiteRT only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from screwcam.detector import DETECTOR_FILE, VERIFIER_FILE, Detector, Verifier
from screwcam.training.detector import TEST_SEED, read_entry
from screwcam.training.verifier import _probabilities, evaluate, mine


def main() -> None:
    out, families, n, dirs = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4:]
    result: dict = {"scenes": n, "seed": TEST_SEED, "detectors": {}}
    for d in map(Path, dirs):
        entry = read_entry(d)
        alone = {k: v for k, v in entry.items() if k != "verifier"}
        det = Detector(d / DETECTOR_FILE, alone, 2)
        ver = Verifier(d / VERIFIER_FILE, entry["verifier"])
        row = {"trained_on": entry["training"]["families"]}
        for family in families:
            cands = mine(det, family, n, TEST_SEED)
            p = _probabilities(ver, cands.arrays()[0])
            row[family] = evaluate(cands, p, det.threshold, entry["verifier"])
            a, b = row[family]["detector_alone"], row[family]["with_verifier"]
            print(
                f"{d} {family}: alone {a['recall']:.3f}/{a['precision']:.3f} "
                f"with verifier {b['recall']:.3f}/{b['precision']:.3f} ({a['heads']} heads)",
                flush=True,
            )
        result["detectors"][str(d)] = row
    Path(out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
