"""Adapting a model to the user's screws on the device, in NumPy (no TensorFlow).

A bundle exported with an embedding output (`screwcam export`, default) gives, for
every crop, its base probabilities and its embedding (the layer before the softmax)
from one `invoke()`. From a few labelled examples of the user's own screws we fit a
small head on features of each crop:

- "polar" (default): a regularized softmax regression (gradient descent) on the
  standardized embedding joined with rotation-invariant features of the crop itself:
  the magnitudes of the angular Fourier harmonics of the crop in polar coordinates
  around its centre, per radius (a Torx shows 6-fold, a Phillips 4-fold symmetry at
  any rotation), the radial brightness profile, and per ring the histogram of edge
  directions relative to the radius.
- "finetune": the base model's own final layer (`base_head.npz`, softmax of
  embedding @ w + b) trained further on the examples, with an L2 pull back to it.
- "logreg": a regularized softmax regression on the L2-normalized embeddings.
- "prototype": nearest class mean on the L2-normalized embeddings (cosine / t).

The untaught classes stay in the fit through anchors: training crops of the base
model per class, stored by the export in `base_head.npz`, so teaching a single class
can move heads into it without losing the others; the taught classes' anchors join
with a small weight (ANCHOR_SHARE), so the base model's own style is not forgotten. Without
anchors (an older bundle) the head scores only the taught classes and is combined
with the base classifier: untaught classes keep their base probability and the taught
ones share the rest of the mass by the head's softmax.

Which method is the default was measured (`python -m screwcam.bench.adapt_bench`,
docs/notes/teach.md). The fitted head is an `Adapter` (feature kind, standardization,
w, b, the label ids it scores), stored in the bundle as `adapter.npz`;
`screwcam.classifier` applies it whenever a bundle has one. `adapt_bundle` writes the
adapted bundle (model, base head, adapter, examples, metrics) with
`screwcam.bundle.write_bundle`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import DatasetError, ModelError
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
        head = _softmax(self.logits(emb, crops))
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
        return _unit(emb)
    if crops is None:
        raise ValueError("polar features need the crops")
    return np.concatenate([emb, polar_features(crops)], axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------


def _gradient_descent(
    x: np.ndarray,
    y: np.ndarray,
    w0: np.ndarray,
    b0: np.ndarray,
    *,
    anchor_w: np.ndarray,
    anchor_b: np.ndarray,
    l2: float,
    lr: float,
    steps: int,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression by gradient descent with Nesterov momentum, class-balanced
    cross-entropy + l2 * |w - anchor_w|^2 / 2 (+ the same for b). Within a class the
    samples count by `sample_weight` (default: equally)."""
    k = w0.shape[1]
    onehot = np.eye(k, dtype=np.float32)[y]
    s = np.ones(len(y), np.float64) if sample_weight is None else np.asarray(sample_weight, float)
    per_class = np.bincount(y, weights=s, minlength=k)
    weights = s / np.maximum(per_class, 1e-12)[y] / max(1, int((per_class > 0).sum()))
    weights = weights[:, None].astype(np.float32)
    x = np.asarray(x, np.float32)
    w, b = w0.astype(np.float32).copy(), b0.astype(np.float32).copy()
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    momentum = 0.9
    for _ in range(steps):
        lw, lb = w + momentum * vw, b + momentum * vb  # look ahead
        p = _softmax(x @ lw + lb)
        g = (p - onehot) * weights
        gw = x.T @ g + l2 * (lw - anchor_w)
        gb = g.sum(axis=0) + l2 * (lb - anchor_b)
        vw = momentum * vw - lr * gw
        vb = momentum * vb - lr * gb
        w, b = w + vw, b + vb
    return w, b


@dataclass(frozen=True)
class BaseHead:
    """The base model's final layer (softmax of embedding @ w + b) and, if the export
    stored them, anchors: training crops per class with their embeddings (for the
    classes a user does not teach)."""

    w: np.ndarray
    b: np.ndarray
    anchors: np.ndarray | None = None  # (M, D) embeddings
    anchor_labels: np.ndarray | None = None  # (M,)
    anchor_crops: np.ndarray | None = None  # (M, 28, 28) uint8


