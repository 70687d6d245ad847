"""A learned box refiner between the head detector and its verifier (session 16).

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
import time
from pathlib import Path

import numpy as np

MARGIN = 0.6  # the context crop: the box plus 0.6 of its side on every side (2.2x)
TRAIN_SEED = 424242
CANDIDATE_HEAT = 0.15
LOG_CLIP = 1.2


def targets(box, truth) -> np.ndarray:
    bx, by = box.x + box.w / 2, box.y + box.h / 2
    tx, ty = truth.x + truth.w / 2, truth.y + truth.h / 2
    return np.array(
        [
            (tx - bx) / box.w,
            (ty - by) / box.h,
            np.clip(np.log(truth.w / box.w), -LOG_CLIP, LOG_CLIP),
            np.clip(np.log(truth.h / box.h), -LOG_CLIP, LOG_CLIP),
        ],
        np.float32,
    )


def apply(box, t, frame_size):
    from screwcam.frames import Box

    bx, by = box.x + box.w / 2, box.y + box.h / 2
    cx, cy = bx + t[0] * box.w, by + t[1] * box.h
    w = box.w * float(np.exp(np.clip(t[2], -LOG_CLIP, LOG_CLIP)))
    h = box.h * float(np.exp(np.clip(t[3], -LOG_CLIP, LOG_CLIP)))
    fw, fh = frame_size
    x0, y0 = max(0, round(cx - w / 2)), max(0, round(cy - h / 2))
    x1, y1 = min(fw, round(cx + w / 2)), min(fh, round(cy + h / 2))
    return Box(x0, y0, max(2, x1 - x0), max(2, y1 - y0))


def context_crops(gray, boxes) -> np.ndarray:
    from screwcam.preprocess import preprocess_many

    return preprocess_many(gray, [b.as_list() for b in boxes], margin=MARGIN)


def load_bundle(path: str):
    from screwcam.detector import DETECTOR_FILE, VERIFIER_FILE, Detector, Verifier
    from screwcam.training.detector import read_entry

    d = Path(path)
    entry = read_entry(d)
    alone = {k: v for k, v in entry.items() if k != "verifier"}
    return Detector(d / DETECTOR_FILE, alone, 2), Verifier(d / VERIFIER_FILE, entry["verifier"])


def mine(out: str, n: int, families: list[str], bundle: str = "models/default") -> None:
    from screwcam.preprocess import to_gray
    from screwcam.training.verifier import render_scenes

    det, _ = load_bundle(bundle)
    crops, ys, ious, fams = [], [], [], []
    t0 = time.monotonic()
    for fi, family in enumerate(families):
        for k, (image, truth) in enumerate(render_scenes(family, n, TRAIN_SEED, chunk=50)):
            gray = to_gray(image)
            tboxes = [b for b, _ in truth]
            found = det.detect(gray, threshold=CANDIDATE_HEAT, verify=False)
            boxes, tg, iu = [], [], []
            for b, _ in found:
                v = [b.iou(t) for t in tboxes]
                if not v or max(v) < 0.1:
                    continue
                j = int(np.argmax(v))
                boxes.append(b)
                tg.append(targets(b, tboxes[j]))
                iu.append(v[j])
            if boxes:
                crops.append(context_crops(gray, boxes))
                ys.extend(tg)
                ious.extend(iu)
                fams.extend([fi] * len(boxes))
            if (k + 1) % 100 == 0:
                print(f"{family} {k + 1}/{n} {len(ys)} boxes {time.monotonic() - t0:.0f} s", flush=True)
    np.savez_compressed(
        out,
        crops=np.concatenate(crops),
        targets=np.array(ys),
        iou=np.array(ious, np.float32),
        family=np.array(fams),
        families=np.array(families),
    )


def augment(x: np.ndarray, y: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """The dihedral group (mirror, flip, transpose) with the targets moved alike; gain, noise."""
    x = x.astype(np.float32).copy()
    y = y.copy()
    m = rng.random(len(x)) < 0.5
    x[m] = x[m, :, ::-1]
    y[m, 0] *= -1
    m = rng.random(len(x)) < 0.5
    x[m] = x[m, ::-1, :]
    y[m, 1] *= -1
    m = rng.random(len(x)) < 0.5
    x[m] = np.transpose(x[m], (0, 2, 1))
    y[m] = y[m][:, [1, 0, 3, 2]]
    gain = rng.uniform(0.7, 1.3, (len(x), 1, 1)).astype(np.float32)
    x = (x - 127.5) * gain + 127.5 + rng.normal(0, 4, x.shape).astype(np.float32)
    return np.clip(x, 0, 255), y


def build_model(width: int = 8):
    import keras
    from keras import layers

    x = inp = keras.Input((28, 28, 1))
    x = layers.Rescaling(1 / 127.5, -1)(x)
    for f in (width, 2 * width, 4 * width):
        x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)  # where in the crop matters: no global pooling
    x = layers.Dense(64, activation="relu")(x)
    out = layers.Dense(4, name="box")(x)
    return keras.Model(inp, out)


def train(data: str, out: str, epochs: int = 12, seed: int = 0) -> None:
    import keras

    from screwcam.training.detector import to_int8

    d = np.load(data)
    x, y = d["crops"], d["targets"]
    print(f"{len(x)} boxes; IoU < 0.5: {(d['iou'] < 0.5).mean():.3f}", flush=True)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model()
    sched = keras.optimizers.schedules.CosineDecay(2e-3, epochs * (len(x) // 128 + 1))
    model.compile(optimizer=keras.optimizers.Adam(sched), loss=keras.losses.Huber(0.1))
    for e in range(epochs):
        xa, ya = augment(x, y, rng)
        h = model.fit(xa[..., None], ya, batch_size=128, epochs=1, shuffle=True, verbose=0)
        print(f"epoch {e + 1}/{epochs} loss {h.history['loss'][-1]:.4f}", flush=True)
    tfl = to_int8(model, x[:: max(1, len(x) // 300)])
    tmp = Path(out + ".tmp")
    tmp.write_bytes(tfl)
    tmp.replace(out)
    model.save(out.replace(".tflite", ".keras"))
    print(f"{out}: {len(tfl)} bytes, {model.count_params()} parameters")


class Refiner:
    def __init__(self, path: str) -> None:
        from screwcam.litert import make_interpreter

        self.it = make_interpreter(Path(path), num_threads=2)
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]
        self.n = -1

    def __call__(self, gray, boxes):
        if not boxes:
            return []
        x = context_crops(gray, boxes)
        n = len(x)
        if n != self.n:
            self.it.resize_tensor_input(self.inp["index"], [n, 28, 28, 1])
            self.it.allocate_tensors()
            self.n = n
        s, z = self.inp["quantization"]
        q = np.clip(np.round(x / s + z), -128, 127).astype(np.int8)
        self.it.set_tensor(self.inp["index"], q[..., None])
        self.it.invoke()
        os_, oz = self.out["quantization"]
        t = (self.it.get_tensor(self.out["index"]).astype(np.float32) - oz) * os_
        h, w = gray.shape[:2]
        return [apply(b, ti, (w, h)) for b, ti in zip(boxes, t, strict=True)]


def score(found, truth, min_side=24):
    from screwcam.training.detector import match

    big = [t for t in truth if min(t.w, t.h) >= min_side]
    small = [t for t in truth if min(t.w, t.h) < min_side]
    found = [f for f in found if not any(f.iou(t) >= 0.5 for t in small)]
    return np.array(match(found, big))


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
            found = det.detect(gray, threshold=ver.detector_threshold, verify=False)
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
                    [b1 if q1 > q0 else b0 for b0, b1, q0, q1 in zip(boxes, r1, p0, p1, strict=True)],
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
            rows[v] = {"recall": round(r, 4), "precision": round(p, 4),
                       "f1": round(2 * tp / max(1, 2 * tp + fp + fn), 4), "counts": [int(tp), int(fp), int(fn)]}
        result["families"][family] = rows
        print(family, "  ".join(f"{v} {d['recall']:.3f}/{d['precision']:.3f} F1 {d['f1']:.3f}" for v, d in rows.items()), flush=True)
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
