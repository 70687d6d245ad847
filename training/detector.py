"""`screwcam train-detector OUT_DIR`: train the head detector and export it to int8.

Recipe (the numbers are flags): render N training scenes (`detector_data.compose_scene`,
families "render" and "photo"), train a small fully convolutional network for E epochs
on centre heat maps (CenterNet's focal loss) plus box regression (L1 on the sub-cell
offset and log size, around each centre), convert it to an int8 LiteRT model with the
TFLite converter (representative data: training scenes), and evaluate the int8 model,
run by the device's own runtime (`screwcam.detector.Detector`), on scenes of each
family and on the demo camera's ground truth: recall and precision at IoU >= 0.5.

OUT_DIR gets detector.tflite, detector.keras, detector.json (the bundle part's meta:
format, stride, threshold, input, training, metrics) and metrics.json. Add it to a
bundle with `screwcam export-detector OUT_DIR --into models/default`.

Needs the [train] extra (TensorFlow, scikit-image).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from screwcam.detector import DEFAULT_STRIDE, DETECTOR_FILE, DETECTOR_FORMAT, letterbox
from screwcam.errors import DatasetError, ModelError
from screwcam.frames import Box
from screwcam.preprocess import PREPROCESS_VERSION

log = logging.getLogger(__name__)

INPUT_SIZE = (320, 256)  # (width, height) of the network input
STRIDE = DEFAULT_STRIDE
GRID = (INPUT_SIZE[1] // STRIDE, INPUT_SIZE[0] // STRIDE)  # (rows, cols)
PART_META = "detector.json"
THRESHOLD = 0.35
# test and validation scenes are the same for every detector trained with this recipe
# (training scenes are seeded with seed * 100003 + chunk, never these)
TEST_SEED, VALIDATION_SEED = 7919, 104729


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def targets(boxes: list[Box], scale: float, ox: int, oy: int) -> np.ndarray:
    """(rows, cols, 6) float32: heat, offset x, offset y, log w, log h, regression weight.

    Heat is a Gaussian around each head's centre cell (sigma grows with the head); the
    box is regressed in the 3x3 cells around the centre, relative to each cell."""
    rows, cols = GRID
    out = np.zeros((rows, cols, 6), np.float32)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    for b in boxes:
        cx = ((b.x + b.w / 2.0) * scale + ox) / STRIDE
        cy = ((b.y + b.h / 2.0) * scale + oy) / STRIDE
        w, h = b.w * scale / STRIDE, b.h * scale / STRIDE
        ci, cj = int(min(rows - 1, max(0, cy))), int(min(cols - 1, max(0, cx)))
        sigma = max(0.5, 0.12 * max(w, h))
        g = np.exp(-((xx - (cj + 0.5)) ** 2 + (yy - (ci + 0.5)) ** 2) / (2 * sigma * sigma))
        out[:, :, 0] = np.maximum(out[:, :, 0], g)
        out[ci, cj, 0] = 1.0
        reach = 1 if max(w, h) < 6 else 2
        for i in range(max(0, ci - reach), min(rows, ci + reach + 1)):
            for j in range(max(0, cj - reach), min(cols, cj + reach + 1)):
                weight = 1.0 if (i, j) == (ci, cj) else 0.3
                if out[i, j, 5] >= weight:
                    continue
                out[i, j, 1:5] = (cx - j, cy - i, math.log(max(w, 0.3)), math.log(max(h, 0.3)))
                out[i, j, 5] = weight
    return out


def _make_chunk(
    args: tuple[int, int, tuple[str, ...], float],
) -> tuple[np.ndarray, np.ndarray, list]:
    from .detector_data import compose_scene

    seed, n, families, camouflage = args
    rng = np.random.default_rng(seed)
    xs = np.zeros((n, INPUT_SIZE[1], INPUT_SIZE[0]), np.uint8)
    ys = np.zeros((n, *GRID, 6), np.float32)
    boxes = []
    for k in range(n):
        family = families[k % len(families)]
        size = (320, 240)
        u = rng.random()
        if u < 0.1:
            size = (240, 320)  # portrait photo
        elif u < 0.2:
            size = (320, 180)  # 16:9
        scene = compose_scene(rng, family, size=size, camouflage=camouflage)
        canvas, scale, ox, oy = letterbox(scene.image, INPUT_SIZE)
        xs[k] = canvas
        ys[k] = targets(scene.boxes, scale, ox, oy)
        boxes.append([(b, scale, ox, oy) for b in scene.boxes])
    return xs, ys, boxes


def scene_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes that render scenes. They are forked (quick to start) unless this
    process has imported TensorFlow: a forked copy of a process that has run it crashes
    when its garbage collector touches TensorFlow's objects (seen in a test run after
    other training), so then they are spawned, clean, at a second or two each."""
    context = multiprocessing.get_context("spawn") if "tensorflow" in sys.modules else None
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def make_scenes(
    n: int, families: tuple[str, ...], seed: int, workers: int = 2, camouflage: float = 0.0
) -> tuple[np.ndarray, np.ndarray, list]:
    """n letterboxed scenes (uint8 (n, H, W)), their targets and their boxes
    [(Box in scene pixels, scale, ox, oy)], rendered by `workers` processes
    (`camouflage`: see `detector_data.compose_scene`)."""
    chunk = 250
    jobs = [
        (seed * 100003 + i, min(chunk, n - i * chunk), families, camouflage)
        for i in range(-(-n // chunk))
    ]
    xs, ys, boxes = [], [], []
    t0 = time.monotonic()
    with scene_pool(workers) as pool:
        for k, (x, y, b) in enumerate(pool.map(_make_chunk, jobs)):
            xs.append(x)
            ys.append(y)
            boxes.extend(b)
            log.info("scenes %d/%d (%.0f s)", min(n, (k + 1) * chunk), n, time.monotonic() - t0)
    return np.concatenate(xs), np.concatenate(ys), boxes


# ---------------------------------------------------------------------------------------------
# Model and loss
# ---------------------------------------------------------------------------------------------


def build_model(width: float = 1.0):
    """Fully convolutional: stride 2-32 backbone of depthwise-separable blocks, a top-down
    path back to stride 8 (so big heads are seen whole), two heads: heat and box."""
    import tensorflow as tf
    from tensorflow import keras
    from tensorflow.keras import layers

    def ch(c: int) -> int:
        return max(8, int(round(c * width / 4)) * 4)

    def block(x, c, stride=1, k=3, dilation=1):
        x = layers.DepthwiseConv2D(
            k, strides=stride, padding="same", dilation_rate=dilation, use_bias=False
        )(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU(6.0)(x)
        x = layers.Conv2D(c, 1, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU(6.0)(x)

    inp = keras.Input((INPUT_SIZE[1], INPUT_SIZE[0], 1), name="gray")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inp)
    # stem: 4x4 patches at stride 4 (no full-resolution activations to move around)
    x = layers.Conv2D(ch(16), 4, strides=4, padding="same", use_bias=False)(x)  # /4
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = block(x, ch(16))
    x = block(x, ch(24), 2)  # /8
    c8 = block(x, ch(24))
    x = block(c8, ch(40), 2)  # /16
    c16 = block(x, ch(40))
    x = block(c16, ch(64), 2)  # /32
    x = block(x, ch(64), k=5)
    c32 = block(x, ch(64), k=5)
    # top-down: the coarse, wide view informs the finer grids
    t = layers.Conv2D(ch(40), 1, use_bias=False)(c32)
    t = layers.UpSampling2D(2, interpolation="nearest")(t)
    t = layers.Add()([t, c16])
    t = block(t, ch(40))
    t = layers.Conv2D(ch(24), 1, use_bias=False)(t)
    t = layers.UpSampling2D(2, interpolation="nearest")(t)
    t = layers.Add()([t, c8])
    t = block(t, ch(32))
    h = block(t, ch(24))  # each output gets a block of its own
    b = block(t, ch(32), k=5)
    heat = layers.Conv2D(
        1,
        1,
        activation="sigmoid",
        bias_initializer=keras.initializers.Constant(-4.0),
        name="heat",
    )(h)
    box = layers.Conv2D(4, 1, name="box")(b)
    model = keras.Model(inp, [heat, box], name="head_detector")
    del tf
    return model


def _losses():
    import tensorflow as tf

    def heat_loss(y_true, y_pred):
        gt = y_true[..., 0:1]
        p = tf.clip_by_value(y_pred, 1e-4, 1.0 - 1e-4)
        pos = tf.cast(gt >= 0.999, tf.float32)
        neg = 1.0 - pos
        pos_l = -tf.math.log(p) * tf.square(1.0 - p) * pos
        neg_l = -tf.math.log(1.0 - p) * tf.square(p) * tf.pow(1.0 - gt, 4.0) * neg
        n = tf.maximum(tf.reduce_sum(pos, axis=[1, 2, 3]), 1.0)
        return (tf.reduce_sum(pos_l, axis=[1, 2, 3]) + tf.reduce_sum(neg_l, axis=[1, 2, 3])) / n

    def box_loss(y_true, y_pred):
        w = y_true[..., 5:6]
        diff = tf.abs(y_true[..., 1:5] - y_pred) * w
        n = tf.maximum(tf.reduce_sum(w, axis=[1, 2, 3]), 1.0)
        return tf.reduce_sum(diff, axis=[1, 2, 3]) / n

    return heat_loss, box_loss


# ---------------------------------------------------------------------------------------------
# Export and evaluation
# ---------------------------------------------------------------------------------------------


def to_int8(model, samples: np.ndarray) -> bytes:
    """int8 LiteRT flatbuffer (int8 input and outputs), calibrated on `samples`."""
    import tensorflow as tf

    def representative():
        for x in samples:
            yield [x[None, :, :, None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def match(found: list[Box], truth: list[Box], iou: float = 0.5) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives): greedy one-to-one at IoU >= iou."""
    used = set()
    tp = 0
    for f in found:
        best, best_iou = None, iou
        for k, t in enumerate(truth):
            v = f.iou(t)
            if k not in used and v >= best_iou:
                best, best_iou = k, v
        if best is not None:
            used.add(best)
            tp += 1
    return tp, len(found) - tp, len(truth) - tp


def _score(counts: np.ndarray, frames: int) -> dict[str, float]:
    tp, fp, fn = (int(v) for v in counts)
    return {
        "frames": frames,
        "heads": tp + fn,
        "recall": round(tp / max(1, tp + fn), 4),
        "precision": round(tp / max(1, tp + fp), 4),
        "false_boxes": fp,
    }


def evaluate_scenes(finder, images, boxes, min_side: int = 0) -> dict[str, float]:
    """Recall/precision at IoU >= 0.5 of `finder` on scene images (gray, scene pixels)
    against their boxes; heads whose shorter side (in a 640x480 frame) is below
    `min_side` neither count as misses nor as false boxes."""
    counts = np.zeros(3, np.int64)
    for image, truth in zip(images, boxes, strict=True):
        found = finder(image)
        small = [t for t in truth if min(t.w, t.h) * 2 < min_side]
        big = [t for t in truth if t not in small]
        found = [f for f in found if not any(f.iou(t) >= 0.5 for t in small)]
        counts += match(found, big)
    return _score(counts, len(images))


def _test_chunk(args: tuple[str, int, int]) -> tuple[list[np.ndarray], list[list[Box]]]:
    from .detector_data import compose_scene

    family, n, seed = args
    rng = np.random.default_rng(seed)
    images, boxes = [], []
    for _ in range(n):
        scene = compose_scene(rng, family)
        images.append(scene.image)
        boxes.append(scene.boxes)
    return images, boxes


def test_scenes(
    family: str, n: int, seed: int, workers: int = 2
) -> tuple[list[np.ndarray], list[list[Box]]]:
    """n held-out scenes of one family at 320x240 (gray uint8) and their boxes."""
    per = -(-n // workers)
    jobs = [(family, min(per, n - k * per), seed * 31 + k) for k in range(workers)]
    images, boxes = [], []
    with scene_pool(workers) as pool:
        for im, bx in pool.map(_test_chunk, jobs):
            images.extend(im)
            boxes.extend(bx)
    return images, boxes


def demo_scenes(frames: int = 150, step: int = 3) -> tuple[list[np.ndarray], list[list[Box]]]:
    """Frames of the demo camera (640x480, all five lighting conditions, 3 surfaces)."""
    from screwcam.preprocess import to_gray
    from screwcam.render import DemoSource

    images, boxes = [], []
    for seed in (0, 1, 4):
        src = DemoSource(realtime=False, seed=seed)
        src.open()
        for i in range(0, frames * step, step):
            image, truth = src.render(i)
            images.append(to_gray(image))
            boxes.append([t.box for t in truth])
        src.close()
    return images, boxes


def choose_threshold(detector, families: tuple[str, ...], n: int, seed: int) -> float:
    """The heat threshold with the best F1 (IoU >= 0.5) on validation scenes of the
    training families (their own seed: neither training nor test scenes)."""
    images, boxes = [], []
    for family in families:
        im, bx = test_scenes(family, n, seed)
        images += im
        boxes += bx
    found = [detector.detect(image, threshold=0.1, verify=False) for image in images]
    best, best_f1 = THRESHOLD, -1.0
    for threshold in np.arange(0.15, 0.71, 0.05):
        counts = np.zeros(3, np.int64)
        for dets, truth in zip(found, boxes, strict=True):
            big = [t for t in truth if min(t.w, t.h) * 2 >= 16]
            small = [t for t in truth if min(t.w, t.h) * 2 < 16]
            kept = [b for b, s in dets if s >= threshold]
            kept = [b for b in kept if not any(b.iou(t) >= 0.5 for t in small)]
            counts += match(kept, big)
        tp, fp, fn = counts
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        log.info("threshold %.2f: F1 %.4f (tp %d, fp %d, fn %d)", threshold, f1, tp, fp, fn)
        if f1 > best_f1:
            best, best_f1 = float(round(threshold, 2)), f1
    return best


def evaluate_all(finder, families: tuple[str, ...], n: int, seed: int) -> dict[str, dict]:
    out = {}
    for family in families:
        # the 3-D generator takes ~0.5 s a scene: fewer of its scenes
        count = max(40, n // 3) if family == "gen2" else n
        t0 = time.monotonic()
        images, boxes = test_scenes(family, count, seed)
        log.info("%d %s test scenes in %.0f s", count, family, time.monotonic() - t0)
        out[family] = evaluate_scenes(finder, images, boxes, min_side=16)
    images, boxes = demo_scenes()
    out["demo"] = evaluate_scenes(finder, images, boxes)
    return out


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def train_detector(
    out_dir: Path,
    *,
    scenes: int = 6000,
    epochs: int = 12,
    families: tuple[str, ...] = ("render", "photo"),
    test_families: tuple[str, ...] = ("render", "photo"),
    seed: int = 0,
    test_scenes_n: int = 300,
    width: float = 1.0,
    force: bool = False,
    init: Path | None = None,
    lr: float = 4e-3,
    camouflage: float = 0.0,
) -> dict:
    import tensorflow as tf

    from screwcam.detector import Detector

    out_dir = Path(out_dir)
    if (out_dir / PART_META).exists() and not force:
        raise DatasetError(f"{out_dir} already holds a detector; pass --force to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    tf.keras.utils.set_random_seed(seed)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    x, y, _ = make_scenes(scenes, families, seed, camouflage=camouflage)
    t_data = time.monotonic() - t_start
    log.info("rendered %d scenes in %.0f s", len(x), t_data)

    if init is not None:  # continue training a detector (on fresh scenes)
        model = tf.keras.models.load_model(Path(init) / "detector.keras", compile=False)
        prior = json.loads((Path(init) / PART_META).read_text(encoding="utf-8"))["training"]
    else:
        model = build_model(width)
        prior = None
    heat_loss, box_loss = _losses()
    steps = epochs * math.ceil(len(x) / 32)
    schedule = tf.keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(schedule),
        loss={"heat": heat_loss, "box": box_loss},
        loss_weights={"heat": 1.0, "box": 1.0},
    )
    xf = x[..., None]
    history = model.fit(
        xf,
        {"heat": y, "box": y},
        batch_size=32,
        epochs=epochs,
        shuffle=True,
        verbose=2,
    )
    t_train = time.monotonic() - t_start - t_data
    keras_path = out_dir / "detector.keras"
    model.save(keras_path)
    tflite = to_int8(model, x[:: max(1, len(x) // 300)])
    tmp = out_dir / f".{DETECTOR_FILE}.part"
    tmp.write_bytes(tflite)
    os.replace(tmp, out_dir / DETECTOR_FILE)

    detector = Detector(out_dir / DETECTOR_FILE, {"threshold": THRESHOLD}, num_threads=2)
    threshold = choose_threshold(detector, families, 100, VALIDATION_SEED)
    detector.threshold = threshold
    metrics = evaluate_all(detector, test_families, test_scenes_n, TEST_SEED)
    entry = {
        "file": DETECTOR_FILE,
        "format": DETECTOR_FORMAT,
        "preprocess_version": PREPROCESS_VERSION,
        "input": {"width": INPUT_SIZE[0], "height": INPUT_SIZE[1], "dtype": "int8"},
        "stride": STRIDE,
        "threshold": threshold,
        "size_bytes": len(tflite),
        "parameters": int(model.count_params()),
        "training": {
            "scenes": int(len(x)),
            "families": list(families),
            "epochs": epochs,
            "seed": seed,
            "width": width,
            "seconds": {"data": round(t_data), "train": round(t_train)},
            "final_loss": round(float(history.history["loss"][-1]), 4),
            "learning_rate": lr,
            "continued_from": prior,
            **({"camouflage": camouflage} if camouflage else {}),
        },
        "metrics": {
            "iou": 0.5,
            "note": "recall/precision of the int8 model on held-out scenes of each family "
            "(heads >= 16 px in a 640x480 frame) and on the demo camera's ground truth",
            "trained_on": list(families),
            "by_family": metrics,
        },
    }
    (out_dir / PART_META).write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
    log.info("detector written to %s: %s", out_dir, json.dumps(metrics))
    return entry


def read_entry(detector_dir: Path) -> dict[str, Any]:
    """The meta entry (detector.json) of a detector trained into `detector_dir`; a
    ModelError if the folder holds none."""
    meta_path, model_path = detector_dir / PART_META, detector_dir / DETECTOR_FILE
    if not meta_path.is_file() or not model_path.is_file():
        raise ModelError(
            f"{detector_dir} holds no trained detector ({PART_META} and {DETECTOR_FILE}); "
            "train one with `screwcam train-detector DIR`"
        )
    try:
        entry = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {meta_path}: {exc}; retrain the detector") from exc
    if not isinstance(entry, dict):
        raise ModelError(f"{meta_path} is not a JSON object; retrain the detector")
    return entry


def reevaluate(out_dir: Path, test_scenes_n: int = 300) -> dict:
    """Evaluate an already trained detector in OUT_DIR again (e.g. after the decoding
    changed) and rewrite the metrics in its detector.json."""
    from screwcam.detector import Detector

    out_dir = Path(out_dir)
    entry = read_entry(out_dir)
    # the heat map alone: a verifier's thresholds were chosen for the detector as it was,
    # and a box regressor is trained on its boxes
    alone = {k: v for k, v in entry.items() if k not in ("verifier", "regressor")}
    detector = Detector(out_dir / DETECTOR_FILE, alone, num_threads=2)
    entry["threshold"] = detector.threshold = choose_threshold(
        detector, tuple(entry["training"]["families"]), 100, VALIDATION_SEED
    )
    families = tuple(f for f in entry["metrics"]["by_family"] if f != "demo")
    entry["metrics"]["by_family"] = evaluate_all(detector, families, test_scenes_n, TEST_SEED)
    (out_dir / PART_META).write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
    return entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", type=Path, help="folder for the detector (created)")
    parser.add_argument("--scenes", type=int, default=6000, help="training scenes (6000)")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (12)")
    parser.add_argument(
        "--families",
        default="render,photo",
        help="scene families to train on, comma separated (render,photo)",
    )
    parser.add_argument(
        "--test-families",
        default="render,photo",
        help="scene families to report recall/precision on (render,photo)",
    )
    parser.add_argument("--test-scenes", type=int, default=300, help="test scenes per family")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=4e-3, help="peak learning rate (0.004)")
    parser.add_argument(
        "--init",
        type=Path,
        help="continue training the detector in this folder (on new scenes of --seed)",
    )
    parser.add_argument(
        "--camouflage",
        type=_share,
        default=0.0,
        metavar="P",
        help="paint this share (0-1) of the render and photo families' training heads in the "
        "surface's own tone, so that mostly the recess shows (default 0; test scenes never)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing detector")
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="do not train: evaluate the detector already in OUT_DIR again",
    )


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1 (e.g. 0.25)")
    return value


def scene_families(text: str) -> tuple[str, ...]:
    """A comma-separated list of scene families, each checked (DatasetError naming it)."""
    from .detector_data import FAMILIES

    families = tuple(f for f in text.split(",") if f)
    for f in families:
        if f not in FAMILIES:
            raise DatasetError(f"unknown scene family {f!r}; choose from {', '.join(FAMILIES)}")
    return families


def run(args: argparse.Namespace) -> int:
    fams = scene_families(args.families)
    tests = scene_families(args.test_families)
    if args.evaluate_only:
        entry = reevaluate(args.out_dir, args.test_scenes)
    else:
        entry = train_detector(
            args.out_dir,
            scenes=args.scenes,
            epochs=args.epochs,
            families=fams,
            test_families=tests,
            seed=args.seed,
            test_scenes_n=args.test_scenes,
            width=args.width,
            force=args.force,
            init=args.init,
            lr=args.lr,
            camouflage=args.camouflage,
        )
    for family, m in entry["metrics"]["by_family"].items():
        print(
            f"{family:8s} recall {m['recall']:.3f} precision {m['precision']:.3f} "
            f"({m['heads']} heads, {m['frames']} frames, {m['false_boxes']} false boxes)"
        )
    print(f"detector: {args.out_dir / DETECTOR_FILE} ({entry['size_bytes']} bytes)")
    return 0