def fit_adapter(
    emb: np.ndarray,
    y: np.ndarray,
    num_labels: int,
    method: str = DEFAULT_METHOD,
    base_head: BaseHead | None = None,
    crops: np.ndarray | None = None,
    anchor_share: float | None = None,
    views: int = 1,
) -> Adapter:
    """Fit a head of `method` on examples: embeddings `emb` (N, D), label ids `y` (N,)
    and, for "polar", their crops (N, 28, 28) uint8. With `anchor_share` > 0 the
    export's anchors of the taught classes join the fit too, as that share of their
    class's weight (keeps the base model's own style); default ANCHOR_SHARE."""
    anchor_share = ANCHOR_SHARE if anchor_share is None else float(anchor_share)
    if method not in METHODS:
        raise ValueError(f"unknown adaptation method {method!r}; choose one of {METHODS}")
    emb = np.asarray(emb, np.float32)
    y = np.asarray(y, np.int64)
    taught = tuple(int(c) for c in np.unique(y))
    cols = np.asarray(taught)
    kind = {"polar": "embedding+polar", "finetune": "embedding"}.get(method, "unit")
    if method == "finetune" and base_head is None:
        raise ModelError(
            "method 'finetune' needs the base model's final layer (base_head.npz), which "
            "this bundle lacks; re-export it with this screwcam version or use --method polar"
        )
    # Untaught classes join the fit through the export's anchors, if there are any.
    classes = taught
    weight = np.ones(len(y))
    has_anchors = (
        base_head is not None
        and base_head.anchors is not None
        and (kind != "embedding+polar" or base_head.anchor_crops is not None)
    )
    if has_anchors and (len(taught) < num_labels or anchor_share > 0):
        labels = base_head.anchor_labels  # type: ignore[union-attr]
        use = ~np.isin(labels, cols) if anchor_share <= 0 else np.ones(len(labels), bool)
        extra = np.ones(int(use.sum()))
        if anchor_share > 0:  # a taught class's anchors get anchor_share of its weight
            for c in taught:
                mine = labels[use] == c
                if mine.any():
                    n_user = float((y == c).sum())
                    extra[mine] = anchor_share / (1 - anchor_share) * n_user / mine.sum()
        emb = np.concatenate([emb, base_head.anchors[use]])  # type: ignore[index]
        y = np.concatenate([y, labels[use]])
        weight = np.concatenate([weight, extra])
        if crops is not None:
            crops = np.concatenate([crops, base_head.anchor_crops[use]])  # type: ignore[index]
        classes = tuple(range(num_labels))
    feats = make_features(kind, emb, crops)
    local = np.searchsorted(np.asarray(classes), y)
    k, f = len(classes), feats.shape[1]
    ones, zeros = np.ones(f, np.float32), np.zeros(f, np.float32)
    if method == "finetune":
        w0 = base_head.w[:, list(classes)]  # type: ignore[union-attr]
        b0 = base_head.b[list(classes)]  # type: ignore[union-attr]
        w, b = _gradient_descent(
            feats,
            local,
            w0,
            b0,
            anchor_w=w0,
            anchor_b=b0,
            l2=0.02,
            lr=0.5,
            steps=300,
            sample_weight=weight,
        )
        return Adapter(method, kind, w, b, zeros, ones, classes, num_labels, views)
    if method == "prototype":
        means = np.stack([feats[local == i].mean(axis=0) for i in range(k)])
        w = (_unit(means) / PROTOTYPE_TEMPERATURE).T
        bias = np.zeros(k, np.float32)
        return Adapter(method, kind, w, bias, zeros, ones, classes, num_labels, views)
    if method == "polar":
        mean, std = feats.mean(axis=0), feats.std(axis=0) + 1e-3
        feats = (feats - mean) / std
        lr, l2 = 10.0 / f, 1e-2
    else:
        mean, std, lr, l2 = zeros, ones, 4.0, 1e-3
    w0, b0 = np.zeros((f, k), np.float32), np.zeros(k, np.float32)
    w, b = _gradient_descent(
        feats,
        local,
        w0,
        b0,
        anchor_w=w0,
        anchor_b=b0,
        l2=l2,
        lr=lr,
        steps=300,
        sample_weight=weight,
    )
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    return Adapter(method, kind, w, b, mean, std, classes, num_labels, views)


