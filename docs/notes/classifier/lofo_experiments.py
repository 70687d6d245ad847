"""Classifier generalization experiments: leave-one-generator-out, one change at a time.

    POOL=train-pool TEST=test-pool python -P lofo_experiments.py VARIANT [HOLDS] [MAX] [SEED]

VARIANT contains any of (joined with +): base, tex (real-photo texture, tone curve,
blur/sharpen on half the crops), strong (STRONG augmentation), wide (48/64/96 channels),
mixup (mixup with alpha 0.2 in the tf.data pipeline, after the augmentation), ls (label
smoothing 0.1 instead of the preset's 0.05), erase (one random rectangle 4-10 px a side
filled with a random gray on half the crops), e16 (16 epochs instead of 8), randconv
(RandConv: half the crops convolved with a random 1/3/5/7 kernel each and contrast-
stretched again, after the augmentation), randconvall (the same on every crop),
randconvmix (every crop, blended with the original, alpha ~ U(0, 1)), mixstyle (MixStyle
after the first and second conv blocks, training only, on half the batches), mixstyleall
(the same on every batch). HOLDS defaults to gen=render3d,gen=render2d; MAX (crops per
class) to 1500, SEED to 0; results go to res_VARIANT_MAX[_sSEED].json in the current
folder. Every model is also scored with test-time augmentation: the softmax averaged
over the 4 quarter turns ("tta4") and over the 8 dihedral views (quarter turns x
horizontal flip, "tta8"), on the same model.
The pools are `screwcam synth` datasets with families (docs/notes/classifier.md).
"""

import dataclasses
import json
import os
import sys
import time

import cv2
import keras
import numpy as np
import tensorflow as tf

from screwcam import photos
from screwcam.preprocess import normalize
from screwcam.training import augment, models
from screwcam.training import holdout as H
from screwcam.training import train as T
from screwcam.training.report import evaluate, pozidriv_as_phillips


def style_randomize(x: np.ndarray, rng: np.random.Generator, frac: float = 0.5) -> np.ndarray:
    """Real-photo texture multiplied in, a random tone curve, blur or sharpening, on
    `frac` of the crops; then the crop step's contrast stretch."""
    pics = [photos.load_photo(n, gray=True) for n in photos.available()]
    out = x.copy()
    for i in np.flatnonzero(rng.random(len(x)) < frac):
        img = out[i].astype(np.float32) / 255.0
        if rng.random() < 0.6:
            p = pics[rng.integers(len(pics))]
            s = int(rng.integers(16, min(p.shape[:2]) // 2))
            y0, x0 = rng.integers(0, p.shape[0] - s), rng.integers(0, p.shape[1] - s)
            patch = cv2.resize(p[y0 : y0 + s, x0 : x0 + s], (28, 28), interpolation=cv2.INTER_AREA)
            a = rng.uniform(0.1, 0.45)
            img = img * (1 - a + 2 * a * patch.astype(np.float32) / 255.0)
        if rng.random() < 0.5:
            img = np.clip(img, 0, 1) ** np.exp(rng.normal(0, 0.45))
        r = rng.random()
        if r < 0.25:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.2))
        elif r < 0.4:
            img = img + rng.uniform(0.5, 1.5) * (img - cv2.GaussianBlur(img, (0, 0), 1.0))
        out[i] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return normalize(out)


def mixup(x: tf.Tensor, y: tf.Tensor, seed: tf.Tensor, alpha: float = 0.2):
    """Mix every image and its one-hot label with another of the same batch:
    lam ~ Beta(alpha, alpha) per image, x = lam x + (1 - lam) x[perm], same for y."""
    b = tf.shape(x)[0]
    s = tf.random.experimental.stateless_split(seed, 3)
    g1 = tf.random.stateless_gamma([b], s[0], alpha)
    g2 = tf.random.stateless_gamma([b], s[1], alpha)
    lam = g1 / tf.maximum(g1 + g2, 1e-12)
    perm = tf.argsort(tf.random.stateless_uniform([b], s[2]))
    lx = tf.reshape(lam, [-1, 1, 1, 1])
    ly = tf.reshape(lam, [-1, 1])
    x = lx * x + (1.0 - lx) * tf.gather(x, perm)
    y = ly * y + (1.0 - ly) * tf.gather(y, perm)
    return x, y


