"""Tried, not shipped (session 13): flip test-time augmentation for the head detector.

    .venv/bin/python -P docs/notes/detector-sdf/flip_tta.py OUT.json FAMILIES N

The boxes the heat map proposes on a frame and on its mirror image (mode "flip"; "flipud"
adds the upside-down image too), one box per place (`detector.suppress`, strongest
first), against the frame alone ("base"); scored like `train-verifier` on its N test
scenes per family (640x480, heads >= 24 px, IoU >= 0.5), detector alone and with the
shipped verifier. Result in docs/notes/detector.md, session 13.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from screwcam.bundle import read_bundle
from screwcam.detector import Detector, load_detector, suppress
from screwcam.frames import Box
from screwcam.training.detector import TEST_SEED
from screwcam.training.verifier import Candidates, _probabilities, evaluate, render_scenes

MODES = ("base", "flip", "flipud")


class Flipped:
    """A detector-like object whose `detect` unites the boxes of the flipped images."""

    def __init__(self, det: Detector, mode: str) -> None:
        self.det, self.mode = det, mode

    def detect(self, gray: np.ndarray, threshold=None, verify=False):
        found = self.det.detect(gray, threshold, verify=False)
        if self.mode == "base":
            return found
        h, w = gray.shape[:2]
        mirror = self.det.detect(np.ascontiguousarray(gray[:, ::-1]), threshold, verify=False)
        found += [(Box(w - b.x - b.w, b.y, b.w, b.h), s) for b, s in mirror]
        if self.mode == "flipud":
            upside = self.det.detect(np.ascontiguousarray(gray[::-1]), threshold, verify=False)
            found += [(Box(b.x, h - b.y - b.h, b.w, b.h), s) for b, s in upside]
        return suppress(sorted(found, key=lambda bs: -bs[1]))


def _f1(m: dict) -> float:
    return 2 * m["recall"] * m["precision"] / max(1e-9, m["recall"] + m["precision"])


def main() -> None:
    out, families, n = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
    det = load_detector(read_bundle("models/default"), 2)
    assert det is not None and det.verifier is not None
    ver, det.verifier = det.verifier, None
    entry = {"detector_threshold": ver.detector_threshold, "threshold": ver.threshold}
    result: dict = {}
    for family in families:
        t0 = time.monotonic()
        cands = {m: Candidates() for m in MODES}
        for image, truth in render_scenes(family, n, TEST_SEED, chunk=50):
            for m in MODES:
                boxes, kinds = [b for b, _ in truth], [int(k) for _, k in truth]
                cands[m].add_scene(Flipped(det, m), image, boxes, kinds)  # type: ignore[arg-type]
        for m in MODES:
            c = cands[m]
            r = evaluate(c, _probabilities(ver, c.arrays()[0]), det.threshold, entry)
            result.setdefault(family, {})[m] = r
            a, b = r["detector_alone"], r["with_verifier"]
            print(
                f"{family} {m}: alone {a['recall']:.3f}/{a['precision']:.3f} F1 {_f1(a):.3f}  "
                f"with verifier {b['recall']:.3f}/{b['precision']:.3f} F1 {_f1(b):.3f} "
                f"({a['heads']} heads, {time.monotonic() - t0:.0f} s)",
                flush=True,
            )
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
