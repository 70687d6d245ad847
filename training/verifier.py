"""`screwcam train-verifier DETECTOR_DIR`: train the head detector's second stage.

The detector's heat map sees the frame at half size, where a screw's recess is a
handful of pixels, and plain round things (discs, washers, coins, rivets) light it up
too. The verifier looks again at each box the detector proposes, at the frame's full
resolution, in the classifier's own 28x28 crop (`screwcam.detector.verifier_crops`, so
the live pipeline cuts each head once), and says head or not.

Recipe (the numbers are flags):
1. mine: render N scenes per family at 640x480 (`detector_data.compose_scene`), run the
   detector in DETECTOR_DIR on them with a low heat threshold (0.15) and no verifier
   (its boxes moved by its box regressor, if it has one, as they are when it runs);
   each box it proposes is a head (IoU >= 0.5 with one), nothing (IoU < 0.1 with every
   head) or in between (not trained on);
2. train a small CNN (three pairs of 3x3 convolutions of 8, 16 and 32 filters, each
   pair pooled, global average pool, two dense layers: about 1.9 million multiply-adds
   a crop) on head vs nothing, the two halves weighted equally and within the heads each
   drive type equally; a second output names each head's drive type while training, so
   the plain hex head (no recess) is learned as a head and not as a disc; every epoch on
   fresh quarter turns, mirrors, gain and noise of the crops; convert the P(head) output
   alone to int8 LiteRT;
3. choose the detector's heat threshold and the verifier's threshold together, by F1
   on validation scenes of the training families (heads >= 24 px);
4. test the detector with and without the verifier on test scenes of each test family
   and on the demo camera's frames: recall and precision at IoU >= 0.5, heads >= 24 px.

DETECTOR_DIR gets verifier.tflite and a `verifier` entry in its detector.json, so
`screwcam export-detector DETECTOR_DIR --into BUNDLE` ships both. A verifier belongs to
the detector it was trained on: train the detector again and the verifier must follow.

Needs the [train] extra (TensorFlow, scikit-image).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from screwcam.classes import CLASSES
from screwcam.detector import (
    DETECTOR_FILE,
    VERIFIER_FILE,
    VERIFIER_FORMAT,
    Detector,
    Verifier,
    verifier_crops,
)
from screwcam.errors import DatasetError, ModelError
from screwcam.files import write_atomic
from screwcam.frames import Box
from screwcam.preprocess import INPUT_SIZE, to_gray

from .detector import (
    PART_META,
    TEST_SEED,
    VALIDATION_SEED,
    _score,
    match,
    read_entry,
    scene_families,
    scene_pool,
)

log = logging.getLogger(__name__)

FRAME = (640, 480)
CROP_SIZE = INPUT_SIZE  # the classifier's own crops
CANDIDATE_HEAT = 0.15  # the lowest heat a proposed box may have
MIN_SIDE = 24  # heads smaller than this count neither as found nor as missed
HEAT_CHOICES = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
P_CHOICES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
# training scenes are seeded apart from the test and validation scenes
TRAIN_SEED_OFFSET = 7


# ---------------------------------------------------------------------------------------------
# Scenes and candidates
# ---------------------------------------------------------------------------------------------


def _render_chunk(
    args: tuple[str, int, int, tuple[int, int]],
) -> list[tuple[np.ndarray, list[tuple[Box, int]]]]:
    from .detector_data import compose_scene

    family, n, seed, size = args
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        scene = compose_scene(rng, family, size=size)
        out.append((scene.image, list(zip(scene.boxes, scene.labels, strict=True))))
    return out


def render_scenes(
    family: str,
    n: int,
    seed: int,
    workers: int = 2,
    chunk: int | None = None,
    size: tuple[int, int] = FRAME,
) -> Iterator[tuple[np.ndarray, list[tuple[Box, int]]]]:
    """n scenes of `family` at `size` (640x480): (gray or BGR image, [(box, class)])
    pairs, rendered by `workers` processes in chunks of `chunk` scenes (default: one
    chunk per worker); the same scenes for the same seed, chunk and size. Head sizes
    run from 7 px to 0.4 of the frame's height (`detector_data._diameters`), so a
    larger frame holds heads that are smaller against it, as in a photo."""
    chunk = chunk or -(-n // workers)
    jobs = [
        (family, min(chunk, n - k * chunk), seed * 31 + k, tuple(size))
        for k in range(-(-n // chunk))
    ]
    with scene_pool(workers) as pool:
        for part in pool.map(_render_chunk, jobs):
            yield from part


class Candidates:
    """The boxes a detector proposes on scenes, with their crops and whether each is a
    head (1), on nothing (0) or in between (-1); and the scenes' true heads."""

    def __init__(self) -> None:
        self.crops: list[np.ndarray] = []
        self.heat: list[float] = []
        self.label: list[int] = []
        self.scene: list[int] = []
        self.boxes: list[Box] = []
        self.kind: list[int] = []  # the drive type of the head a box is on, else -1
        self.truth: list[list[Box]] = []

    def add_scene(
        self,
        detector: Detector,
        image: np.ndarray,
        truth: list[Box],
        kinds: list[int] | None = None,
    ) -> None:
        gray = to_gray(image)
        k = len(self.truth)
        self.truth.append(truth)
        found = detector.detect(gray, threshold=CANDIDATE_HEAT, verify=False)
        if not found:
            return
        boxes = [b for b, _ in found]
        self.crops.extend(verifier_crops(gray, boxes))
        for b, s in found:
            ious = [b.iou(t) for t in truth]
            best = max(ious, default=0.0)
            self.label.append(1 if best >= 0.5 else 0 if best < 0.1 else -1)
            on_head = kinds is not None and best >= 0.5
            self.kind.append(kinds[int(np.argmax(ious))] if kinds and on_head else -1)
            self.heat.append(s)
            self.scene.append(k)
            self.boxes.append(b)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        crops = np.array(self.crops, np.uint8).reshape(-1, CROP_SIZE, CROP_SIZE)
        return crops, np.array(self.heat), np.array(self.label), np.array(self.scene)

    def counts(self, keep: np.ndarray) -> np.ndarray:
        """(true positives, false boxes, missed heads) of the boxes in `keep` (`count`)."""
        scene = np.array(self.scene)
        out = np.zeros(3, np.int64)
        for k, truth in enumerate(self.truth):
            out += count([self.boxes[i] for i in np.flatnonzero((scene == k) & keep)], truth)
        return out


