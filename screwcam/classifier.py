"""The on-device classifier: a validated model bundle run on LiteRT.

`load_bundle` reads a bundle (`screwcam.bundle.read_bundle`: the files and their
agreement with this screwcam) and checks it against the interpreter's own tensors;
any mismatch is a ModelError that says what differs and what to do.

`Classifier` builds the interpreter once and classifies a whole batch of crops
(N, 28, 28) uint8 in one `invoke()`. Input quantization and output dequantization
use the tensors' own scale and zero point, so callers always hand in the crops
made by `screwcam.preprocess` and always get probabilities back.

This module never imports TensorFlow: it runs on `ai_edge_litert` (LiteRT) and
falls back to `tflite_runtime`.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import REEXPORT, Bundle, BundleMeta, read_bundle
from .errors import ModelError
from .litert import check_cpu_description, make_interpreter
from .preprocess import INPUT_SIZE

__all__ = [
    "PHOTO_VIEWS",
    "VIEW_CHOICES",
    "Classifier",
    "LazyClassifier",
    "check_cpu_description",
    "load_bundle",
    "make_interpreter",
]

_REEXPORT = REEXPORT

#: views per crop `Classifier(views=...)` can average: the crop, its quarter turns (4),
#: and those mirrored (8). Drive types look the same turned or mirrored.
VIEW_CHOICES = (1, 2, 4, 8)
#: the views used where a few milliseconds do not matter (photos: `detect`, uploads):
#: +2-4 points on a generator the classifier never saw (docs/notes/classifier.md);
#: the live stream stays at 1 (its 300 frames/s budget)
PHOTO_VIEWS = 8


def _check_views(views: int) -> None:
    if views not in VIEW_CHOICES:
        raise ValueError(f"views must be one of {VIEW_CHOICES}, got {views!r}")


def _output_details(interpreter: Any, meta: BundleMeta, where: Path) -> tuple[Any, Any | None]:
    """(probabilities, embedding or None): the interpreter's outputs as meta.json names
    them. A model has one output, or two when the bundle records an embedding."""
    outputs = interpreter.get_output_details()
    want = 1 if meta.embedding is None else 2
    if len(outputs) != want:
        what = "probabilities and embedding" if want == 2 else "probabilities"
        raise ModelError(
            f"{where}: model has {len(outputs)} outputs, meta.json describes {want} "
            f"({what}); the files come from different exports, {_REEXPORT}"
        )
    if want == 1:
        return outputs[0], None
    by_name = {str(d["name"]): d for d in outputs}
    probs = by_name.get(str(meta.output.name))
    emb = by_name.get(str(meta.embedding.name))  # type: ignore[union-attr]
    if probs is None or emb is None or probs is emb:
        raise ModelError(
            f"{where}: meta.json names outputs {meta.output.name!r} and "
            f"{meta.embedding.name!r}, model.tflite has {sorted(by_name)}; "  # type: ignore[union-attr]
            f"the files come from different exports, {_REEXPORT}"
        )
    return probs, emb


def _check_interpreter(interpreter: Any, meta: BundleMeta, where: Path) -> None:
    """The .tflite file's real tensors must be what meta.json says."""
    inputs = interpreter.get_input_details()
    if len(inputs) != 1:
        raise ModelError(
            f"{where}: model has {len(inputs)} inputs, screwcam needs exactly one; {_REEXPORT}"
        )
    probs, emb = _output_details(interpreter, meta, where)
    checks = [("input", inputs[0], meta.input), ("output", probs, meta.output)]
    if emb is not None and meta.embedding is not None:
        checks.append(("embedding", emb, meta.embedding))
    for key, det, want in checks:
        dtype = np.dtype(det["dtype"]).name
        shape = [int(v) for v in det["shape"]]
        if dtype != want.dtype:
            raise ModelError(
                f"{where}: meta.json says {key} dtype {want.dtype}, model.tflite has "
                f"{dtype}; the files come from different exports, {_REEXPORT}"
            )
        if shape[1:] != list(want.shape[1:]):
            raise ModelError(
                f"{where}: meta.json says {key} shape {list(want.shape)}, model.tflite has "
                f"{shape}; the files come from different exports, {_REEXPORT}"
            )
        scale, zero = det["quantization"]
        if want.dtype != "float32":
            want_scale = -1.0 if want.scale is None else want.scale
            want_zero = 10**9 if want.zero_point is None else want.zero_point
            if not math.isclose(float(scale), want_scale, rel_tol=1e-6) or int(zero) != want_zero:
                raise ModelError(
                    f"{where}: meta.json {key} quantization (scale {want.scale}, "
                    f"zero point {want.zero_point}) differs from model.tflite's "
                    f"({scale}, {zero}); {_REEXPORT}"
                )


