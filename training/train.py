"""`screwcam train`: train a model preset on a dataset and write models/NAME/.

    screwcam train --data data/synth --preset edge --out models/mymodel

The output folder gets model.keras, metrics.json, training_curves.png,
confusion_matrix.png and MODEL_CARD.md; `screwcam export models/mymodel` then
turns it into a device bundle. TensorFlow is imported only when training runs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from screwcam.classes import CLASSES, ENGLISH, NUM_CLASSES
from screwcam.errors import DatasetError, ScrewcamError
from screwcam.preprocess import PREPROCESS_VERSION
from screwcam.training.report import count_conditions

PRESET_NAMES = ("logreg", "mlp", "onevsall", "cnn1", "edge")
VAL_FRACTION = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        help="dataset folder (train/ and test/ trees from slice/synth, or thesis "
        "X_train.npy/y_train.npy/X_test.npy/y_test.npy)",
    )
    parser.add_argument(
        "--preset", choices=PRESET_NAMES, default="edge", help="model to train (default: edge)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum epochs (default: the preset's; early stopping ends sooner)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="batch size (default: the preset's)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an existing non-empty output folder"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder, e.g. models/mymodel"
    )


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_out_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ScrewcamError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ScrewcamError(
            f"{out} already exists and is not empty; choose another --out or pass --force "
            "to replace it"
        )


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished temp folder into place; an old `out` is removed only after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def summarize(samples: Any) -> dict[str, Any]:
    """Counts per class and condition (or family value), and a content fingerprint."""
    y = np.asarray(samples.y)
    conds = np.asarray(getattr(samples, "conditions", np.full(len(y), ""))).astype(str)
    digest = hashlib.sha256(np.ascontiguousarray(samples.x).tobytes()).hexdigest()[:16]
    return {
        "n": int(len(y)),
        "per_class": {name: int((y == i).sum()) for i, name in enumerate(CLASSES)},
        **count_conditions(conds),
        "sha256_16": digest,
    }


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): `fraction` of every class (at least 1 if it has 2+)."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = int(round(len(idx) * fraction))
        if len(idx) >= 2:
            k = max(1, k)
        val_idx.append(idx[:k])
        train_idx.append(idx[k:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def train(
    train_set: Any,
    test_set: Any,
    preset: str = "edge",
    epochs: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    data_source: str = "",
    progress: Callable[[str], None] = log,
) -> tuple[Any, dict[str, Any]]:
    """Train `preset` on train_set (Samples-like: x (N,28,28) uint8, y (N,) int).
    Returns (keras model to save, metrics dict). Evaluates on test_set."""
    import keras
    import tensorflow as tf

    from screwcam.training import augment, models
    from screwcam.training.report import evaluate

    p = models.PRESETS[preset]
    epochs = int(epochs or p.epochs)
    batch_size = int(batch_size or p.batch_size)
    if epochs < 1 or batch_size < 1:
        raise ScrewcamError("--epochs and --batch-size must be at least 1")
    x_all = np.asarray(train_set.x, dtype=np.uint8)
    y_all = np.asarray(train_set.y, dtype=np.int64)
    if len(y_all) < NUM_CLASSES * 2:
        raise DatasetError(f"training set has only {len(y_all)} images; need at least 2 per class")
    missing = [ENGLISH[CLASSES[c]] for c in range(NUM_CLASSES) if not (y_all == c).any()]
    if missing:
        raise DatasetError(
            f"training set has no images of {', '.join(missing)}; every class needs examples"
        )
    if len(test_set.y) == 0:
        raise DatasetError("dataset has no test split; add test images (slice/synth make one)")

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    tr_idx, va_idx = stratified_split(y_all, VAL_FRACTION, seed)
    x_tr = x_all[tr_idx].astype(np.float32)[..., None]
    x_va = x_all[va_idx].astype(np.float32)[..., None]
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)
    y_tr, y_va = onehot[y_all[tr_idx]], onehot[y_all[va_idx]]

    steps = max(1, math.ceil(len(y_tr) / batch_size))
    ds = tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
    ds = ds.shuffle(len(y_tr), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=False)
    if p.augment != "none":
        cfg = {
            "varied": augment.VARIED,
            "strong": augment.STRONG,
            "medium": augment.MEDIUM,
            "light": augment.LIGHT,
        }[p.augment]
        aug = augment.Augmenter(cfg, seed=seed)
        ds = ds.enumerate().map(
            lambda i, xy: aug(xy[0], xy[1], i), num_parallel_calls=tf.data.AUTOTUNE
        )
    ds = ds.prefetch(tf.data.AUTOTUNE)
    val_ds = tf.data.Dataset.from_tensor_slices((x_va, y_va)).batch(512)

    train_model, model = models.build(preset, total_steps=epochs * steps)
    if preset == "onevsall":
        loss = keras.losses.BinaryCrossentropy()
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=p.label_smoothing)
        metrics = ["accuracy"]
    # One warm-up epoch, then cosine decay to 1 % over the maximum number of epochs.
    warmup = steps if epochs > 2 else 0
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=p.learning_rate / 10 if warmup else p.learning_rate,
        decay_steps=max(1, epochs * steps - warmup),
        alpha=0.01,
        warmup_target=p.learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    if preset in ("cnn1", "edge"):
        opt = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4)
    else:
        opt = keras.optimizers.Adam(learning_rate=schedule)
    train_model.compile(optimizer=opt, loss=loss, metrics=metrics)

    params = int(model.count_params())
    progress(
        f"training {preset} ({params} parameters) on {len(y_tr)} images "
        f"(+{len(y_va)} validation), up to {epochs} epochs of {steps} batches, seed {seed}"
    )

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            opt = self.model.optimizer
            lr = float(keras.ops.convert_to_numpy(opt.learning_rate))
            progress(
                f"epoch {epoch + 1}/{epochs}: loss {logs.get('loss', 0):.4f} "
                f"acc {logs.get('accuracy', 0) * 100:.2f}% | val loss "
                f"{logs.get('val_loss', 0):.4f} val acc {logs.get('val_accuracy', 0) * 100:.2f}%"
                f" | lr {lr:.2e} | {time.perf_counter() - self.t0:.1f}s"
            )

    early = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=p.patience, restore_best_weights=True
    )
    callbacks = [Progress(), early]
    t0 = time.perf_counter()
    hist = train_model.fit(
        ds,
        epochs=epochs,
        steps_per_epoch=steps,
        validation_data=val_ds,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles (Keras warns about shuffle=True)
        verbose=0,
    )
    seconds = time.perf_counter() - t0
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    ran = len(history.get("loss", []))
    best_epoch = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else ran
    progress(f"trained {ran} epochs in {seconds:.0f}s; best epoch {best_epoch} (weights restored)")

    x_te = np.asarray(test_set.x, dtype=np.uint8)
    y_te = np.asarray(test_set.y, dtype=np.int64)
    probs = model.predict(x_te.astype(np.float32)[..., None], batch_size=512, verbose=0)
    pred = probs.argmax(axis=1)
    conds = getattr(test_set, "conditions", None)
    test_metrics = evaluate(y_te, pred, conds)
    val_pred = model.predict(x_va, batch_size=512, verbose=0).argmax(axis=1)
    val_acc = float((val_pred == y_all[va_idx]).mean()) if len(va_idx) else float("nan")
    progress(f"test accuracy {test_metrics['accuracy'] * 100:.2f}% on {len(y_te)} images")

    metrics_out = {
        "preset": preset,
        "description": p.description,
        "parameters": params,
        "epochs": ran,
        "epochs_max": epochs,
        "best_epoch": best_epoch,
        "batch_size": batch_size,
        "seed": seed,
        "learning_rate": p.learning_rate,
        "augmentation": p.augment,
        "label_smoothing": p.label_smoothing,
        "train_seconds": round(seconds, 1),
        "preprocess_version": PREPROCESS_VERSION,
        "data": {
            "source": data_source,
            "train": summarize(train_set),
            "validation_fraction": VAL_FRACTION,
            "test": summarize(test_set),
        },
        "validation": {"accuracy": round(val_acc, 6), "n": int(len(va_idx))},
        "test": test_metrics,
        "history": history,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return model, metrics_out


def write_model_dir(model: Any, metrics: dict[str, Any], out: Path, force: bool) -> Path:
    """Write everything into a temp folder beside `out`, then rename it into place."""
    from screwcam.training import plots
    from screwcam.training.model_card import model_card

    check_out_dir(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; the service's user must read the model
    try:
        model.save(tmp / "model.keras")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
        plots.training_curves(metrics["history"], tmp / "training_curves.png", metrics["preset"])
        plots.confusion_matrix(
            metrics["test"]["confusion"],
            tmp / "confusion_matrix.png",
            f"{metrics['preset']}: test accuracy {metrics['test']['accuracy'] * 100:.2f}%",
        )
        (tmp / "MODEL_CARD.md").write_text(model_card(out.name, metrics), "utf-8")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from screwcam.dataset import load_dataset

    check_out_dir(args.out, args.force)  # fail before the slow part
    train_set, test_set = load_dataset(args.data)
    log(f"loaded {args.data}: {len(train_set.y)} train, {len(test_set.y)} test images")
    model, metrics = train(
        train_set,
        test_set,
        preset=args.preset,
        epochs=args.epochs,
        seed=args.seed,
        batch_size=args.batch_size,
        data_source=str(args.data),
    )
    write_model_dir(model, metrics, args.out, args.force)
    print(
        f"{args.out}: {args.preset}, test accuracy {metrics['test']['accuracy'] * 100:.2f}% "
        f"on {metrics['test']['n']} images; next: screwcam export {args.out}"
    )
    return 0
