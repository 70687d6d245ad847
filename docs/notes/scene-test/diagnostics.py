"""Where the pipeline's errors come from (docs/notes/scene-test.md). Run from the repo root:

    python -P docs/notes/scene-test/diagnostics.py threshold   # detector threshold sweep
    python -P docs/notes/scene-test/diagnostics.py boxes       # detector box errors vs jitter
    python -P docs/notes/scene-test/diagnostics.py probe       # "is it a head?" probe

All on validation scenes (seed 104729, as `choose_threshold` uses), 640x480, heads >= 24 px;
the probe is fitted on scenes of seed 11 and scored family by family, also left one out.
"""

import json
import math
import sys

import numpy as np

from screwcam.bench.scene_test import scenes
from screwcam.classifier import Classifier, load_bundle
from screwcam.detector import Detector
from screwcam.preprocess import preprocess_many, to_gray
from screwcam.training.detector import match

BUNDLE = "models/default"
FAMILIES = ("render", "photo", "gen2")
VALIDATION, PROBE_TRAIN = 104729, 11
MIN_SIDE = 24


def detector() -> Detector:
    meta = json.load(open(f"{BUNDLE}/detector.json"))
    return Detector(f"{BUNDLE}/detector.tflite", meta, num_threads=2)


def threshold_sweep(n: int = 100) -> None:
    det = detector()
    counts: dict[float, dict[str, np.ndarray]] = {}
    for fam in FAMILIES:
        data = [(det.detect(to_gray(im), threshold=0.1), t) for im, t in scenes(fam, n, VALIDATION)]
        for thr in np.round(np.arange(0.2, 0.81, 0.05), 2):
            c = np.zeros(3, int)
            for dets, truth in data:
                big = [b for b, _ in truth if min(b.w, b.h) >= MIN_SIDE]
                small = [b for b, _ in truth if min(b.w, b.h) < MIN_SIDE]
                kept = [b for b, s in dets if s >= thr]
                kept = [b for b in kept if not any(b.iou(t) >= 0.5 for t in small)]
                c += match(kept, big)
            counts.setdefault(float(thr), {})[fam] = c
    for thr, fams in counts.items():
        cells = []
        for fam, (tp, fp, fn) in fams.items():
            cells.append(f"{fam} r{tp / (tp + fn):.3f} p{tp / max(1, tp + fp):.3f}")
        tp, fp, fn = sum(fams.values())
        f1 = 2 * tp / (2 * tp + fp + fn)
        print(f"threshold {thr:.2f}: " + " | ".join(cells) + f" | F1 {f1:.3f}")


def box_errors(n: int = 100) -> None:
    det = detector()
    for fam in FAMILIES:
        shift, scale = [], []
        for im, truth in scenes(fam, n, VALIDATION):
            found = det(to_gray(im))
            for t, _ in truth:
                best = max(found, key=lambda f: f.iou(t), default=None)
                if min(t.w, t.h) < MIN_SIDE or best is None or best.iou(t) < 0.3:
                    continue
                side = max(t.w, t.h)
                shift.append((best.x + best.w / 2 - t.x - t.w / 2) / side)
                shift.append((best.y + best.h / 2 - t.y - t.h / 2) / side)
                scale.append(0.5 * math.log(best.w * best.h / (t.w * t.h)))
        s, z = np.array(shift), np.array(scale)
        print(
            f"{fam}: {len(z)} heads, centre shift sd {s.std():.3f} of the head's size, "
            f"log scale sd {z.std():.3f} (mean {z.mean():+.3f})"
        )
    print("the classifier's training jitter: shift sd 0.07, log scale sd 0.12")


def mine(fam: str, n: int, seed: int) -> dict[str, np.ndarray]:
    """Every detector box (score >= 0.2): classifier embedding, score, and whether it is
    a head (IoU >= 0.5: 1), on nothing (IoU < 0.1 with every head: 0) or neither (-1)."""
    det, clf = detector(), Classifier(load_bundle(BUNDLE), num_threads=2)
    emb, score, y = [], [], []
    for im, truth in scenes(fam, n, seed):
        gray = to_gray(im)
        dets = det.detect(gray, threshold=0.2)
        if not dets:
            continue
        _, e = clf.classify_and_embed(preprocess_many(gray, [b.as_list() for b, _ in dets]))
        for i, (b, s) in enumerate(dets):
            best = max((b.iou(t) for t, _ in truth), default=0.0)
            emb.append(e[i])
            score.append(s)
            y.append(1 if best >= 0.5 else 0 if best < 0.1 else -1)
    return {"emb": np.array(emb), "score": np.array(score), "y": np.array(y)}


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 600):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        g = 1 / (1 + np.exp(-(z @ w + b))) - y
        w -= 0.5 * (z.T @ g / len(y) + l2 * w)
        b -= 0.5 * g.mean()
    return lambda x2: 1 / (1 + np.exp(-(((x2 - mu) / sd) @ w + b)))


def probe() -> None:
    train = {f: mine(f, 500, PROBE_TRAIN) for f in FAMILIES}
    val = {f: mine(f, 150, VALIDATION) for f in FAMILIES}

    def features(d: dict[str, np.ndarray]) -> np.ndarray:
        return np.hstack([d["emb"], d["score"][:, None]]).astype(np.float64)

    for held in (*FAMILIES, None):
        parts = [train[f] for f in FAMILIES if f != held]
        x = np.vstack([features(d) for d in parts])
        y = np.concatenate([d["y"] for d in parts])
        model = fit_logistic(x[y >= 0], y[y >= 0].astype(float))
        for fam in [held] if held else FAMILIES:
            d = val[fam]
            shown = d["score"] >= 0.4  # the detector's threshold
            p = model(features(d))
            for t in (0.3, 0.5):
                keep = shown & (p >= t)
                heads = (keep & (d["y"] == 1)).sum() / max(1, (shown & (d["y"] == 1)).sum())
                nothing = (keep & (d["y"] == 0)).sum() / max(1, (shown & (d["y"] == 0)).sum())
                print(
                    f"probe without {held or '-'}, tested on {fam}, p >= {t}: heads kept "
                    f"{heads:.3f}, boxes on nothing kept {nothing:.3f}"
                )


if __name__ == "__main__":
    {"threshold": threshold_sweep, "boxes": box_errors, "probe": probe}[sys.argv[1]]()
