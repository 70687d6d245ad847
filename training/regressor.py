"""`screwcam train-regressor DETECTOR_DIR`: train the head detector's box regressor.

The heat map sees the frame at half size. On a head whose face has the surface's own
tone (a zinc head on a light ground, a black one on a dark ground) the recess is what
stands out, and the detector boxes the recess alone: the box is there but too small,
and it fails IoU >= 0.5 with the head (docs/notes/detector.md, session 13: on kinds of
image it never saw, 22-29 % of the heads of 24-64 px). The regressor looks at each
proposed box's surroundings (the box plus 0.6 of its side on every side, as a 28x28
crop made like the classifier's) and moves and resizes the box onto the whole head;
then the verifier looks at the moved box.

Recipe (the numbers are flags):
1. mine: render N scenes per family at 640x480 (`detector_data.compose_scene`), run the
   detector in DETECTOR_DIR on them at a low heat (0.15) with neither regressor nor
   verifier; each box it proposes that overlaps a true head (IoU >= 0.1) is a training
   example, its target the true head's box relative to it (centre offset in box widths
   and heights, log of the side ratios);
2. train a small CNN (three pairs of 3x3 convolutions of 8, 16 and 32 filters, each pair
   pooled, then flattened, since where the head lies in the crop is the answer, and two
   dense layers) with a Huber loss, every epoch on fresh mirrors, flips and transposes
   of the crops (the targets moved alike), gain and noise; convert it to int8 LiteRT;
3. test the detector with its verifier (if it has one) with and without the regressor on
   test scenes of each test family and on the demo camera's frames: recall and
   precision at IoU >= 0.5, heads >= 24 px.

DETECTOR_DIR gets regressor.tflite and a `regressor` entry in its detector.json, so
`screwcam export-detector DETECTOR_DIR --into BUNDLE` ships it. A regressor belongs to
the detector it was trained on: train the detector again and the regressor must follow.
A verifier trained after it (`train-verifier --force`) learns from the moved boxes.

Needs the [train] extra (TensorFlow, scikit-image).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from screwcam.detector import (
    DETECTOR_FILE,
    REGRESSOR_FILE,
    REGRESSOR_FORMAT,
    REGRESSOR_LOG_CLIP,
    REGRESSOR_MARGIN,
    Detector,
    Regressor,
    regressor_crops,
)
from screwcam.errors import DatasetError
from screwcam.files import write_atomic
from screwcam.frames import Box
from screwcam.preprocess import INPUT_SIZE, to_gray

from .detector import TEST_SEED, _score, demo_scenes, read_entry
from .verifier import (
    CANDIDATE_HEAT,
    MIN_SIDE,
    attach,
    count,
    render_scenes,
    stage_arguments,
    stage_options,
    two_tensorflow_threads,
)

log = logging.getLogger(__name__)

# training scenes are seeded apart from the verifier's (7), the test and validation scenes
TRAIN_SEED_OFFSET = 11


def targets(box: Box, truth: Box) -> np.ndarray:
    """What the regressor should output for a proposed `box` on the head `truth`: the
    inverse of `screwcam.detector.regress`."""
    return np.array(
        [
            (truth.x + truth.w / 2 - box.x - box.w / 2) / box.w,
            (truth.y + truth.h / 2 - box.y - box.h / 2) / box.h,
            np.clip(np.log(truth.w / box.w), -REGRESSOR_LOG_CLIP, REGRESSOR_LOG_CLIP),
            np.clip(np.log(truth.h / box.h), -REGRESSOR_LOG_CLIP, REGRESSOR_LOG_CLIP),
        ],
        np.float32,
    )


def mine(detector: Detector, family: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(crops (N, 28, 28) uint8, targets (N, 4)) of the boxes the detector proposes on n
    scenes of `family` that overlap a true head."""
    crops, ys = [], []
    t0 = time.monotonic()
    for k, (image, truth) in enumerate(render_scenes(family, n, seed, chunk=50)):
        gray = to_gray(image)
        heads = [b for b, _ in truth]
        boxes = []
        for b, _ in detector.detect(gray, threshold=CANDIDATE_HEAT, verify=False, regress=False):
            ious = [b.iou(t) for t in heads]
            if ious and max(ious) >= 0.1:
                boxes.append(b)
                ys.append(targets(b, heads[int(np.argmax(ious))]))
        if boxes:
            crops.append(regressor_crops(gray, boxes, REGRESSOR_MARGIN))
        if (k + 1) % 100 == 0 or k + 1 == n:
            log.info(
                "%s: %d/%d scenes, %d boxes (%.0f s)",
                family,
                k + 1,
                n,
                len(ys),
                time.monotonic() - t0,
            )
    shape = (0, INPUT_SIZE, INPUT_SIZE)
    return (
        np.concatenate(crops) if crops else np.zeros(shape, np.uint8),
        np.array(ys, np.float32).reshape(-1, 4),
    )


