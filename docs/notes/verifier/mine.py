"""Mine the detector's candidate boxes on scenes, for the head-verifier experiment.

    python -P docs/notes/verifier/mine.py DETECTOR_DIR FAMILY N SEED OUT.npz

Every box the detector proposes at a low threshold (0.15): a 28x28 crop of the
classifier's preprocessing, a 32x32 crop of the box's square grown 1.3x (context),
the detector's score, the box side, and its label: 1 IoU >= 0.5 with a head, 0 IoU < 0.1
with every head, -1 in between. Also per scene the true heads (for box F1 later).
"""

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from screwcam.bench.scene_test import scenes
from screwcam.detector import Detector
from screwcam.preprocess import preprocess_many, to_gray


def context_crop(gray: np.ndarray, box, size: int = 32, grow: float = 1.3) -> np.ndarray:
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    half = grow * max(box.w, box.h) / 2
    m = np.float32(
        [
            [size / (2 * half), 0, size / 2 - cx * size / (2 * half)],
            [0, size / (2 * half), size / 2 - cy * size / (2 * half)],
        ]
    )
    interp = cv2.INTER_AREA if 2 * half > size else cv2.INTER_LINEAR
    return cv2.warpAffine(gray, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def main(det_dir: str, family: str, n: int, seed: int, out: str) -> None:
    d = Path(det_dir)
    name = "detector.tflite"
    meta = json.loads((d / "detector.json").read_text()) if (d / "detector.json").exists() else {}
    meta = meta.get("parts", {}).get("detector", meta)
    det = Detector(d / name, meta, num_threads=2)
    c28, c32, score, side, y, scene_id, truth_rows = [], [], [], [], [], [], []
    for k, (im, truth) in enumerate(scenes(family, n, seed)):
        gray = to_gray(im)
        for t, lab in truth:
            truth_rows.append((k, t.x, t.y, t.w, t.h, lab))
        dets = det.detect(gray, threshold=0.15)
        if not dets:
            continue
        c28.append(preprocess_many(gray, [b.as_list() for b, _ in dets]))
        for b, s in dets:
            best = max((b.iou(t) for t, _ in truth), default=0.0)
            c32.append(context_crop(gray, b))
            score.append(s)
            side.append((b.x, b.y, b.w, b.h))
            y.append(1 if best >= 0.5 else 0 if best < 0.1 else -1)
            scene_id.append(k)
        if k % 50 == 0:
            print(f"{family}: scene {k}/{n}, {len(y)} boxes", flush=True)
    np.savez_compressed(
        out,
        c28=np.concatenate(c28),
        c32=np.array(c32),
        score=np.array(score),
        box=np.array(side),
        y=np.array(y),
        scene=np.array(scene_id),
        truth=np.array(truth_rows),
        n=n,
    )
    labels = np.array(y)
    print(f"{out}: {len(y)} boxes, heads {np.sum(labels == 1)}, nothing {np.sum(labels == 0)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
