"""Runtime variants of the shipped box regressor, none adopted yet (session 16).

    .venv/bin/python -P docs/notes/refine/variants.py FAMILIES     # accuracy, cached scenes
    .venv/bin/python -P docs/notes/refine/variants.py --time       # the crops' cost

On the cached test scenes of docs/notes/detector-sdf/evaluate.py (SCENE_CACHE, default
/tmp/s14/cache, 150 per family, seed 7919, heads >= 24 px, IoU >= 0.5), the shipped
detector + verifier:
- `none`: no regressor; `all`: the shipped runtime (every candidate moved);
- `unconfirmed`: only the boxes the outline pass did not confirm are moved (the
  mislocated heads are the ones without an outline; confirmed boxes skip the network);
- `edge`: boxes touching the frame's edge are not moved (heads cut by the frame);
- `half`: the regressor's crops of regions >= 112 px cut from a half-size copy of the
  frame (one integer-factor area resize per frame) instead of at full resolution: the
  same network, trained on full-resolution crops.
`--time`: the regressor's crops at full resolution and from the half-size copy on 60
demo frames (5 candidates each), interleaved 6 times, best pass, ms per frame.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import screwcam.detector as D
from screwcam.bundle import read_bundle
from screwcam.preprocess import INPUT_SIZE, crop_square, normalize, to_gray
from screwcam.training.verifier import count

FULL_CROPS = D.regressor_crops
MOVE = D.Regressor.__call__


def half_crops(gray, boxes, margin):
    h, w = gray.shape[:2]
    half = None
    out = np.empty((len(boxes), INPUT_SIZE, INPUT_SIZE), np.uint8)
    for i, b in enumerate(boxes):
        if max(b.w, b.h) * (1 + 2 * margin) >= 4 * INPUT_SIZE:
            if half is None:
                half = cv2.resize(gray, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            crop = crop_square(half, [b.x / 2, b.y / 2, b.w / 2, b.h / 2], margin)
        else:
            crop = crop_square(gray, b.as_list(), margin)
        out[i] = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return normalize(out) if len(boxes) else out


def move_inner_only(self, gray, found):
    h, w = gray.shape[:2]
    inner = [(b, s) for b, s in found if b.x > 0 and b.y > 0 and b.x + b.w < w and b.y + b.h < h]
    edge = [bs for bs in found if bs not in inner]
    moved = MOVE(self, gray, inner) if inner else []
    return D.suppress(sorted(moved + edge, key=lambda bs: -bs[1]))


def unconfirmed_only(det, gray):
    """detect() with only the boxes the outline pass did not confirm moved."""
    heat, box, scale, ox, oy, small = det._run(gray)
    h, w = gray.shape[:2]
    low = 0.5 * det.verifier.detector_threshold
    found = D.decode(
        heat, box, threshold=low, stride=det.stride, scale=scale, offset=(ox, oy), frame_size=(w, h)
    )
    if not found:
        return []
    tight = D.refine_boxes(gray, [b for b, _ in found], small)
    flagged = [
        (b, min(1.0, 2.0 * s) if c else s, c) for (b, c), (_, s) in zip(tight, found, strict=True)
    ]
    flagged = sorted((x for x in flagged if x[1] >= 2.0 * low), key=lambda x: -x[1])
    moved = det.regressor(gray, [(b, s) for b, s, c in flagged if not c])
    kept = D.suppress(sorted([(b, s) for b, s, c in flagged if c] + moved, key=lambda bs: -bs[1]))
    p = det.verifier(gray, [b for b, _ in kept])
    return [(b, s) for (b, s), q in zip(kept, p, strict=True) if q >= det.verifier.threshold]


def accuracy(families: list[str]) -> None:
    det = D.load_detector(read_bundle("models/default"))
    cache = Path(os.environ.get("SCENE_CACHE", "/tmp/s14/cache"))
    for family in families:
        with (cache / f"scenes-{family}-150-7919.pkl").open("rb") as f:
            scenes = pickle.load(f)
        row = []
        for mode in ("none", "all", "unconfirmed", "edge", "half"):
            D.regressor_crops = half_crops if mode == "half" else FULL_CROPS
            D.Regressor.__call__ = move_inner_only if mode == "edge" else MOVE
            c = np.zeros(3, np.int64)
            for image, truth, _ in scenes:
                gray = to_gray(image)
                if mode == "unconfirmed":
                    found = unconfirmed_only(det, gray)
                else:
                    found = det.detect(gray, regress=mode != "none")
                c += count([b for b, _ in found], truth)
            tp, fp, fn = (int(v) for v in c)
            row.append(
                f"{mode} {tp / (tp + fn):.3f}/{tp / max(1, tp + fp):.3f} "
                f"F1 {2 * tp / (2 * tp + fp + fn):.3f}"
            )
        print(family, " | ".join(row), flush=True)


def crop_time() -> None:
    from screwcam.render import DemoSource

    det = D.load_detector(read_bundle("models/default"))
    src = DemoSource(realtime=False, seed=1)
    src.open()
    grays = [to_gray(src.render(i)[0]) for i in range(0, 300, 5)]
    src.close()
    boxes = [[b for b, _ in det._propose(g, det.verifier.detector_threshold)] for g in grays]
    best = {"full": np.inf, "half": np.inf}
    for _ in range(6):
        for name, fn in (("full", FULL_CROPS), ("half", half_crops)):
            t0 = time.perf_counter()
            for g, bs in zip(grays, boxes, strict=True):
                fn(g, bs, D.REGRESSOR_MARGIN)
            best[name] = min(best[name], (time.perf_counter() - t0) / len(grays) * 1e3)
    print({k: round(v, 3) for k, v in best.items()}, "ms per frame")


if __name__ == "__main__":
    np.seterr(all="ignore")
    if sys.argv[1] == "--time":
        crop_time()
    else:
        accuracy(sys.argv[1].split(","))