def _folds(y: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """Stratified fold ids: each class's examples dealt round-robin over k folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), np.int64)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = np.arange(len(idx)) % k
    return [np.flatnonzero(fold == i) for i in range(k)]


def cross_validate(
    emb: np.ndarray,
    base_probs: np.ndarray,
    y: np.ndarray,
    num_labels: int,
    method: str,
    base_head: BaseHead | None,
    crops: np.ndarray | None = None,
    views: int = 1,
) -> dict[str, Any]:
    """Accuracy of the adapted and of the base model on held-out examples: stratified
    k-fold cross-validation (k = min(5, the smallest class's count)), every example
    predicted once by a head fitted without it."""
    counts = np.bincount(y, minlength=num_labels)
    k = int(min(MAX_FOLDS, counts[counts > 0].min()))
    pred = np.empty(len(y), np.int64)
    for test in _folds(y, k):
        train = np.setdiff1d(np.arange(len(y)), test)
        sub = None if crops is None else crops[train]
        head = fit_adapter(emb[train], y[train], num_labels, method, base_head, sub, views=views)
        held = None if crops is None else crops[test]
        pred[test] = head.apply(emb[test], base_probs[test], held).argmax(axis=1)
    base_pred = base_probs.argmax(axis=1)
    return {
        "heldout_accuracy": round(float((pred == y).mean()), 4),
        "base_accuracy": round(float((base_pred == y).mean()), 4),
        "folds": k,
        "n": int(len(y)),
        "how": f"stratified {k}-fold cross-validation over the examples",
    }


# --------------------------------------------------------------------------------------
# Bundles
# --------------------------------------------------------------------------------------


def read_base_head(bundle: Any) -> BaseHead | None:
    path = bundle.part("base_head")
    if path is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            anchors = data["anchors"] if "anchors" in data else None
            crops = data["anchor_crops"] if "anchor_crops" in data else None
            return BaseHead(
                np.asarray(data["w"], np.float32),
                np.asarray(data["b"], np.float32),
                None if anchors is None else np.asarray(anchors, np.float32),
                None if anchors is None else np.asarray(data["anchor_labels"], np.int64),
                None if crops is None else np.asarray(crops, np.uint8),
            )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot read {path}: {exc}; re-export the base model") from exc


def with_views(head: BaseHead | None, classifier: Any, views: int) -> BaseHead | None:
    """The base head with its anchors' embeddings averaged over `views` views, like the
    examples' (recomputed from the anchor crops)."""
    if head is None or views == 1 or head.anchor_crops is None:
        return head
    return dataclasses.replace(head, anchors=embed_views(classifier, head.anchor_crops, views)[1])


def check_examples(x: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> dict[str, int]:
    """Examples per taught class; DatasetError if there are too few to adapt."""
    if len(y) == 0:
        raise DatasetError("no examples found; give folders of images named after their class")
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DatasetError(f"examples must be (N, 28, 28) uint8 crops, got {x.shape} {x.dtype}")
    if (y < 0).any() or (y >= len(labels)).any():
        raise DatasetError(f"example labels must be 0..{len(labels) - 1} for this model")
    counts = {labels[c]: int(n) for c, n in enumerate(np.bincount(y, minlength=len(labels)))}
    few = {name: n for name, n in counts.items() if 0 < n < MIN_PER_CLASS}
    if few:
        raise DatasetError(
            "too few examples of "
            + ", ".join(f"{name} ({n})" for name, n in few.items())
            + f"; teach at least {MIN_PER_CLASS} examples of each class you teach"
        )
    return counts


@dataclass
class AdaptResult:
    path: Path
    adapter: Adapter
    metrics: dict[str, Any]


def adapt_bundle(
    base: Any,
    x: np.ndarray,
    y: np.ndarray,
    out: Path | str,
    *,
    method: str = DEFAULT_METHOD,
    name: str | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    views: int = VIEWS,
) -> AdaptResult:
    """Fit an adapter on examples (x (N, 28, 28) uint8, y label ids) for the bundle
    `base` (path or Bundle) and write the adapted bundle to `out`. Nothing is written
    unless everything before succeeded; an existing bundle is replaced only with
    `force`. If `base` is itself adapted, its model is adapted afresh (its adapter is
    replaced, not stacked)."""
    from .bundle import MODEL_FILE, Bundle, read_bundle, write_bundle
    from .classifier import Classifier

    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    bundle = base if isinstance(base, Bundle) else read_bundle(base)
    out = Path(out)
    if out.resolve() == bundle.path.resolve():
        raise ModelError(f"--out {out} is the base bundle itself; write the adapted one elsewhere")
    if bundle.meta.embedding is None:
        raise ModelError(
            f"{bundle.path} has no embedding output, so it cannot be adapted on the device; "
            "re-export it with this screwcam version (`screwcam export MODEL_DIR --force`)"
        )
    x = np.asarray(x)
    y = np.asarray(y, np.int64)
    counts = check_examples(x, y, bundle.labels)
    classifier = Classifier(bundle, num_threads=2)
    probs, embs = embed_views(classifier, x, views)
    head = with_views(read_base_head(bundle), classifier, views)
    t_embed = time.perf_counter() - t0
    say(f"embedded {len(y)} examples ({views} views each) in {t_embed:.2f} s")
    n = len(bundle.labels)
    validation = cross_validate(embs, probs, y, n, method, head, x, views)
    adapter = fit_adapter(embs, y, n, method, head, x, views=views)
    fit_s = time.perf_counter() - t0 - t_embed
    say(
        f"{method}: held-out accuracy {validation['heldout_accuracy'] * 100:.1f} % "
        f"(base model {validation['base_accuracy'] * 100:.1f} %, {validation['how']})"
    )
    base_meta = bundle.meta
    root = base_meta.parts.get("adapter", {}).get("base")
    metrics = {
        "method": method,
        "views": views,
        "examples": counts,
        "taught": [bundle.labels[c] for c in adapter.classes],
        **validation,
        "seconds": round(time.perf_counter() - t0, 3),
        "fit_seconds": round(fit_s, 3),
    }
    files: dict[str, bytes] = {MODEL_FILE: bundle.tflite_path.read_bytes()}
    parts = {k: v for k, v in base_meta.parts.items() if k not in ("adapter", "examples")}
    for _part_name, entry in parts.items():
        files[str(entry["file"])] = (bundle.path / str(entry["file"])).read_bytes()
    files[ADAPTER_FILE] = adapter.to_bytes()
    files[EXAMPLES_X] = _npy(x.astype(np.uint8))
    files[EXAMPLES_Y] = _npy(y)
    version = base_meta.preprocess_version
    parts["adapter"] = {
        "file": ADAPTER_FILE,
        "preprocess_version": version,
        "base": root or {"name": base_meta.name, "path": str(bundle.path)},
        "metrics": metrics,
    }
    parts["examples"] = {
        "file": EXAMPLES_X,
        "labels": EXAMPLES_Y,
        "preprocess_version": version,
        "per_class": counts,
    }
    meta = base_meta.replace(
        name=name or out.name,
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        parts=parts,
        metrics={**base_meta.metrics, "adapted": metrics},
    )
    write_bundle(out, meta, files, force=force)
    return AdaptResult(out, adapter, metrics)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


# --------------------------------------------------------------------------------------
# `screwcam adapt`
# --------------------------------------------------------------------------------------


def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "examples",
        nargs="+",
        type=Path,
        metavar="EXAMPLES",
        help="examples of your screws: folders of images by class (28x28 "
        "crops or photos), or thesis X*.npy/y*.npy pairs",
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="BUNDLE",
        help="base model bundle (default: models/default)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="NEW_BUNDLE",
        help="folder for the adapted bundle",
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help=f"head fitted on the embeddings (default {DEFAULT_METHOD})",
    )
    parser.add_argument(
        "--views",
        type=int,
        choices=(1, 2, 4, 8),
        default=VIEWS,
        help=f"views of each crop averaged into the embedding (default {VIEWS}; 1 is "
        "cheapest in the live pipeline)",
    )
    parser.add_argument("--name", help="model name shown on the page (default: the folder name)")
    parser.add_argument("--force", action="store_true", help="replace a bundle in --out")


def run(args: Any) -> int:
    import sys

    from .bundle import DEFAULT_BUNDLE, resolve_bundle_path
    from .dataset import load_samples

    def say(msg: str) -> None:
        print(f"adapt: {msg}", file=sys.stderr, flush=True)

    base = resolve_bundle_path(args.model or DEFAULT_BUNDLE)
    samples = load_samples(args.examples)
    say(
        f"{len(samples)} examples from {', '.join(str(p) for p in args.examples)}"
        + (
            f" ({samples.no_head} photos without a head found, used whole)"
            if samples.no_head
            else ""
        )
    )
    result = adapt_bundle(
        base,
        samples.x,
        samples.y,
        args.out,
        method=args.method,
        name=args.name,
        force=args.force,
        progress=say,
        views=args.views,
    )
    m = result.metrics
    per_class = ", ".join(f"{k} {v}" for k, v in m["examples"].items() if v)
    print(
        f"{result.path}: adapted {base} with {m['n']} examples ({per_class}); held-out "
        f"accuracy {m['heldout_accuracy'] * 100:.1f} % vs base {m['base_accuracy'] * 100:.1f} % "
        f"({m['how']}); {m['seconds']:.2f} s"
    )
    return 0
