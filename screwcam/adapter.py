"""The runtime half of adapting: an `Adapter` (a small head fitted on the device by
`screwcam adapt`, stored as a bundle part) turns the base model's embedding (and, for the
"polar" method, rotation-invariant features of the crop itself) into class probabilities.
The classifier applies it; fitting lives in `screwcam.adapt`. NumPy and OpenCV only."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ModelError
from .preprocess import INPUT_SIZE

ADAPTER_FILE = "adapter.npz"
EXAMPLES_X = "X_examples.npy"
EXAMPLES_Y = "y_examples.npy"
BASE_HEAD_FILE = "base_head.npz"
METHODS = ("polar", "finetune", "logreg", "prototype")
DEFAULT_METHOD = "polar"
#: the embedding an adapter reads is the mean over this many views of the crop (turned
#: by 0/90/180/270 degrees; 8 adds the mirror images): +1-2 points on unseen styles
#: for 4x the crops through the interpreter (measured, docs/notes/teach.md)
VIEWS = 4
#: a taught class needs at least this many examples (for fitting and cross-validation)
MIN_PER_CLASS = 3
MAX_FOLDS = 5
PROTOTYPE_TEMPERATURE = 0.05
#: the export's anchors of a taught class get this share of the class's weight in the
#: fit: 0.1 kept the base model's own style at 98-100 % (0: 93-98 %) for about the same
#: accuracy on the user's style (measured with 10 examples per class, docs/notes/teach.md)
ANCHOR_SHARE = 0.1
#: feature kinds an Adapter reads: the embedding as is, L2-normalized, or joined with
#: the polar features of the crop
FEATURES = ("embedding", "unit", "embedding+polar")
POLAR_RADII = 12
POLAR_ANGLES = 64
POLAR_HARMONICS = 12
GRADIENT_RINGS = (4.5, 9.0, 14.0)  # radii bounding the rings of the edge histograms
GRADIENT_BINS = 8
POLAR_DIM = POLAR_RADII * POLAR_HARMONICS + POLAR_RADII + len(GRADIENT_RINGS) * GRADIENT_BINS


def _grids() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:INPUT_SIZE, 0:INPUT_SIZE].astype(np.float32)
    c = (INPUT_SIZE - 1) / 2.0
    ring = np.digitize(np.hypot(xx - c, yy - c), GRADIENT_RINGS)  # len(rings) = outside
    return np.arctan2(yy - c, xx - c), ring


_RADIAL, _RING = _grids()


def _edge_histograms(crops: np.ndarray) -> np.ndarray:
    """(N, 28, 28) -> (N, rings * bins): per ring around the centre, a histogram of the
    edge directions relative to the radial direction (0..180 degrees), weighted by edge
    strength and normalized to sum 1 per crop. Rotation-invariant: slots and lobes
    show as edges across or along the radius."""
    n = len(crops)
    radial, ring = _RADIAL, _RING
    g = np.pad(np.asarray(crops, np.float32), ((0, 0), (1, 1), (1, 1)), mode="reflect")
    smooth_y = g[:, :-2] + 2.0 * g[:, 1:-1] + g[:, 2:]  # 3x3 Sobel, all crops at once
    smooth_x = g[:, :, :-2] + 2.0 * g[:, :, 1:-1] + g[:, :, 2:]
    gx = smooth_y[:, :, 2:] - smooth_y[:, :, :-2]
    gy = smooth_x[:, 2:] - smooth_x[:, :-2]
    mag = np.hypot(gx, gy)
    rel = np.mod(np.arctan2(gy, gx) - radial, np.pi)
    bins = np.minimum((rel / np.pi * GRADIENT_BINS).astype(np.int64), GRADIENT_BINS - 1)
    inside = np.broadcast_to(ring < len(GRADIENT_RINGS), mag.shape)
    per = len(GRADIENT_RINGS) * GRADIENT_BINS
    index = np.arange(n)[:, None, None] * per + ring * GRADIENT_BINS + bins
    hist = np.bincount(index[inside], weights=mag[inside], minlength=n * per).reshape(n, per)
    return (hist / (hist.sum(axis=1, keepdims=True) + 1e-6)).astype(np.float32)


def polar_features(crops: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 crops -> (N, POLAR_DIM) float32 rotation-invariant features:
    per radius, log(1 + 10 |harmonic k| / mean) for the angular harmonics k = 1..12 of
    the crop sampled on a polar grid around its centre, and the mean brightness per
    radius (0..1); per ring, the histogram of edge directions relative to the radius."""
    centre = ((INPUT_SIZE - 1) / 2.0, (INPUT_SIZE - 1) / 2.0)
    size = (POLAR_RADII, POLAR_ANGLES)  # rows = angles, columns = radii
    grids = np.stack(
        [
            cv2.warpPolar(c, size, centre, INPUT_SIZE / 2.0, cv2.WARP_POLAR_LINEAR)
            for c in np.asarray(crops, np.uint8)
        ]
    ).astype(np.float32)  # (N, angles, radii)
    if not len(grids):
        return np.zeros((0, POLAR_DIM), np.float32)
    spectrum = np.abs(np.fft.rfft(grids, axis=1))  # (N, angles // 2 + 1, radii)
    dc = spectrum[:, :1] + 1e-3
    harmonics = np.log1p(10.0 * spectrum[:, 1 : POLAR_HARMONICS + 1] / dc)
    profile = dc[:, 0] / (POLAR_ANGLES * 255.0)
    edges = _edge_histograms(crops)
    parts = [harmonics.reshape(len(grids), -1), profile, edges]
    return np.concatenate(parts, axis=1).astype(np.float32)


