"""The on-device classifier: a validated model bundle run on LiteRT.

A bundle is a folder with `model.tflite`, `labels.txt` and `meta.json` (written by
`screwcam export`). `load_bundle` checks that the three files parse and agree with
this version of screwcam (classes in order, input shape and dtype, preprocessing
version) and with the interpreter's own tensors; any mismatch is a ModelError that
says what differs and what to do.

`Classifier` builds the interpreter once and classifies a whole batch of crops
(N, 28, 28) uint8 in one `invoke()`. Input quantization and output dequantization
use the tensors' own scale and zero point, so callers always hand in the crops
made by `capture.preprocess` and always get probabilities back.

This module never imports TensorFlow: it runs on `ai_edge_litert` (LiteRT) and
falls back to `tflite_runtime`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from capture.classes import CLASSES, NUM_CLASSES
from capture.errors import ModelError
from capture.preprocess import INPUT_SIZE, PREPROCESS_VERSION

BUNDLE_FORMAT = "screwcam-bundle"
BUNDLE_FORMAT_VERSION = 1
MODEL_FILE = "model.tflite"
LABELS_FILE = "labels.txt"
META_FILE = "meta.json"
_DTYPES = {"int8": np.int8, "uint8": np.uint8, "float32": np.float32}
_REEXPORT = "re-export it with this screwcam version (`screwcam export MODEL_DIR`)"


def _interpreter_class() -> Any:
    """LiteRT's Interpreter, or tflite-runtime's as a fallback."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError(
                "no TFLite interpreter installed; install LiteRT with "
                "`pip install ai-edge-litert` (or tflite-runtime)"
            ) from exc
    return Interpreter


def make_interpreter(model_path: Path, num_threads: int = 2) -> Any:
    """A LiteRT interpreter for `model_path`, tensors not yet allocated."""
    interpreter_cls = _interpreter_class()
    try:
        return interpreter_cls(model_path=str(model_path), num_threads=num_threads)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{model_path} is not a valid TFLite model ({exc}); {_REEXPORT}"
        ) from exc


@dataclass(frozen=True)
class Bundle:
    """A validated model bundle."""

    path: Path
    meta: dict[str, Any]
    labels: list[str]
    tflite_path: Path
    size_bytes: int = field(default=0)

    @property
    def input_dtype(self) -> str:
        return str(self.meta["input"]["dtype"])

    @property
    def quantization(self) -> str:
        return str(self.meta.get("quantization", "unknown"))


def _shape_ok(shape: Any) -> bool:
    """[N?, 28, 28, 1] or [N?, 28, 28]; N may be -1/None/any positive int."""
    if not isinstance(shape, list) or len(shape) not in (3, 4):
        return False
    tail = [int(v) for v in shape[1:]]
    return tail in ([INPUT_SIZE, INPUT_SIZE, 1], [INPUT_SIZE, INPUT_SIZE])


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}; {_REEXPORT}") from exc
    if not isinstance(meta, dict):
        raise ModelError(f"{path} is not a JSON object; {_REEXPORT}")
    return meta


def _check_meta(meta: dict[str, Any], where: Path) -> None:
    fmt = meta.get("format")
    if fmt != BUNDLE_FORMAT or meta.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise ModelError(
            f"{where}: bundle format {fmt!r} version {meta.get('format_version')!r}, "
            f"this screwcam reads {BUNDLE_FORMAT!r} version {BUNDLE_FORMAT_VERSION}; {_REEXPORT}"
        )
    version = meta.get("preprocess_version")
    if version != PREPROCESS_VERSION:
        raise ModelError(
            f"{where}: model was trained with preprocessing version {version!r}, this "
            f"screwcam uses version {PREPROCESS_VERSION}; the model would see differently "
            "prepared crops. Retrain (`screwcam train`) and re-export the model with this "
            "screwcam version"
        )
    classes = meta.get("classes")
    if classes != list(CLASSES):
        raise ModelError(
            f"{where}: meta.json classes {classes!r} differ from screwcam's "
            f"{list(CLASSES)!r}; retrain and re-export the model with this screwcam version"
        )
    for key in ("input", "output"):
        if not isinstance(meta.get(key), dict):
            raise ModelError(f"{where}: meta.json has no {key!r} section; {_REEXPORT}")
    inp, out = meta["input"], meta["output"]
    if not _shape_ok(inp.get("shape")):
        raise ModelError(
            f"{where}: model input shape {inp.get('shape')!r} is not "
            f"[N, {INPUT_SIZE}, {INPUT_SIZE}, 1]; screwcam feeds {INPUT_SIZE}x{INPUT_SIZE} "
            "gray crops. Retrain the model for this input and re-export it"
        )
    for key, section in (("input", inp), ("output", out)):
        if section.get("dtype") not in _DTYPES:
            raise ModelError(
                f"{where}: model {key} dtype {section.get('dtype')!r} is not one of "
                f"{sorted(_DTYPES)}; {_REEXPORT}"
            )
    out_shape = out.get("shape")
    if not isinstance(out_shape, list) or len(out_shape) != 2 or out_shape[1] != NUM_CLASSES:
        raise ModelError(
            f"{where}: model output shape {out_shape!r} is not [N, {NUM_CLASSES}]; "
            f"retrain for the {NUM_CLASSES} classes and re-export"
        )


