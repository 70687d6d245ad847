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

import numpy as np

from .adapter import (
    ADAPTER_FILE,
    ANCHOR_SHARE,
    DEFAULT_METHOD,
    EXAMPLES_X,
    EXAMPLES_Y,
    MAX_FOLDS,
    METHODS,
    MIN_PER_CLASS,
    PROTOTYPE_TEMPERATURE,
    VIEWS,
    Adapter,
    embed_views,
    make_features,
    softmax,
    unit_rows,
)
from .errors import DatasetError, ModelError

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
        p = softmax(x @ lw + lb)
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
        w = (unit_rows(means) / PROTOTYPE_TEMPERATURE).T
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
    from .bundle import MODEL_FILE, Bundle, part_files, read_bundle, write_bundle
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
        for file in part_files(entry):
            files[file] = (bundle.path / file).read_bytes()
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