@dataclass(frozen=True)
class Adapter:
    """A linear head: logits = ((features - mean) / std) @ w + b over `classes` (label
    ids). `features` says what it reads: "embedding", "unit" (the embedding normalized
    to unit length) or "embedding+polar" (the embedding joined with
    `polar_features` of the crop). When `classes` is a strict subset of the labels the
    head is combined with the base probabilities (`apply`)."""

    method: str
    features: str
    w: np.ndarray  # (F, K) float32
    b: np.ndarray  # (K,) float32
    mean: np.ndarray  # (F,) float32
    std: np.ndarray  # (F,) float32
    classes: tuple[int, ...]  # the label ids the K columns score
    num_labels: int
    views: int = 1  # the embedding is the mean over this many views (`view_stack`)

    @property
    def needs_crops(self) -> bool:
        return self.features == "embedding+polar"

    def feature_matrix(self, emb: np.ndarray, crops: np.ndarray | None) -> np.ndarray:
        return make_features(self.features, emb, crops)

    def logits(self, emb: np.ndarray, crops: np.ndarray | None = None) -> np.ndarray:
        f = self.feature_matrix(emb, crops)
        return ((f - self.mean) / self.std) @ self.w + self.b

    def apply(
        self, emb: np.ndarray, base_probs: np.ndarray, crops: np.ndarray | None = None
    ) -> np.ndarray:
        """(N, D) embeddings, (N, C) base probabilities (and the (N, 28, 28) crops for
        polar features) -> (N, C) probabilities."""
        head = softmax(self.logits(emb, crops))
        if self.classes == tuple(range(self.num_labels)):
            return head.astype(np.float32, copy=False)
        out = np.asarray(base_probs, np.float32).copy()
        idx = np.asarray(self.classes)
        mass = out[:, idx].sum(axis=1, keepdims=True)
        out[:, idx] = mass * head
        return out

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            method=np.asarray(self.method),
            features=np.asarray(self.features),
            w=self.w.astype(np.float32),
            b=self.b.astype(np.float32),
            mean=self.mean.astype(np.float32),
            std=self.std.astype(np.float32),
            classes=np.asarray(self.classes, np.int64),
            num_labels=np.asarray(self.num_labels, np.int64),
            views=np.asarray(self.views, np.int64),
        )
        return buf.getvalue()

    @classmethod
    def load(cls, path: Path | None, labels: Sequence[str], dim: int) -> Adapter:
        """Read an adapter.npz and check it fits a model of `labels` and embedding `dim`."""
        if path is None:
            raise ModelError("the bundle names no adapter file")
        again = "adapt the base model again (`screwcam adapt`)"
        try:
            with np.load(path, allow_pickle=False) as data:
                method = str(data["method"])
                features = str(data["features"])
                w = np.asarray(data["w"], np.float32)
                b = np.asarray(data["b"], np.float32)
                mean = np.asarray(data["mean"], np.float32)
                std = np.asarray(data["std"], np.float32)
                classes = tuple(int(v) for v in data["classes"])
                num_labels = int(data["num_labels"])
                views = int(data["views"])
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot read the adapter {path}: {exc}; {again}") from exc
        if features not in FEATURES:
            raise ModelError(f"the adapter {path} reads unknown features {features!r}; {again}")
        f = dim + (POLAR_DIM if features == "embedding+polar" else 0)
        k = len(classes)
        if (
            num_labels != len(labels)
            or w.shape != (f, k)
            or b.shape != (k,)
            or mean.shape != (f,)
            or std.shape != (f,)
            or not k
            or len(set(classes)) != k
            or not all(0 <= c < num_labels for c in classes)
            or not all(np.isfinite(a).all() for a in (w, b, mean, std))
            or (std <= 0).any()
            or views not in (1, 2, 4, 8)
        ):
            raise ModelError(
                f"the adapter {path} (w {w.shape}, classes {list(classes)}, {num_labels} "
                f"labels) does not fit this model ({len(labels)} labels, embedding size "
                f"{dim}); {again}"
            )
        return cls(method, features, w, b, mean, std, classes, num_labels, views)


def view_stack(crops: np.ndarray, views: int) -> np.ndarray:
    """(N, 28, 28) -> (views * N, 28, 28): the crops turned by 0, 90, 180, 270 degrees
    (then mirrored, for 8), view-major."""
    turns = [np.rot90(crops, k, axes=(1, 2)) for k in range(4)]
    turns += [t[:, :, ::-1] for t in turns]
    return np.ascontiguousarray(np.concatenate(turns[:views]))


def embed_views(classifier: Any, crops: np.ndarray, views: int) -> tuple[np.ndarray, np.ndarray]:
    """(base probabilities of the crops as they are (N, C), embedding averaged over
    `views` views (N, D)), one invoke() per 256 crops' views."""
    probs, embs = [], []
    step = max(1, 256 // views)
    for i in range(0, len(crops), step):
        part = crops[i : i + step]
        p, e = classifier.classify_and_embed(view_stack(part, views))
        probs.append(p[: len(part)])
        embs.append(e.reshape(views, len(part), -1).mean(axis=0))
    if not probs:
        return classifier.classify_and_embed(crops)
    return np.concatenate(probs), np.concatenate(embs)


def make_features(kind: str, emb: np.ndarray, crops: np.ndarray | None) -> np.ndarray:
    emb = np.asarray(emb, np.float32)
    if kind == "embedding":
        return emb
    if kind == "unit":
        return unit_rows(emb)
    if crops is None:
        raise ValueError("polar features need the crops")
    return np.concatenate([emb, polar_features(crops)], axis=1)


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