def erase(x: tf.Tensor, seed: tf.Tensor, p: float = 0.5, lo: int = 4, hi: int = 10):
    """On a share p of the crops, one rectangle (lo..hi px a side) set to a random gray."""
    b = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    s = tf.random.experimental.stateless_split(seed, 6)

    def u(i, a, z):
        return tf.random.stateless_uniform([b, 1, 1, 1], s[i], a, z)

    rh = tf.floor(u(0, lo, hi + 1))
    rw = tf.floor(u(1, lo, hi + 1))
    y0 = tf.floor(u(2, 0.0, 1.0) * (h - rh + 1))
    x0 = tf.floor(u(3, 0.0, 1.0) * (w - rw + 1))
    fill = u(4, 0.0, 255.0)
    apply = tf.cast(u(5, 0.0, 1.0) < p, x.dtype)
    ys = tf.reshape(tf.range(h, dtype=x.dtype), [1, h, 1, 1])
    xs = tf.reshape(tf.range(w, dtype=x.dtype), [1, 1, w, 1])
    inside = tf.cast((ys >= y0) & (ys < y0 + rh) & (xs >= x0) & (xs < x0 + rw), x.dtype)
    m = apply * inside
    return x * (1.0 - m) + fill * m


def stretch(x: tf.Tensor, lo_pct: float = 1.0, hi_pct: float = 99.0) -> tf.Tensor:
    """The crop step's contrast stretch in float: each crop's 1st..99th percentiles
    to 0..255, clipped (x: B,H,W,1; a flat crop keeps its values)."""
    b = tf.shape(x)[0]
    n = x.shape[1] * x.shape[2]
    flat = tf.sort(tf.reshape(x, [b, n]), axis=1)
    lo = flat[:, int(lo_pct / 100 * (n - 1))]
    hi = flat[:, int(hi_pct / 100 * (n - 1))]
    lo, hi = tf.reshape(lo, [-1, 1, 1, 1]), tf.reshape(hi, [-1, 1, 1, 1])
    spread = hi - lo
    ok = spread > 1e-6
    out = (x - lo) * (255.0 / tf.where(ok, spread, 1.0))
    return tf.clip_by_value(tf.where(ok, out, x), 0.0, 255.0)