def _check_interpreter(interpreter: Any, meta: dict[str, Any], where: Path) -> None:
    """The .tflite file's real tensors must be what meta.json says."""
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(
            f"{where}: model has {len(inputs)} inputs and {len(outputs)} outputs, "
            f"screwcam needs exactly one of each; {_REEXPORT}"
        )
    for key, det in (("input", inputs[0]), ("output", outputs[0])):
        want = meta[key]
        dtype = np.dtype(det["dtype"]).name
        shape = [int(v) for v in det["shape"]]
        if dtype != want["dtype"]:
            raise ModelError(
                f"{where}: meta.json says {key} dtype {want['dtype']}, model.tflite has "
                f"{dtype}; the files come from different exports, {_REEXPORT}"
            )
        if shape[1:] != [int(v) for v in want["shape"][1:]]:
            raise ModelError(
                f"{where}: meta.json says {key} shape {want['shape']}, model.tflite has "
                f"{shape}; the files come from different exports, {_REEXPORT}"
            )
        scale, zero = det["quantization"]
        if want["dtype"] != "float32":
            if not math.isclose(float(scale), float(want.get("scale", -1)), rel_tol=1e-6) or (
                int(zero) != int(want.get("zero_point", 10**9))
            ):
                raise ModelError(
                    f"{where}: meta.json {key} quantization (scale {want.get('scale')}, "
                    f"zero point {want.get('zero_point')}) differs from model.tflite's "
                    f"({scale}, {zero}); {_REEXPORT}"
                )


