"""Why heads of a family the detector never saw are missed (session 13).

    .venv/bin/python -P docs/notes/detector-sdf/misses.py OUT.json FAMILIES N [BUNDLE]

On `train-verifier`'s N test scenes per family (640x480, seed 7919, heads >= 24 px), every
true head of the shipped detector (or BUNDLE's) is put in one class: found (a kept box
with IoU >= 0.5), rejected by the verifier (a proposed box with IoU >= 0.5 and heat >= its
detector threshold, P(head) below its threshold), weak (such a box, but its heat under
the detector threshold), mislocated (the best box overlaps it with IoU 0.1-0.5), or not
seen (no box near it); by head size; and for the mislocated ones, how their best box
differs (the square root of its area over the head's, and its centre's offset in head
sizes). Boxes are matched one-to-one only for "found", the
rest look at every box, so this explains misses rather than re-scoring them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from screwcam.bundle import read_bundle
from screwcam.detector import load_detector, verifier_crops
from screwcam.preprocess import to_gray
from screwcam.training.detector import TEST_SEED
from screwcam.training.verifier import CANDIDATE_HEAT, MIN_SIDE, render_scenes

SIZES = ((24, 40), (40, 64), (64, 100), (100, 10_000))
KINDS = ("found", "rejected", "weak", "mislocated", "not seen")


def main() -> None:
    out, families, n = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
    bundle = sys.argv[4] if len(sys.argv) > 4 else "models/default"
    det = load_detector(read_bundle(bundle), 2)
    assert det is not None and det.verifier is not None
    ver = det.verifier
    result: dict = {"bundle": bundle, "scenes": n, "seed": TEST_SEED, "families": {}}
    for family in families:
        table = {f"{a}-{b}": dict.fromkeys(KINDS, 0) for a, b in SIZES}
        shapes: list[tuple[float, float, float]] = []  # mislocated: size ratio, offset, IoU
        for image, truth in render_scenes(family, n, TEST_SEED, chunk=50):
            gray = to_gray(image)
            found = det.detect(gray, threshold=CANDIDATE_HEAT, verify=False)
            boxes = [b for b, _ in found]
            heat = np.array([s for _, s in found])
            p = ver.predict_crops(verifier_crops(gray, boxes)) if boxes else np.zeros(0)
            kept = (heat >= ver.detector_threshold) & (p >= ver.threshold)
            for t, _ in truth:
                side = min(t.w, t.h)
                if side < MIN_SIDE:
                    continue
                row = next(f"{a}-{b}" for a, b in SIZES if a <= side < b)
                iou = np.array([t.iou(b) for b in boxes])
                on = iou >= 0.5
                if (on & kept).any():
                    kind = "found"
                elif (on & (heat >= ver.detector_threshold)).any():
                    kind = "rejected"
                elif on.any():
                    kind = "weak"
                elif (iou >= 0.1).any():
                    kind = "mislocated"
                    b = boxes[int(np.argmax(iou))]
                    size = float(np.sqrt(b.w * b.h / (t.w * t.h)))
                    off = np.hypot(b.x + b.w / 2 - t.x - t.w / 2, b.y + b.h / 2 - t.y - t.h / 2)
                    shapes.append((size, float(off / side), float(iou.max())))
                else:
                    kind = "not seen"
                table[row][kind] += 1
        size, off, _ = np.array(shapes).T if shapes else np.zeros((3, 0))
        result["families"][family] = {
            "by_size": table,
            "mislocated": {
                "boxes": len(shapes),
                "smaller_than_0.8": round(float((size < 0.8).mean()), 3) if shapes else None,
                "larger_than_1.25": round(float((size > 1.25).mean()), 3) if shapes else None,
                "median_size_ratio": round(float(np.median(size)), 3) if shapes else None,
                "median_centre_offset": round(float(np.median(off)), 3) if shapes else None,
            },
        }
        print(family, result["families"][family]["mislocated"])
        for row, counts in table.items():
            total = sum(counts.values())
            cells = "  ".join(f"{k} {v / max(1, total):.2f}" for k, v in counts.items())
            print(f"  {row:>9} px ({total:3d} heads): {cells}", flush=True)
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
