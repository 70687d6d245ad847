"""Contact sheet of mislocated heads (session 13): the first 24 heads >= 24 px of a
family's test scenes whose best box overlaps them with IoU 0.1-0.5; green the true box,
red the shipped detector's.

    .venv/bin/python -P docs/notes/detector-sdf/misses_sheet.py FAMILY OUT.jpg
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from screwcam.bundle import read_bundle
from screwcam.detector import load_detector
from screwcam.preprocess import to_gray
from screwcam.training.detector import TEST_SEED
from screwcam.training.verifier import CANDIDATE_HEAT, render_scenes


def main() -> None:
    family, out = sys.argv[1], sys.argv[2]
    det = load_detector(read_bundle("models/default"), 2)
    assert det is not None
    tiles: list[np.ndarray] = []
    for image, truth in render_scenes(family, 60, TEST_SEED, chunk=30):
        boxes = [b for b, _ in det.detect(to_gray(image), threshold=CANDIDATE_HEAT, verify=False)]
        bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        for t, _ in truth:
            ious = [t.iou(b) for b in boxes]
            if min(t.w, t.h) < 24 or not ious or not 0.1 <= max(ious) < 0.5:
                continue
            b = boxes[int(np.argmax(ious))]
            s = max(t.w, t.h) // 2
            x0, y0 = max(0, t.x - s), max(0, t.y - s)
            crop = bgr[y0 : t.y + t.h + s, x0 : t.x + t.w + s].copy()
            cv2.rectangle(crop, (t.x - x0, t.y - y0), (t.x - x0 + t.w, t.y - y0 + t.h), (0, 255, 0))
            cv2.rectangle(crop, (b.x - x0, b.y - y0), (b.x - x0 + b.w, b.y - y0 + b.h), (0, 0, 255))
            tiles.append(cv2.resize(crop, (160, 160), interpolation=cv2.INTER_NEAREST))
    tiles = (tiles + [np.zeros((160, 160, 3), np.uint8)] * 24)[:24]
    sheet = np.vstack([np.hstack(tiles[i : i + 6]) for i in range(0, 24, 6)])
    cv2.imwrite(out, sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