def augment(
    crops: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Mirrors, flips and transposes (together the 8 symmetries of the square) with the
    targets moved alike; contrast gain and sensor noise."""
    x = crops.astype(np.float32)
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


def build_model():
    import keras
    from keras import layers

    x = inp = keras.Input((INPUT_SIZE, INPUT_SIZE, 1))
    x = layers.Rescaling(1 / 127.5, -1)(x)
    for filters in (8, 16, 32):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)  # where in the crop the head lies is the answer: no pooling
    x = layers.Dense(64, activation="relu")(x)
    return keras.Model(inp, layers.Dense(4, name="box")(x))


def train(crops: np.ndarray, y: np.ndarray, epochs: int, seed: int):
    """(model, final loss): Huber loss, Adam with a cosine decay from 2e-3."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model()
    steps = epochs * -(-len(crops) // 128)
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
        loss=keras.losses.Huber(0.1),
    )
    for epoch in range(epochs):
        xa, ya = augment(crops, y, rng)
        h = model.fit(xa[..., None], ya, batch_size=128, epochs=1, shuffle=True, verbose=0)
        log.info("epoch %d/%d: loss %.5f", epoch + 1, epochs, h.history["loss"][-1])
    return model, float(h.history["loss"][-1])


def evaluate(
    detector: Detector, regressor: Regressor, scenes: list[tuple[np.ndarray, list[Box]]]
) -> dict[str, dict]:
    """Recall/precision of the detector as it runs (with its verifier, if any) without
    and with the regressor, on the same scenes."""
    counts = {"without": np.zeros(3, np.int64), "with": np.zeros(3, np.int64)}
    for gray, truth in scenes:
        detector.regressor = None
        counts["without"] += count([b for b, _ in detector.detect(gray)], truth)
        detector.regressor = regressor
        counts["with"] += count([b for b, _ in detector.detect(gray)], truth)
    detector.regressor = None
    return {k: _score(v, len(scenes)) for k, v in counts.items()}


def _test_scenes(family: str, n: int) -> list[tuple[np.ndarray, list[Box]]]:
    t0 = time.monotonic()
    if family == "demo":
        images, boxes = demo_scenes(n)
        out = [(to_gray(i), b) for i, b in zip(images, boxes, strict=True)]
    else:
        out = [
            (to_gray(image), [b for b, _ in truth])
            for image, truth in render_scenes(family, n, TEST_SEED, chunk=50)
        ]
    log.info("%s: %d test scenes (%.0f s)", family, len(out), time.monotonic() - t0)
    return out


def train_regressor(
    detector_dir: Path,
    *,
    families: tuple[str, ...],
    test_families: tuple[str, ...],
    scenes: int = 800,
    epochs: int = 20,
    seed: int = 0,
    test_scenes_n: int = 150,
    force: bool = False,
) -> dict:
    """Train a box regressor for the detector in `detector_dir` and add it there.
    Returns its entry (also written into detector.json under `regressor`)."""

    from .detector import to_int8

    detector_dir = Path(detector_dir)
    entry = read_entry(detector_dir)
    if entry.get("regressor") and not force:
        raise DatasetError(
            f"{detector_dir} already holds a box regressor; pass --force to replace it"
        )
    entry.pop("regressor", None)
    detector = Detector(detector_dir / DETECTOR_FILE, entry, 2)
    two_tensorflow_threads()
    t0 = time.monotonic()
    # every scene is rendered (in worker processes, `scene_pool`) before training starts
    parts = [mine(detector, f, scenes, seed * 100003 + TRAIN_SEED_OFFSET) for f in families]
    tests = {f: _test_scenes(f, test_scenes_n) for f in (*test_families, "demo")}
    crops = np.concatenate([c for c, _ in parts])
    y = np.concatenate([t for _, t in parts])
    if len(crops) < 100:
        raise DatasetError(
            f"the detector proposed only {len(crops)} boxes on heads in {scenes} scenes per "
            "family; render more scenes (--scenes)"
        )
    t_data = time.monotonic() - t0
    log.info("%d boxes on heads (%.0f s)", len(crops), t_data)
    model, loss = train(crops, y, epochs, seed)
    t_train = time.monotonic() - t0 - t_data
    tflite = to_int8(model, crops[:: max(1, len(crops) // 300)])
    tmp = detector_dir / f".{REGRESSOR_FILE}.candidate"
    write_atomic(tmp, tflite)
    rentry: dict[str, Any] = {
        "file": REGRESSOR_FILE,
        "format": REGRESSOR_FORMAT,
        "margin": REGRESSOR_MARGIN,
        "size_bytes": len(tflite),
        "parameters": int(model.count_params()),
        "training": {
            "families": list(families),
            "scenes_per_family": scenes,
            "boxes": int(len(crops)),
            "epochs": epochs,
            "seed": seed,
            "final_loss": round(loss, 5),
            "seconds": {"data": round(t_data), "train": round(t_train)},
        },
    }
    try:
        probe = Regressor(tmp, rentry)
        by_family = {}
        for family, test in tests.items():
            by_family[family] = evaluate(detector, probe, test)
            w, r = by_family[family]["without"], by_family[family]["with"]
            log.info(
                "%s: recall %.3f -> %.3f, precision %.3f -> %.3f",
                family,
                w["recall"],
                r["recall"],
                w["precision"],
                r["precision"],
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    rentry["metrics"] = {
        "iou": 0.5,
        "min_side": MIN_SIDE,
        "note": "recall/precision of the int8 detector as it runs (with its verifier if it "
        "has one) without and with this regressor, on the same held-out 640x480 scenes of "
        "each family (heads >= 24 px) and the demo camera's ground truth",
        "trained_on": list(families),
        "verifier": bool(entry.get("verifier")),
        "by_family": by_family,
    }
    attach(detector_dir, entry, "regressor", tmp, rentry)
    return rentry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    stage_arguments(parser, 20, "regressor")


def run(args: argparse.Namespace) -> int:
    r = train_regressor(args.detector_dir, **stage_options(args))
    print(f"box regressor: {args.detector_dir / REGRESSOR_FILE} ({r['size_bytes']} bytes)")
    for family, m in r["metrics"]["by_family"].items():
        w, b = m["without"], m["with"]
        print(
            f"{family:8s} without recall {w['recall']:.3f} precision {w['precision']:.3f}"
            f" | with regressor recall {b['recall']:.3f} precision {b['precision']:.3f}"
        )
    return 0