def count(found: list[Box], truth: list[Box]) -> np.ndarray:
    """(true positives, false boxes, missed heads) of one scene's boxes at IoU >= 0.5,
    heads >= MIN_SIDE px (a box on a smaller head counts neither way)."""
    big = [t for t in truth if min(t.w, t.h) >= MIN_SIDE]
    small = [t for t in truth if min(t.w, t.h) < MIN_SIDE]
    return np.array(match([f for f in found if not any(f.iou(t) >= 0.5 for t in small)], big))


def mine(detector: Detector, family: str, n: int, seed: int) -> Candidates:
    cands = Candidates()
    t0 = time.monotonic()
    for k, (image, truth) in enumerate(render_scenes(family, n, seed, chunk=50)):
        cands.add_scene(detector, image, [b for b, _ in truth], [int(k) for _, k in truth])
        if (k + 1) % 100 == 0 or k + 1 == n:
            log.info(
                "%s: %d/%d scenes, %d boxes (%.0f s)",
                family,
                k + 1,
                n,
                len(cands.label),
                time.monotonic() - t0,
            )
    return cands


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


def build_model():
    """(training model, inference model): the inference model is the training model's
    P(head) output alone; training also names the drive type of every head (a second
    softmax output), so that each type, the plain hex head without a recess too, is
    learned as a kind of head rather than as a rare exception to "has a recess"."""
    import keras
    from keras import layers

    x = inp = keras.Input((CROP_SIZE, CROP_SIZE, 1))
    x = layers.Rescaling(1 / 127.5, -1)(x)
    for filters in (8, 16, 32):  # about 1.9 million multiply-adds a crop
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(32, activation="relu")(x)
    head = layers.Dense(1, activation="sigmoid", name="head")(x)
    kind = layers.Dense(len(CLASSES), activation="softmax", name="kind")(x)
    return keras.Model(inp, {"head": head, "kind": kind}), keras.Model(inp, head)


