"""`screwcam export`: turn a trained model folder into a device bundle.

    screwcam export models/mymodel [--quantize int8|float16|none] [--min-agreement 0.99]
                                   [--no-embedding]

Adds model.tflite, labels.txt and meta.json to the folder (and updates
metrics.json and MODEL_CARD.md). By default the model gets a second output, its
embedding (the input of the final softmax layer), so the device can adapt it to a
user's screws without TensorFlow (`screwcam adapt`); the final layer's weights go
into the bundle as `base_head.npz`. int8 is full-integer quantization calibrated on
a few hundred training images. Before anything is written, the TFLite model is
run through `screwcam.classifier.Classifier` - the code the device runs - on
the test split and compared with the Keras model; below --min-agreement top-1
agreement the export fails and leaves no bundle behind.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from screwcam.classes import CLASSES
from screwcam.errors import ModelError, ScrewcamError
from screwcam.preprocess import INPUT_SIZE, PREPROCESS_VERSION

BUNDLE_FILES = ("model.tflite", "labels.txt", "meta.json")
CALIBRATION_SAMPLES = 400


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", type=Path, help="folder made by `screwcam train`")
    parser.add_argument(
        "--quantize",
        choices=("int8", "float16", "none"),
        default="int8",
        help="int8 (default): full-integer, smallest and fastest on a Pi",
    )
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=0.99,
        help="fail if Keras and TFLite agree on fewer test images (default 0.99)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset for calibration and the parity check "
        "(default: the one the model was trained on, from metrics.json)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace a bundle that is already in the folder"
    )
    parser.add_argument(
        "--embedding",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="export a second output, the embedding before the softmax, for on-device "
        "adaptation (`screwcam adapt`); default on",
    )


BASE_HEAD_FILE = "base_head.npz"


def with_embedding(model: Any) -> tuple[Any, tuple[np.ndarray, np.ndarray] | None]:
    """(model with outputs [probabilities, embedding], the final layer's (W, b) if it
    is a softmax Dense on the embedding, else None). The embedding is the input of the
    layer that makes the probabilities (named "probs" in every preset)."""
    import keras

    try:
        final = model.get_layer("probs")
    except ValueError:
        final = model.layers[-1]
    embedding = final.input
    if isinstance(embedding, (list, tuple)):
        raise ModelError(f"the final layer {final.name!r} has several inputs; use --no-embedding")
    two = keras.Model(model.inputs, [model.outputs[0], embedding], name=f"{model.name}_embed")
    head = None
    if isinstance(final, keras.layers.Dense) and len(final.get_weights()) == 2:
        w, b = final.get_weights()
        if w.shape == (int(embedding.shape[-1]), len(CLASSES)):
            head = (np.asarray(w, np.float32), np.asarray(b, np.float32))
    return two, head


def _probs_output_first(interp: Any, keras_probs: np.ndarray, calib: np.ndarray) -> list[Any]:
    """The interpreter's output details ordered [probabilities, embedding]: the converter
    does not keep Keras's output order, so the probabilities are the output that matches
    the Keras model's on a few calibration crops."""
    from screwcam.classifier import _dequantizer

    outputs = interp.get_output_details()
    candidates = [d for d in outputs if int(d["shape"][-1]) == keras_probs.shape[1]]
    if len(candidates) == 1:
        probs = candidates[0]
    else:
        inp = interp.get_input_details()[0]
        x = calib[: len(keras_probs)].astype(np.float32)[..., None]
        in_dtype = np.dtype(inp["dtype"])
        if in_dtype != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(in_dtype)
            x = np.clip(np.rint(x / scale) + zero, info.min, info.max)
        interp.resize_tensor_input(inp["index"], list(x.shape))
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], x.astype(in_dtype))
        interp.invoke()
        errors = [
            float(np.abs(_dequantizer(d)(interp.get_tensor(d["index"])) - keras_probs).mean())
            for d in candidates
        ]
        probs = candidates[int(np.argmin(errors))]
    return [probs, *[d for d in outputs if d["index"] != probs["index"]]]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _calibration(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to `n` training crops, spread over the classes."""
    rng = np.random.default_rng(seed)
    per = max(1, n // len(CLASSES))
    idx = [rng.permutation(np.flatnonzero(y == c))[:per] for c in range(len(CLASSES))]
    return x[np.concatenate(idx)]


def convert(model: Any, quantize: str, calib: np.ndarray) -> bytes:
    """Keras model -> .tflite bytes."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize == "int8":

        def representative():
            for crop in calib:
                yield [crop.astype(np.float32).reshape(1, INPUT_SIZE, INPUT_SIZE, 1)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    chatter = io.StringIO()  # the converter prints the SavedModel's signature to stdout
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            # int8 input tensors get their scale from the calibration, which the converter
            # then reports as "statistics ... not specified; continuing anyway": harmless
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            return converter.convert()
    except Exception as exc:  # the converter raises many types
        raise ModelError(
            f"TFLite conversion ({quantize}) failed: {exc}\n{chatter.getvalue()}"
        ) from exc


def bundle_meta(
    tflite_path: Path,
    name: str,
    quantize: str,
    metrics: dict[str, Any],
    keras_probs: np.ndarray | None = None,
    calib: np.ndarray | None = None,
):
    """The BundleMeta of a freshly converted model (tensors read from the file itself).
    A two-output model (probabilities, embedding) needs the Keras probabilities of a
    few calibration crops to tell its outputs apart."""
    from screwcam.bundle import BundleMeta, TensorSpec
    from screwcam.classifier import make_interpreter

    interp = make_interpreter(tflite_path, num_threads=1)
    outputs = interp.get_output_details()
    embedding = None
    if len(outputs) == 2:
        if keras_probs is None or calib is None:
            raise ValueError("a two-output model needs keras_probs and calib")
        probs_det, emb_det = _probs_output_first(interp, keras_probs, calib)
        output = TensorSpec.from_details(probs_det, named=True)
        embedding = TensorSpec.from_details(emb_det, named=True)
    else:
        output = TensorSpec.from_details(outputs[0])
    return BundleMeta(
        name=name,
        classes=tuple(CLASSES),
        input=TensorSpec.from_details(interp.get_input_details()[0]),
        output=output,
        embedding=embedding,
        quantization=quantize,
        preprocess_version=PREPROCESS_VERSION,
        size_bytes=tflite_path.stat().st_size,
        training={
            "preset": metrics.get("preset"),
            "parameters": metrics.get("parameters"),
            "seed": metrics.get("seed"),
            "epochs": metrics.get("epochs"),
            "data": metrics.get("data"),
        },
        metrics={
            "keras_test_accuracy": metrics.get("test", {}).get("accuracy"),
            "keras_test_n": metrics.get("test", {}).get("n"),
        },
    )


def measure_latency(classifier: Any, crops: np.ndarray, batch: int = 16, repeats: int = 50):
    """Median wall time of classify() for a batch and for a single crop."""
    from screwcam.timing import median_seconds

    batch = max(1, min(batch, len(crops)))
    many, one = crops[:batch], crops[:1]
    many_s = median_seconds(lambda: classifier.classify(many), repeats, warmup=5)
    one_s = median_seconds(lambda: classifier.classify(one), repeats, warmup=5)
    return {
        "per_crop_ms": round(many_s * 1000 / batch, 4),
        "single_ms": round(one_s * 1000, 4),
        "batch": batch,
        "repeats": repeats,
        "threads": 2,
        "statistic": "median",
    }


def tflite_predict(classifier: Any, x: np.ndarray, chunk: int = 256) -> np.ndarray:
    return (
        np.concatenate([classifier.classify(x[i : i + chunk]) for i in range(0, len(x), chunk)])
        if len(x)
        else np.zeros((0, len(CLASSES)), np.float32)
    )


def export(
    model_dir: Path,
    quantize: str = "int8",
    min_agreement: float = 0.99,
    data: Path | None = None,
    force: bool = False,
    train_test: tuple[Any, Any] | None = None,
    embedding: bool = True,
) -> dict[str, Any]:
    """Export `model_dir`; returns the bundle's meta. `train_test` (Samples pair) may be
    given instead of a dataset path (tests)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model_dir = Path(model_dir)
    keras_path = model_dir / "model.keras"
    if not keras_path.is_file():
        raise ModelError(f"{model_dir} has no model.keras; train one with `screwcam train`")
    existing = [n for n in BUNDLE_FILES if (model_dir / n).exists()]
    if existing and not force:
        raise ScrewcamError(
            f"{model_dir} already has {', '.join(existing)}; pass --force to replace the bundle"
        )
    try:
        metrics = json.loads((model_dir / "metrics.json").read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {model_dir / 'metrics.json'}: {exc}; retrain") from exc
    if metrics.get("preprocess_version") != PREPROCESS_VERSION:
        raise ModelError(
            f"{model_dir} was trained with preprocessing version "
            f"{metrics.get('preprocess_version')}, this screwcam uses {PREPROCESS_VERSION}; "
            "retrain it with `screwcam train`"
        )
    if train_test is None:
        from screwcam.dataset import load_dataset

        source = data or Path(metrics.get("data", {}).get("source", ""))
        if not str(source) or not Path(source).exists():
            raise ScrewcamError(
                f"the training data {str(source)!r} is not there; pass --data DATASET "
                "(needed for int8 calibration and the Keras/TFLite parity check)"
            )
        train_set, test_set = load_dataset(Path(source))
    else:
        train_set, test_set = train_test
    x_test = np.asarray(test_set.x, np.uint8)
    y_test = np.asarray(test_set.y, np.int64)
    if len(y_test) == 0:
        raise ScrewcamError("the dataset has no test images for the parity check")

    import keras

    import screwcam.training.models  # noqa: F401  (registers custom layers)
    from screwcam.bundle import write_bundle
    from screwcam.classifier import Classifier, load_bundle

    log(f"loading {keras_path}")
    model = keras.models.load_model(keras_path)
    calib = _calibration(
        np.asarray(train_set.x, np.uint8), np.asarray(train_set.y), CALIBRATION_SAMPLES
    )
    what = " with its embedding as a second output" if embedding else ""
    log(
        f"converting to TFLite ({quantize}{what}, calibrated on {len(calib)} training crops)"
        if quantize == "int8"
        else f"converting to TFLite ({quantize}{what})"
    )
    head = None
    converted = model
    if embedding:
        converted, head = with_embedding(model)
    tflite_bytes = convert(converted, quantize, calib)
    extra_files: dict[str, bytes] = {}
    if head is not None:
        buf = io.BytesIO()
        np.savez(buf, w=head[0], b=head[1])
        extra_files[BASE_HEAD_FILE] = buf.getvalue()

    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=model_dir))
    try:
        (tmp / "model.tflite").write_bytes(tflite_bytes)
        probe = calib[:: max(1, len(calib) // 32)][:32]
        probe_probs = model.predict(probe.astype(np.float32)[..., None], verbose=0)
        meta = bundle_meta(
            tmp / "model.tflite", model_dir.name, quantize, metrics, probe_probs, probe
        )
        if head is not None:
            meta = meta.replace(
                parts={
                    **meta.parts,
                    "base_head": {
                        "file": BASE_HEAD_FILE,
                        "kind": "the final softmax layer: probs = softmax(embedding @ w + b)",
                        "preprocess_version": PREPROCESS_VERSION,
                    },
                }
            )
        write_bundle(tmp, meta, {"model.tflite": tflite_bytes, **extra_files}, force=True)

        bundle = load_bundle(tmp)
        classifier = Classifier(bundle, num_threads=2)
        if head is not None:
            extra_files[BASE_HEAD_FILE] = _base_head_bytes(head, classifier, calib, train_set)
        log(f"parity check on {len(y_test)} test images (Keras vs TFLite via the device code)")
        keras_probs = model.predict(x_test.astype(np.float32)[..., None], batch_size=512, verbose=0)
        lite_probs = tflite_predict(classifier, x_test)
        k_pred, l_pred = keras_probs.argmax(1), lite_probs.argmax(1)
        agreement = float((k_pred == l_pred).mean())
        emb_parity = None
        if meta.embedding is not None:
            emb_parity = _embedding_parity(converted, classifier, x_test[:512])
        parity = {
            "agreement": round(agreement, 6),
            "n": int(len(y_test)),
            "keras_accuracy": round(float((k_pred == y_test).mean()), 6),
            "tflite_accuracy": round(float((l_pred == y_test).mean()), 6),
            "max_abs_prob_diff": round(float(np.abs(keras_probs - lite_probs).max()), 6),
            "min_agreement": min_agreement,
        }
        if emb_parity is not None:
            parity["embedding_cosine"] = emb_parity
        log(
            f"top-1 agreement {agreement * 100:.2f}% (Keras accuracy "
            f"{parity['keras_accuracy'] * 100:.2f}%, TFLite accuracy "
            f"{parity['tflite_accuracy'] * 100:.2f}%)"
        )
        if agreement < min_agreement:
            raise ModelError(
                f"the {quantize} TFLite model agrees with the Keras model on only "
                f"{agreement * 100:.2f}% of {len(y_test)} test images (needed "
                f"{min_agreement * 100:.2f}%); no bundle written. Try --quantize float16, or "
                "retrain (more data / epochs) and export again"
            )
        latency = measure_latency(classifier, x_test)
        meta = meta.replace(
            metrics={**meta.metrics, "tflite_test_accuracy": parity["tflite_accuracy"]},
            extra={**meta.extra, "parity": parity, "latency": latency},
        )
        meta_json = meta.to_json()

        from screwcam.training.model_card import model_card

        metrics["export"] = {
            k: meta_json[k] for k in ("quantization", "size_bytes", "parity", "latency")
        }
        write_bundle(
            model_dir,
            meta,
            {
                "model.tflite": tflite_bytes,
                **extra_files,
                "metrics.json": json.dumps(metrics, indent=2) + "\n",
                "MODEL_CARD.md": model_card(model_dir.name, metrics, meta_json),
            },
            force=True,
        )
        load_bundle(model_dir)  # the final files must still validate
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = meta_json
    size = meta["size_bytes"]
    log(
        f"latency: {latency['per_crop_ms']:.3f} ms per crop (median of {latency['repeats']} "
        f"runs of a {latency['batch']}-crop batch, 2 threads), {latency['single_ms']:.3f} ms "
        "for a single crop"
    )
    print(
        f"{model_dir}: model.tflite {size / 1024:.1f} KB ({quantize}), agreement "
        f"{parity['agreement'] * 100:.2f}%, TFLite test accuracy "
        f"{parity['tflite_accuracy'] * 100:.2f}%, {latency['per_crop_ms']:.3f} ms/crop (median)"
    )
    return meta


ANCHORS_PER_CLASS = 40


def _base_head_bytes(head: Any, classifier: Any, calib: np.ndarray, train_set: Any) -> bytes:
    """base_head.npz: the final layer (w, b) and, as anchors for adapting only some
    classes on the device, ANCHORS_PER_CLASS training crops per class with their
    embeddings (float16, run through the exported model itself)."""
    del calib
    rng = np.random.default_rng(1)
    x, y = np.asarray(train_set.x, np.uint8), np.asarray(train_set.y, np.int64)
    idx = np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[:ANCHORS_PER_CLASS] for c in range(len(CLASSES))]
    )
    anchors = classifier.embed(x[idx])
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        w=head[0],
        b=head[1],
        anchors=anchors.astype(np.float16),
        anchor_labels=y[idx].astype(np.int64),
        anchor_crops=x[idx],
    )
    return buf.getvalue()


def _embedding_parity(two: Any, classifier: Any, x: np.ndarray) -> float:
    """Median cosine similarity of the Keras and the TFLite embeddings of `x`."""
    keras_emb = np.asarray(two.predict(x.astype(np.float32)[..., None], verbose=0)[1])
    lite_emb = np.concatenate([classifier.embed(x[i : i + 256]) for i in range(0, len(x), 256)])
    num = (keras_emb * lite_emb).sum(1)
    den = np.linalg.norm(keras_emb, axis=1) * np.linalg.norm(lite_emb, axis=1) + 1e-12
    return round(float(np.median(num / den)), 6)


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.min_agreement <= 1.0:
        raise ScrewcamError("--min-agreement must be between 0 and 1, e.g. 0.99")
    export(
        args.model_dir,
        args.quantize,
        args.min_agreement,
        args.data,
        args.force,
        embedding=args.embedding,
    )
    return 0
