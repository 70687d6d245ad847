"""A learned box refiner between the head detector and its verifier (session 16).

The experiment that led to `screwcam train-regressor` (training/regressor.py, the same
network and targets; the product's runtime is `screwcam.detector.Regressor`). Results in
docs/notes/detector.md, session 16; JSON: experiment-seed0.json and -seed1.json here.
Those ran this script as of commit 613b29b, with its own copies of the network, the
targets and the mining; it now calls train-regressor's (the same code), and scoring the
seed-0 network again gives the same numbers.

Session 13 found that most unseen heads the detector misses at 24-64 px are not unseen but
*mislocated*: a box is there, too small (the recess alone of a head whose face has the
surface's tone), so it fails IoU >= 0.5. This probes whether a small CNN that looks at a
wider crop around each proposed box (margin MARGIN of the box's side on every side, the
classifier's 28x28 gray input format) and regresses the true head's box relative to it
(dx, dy in box widths, log of the width and height ratio; R-CNN's parametrization) can fix
those boxes on generators no part of it saw.

    python -P refine.py mine OUT.npz SCENES FAMILIES        # candidates of the shipped detector
    python -P refine.py train DATA.npz OUT.tflite [EPOCHS] [SEED]
    python -P refine.py eval OUT.json REFINER.tflite FAMILIES [BUNDLE]

`mine` renders SCENES training scenes per family (seed 424242, apart from every recipe's
seeds) and keeps each box the bundle's detector proposes (heat >= 0.15, no verifier) that
overlaps a true head (IoU >= 0.1) with its context crop and target. `eval` reads the cached
test scenes of `docs/notes/detector-sdf/evaluate.py` (SCENE_CACHE, 150 per family, seed 7919)
and scores the bundle's detector + verifier at its shipped thresholds with and without the
refiner: recall / precision / F1 at IoU >= 0.5, heads >= 24 px, the recipe's counting.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np

MARGIN = 0.6  # the context crop: the box plus 0.6 of its side on every side (2.2x)
TRAIN_SEED = 424242
CANDIDATE_HEAT = 0.15


def context_crops(gray, boxes):
    from screwcam.detector import regressor_crops

    return regressor_crops(gray, boxes, MARGIN)


def load_bundle(path: str):
    """(detector without its verifier, verifier) of a bundle or detector folder."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detector-sdf"))
    from evaluate import load

    _, det, ver, _ = load(path)
    return det, ver


def mine(out: str, n: int, families: list[str], bundle: str = "models/default") -> None:
    """`train-regressor`'s mining (the same boxes: heat >= 0.15, IoU >= 0.1 with a head),
    on scenes of TRAIN_SEED, without the bundle's own regressor if it has one."""
    from screwcam.training.regressor import mine as mine_family

    det, _ = load_bundle(bundle)
    det.regressor = None
    parts = [mine_family(det, family, n, TRAIN_SEED) for family in families]
    np.savez_compressed(
        out,
        crops=np.concatenate([c for c, _ in parts]),
        targets=np.concatenate([t for _, t in parts]),
        family=np.concatenate([np.full(len(c), k) for k, (c, _) in enumerate(parts)]),
        families=np.array(families),
    )


def train(data: str, out: str, epochs: int = 12, seed: int = 0) -> None:
    """`train-regressor`'s training and int8 conversion on mined boxes."""
    from screwcam.training.detector import to_int8
    from screwcam.training.regressor import train as train_net

    d = np.load(data)
    x, y = d["crops"], d["targets"]
    model, loss = train_net(x, y, epochs, seed)
    tfl = to_int8(model, x[:: max(1, len(x) // 300)])
    tmp = Path(out + ".tmp")
    tmp.write_bytes(tfl)
    tmp.replace(out)
    print(f"{out}: {len(tfl)} bytes, {model.count_params()} parameters, loss {loss:.5f}")


class Refiner:
    """The product's regressor network (`screwcam.detector.Regressor`), its moved boxes
    returned one per input box (no suppression), for the variants below."""

    def __init__(self, path: str) -> None:
        from screwcam.detector import Regressor

        self.net = Regressor(path, {"format": 1, "margin": MARGIN})

    def __call__(self, gray, boxes):
        from screwcam.detector import regress

        if not boxes:
            return []
        t = self.net.run(context_crops(gray, boxes))
        h, w = gray.shape[:2]
        return [regress(b, ti, (w, h)) for b, ti in zip(boxes, t, strict=True)]


def score(found, truth):
    from screwcam.training.verifier import count

    return count(found, truth)


def evaluate(out: str, refiner_path: str, families: list[str], bundle: str = "models/default"):
    from screwcam.detector import suppress
    from screwcam.preprocess import to_gray

    det, ver = load_bundle(bundle)
    ref = Refiner(refiner_path)
    cache = Path(os.environ.get("SCENE_CACHE", "/tmp/s14/cache"))
    variants = ("shipped", "refined", "refined2", "best_p")
    result: dict = {"refiner": refiner_path, "margin": MARGIN, "families": {}}
    for family in families:
        with (cache / f"scenes-{family}-150-7919.pkl").open("rb") as f:
            scenes = pickle.load(f)
        counts = {v: np.zeros(3, np.int64) for v in variants}
        for image, truth, _ in scenes:
            gray = to_gray(image)
            found = det.detect(gray, threshold=ver.detector_threshold, verify=False, regress=False)
            boxes = [b for b, _ in found]
            heat = [s for _, s in found]
            if not boxes:
                for v in variants:
                    counts[v] += score([], truth)
                continue
            p0 = ver(gray, boxes)
            r1 = ref(gray, boxes)
            p1 = ver(gray, r1)
            r2 = ref(gray, r1)
            p2 = ver(gray, r2)
            cand = {
                "shipped": (boxes, p0),
                "refined": (r1, p1),
                "refined2": (r2, p2),
                "best_p": (
                    [
                        b1 if q1 > q0 else b0
                        for b0, b1, q0, q1 in zip(boxes, r1, p0, p1, strict=True)
                    ],
                    np.maximum(p0, p1),
                ),
            }
            for v, (bs, ps) in cand.items():
                kept = [(b, h) for b, h, p in zip(bs, heat, ps, strict=True) if p >= ver.threshold]
                kept = suppress(kept) if v != "shipped" else kept
                counts[v] += score([b for b, _ in kept], truth)
        rows = {}
        for v, (tp, fp, fn) in counts.items():
            r, p = tp / max(1, tp + fn), tp / max(1, tp + fp)
            rows[v] = {
                "recall": round(r, 4),
                "precision": round(p, 4),
                "f1": round(2 * tp / max(1, 2 * tp + fp + fn), 4),
                "counts": [int(tp), int(fp), int(fn)],
            }
        result["families"][family] = rows
        print(
            family,
            "  ".join(
                f"{v} {d['recall']:.3f}/{d['precision']:.3f} F1 {d['f1']:.3f}"
                for v, d in rows.items()
            ),
            flush=True,
        )
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    np.seterr(all="ignore")
    cmd, *a = sys.argv[1:]
    if cmd == "mine":
        mine(a[0], int(a[1]), a[2].split(","), *a[3:])
    elif cmd == "train":
        train(a[0], a[1], *(int(v) for v in a[2:]))
    elif cmd == "eval":
        evaluate(a[0], a[1], a[2].split(","), *a[3:])