def load_bundle(path: str | Path, num_threads: int = 1) -> Bundle:
    """Read and validate the bundle in folder `path` (or the folder of `path` if it
    names the model.tflite). Raises ModelError naming what is wrong."""
    path = Path(path)
    if path.is_file() and path.name == MODEL_FILE:
        path = path.parent
    if not path.is_dir():
        raise ModelError(
            f"model bundle {path} does not exist; pass a folder made by `screwcam export` "
            "(e.g. models/default)"
        )
    missing = [n for n in (MODEL_FILE, LABELS_FILE, META_FILE) if not (path / n).is_file()]
    if missing:
        hint = (
            f"run `screwcam export {path}` first"
            if (path / "model.keras").is_file()
            else "a bundle needs model.tflite, labels.txt and meta.json (`screwcam export`)"
        )
        raise ModelError(f"model bundle {path} lacks {', '.join(missing)}; {hint}")
    meta = _read_meta(path / META_FILE)
    _check_meta(meta, path)
    try:
        labels = [ln.strip() for ln in (path / LABELS_FILE).read_text("utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {path / LABELS_FILE}: {exc}; {_REEXPORT}") from exc
    labels = [ln for ln in labels if ln]
    if labels != list(CLASSES):
        raise ModelError(
            f"{path / LABELS_FILE} lists {labels}, screwcam's classes are {list(CLASSES)} "
            "(in this order); retrain and re-export the model with this screwcam version"
        )
    tflite_path = path / MODEL_FILE
    interpreter = make_interpreter(tflite_path, num_threads=num_threads)
    _check_interpreter(interpreter, meta, path)
    return Bundle(
        path=path,
        meta=meta,
        labels=labels,
        tflite_path=tflite_path,
        size_bytes=tflite_path.stat().st_size,
    )


class Classifier:
    """Classifies batches of 28x28 uint8 crops with one interpreter, built once.

    `classify(crops)` takes (N, 28, 28) uint8 (from `capture.preprocess`) and returns
    (N, 5) float32 class probabilities in CLASSES order, with one `invoke()`.
    Not thread-safe: use one Classifier per thread.
    """

    def __init__(self, bundle_or_path: Bundle | str | Path, num_threads: int = 2) -> None:
        bundle = (
            bundle_or_path
            if isinstance(bundle_or_path, Bundle)
            else load_bundle(bundle_or_path, num_threads=1)
        )
        self.bundle = bundle
        self._interpreter = make_interpreter(bundle.tflite_path, num_threads=num_threads)
        _check_interpreter(self._interpreter, bundle.meta, bundle.path)
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        self._in_index = int(inp["index"])
        self._out_index = int(out["index"])
        self._in_dtype = np.dtype(inp["dtype"])
        self._out_dtype = np.dtype(out["dtype"])
        self._in_rank = len(inp["shape"])
        in_scale, in_zero = inp["quantization"]
        out_scale, out_zero = out["quantization"]
        self._in_scale, self._in_zero = float(in_scale), int(in_zero)
        self._out_scale, self._out_zero = float(out_scale), int(out_zero)
        # uint8 crops feed an int8 tensor of scale 1 / zero point -128 by flipping the
        # top bit (x - 128 without arithmetic); a uint8 tensor of scale 1 / zero 0 as is.
        self._in_mode = self._input_mode()
        self._batch = int(inp["shape"][0])
        self._interpreter.allocate_tensors()

    def _input_mode(self) -> str:
        if self._in_dtype == np.float32:
            return "float"
        exact = math.isclose(self._in_scale, 1.0, rel_tol=1e-6)
        if self._in_dtype == np.int8 and exact and self._in_zero == -128:
            return "flip"
        if self._in_dtype == np.uint8 and exact and self._in_zero == 0:
            return "same"
        return "quantize"

    @property
    def labels(self) -> list[str]:
        return self.bundle.labels

    def _to_input(self, crops: np.ndarray) -> np.ndarray:
        mode = self._in_mode
        if mode == "same":
            return crops
        if mode == "flip":
            return (crops ^ np.uint8(0x80)).view(np.int8)
        if mode == "float":
            return crops.astype(np.float32)
        info = np.iinfo(self._in_dtype)
        q = np.rint(crops.astype(np.float32) / self._in_scale) + self._in_zero
        return np.clip(q, info.min, info.max).astype(self._in_dtype)

    def classify(self, crops: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 crops -> (N, 5) float32 probabilities, one invoke()."""
        if crops.ndim == 2:
            crops = crops[None]
        if crops.ndim == 4 and crops.shape[-1] == 1:
            crops = crops[..., 0]
        if crops.ndim != 3 or crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"expected (N, {INPUT_SIZE}, {INPUT_SIZE}) crops, got {crops.shape}")
        if crops.dtype != np.uint8:
            raise ValueError(f"expected uint8 crops from capture.preprocess, got {crops.dtype}")
        n = crops.shape[0]
        if n == 0:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        interp = self._interpreter
        if n != self._batch:
            shape = [n, INPUT_SIZE, INPUT_SIZE] + ([1] if self._in_rank == 4 else [])
            interp.resize_tensor_input(self._in_index, shape)
            interp.allocate_tensors()
            self._batch = n
        x = np.ascontiguousarray(self._to_input(crops))
        if self._in_rank == 4:
            x = x.reshape(n, INPUT_SIZE, INPUT_SIZE, 1)
        interp.set_tensor(self._in_index, x)
        interp.invoke()
        raw = interp.get_tensor(self._out_index)
        if self._out_dtype == np.float32:
            return raw.astype(np.float32, copy=False)
        return (raw.astype(np.float32) - self._out_zero) * self._out_scale

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels (N,) int64, confidences (N,) float32) for the crops."""
        probs = self.classify(crops)
        top = probs.argmax(axis=1)
        return top.astype(np.int64), probs[np.arange(len(top)), top]