def augment(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Quarter turns, mirrors, contrast gain and sensor noise: nothing of these tells a
    head from a disc."""
    turns = rng.integers(0, 4, len(crops))
    out = np.empty(crops.shape, np.float32)
    for r in range(4):
        out[turns == r] = np.rot90(crops[turns == r], r, axes=(1, 2))
    flip = rng.random(len(crops)) < 0.5
    out[flip] = out[flip, :, ::-1]
    gain = rng.uniform(0.7, 1.3, (len(crops), 1, 1)).astype(np.float32)
    out = (out - 127.5) * gain + 127.5 + rng.normal(0, 4, out.shape).astype(np.float32)
    return np.clip(out, 0, 255)


def train(crops: np.ndarray, labels: np.ndarray, kinds: np.ndarray, epochs: int, seed: int):
    """Train on head (1) vs nothing (0) crops; `kinds` = each head's drive type. The
    two halves weigh the same, and within the heads every drive type weighs the same.
    Returns (inference model, final loss)."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    y = labels.astype(np.float32)
    n = float(len(y))
    weight = np.where(y == 1, 0.0, 0.5 * n / max(1.0, n - y.sum())).astype(np.float32)
    types = np.unique(kinds[y == 1])
    for k in types:
        mine_k = (y == 1) & (kinds == k)
        weight[mine_k] = 0.5 * n / (len(types) * mine_k.sum())
    kind_weight = (y == 1).astype(np.float32)
    model, inference = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss={"head": "binary_crossentropy", "kind": "sparse_categorical_crossentropy"},
        loss_weights={"head": 1.0, "kind": 0.5},
    )
    target_kind = np.maximum(kinds, 0)
    for epoch in range(epochs):
        h = model.fit(
            augment(crops, rng)[..., None],
            {"head": y, "kind": target_kind},
            sample_weight={"head": weight, "kind": kind_weight},
            batch_size=128,
            epochs=1,
            shuffle=True,
            verbose=0,
        )
        log.info("epoch %d/%d: loss %.4f", epoch + 1, epochs, h.history["loss"][-1])
    return inference, float(h.history["loss"][-1])


# ---------------------------------------------------------------------------------------------
# Thresholds and evaluation
# ---------------------------------------------------------------------------------------------


def _probabilities(verifier: Verifier, crops: np.ndarray) -> np.ndarray:
    """P(head) of mined crops by the int8 verifier on LiteRT, in batches."""
    out = [verifier.predict_crops(crops[i : i + 256]) for i in range(0, len(crops), 256)]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def validation_f1(sets: list[tuple[Candidates, np.ndarray]], heat: float, p_min: float) -> float:
    """Box F1 over all the validation sets [(candidates, P(head))] at these thresholds."""
    tp, fp, fn = sum(
        (c.counts((np.array(c.heat) >= heat) & (p >= p_min)) for c, p in sets),
        np.zeros(3, np.int64),
    )
    return float(2 * tp / max(1, 2 * tp + fp + fn))


def choose_thresholds(
    sets: list[tuple[Candidates, np.ndarray]],
) -> tuple[float, float, float]:
    """(heat threshold, verifier threshold, F1): the pair with the best F1 over all
    the validation sets [(candidates, P(head))]."""
    best = (HEAT_CHOICES[0], P_CHOICES[0], -1.0)
    for heat in HEAT_CHOICES:
        for p_min in P_CHOICES:
            f1 = validation_f1(sets, heat, p_min)
            if f1 > best[2]:
                best = (heat, p_min, f1)
    return best


def _demo_candidates(detector: Detector, frames: int = 150) -> Candidates:
    from .detector import demo_scenes

    cands = Candidates()
    images, boxes = demo_scenes(frames)
    for image, truth in zip(images, boxes, strict=True):
        cands.add_scene(detector, image, truth)
    return cands