def randconv(
    x: tf.Tensor, seed: tf.Tensor, p: float = 0.5, mix: bool = False, sizes=(1, 3, 5, 7)
) -> tf.Tensor:
    """RandConv (Xu et al., ICLR 2021) on a share p of the crops: each crop convolved
    with its own random kernel (size drawn from `sizes`, weights ~ N(0, 1/k^2),
    reflect padding), then contrast-stretched like a crop (the scale and sign of the
    kernel are arbitrary, the stretch brings the result back to 0..255; a kernel
    summing below zero inverts the polarity). mix: the result blended with the
    original, alpha ~ U(0, 1) per crop (the paper's mixing variant)."""
    b = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    kmax = max(sizes)
    r = kmax // 2
    s = tf.random.experimental.stateless_split(seed, 4)
    k = tf.gather(
        tf.constant(sizes, tf.float32),
        tf.random.stateless_uniform([b], s[0], 0, len(sizes), dtype=tf.int32),
    )
    k = tf.reshape(k, [-1, 1])
    offs = tf.constant([abs(i - r) for i in range(kmax)], tf.float32)
    dy = tf.reshape(tf.repeat(offs, kmax), [1, -1])  # row offset of each kernel tap
    dx = tf.reshape(tf.tile(offs, [kmax]), [1, -1])
    half = (k - 1) / 2
    inside = tf.cast((dy <= half) & (dx <= half), tf.float32)  # (B, kmax*kmax)
    weights = tf.random.stateless_normal([b, kmax * kmax], s[1]) / k * inside
    padded = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    patches = tf.image.extract_patches(
        padded, [1, kmax, kmax, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID"
    )  # (B, H, W, kmax*kmax), taps in row-major order
    out = tf.einsum("bhwk,bk->bhw", patches, weights)[..., None]
    out = stretch(out)
    if mix:
        alpha = tf.random.stateless_uniform([b, 1, 1, 1], s[2])
        out = alpha * x + (1.0 - alpha) * out
    apply = tf.random.stateless_uniform([b, 1, 1, 1], s[3]) < p
    out = tf.where(apply, out, x)
    out.set_shape([None, h, w, 1])
    return out


def patch_augmenter(use_mixup: bool, use_erase: bool, rc: dict | None = None) -> None:
    """train() builds augment.Augmenter(cfg, seed); swap in one that also
    mixes/erases/random-convolves (rc: keyword arguments of randconv)."""
    base = augment.Augmenter

    class Extra(base):
        def __call__(self, x, y, step):
            x, y = super().__call__(x, y, step)
            seed = tf.stack([tf.cast(self.seed + 1000, tf.int64), tf.cast(step, tf.int64)])
            s = tf.random.experimental.stateless_split(seed, 2)
            if rc is not None:
                rc_seed = tf.stack([tf.cast(self.seed + 2000, tf.int64), tf.cast(step, tf.int64)])
                x = randconv(x, rc_seed, **rc)
            if use_erase:
                x = erase(x, s[0])
            if use_mixup:
                x, y = mixup(x, y, s[1])
            return x, y

    augment.Augmenter = Extra


@keras.saving.register_keras_serializable(package="screwcam_experiments")
class MixStyle(keras.layers.Layer):
    """MixStyle (Zhou et al., ICLR 2021), training only: with probability p per batch,
    each sample's channel-wise feature mean and standard deviation (over H, W; no
    gradient through them) are mixed with those of another sample of the batch,
    lam ~ Beta(alpha, alpha) per sample. At inference it is the identity."""

    def __init__(self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6, seed=None, **kw):
        super().__init__(**kw)
        self.p, self.alpha, self.eps, self.seed = p, alpha, eps, seed
        self.seed_gen = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training:
            return x
        ops = keras.ops
        b = ops.shape(x)[0]
        mu = ops.stop_gradient(ops.mean(x, axis=(1, 2), keepdims=True))
        sig = ops.stop_gradient(ops.sqrt(ops.var(x, axis=(1, 2), keepdims=True) + self.eps))
        lam = keras.random.beta((b, 1, 1, 1), self.alpha, self.alpha, seed=self.seed_gen)
        perm = keras.random.shuffle(ops.arange(b), seed=self.seed_gen)
        mu2, sig2 = ops.take(mu, perm, axis=0), ops.take(sig, perm, axis=0)
        mixed = (x - mu) / sig * (lam * sig + (1 - lam) * sig2) + lam * mu + (1 - lam) * mu2
        apply = keras.random.uniform((), seed=self.seed_gen) < self.p
        return ops.where(apply, mixed, x)

    def get_config(self):
        return {
            **super().get_config(),
            "p": self.p,
            "alpha": self.alpha,
            "eps": self.eps,
            "seed": self.seed,
        }


def build_edge_mixstyle(
    total_steps: int = 10_000, widths=models.EDGE_WIDTHS, seed: int = 0, p: float = 0.5
):
    """models.build_edge, line for line, with MixStyle after the first and second
    conv blocks (after their pooling)."""
    layers = keras.layers
    _conv_bn = models._conv_bn
    m = 0.99 if total_steps >= 1000 else 0.9
    inp = models._input()
    x = layers.Rescaling(1.0 / 255, name="rescale")(inp)
    x = _conv_bn(x, widths[0], "b1a", m)
    x = _conv_bn(x, widths[0], "b1b", m)
    x = layers.MaxPooling2D(2, name="pool1")(x)  # 14x14
    x = MixStyle(p, seed=seed + 11, name="mixstyle1")(x)
    x = _conv_bn(x, widths[1], "b2a", m)
    x = _conv_bn(x, widths[1], "b2b", m)
    x = layers.MaxPooling2D(2, name="pool2")(x)  # 7x7
    x = MixStyle(p, seed=seed + 12, name="mixstyle2")(x)
    x = _conv_bn(x, widths[2], "b3a", m)
    x = _conv_bn(x, widths[2], "b3b", m)
    x = layers.GlobalAveragePooling2D(name="embedding")(x)
    x = layers.Dropout(0.2, name="drop")(x)
    out = layers.Dense(models.NUM_CLASSES, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="edge")


def dihedral_probs(model, x: np.ndarray, flips: bool) -> np.ndarray:
    """Softmax averaged over the 4 quarter turns (and their mirror images if flips)."""
    views = [np.rot90(x, k, axes=(1, 2)) for k in range(4)]
    if flips:
        views += [v[:, :, ::-1] for v in views]
    stack = np.concatenate(views).astype(np.float32)[..., None]
    p = model.predict(stack, batch_size=512, verbose=0)
    return p.reshape(len(views), len(x), -1).mean(axis=0)


def score(model, samples, preds: dict | None = None, tag: str = "") -> dict:
    """Plain, 4-view and 8-view accuracy; per-crop predictions go into `preds`
    (saved beside the json, for paired comparisons between variants)."""
    out = {}
    for name, fn in (
        ("plain", lambda x: model.predict(x.astype(np.float32)[..., None], 512, verbose=0)),
        ("tta4", lambda x: dihedral_probs(model, x, False)),
        ("tta8", lambda x: dihedral_probs(model, x, True)),
    ):
        pred = fn(samples.x).argmax(axis=1)
        if preds is not None:
            preds[f"{tag}_{name}"] = pred.astype(np.int8)
            preds[f"{tag}_y"] = samples.y.astype(np.int8)
        res = evaluate(samples.y, pred, samples.conditions)
        out[name] = {
            "accuracy": res["accuracy"],
            "pozidriv_as_phillips": list(pozidriv_as_phillips(res)),
            "confusion": res["confusion"],
        }
    return out


def main() -> None:
    variant = sys.argv[1]
    holds = sys.argv[2].split(",") if len(sys.argv) > 2 else ["gen=render3d", "gen=render2d"]
    max_per_class = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    epochs = 16 if "e16" in variant else 8
    if "strong" in variant:
        augment.VARIED = augment.STRONG
    if "wide" in variant:
        build_edge = models.build_edge
        models.build_edge = lambda total_steps=10_000, widths=(48, 64, 96): build_edge(
            total_steps, widths
        )
    if "ls" in variant.split("+"):
        models.PRESETS["edge"] = dataclasses.replace(models.PRESETS["edge"], label_smoothing=0.1)
    flags = variant.split("+")
    rc = None
    if "randconv" in flags:
        rc = {"p": 0.5}
    if "randconvall" in flags:  # every crop
        rc = {"p": 1.0}
    if "randconvmix" in flags:  # every crop, blended with the original
        rc = {"p": 1.0, "mix": True}
    if "mixstyle" in flags or "mixstyleall" in flags:  # all: on every batch (p 1.0)
        ms_p = 1.0 if "mixstyleall" in flags else 0.5
        models.build_edge = lambda total_steps=10_000: build_edge_mixstyle(
            total_steps, seed=seed, p=ms_p
        )
    if "mixup" in variant or "erase" in variant or rc is not None:
        patch_augmenter("mixup" in variant, "erase" in variant, rc)
    trained = []  # keep every model for test-time augmentation on the same model
    train_fn = T.train

    def keep_model(*a, **k):
        model, metrics = train_fn(*a, **k)
        trained.append(model)
        return model, metrics

    T.train = keep_model
    train_pool = H._load_pool(os.environ["POOL"])
    test_pool = H._load_pool(os.environ["TEST"])
    if "tex" in variant:
        train_pool.x[:] = style_randomize(train_pool.x, np.random.default_rng(7))
    t0 = time.time()
    res = H.holdout(
        train_pool, test_pool, holds, epochs=epochs, seed=seed, max_per_class=max_per_class
    )
    name = f"res_{variant}_{max_per_class}" + (f"_s{seed}" if seed else "")
    preds: dict = {}
    for r, model in zip(res["rows"], trained, strict=True):
        held = H._has(test_pool.conditions, r["family"], r["value"])
        r["tta"] = {
            "held_out": score(model, H._subset(test_pool, held), preds, r["hold"]),
            "in_family": score(model, H._subset(test_pool, ~held), preds, "in_" + r["hold"]),
        }
        model.save(f"{name}_{r['value']}.keras")
    np.savez_compressed(f"{name}_preds.npz", **preds)
    with open(f"{name}.json", "w") as fh:
        json.dump(
            {"variant": variant, "seed": seed, "epochs": epochs, "rows": res["rows"]},
            fh,
            indent=1,
            default=str,
        )
    for r in res["rows"]:
        tta = r["tta"]
        print(
            variant,
            max_per_class,
            f"seed {seed}",
            r["hold"],
            f"{r['accuracy'] * 100:.1f}",
            f"in-family {r['in_family_accuracy'] * 100:.1f}",
            "Pozidriv as Phillips",
            r["pozidriv_as_phillips"],
            f"{r['train_seconds']:.0f} s",
            "| tta4 {:.1f} / in {:.1f} | tta8 {:.1f} / in {:.1f}".format(
                tta["held_out"]["tta4"]["accuracy"] * 100,
                tta["in_family"]["tta4"]["accuracy"] * 100,
                tta["held_out"]["tta8"]["accuracy"] * 100,
                tta["in_family"]["tta8"]["accuracy"] * 100,
            ),
            "poz-as-phil tta8",
            tta["held_out"]["tta8"]["pozidriv_as_phillips"],
        )
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