def _as_crops(crops: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 crops from (N, 28, 28), (N, 28, 28, 1) or one (28, 28) crop;
    ValueError for anything else."""
    if crops.ndim == 2:
        crops = crops[None]
    if crops.ndim == 4 and crops.shape[-1] == 1:
        crops = crops[..., 0]
    if crops.ndim != 3 or crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"expected (N, {INPUT_SIZE}, {INPUT_SIZE}) crops, got {crops.shape}")
    if crops.dtype != np.uint8:
        raise ValueError(f"expected uint8 crops from screwcam.preprocess, got {crops.dtype}")
    return crops


def _dequantizer(det: Any):
    dtype = np.dtype(det["dtype"])
    if dtype == np.float32:
        return lambda raw: raw.astype(np.float32, copy=True)
    scale, zero = det["quantization"]
    scale, zero = float(scale), int(zero)
    return lambda raw: (raw.astype(np.float32) - zero) * scale


def _load_adapter(bundle: Bundle) -> Any:
    """The bundle's adapter part (fitted by `screwcam adapt`), or None."""
    if "adapter" not in bundle.meta.parts:
        return None
    if bundle.meta.embedding is None:
        raise ModelError(
            f"{bundle.path}: the bundle has an adapter but its model has no embedding output; "
            "adapt a bundle exported with an embedding (`screwcam export --embedding`)"
        )
    from .adapter import Adapter

    return Adapter.load(bundle.part("adapter"), bundle.labels, bundle.meta.embedding.shape[1])


def load_bundle(path: str | Path, num_threads: int = 1) -> Bundle:
    """Read and validate the bundle in folder `path` (or the folder of `path` if it
    names the model.tflite), including the interpreter's tensors. Raises ModelError
    naming what is wrong."""
    bundle = read_bundle(path)
    interpreter = make_interpreter(bundle.tflite_path, num_threads=num_threads)
    _check_interpreter(interpreter, bundle.meta, bundle.path)
    return bundle


class Classifier:
    """Classifies batches of 28x28 uint8 crops with one interpreter, built once.

    `classify(crops)` takes (N, 28, 28) uint8 (from `screwcam.preprocess`) and returns
    (N, 5) float32 class probabilities in the bundle's label order, with one `invoke()`.
    A bundle exported with an embedding output also offers `embed(crops)` (N, D); a
    bundle with an adapter part (`screwcam adapt`) is classified through its adapter
    (`screwcam.adapt`), `classify_base` gives the base model's own probabilities.
    Not thread-safe: use one Classifier per thread.
    """

    def __init__(
        self, bundle_or_path: Bundle | str | Path, num_threads: int = 2, views: int = 1
    ) -> None:
        _check_views(views)
        #: views of each crop whose probabilities `classify` averages (test-time
        #: augmentation: 1 = the crop as it is; 4 = its quarter turns; 8 = and mirrored).
        #: A bundle with an adapter uses the adapter's own views instead.
        self.views = views
        bundle = (
            bundle_or_path
            if isinstance(bundle_or_path, Bundle)
            else load_bundle(bundle_or_path, num_threads=1)
        )
        self.bundle = bundle
        self._interpreter = make_interpreter(bundle.tflite_path, num_threads=num_threads)
        _check_interpreter(self._interpreter, bundle.meta, bundle.path)
        inp = self._interpreter.get_input_details()[0]
        out, emb = _output_details(self._interpreter, bundle.meta, bundle.path)
        self._in_index = int(inp["index"])
        self._out_index = int(out["index"])
        self._emb_index = None if emb is None else int(emb["index"])
        self._emb_quant = None if emb is None else _dequantizer(emb)
        self.adapter = _load_adapter(bundle)
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
    def labels(self) -> tuple[str, ...]:
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

    @property
    def has_embedding(self) -> bool:
        return self._emb_index is not None

    @property
    def embedding_size(self) -> int:
        emb = self.bundle.meta.embedding
        return 0 if emb is None else int(emb.shape[1])

    def _invoke(self, crops: np.ndarray, want_embedding: bool) -> tuple[np.ndarray, Any]:
        """One invoke(): (base probabilities (N, C), embedding (N, D) or None)."""
        crops = _as_crops(crops)
        if want_embedding and self._emb_index is None:
            raise ModelError(
                f"{self.bundle.path}: this bundle was exported without an embedding output; "
                "re-export it with this screwcam version (`screwcam export MODEL_DIR --force`)"
            )
        n = crops.shape[0]
        if n == 0:
            empty = np.zeros((0, self.embedding_size), np.float32) if want_embedding else None
            return np.zeros((0, len(self.labels)), dtype=np.float32), empty
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
            probs = raw.astype(np.float32, copy=True)
        else:
            probs = (raw.astype(np.float32) - self._out_zero) * self._out_scale
        emb = None
        if want_embedding and self._emb_quant is not None:
            emb = self._emb_quant(interp.get_tensor(self._emb_index))
        return probs, emb

    def _invoke_views(
        self, crops: np.ndarray, views: int, want_embedding: bool
    ) -> tuple[np.ndarray, Any]:
        """One invoke() on `views` views of every crop (`adapter.view_stack`): base
        probabilities (views, N, C) and embedding (views, N, D) or None."""
        crops = _as_crops(crops)
        n = len(crops)
        if views > 1 and n:
            from .adapter import view_stack

            crops = view_stack(crops, views)
        else:
            views = 1
        probs, emb = self._invoke(crops, want_embedding)
        probs = probs.reshape(views, n, probs.shape[-1])
        return probs, None if emb is None else emb.reshape(views, n, emb.shape[-1])

    def classify(self, crops: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 crops -> (N, C) float32 probabilities, one invoke(),
        averaged over `views` views of each crop. Through the bundle's adapter if it has
        one (over the adapter's own views)."""
        adapter = self.adapter
        if adapter is None:
            if self.views == 1:  # the live stream's path: no stacking, no copies
                return self._invoke(crops, False)[0]
            return self._invoke_views(crops, self.views, False)[0].mean(axis=0)
        crops = _as_crops(crops)
        probs, emb = self._invoke_views(crops, adapter.views, True)
        return adapter.apply(emb.mean(axis=0), probs[0], crops if adapter.needs_crops else None)

    def classify_base(self, crops: np.ndarray) -> np.ndarray:
        """The base model's probabilities, ignoring any adapter."""
        return self._invoke(crops, False)[0]

    def classify_and_embed(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(base probabilities (N, C), embedding (N, D) float32) from one invoke()."""
        probs, emb = self._invoke(crops, True)
        assert emb is not None
        return probs, emb

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 crops -> (N, D) float32 embeddings (the layer before the
        softmax), one invoke(). ModelError if the bundle has no embedding output."""
        return self.classify_and_embed(crops)[1]

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels (N,) int64, confidences (N,) float32) for the crops."""
        probs = self.classify(crops)
        top = probs.argmax(axis=1)
        return top.astype(np.int64), probs[np.arange(len(top)), top]


class LazyClassifier:
    """A `Classifier` of a checked bundle, built on its first `classify` call: a
    classifier that may never be needed (the service's one for uploads) takes no
    interpreter memory until it is. Building is thread-safe; classifying is not (as
    with `Classifier`)."""

    def __init__(self, bundle: Bundle, num_threads: int = 1, views: int = 1) -> None:
        _check_views(views)
        self.bundle = bundle
        self.num_threads = num_threads
        self.views = views
        self._lock = threading.Lock()
        self._classifier: Classifier | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.labels

    @property
    def built(self) -> bool:
        return self._classifier is not None

    def get(self) -> Classifier:
        """The classifier, built now if it was not yet."""
        with self._lock:
            if self._classifier is None:
                self._classifier = Classifier(
                    self.bundle, num_threads=self.num_threads, views=self.views
                )
            return self._classifier

    def classify(self, crops: np.ndarray) -> np.ndarray:
        return self.get().classify(crops)
