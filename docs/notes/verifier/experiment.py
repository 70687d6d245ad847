"""Head-verifier experiment: does a tiny CNN on each candidate's crop, trained head vs
not-head, raise box F1 on a family neither it nor the detector saw?

    python -P docs/notes/verifier/experiment.py [--input c32|c28] [--epochs N]

Reads the .npz files of mine.py in build/verifier. For each held-out family X: the
verifier is trained on the candidates of the detector without X on the other families'
scenes (80 % of scenes; the other 20 % choose the thresholds), then scored on X's
validation scenes with the detector without X. Box F1 at IoU >= 0.5, heads >= 24 px
(boxes matching a smaller head are not counted either way), as scene-test counts.
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np

from screwcam.frames import Box
from screwcam.training.detector import match

FAMILIES = ("render", "photo", "gen2")
MIN_SIDE = 24
D = "build/verifier"


def load(path):
    z = np.load(path)
    return {k: z[k] for k in z.files}


def build(input_size, width=1.0):
    import keras
    from keras import layers

    x = inp = keras.Input((input_size, input_size, 1))
    x = layers.Rescaling(1 / 127.5, -1)(x)
    for f in (int(8 * width), int(16 * width), int(32 * width)):
        x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(32, activation="relu")(x)
    out = layers.Dense(1, activation="sigmoid")(x)
    m = keras.Model(inp, out)
    m.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy")
    return m


def normalize(c):
    c = c.astype(np.float32)
    lo = np.percentile(c.reshape(len(c), -1), 1, axis=1)[:, None, None]
    hi = np.percentile(c.reshape(len(c), -1), 99, axis=1)[:, None, None]
    return np.clip((c - lo) * 255.0 / np.maximum(hi - lo, 8.0), 0, 255)


def augment(x, rng):
    k = rng.integers(0, 4, len(x))
    out = np.empty_like(x)
    for r in range(4):
        out[k == r] = np.rot90(x[k == r], r, axes=(1, 2))
    flip = rng.random(len(x)) < 0.5
    out[flip] = out[flip, :, ::-1]
    gain = rng.uniform(0.7, 1.3, (len(x), 1, 1))
    return np.clip((out - 127.5) * gain + 127.5 + rng.normal(0, 4, out.shape), 0, 255)


def box_f1(d, keep):
    tp = fp = fn = 0
    truth = d["truth"]
    for k in range(int(d["n"])):
        rows = truth[truth[:, 0] == k]
        big = [Box(*map(int, r[1:5])) for r in rows if min(r[3], r[4]) >= MIN_SIDE]
        small = [Box(*map(int, r[1:5])) for r in rows if min(r[3], r[4]) < MIN_SIDE]
        sel = (d["scene"] == k) & keep
        found = [Box(*map(int, b)) for b in d["box"][sel]]
        found = [b for b in found if not any(b.iou(t) >= 0.5 for t in small)]
        a, b, c = match(found, big)
        tp, fp, fn = tp + a, fp + b, fn + c
    r, p = tp / max(1, tp + fn), tp / max(1, tp + fp)
    return {"recall": r, "precision": p, "f1": 2 * tp / max(1, 2 * tp + fp + fn)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", default="c32")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--held", nargs="*", default=list(FAMILIES))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    results = {}
    for held in args.held:
        parts = [load(f"{D}/lofo{held}_train_{f}.npz") for f in FAMILIES if f != held]
        val = load(f"{D}/lofo_val_{held}.npz")
        tr_x, tr_y, sel_sets = [], [], []
        for p in parts:
            fit = p["scene"] < 0.8 * p["n"]
            m = fit & (p["y"] >= 0)
            tr_x.append(normalize(p[args.input][m]))
            tr_y.append(p["y"][m])
            sel_sets.append(p)
        x, y = np.concatenate(tr_x), np.concatenate(tr_y).astype(np.float32)
        model = build(x.shape[1], args.width)
        w1 = 0.5 * len(y) / max(1, y.sum())
        w0 = 0.5 * len(y) / max(1, (1 - y).sum())
        for _ep in range(args.epochs):
            xa = augment(x, rng)[..., None]
            model.fit(
                xa, y, batch_size=128, epochs=1, verbose=0, sample_weight=np.where(y == 1, w1, w0)
            )

        def probs(d, model=model):
            x = normalize(d[args.input])[..., None]
            return model.predict(x, batch_size=512, verbose=0)[:, 0]

        # thresholds chosen on the 20 % of the training families' scenes not fitted
        det_thr = json.load(open(f"/work/det/without-{held}/detector.json")).get("threshold", 0.35)
        best = None
        grid = [
            (td, tv)
            for td in (0.2, 0.25, 0.3, 0.35, det_thr)
            for tv in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
        ]
        pv = [probs(p) for p in sel_sets]
        for td, tv in grid:
            f1s = []
            for p, q in zip(sel_sets, pv, strict=False):
                hold = p["scene"] >= 0.8 * p["n"]
                sub = dict(p.items())
                f1s.append(box_f1(sub, hold & (p["score"] >= td) & (q >= tv))["f1"])
            s = float(np.mean(f1s))
            if best is None or s > best[0]:
                best = (s, td, tv)
        _, td, tv = best
        q = probs(val)
        base = box_f1(val, val["score"] >= det_thr)
        ver = box_f1(val, (val["score"] >= td) & (q >= tv))
        same_td = box_f1(val, (val["score"] >= det_thr) & (q >= tv))
        results[held] = {
            "detector_threshold": det_thr,
            "chosen": [td, tv],
            "detector_alone": base,
            "with_verifier": ver,
            "verifier_at_detector_threshold": same_td,
        }
        print(held, json.dumps(results[held]), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