def evaluate(
    cands: Candidates, p: np.ndarray, detector_threshold: float, entry: dict[str, Any]
) -> dict[str, dict]:
    """Recall/precision of the detector alone (its own threshold) and with the
    verifier (its thresholds), on the same proposed boxes."""
    heat = np.array(cands.heat)
    frames = len(cands.truth)
    alone = cands.counts(heat >= detector_threshold)
    both = cands.counts((heat >= entry["detector_threshold"]) & (p >= entry["threshold"]))
    return {"detector_alone": _score(alone, frames), "with_verifier": _score(both, frames)}


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def train_verifier(
    detector_dir: Path,
    *,
    families: tuple[str, ...],
    test_families: tuple[str, ...],
    scenes: int = 800,
    epochs: int = 12,
    seed: int = 0,
    test_scenes_n: int = 150,
    force: bool = False,
    thresholds: tuple[float, float] | None = None,
) -> dict:
    """Train a verifier for the detector in `detector_dir` and add it there. Returns
    the verifier's entry (also written into detector.json under `verifier`).
    `thresholds` (heat, P(head)) fixes the two thresholds instead of choosing them by
    F1 on the validation scenes."""

    from .detector import to_int8

    detector_dir = Path(detector_dir)
    entry = read_entry(detector_dir)
    if entry.get("verifier") and not force:
        raise DatasetError(f"{detector_dir} already holds a verifier; pass --force to replace it")
    # a box regressor stays: the verifier learns from the boxes it will be shown
    alone = {k: v for k, v in entry.items() if k != "verifier"}
    detector = Detector(detector_dir / DETECTOR_FILE, alone, 2)
    two_tensorflow_threads()
    t0 = time.monotonic()
    # every scene is rendered (in worker processes, `scene_pool`) before training starts
    mined = [mine(detector, f, scenes, seed * 100003 + TRAIN_SEED_OFFSET) for f in families]
    val = [mine(detector, f, 100, VALIDATION_SEED) for f in families]
    tests = {f: mine(detector, f, test_scenes_n, TEST_SEED) for f in test_families}
    tests["demo"] = _demo_candidates(detector)
    parts = [c.arrays() for c in mined]
    crops = np.concatenate([c for c, _, y, _ in parts if len(y)])
    labels = np.concatenate([y for _, _, y, _ in parts if len(y)])
    kinds = np.concatenate([np.array(c.kind, np.int64) for c in mined])
    keep = labels >= 0
    crops, labels, kinds = crops[keep], labels[keep], kinds[keep]
    if labels.min(initial=1) == labels.max(initial=0):
        raise DatasetError(
            f"the detector proposed only {'heads' if len(labels) and labels[0] else 'nothing'} "
            f"on {scenes} scenes per family; render more scenes (--scenes)"
        )
    t_data = time.monotonic() - t0
    log.info(
        "%d candidate boxes: %d heads, %d on nothing (%.0f s)",
        len(labels),
        int(labels.sum()),
        int((labels == 0).sum()),
        t_data,
    )
    model, loss = train(crops, labels, kinds, epochs, seed)
    t_train = time.monotonic() - t0 - t_data
    tflite = to_int8(model, crops[:: max(1, len(crops) // 300)])
    tmp = detector_dir / f".{VERIFIER_FILE}.candidate"
    write_atomic(tmp, tflite)
    try:
        # thresholds not chosen yet: these placeholders are not used
        probe = Verifier(
            tmp,
            {
                "format": VERIFIER_FORMAT,
                "size": CROP_SIZE,
                "threshold": 0.5,
                "detector_threshold": 0.5,
            },
        )
        sets = [(c, _probabilities(probe, c.arrays()[0])) for c in val]
        chosen = choose_thresholds(sets)
        heat, p_min, f1 = chosen
        if thresholds is not None:
            heat, p_min = thresholds
            f1 = validation_f1(sets, heat, p_min)
        log.info(
            "thresholds: heat >= %.2f, P(head) >= %.2f (%s); validation F1's choice: "
            "heat >= %.2f, P(head) >= %.2f (F1 %.4f)",
            heat,
            p_min,
            "validation F1's choice" if thresholds is None else "fixed by --thresholds",
            *chosen,
        )
        ventry: dict[str, Any] = {
            "file": VERIFIER_FILE,
            "format": VERIFIER_FORMAT,
            "size": CROP_SIZE,
            "threshold": p_min,
            "detector_threshold": heat,
            "thresholds_chosen_by": "validation F1" if thresholds is None else "fixed",
            "size_bytes": len(tflite),
            "parameters": int(model.count_params()),
            "training": {
                "families": list(families),
                "scenes_per_family": scenes,
                "boxes": int(len(labels)),
                "heads": int(labels.sum()),
                "epochs": epochs,
                "seed": seed,
                "final_loss": round(loss, 4),
                "validation_f1": round(f1, 4),
                "seconds": {"data": round(t_data), "train": round(t_train)},
            },
        }
        by_family = {}
        for family, cands in tests.items():
            by_family[family] = evaluate(
                cands, _probabilities(probe, cands.arrays()[0]), detector.threshold, ventry
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    ventry["metrics"] = {
        "iou": 0.5,
        "min_side": MIN_SIDE,
        "note": "recall/precision of the int8 detector alone and with this verifier, on "
        "the same held-out 640x480 scenes of each family (heads >= 24 px) and the demo "
        "camera's ground truth",
        "trained_on": list(families),
        "by_family": by_family,
    }
    attach(detector_dir, entry, "verifier", tmp, ventry)
    return ventry


def two_tensorflow_threads() -> None:
    """TensorFlow on 2 threads, unless it already runs in this process (keep its setting)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(2)
    except RuntimeError:
        pass


def attach(detector_dir: Path, entry: dict, key: str, tmp: Path, part: dict) -> None:
    """Put a trained stage in its place: the network written to `tmp` becomes
    part["file"] and `part` the entry's `key` in detector.json."""
    tmp.replace(detector_dir / part["file"])
    entry[key] = part
    write_atomic(detector_dir / PART_META, json.dumps(entry, indent=2) + "\n")


def stage_arguments(parser: argparse.ArgumentParser, epochs: int, stage: str) -> None:
    """The arguments every detector stage's training command takes."""
    parser.add_argument(
        "detector_dir", type=Path, help="folder made by `screwcam train-detector` (updated)"
    )
    parser.add_argument("--scenes", type=int, default=800, help="scenes per family (800)")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"training epochs ({epochs})")
    parser.add_argument(
        "--families",
        help="scene families to train on, comma separated (default: the detector's own)",
    )
    parser.add_argument(
        "--test-families",
        default="render,photo,gen2",
        help="scene families to report recall/precision on (render,photo,gen2; the demo "
        "camera's frames always)",
    )
    parser.add_argument("--test-scenes", type=int, default=150, help="test scenes per family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help=f"replace an existing {stage}")


def stage_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of a stage's training function from `stage_arguments`'
    (the training families: --families, else the detector's own)."""
    entry = read_entry(args.detector_dir)
    own = ",".join(entry.get("training", {}).get("families", ()))
    fams = scene_families(args.families or own)
    if not fams:
        raise ModelError(
            f"{args.detector_dir / PART_META} names no training families; pass --families"
        )
    return {
        "families": fams,
        "test_families": scene_families(args.test_families),
        "scenes": args.scenes,
        "epochs": args.epochs,
        "seed": args.seed,
        "test_scenes_n": args.test_scenes,
        "force": args.force,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    stage_arguments(parser, 12, "verifier")
    parser.add_argument(
        "--thresholds",
        metavar="HEAT,P",
        type=_thresholds,
        help="fix the detector's heat threshold and the verifier's P(head) threshold "
        "(default: the pair with the best F1 on validation scenes)",
    )


def _thresholds(text: str) -> tuple[float, float]:
    try:
        heat, p = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--thresholds {text!r}: give two numbers, HEAT,P (e.g. 0.2,0.5)"
        ) from None
    if not (0.0 < heat < 1.0 and 0.0 < p < 1.0):
        raise argparse.ArgumentTypeError(f"--thresholds {text!r}: both must lie between 0 and 1")
    return heat, p


def run(args: argparse.Namespace) -> int:
    v = train_verifier(args.detector_dir, **stage_options(args), thresholds=args.thresholds)
    print(
        f"verifier: {args.detector_dir / VERIFIER_FILE} ({v['size_bytes']} bytes), heat >= "
        f"{v['detector_threshold']}, P(head) >= {v['threshold']}"
    )
    for family, m in v["metrics"]["by_family"].items():
        a, b = m["detector_alone"], m["with_verifier"]
        print(
            f"{family:8s} detector alone recall {a['recall']:.3f} precision {a['precision']:.3f}"
            f" | with verifier recall {b['recall']:.3f} precision {b['precision']:.3f}"
        )
    return 0
