"""Training-time augmentation, applied in the tf.data pipeline (never inside the
exported model).

Geometric: flips and quarter turns (lossless, Keras RandomFlip plus rot90), then
any rotation, zoom with independent height/width factors (stretch) and
translation composed into ONE affine warp: on a 28x28 crop, chaining Keras's
RandomRotation, RandomZoom and RandomTranslation resamples three times and blurs
away the drive's details (we measured the difference, see docs/readme/training.md).
Photometric: Keras RandomBrightness and RandomContrast, a synthetic shadow (a
random dark half-plane with a soft edge), polarity inversion and sensor noise.
Everything is seeded, so a run with the same --seed sees the same images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import tensorflow as tf


@dataclass(frozen=True)
class AugmentConfig:
    rotation: float = 0.5  # fraction of a full turn either way: 0.5 = any angle
    warp_p: float = 0.7  # share of images that get the (slightly blurring) affine warp
    zoom: tuple[float, float] = (0.75, 1.15)  # overall scale: head smaller .. larger
    stretch: float = 0.1  # +-10 % per axis on top, independently (aspect change)
    translate: float = 0.08
    flip: bool = True
    brightness: float = 0.25
    contrast: float = 0.35
    shadow_p: float = 0.5
    shadow_strength: tuple[float, float] = (0.25, 0.8)
    invert_p: float = 0.15
    noise_std: float = 6.0
    restretch_p: float = 0.5  # re-stretch to 0..255 afterwards, as the crop step would


STRONG = AugmentConfig()
# The `edge` recipe on the varied generators (render2d, render3d): their images already
# vary in light, finish, view, blur and noise, so training adds less on top (with STRONG
# the model underfit: 77 % augmented training accuracy vs 84 % validation, measured).
VARIED = AugmentConfig(
    warp_p=0.5,
    zoom=(0.85, 1.15),
    brightness=0.2,
    contrast=0.3,
    shadow_p=0.25,
    invert_p=0.1,
    noise_std=4.0,
)
# For the small thesis models: the same kinds of change, milder, no polarity inversion
# (CNN1 has too little capacity to learn both polarities and underfits).
MEDIUM = AugmentConfig(
    zoom=(0.85, 1.1),
    stretch=0.08,
    translate=0.06,
    brightness=0.2,
    contrast=0.3,
    shadow_p=0.4,
    invert_p=0.0,
    noise_std=5.0,
    restretch_p=0.5,
)
LIGHT = AugmentConfig(
    rotation=0.5,
    zoom=(0.9, 1.1),
    stretch=0.05,
    translate=0.05,
    brightness=0.15,
    contrast=0.2,
    shadow_p=0.3,
    invert_p=0.0,
    noise_std=3.0,
    restretch_p=0.3,
)


def _uniform(shape, lo, hi, seed):
    return tf.random.stateless_uniform(shape, seed=seed, minval=lo, maxval=hi)


def _shadow(x: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """Darken a random half-plane of each image with a soft edge (x: B,H,W,1 float)."""
    b = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    angle = _uniform([b, 1, 1, 1], 0.0, 2 * math.pi, seeds[0])
    offset = _uniform([b, 1, 1, 1], -0.6, 0.6, seeds[1])
    softness = _uniform([b, 1, 1, 1], 0.05, 0.5, seeds[2])
    strength = _uniform([b, 1, 1, 1], *cfg.shadow_strength, seeds[3])
    apply = tf.cast(_uniform([b, 1, 1, 1], 0.0, 1.0, seeds[4]) < cfg.shadow_p, x.dtype)
    ys = tf.reshape(tf.linspace(-1.0, 1.0, h), [1, h, 1, 1])
    xs = tf.reshape(tf.linspace(-1.0, 1.0, w), [1, 1, w, 1])
    dist = xs * tf.cos(angle) + ys * tf.sin(angle) - offset
    mask = tf.sigmoid(dist / softness)
    factor = 1.0 - apply * strength * mask
    return x * factor


def _restretch(x: tf.Tensor, seed: tf.Tensor, p: float) -> tf.Tensor:
    lo = tf.reduce_min(x, axis=[1, 2, 3], keepdims=True)
    hi = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    stretched = (x - lo) * (255.0 / tf.maximum(hi - lo, 8.0))
    apply = tf.cast(_uniform([tf.shape(x)[0], 1, 1, 1], 0.0, 1.0, seed) < p, x.dtype)
    return apply * stretched + (1.0 - apply) * x


class Augmenter:
    """Callable on a batch (B, 28, 28, 1) float32 0..255 -> augmented batch, same range."""

    def __init__(self, cfg: AugmentConfig = STRONG, seed: int = 0) -> None:
        self.cfg = cfg
        self.seed = int(seed)
        layers = []
        if cfg.flip:
            layers.append(keras.layers.RandomFlip("horizontal_and_vertical", seed=seed + 4))
        if cfg.brightness:
            layers.append(
                keras.layers.RandomBrightness(cfg.brightness, value_range=(0, 255), seed=seed + 5)
            )
        if cfg.contrast:
            layers.append(
                keras.layers.RandomContrast(cfg.contrast, value_range=(0, 255), seed=seed + 6)
            )
        self.layers = layers

    def _warp(self, x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Rotation, independent x/y zoom and translation as one bilinear resample."""
        cfg = self.cfg
        b = tf.shape(x)[0]
        h, w = x.shape[1], x.shape[2]
        s = tf.random.experimental.stateless_split(seed, 7)
        theta = _uniform([b], -cfg.rotation * 2 * math.pi, cfg.rotation * 2 * math.pi, s[0])
        scale = _uniform([b], cfg.zoom[0], cfg.zoom[1], s[6])
        sx = scale * _uniform([b], 1.0 - cfg.stretch, 1.0 + cfg.stretch, s[1])
        sy = scale * _uniform([b], 1.0 - cfg.stretch, 1.0 + cfg.stretch, s[2])
        tx = _uniform([b], -cfg.translate * w, cfg.translate * w, s[3])
        ty = _uniform([b], -cfg.translate * h, cfg.translate * h, s[4])
        apply = _uniform([b], 0.0, 1.0, s[5]) < cfg.warp_p
        cos, sin = tf.cos(theta), tf.sin(theta)
        # output -> input: M = diag(1/sx, 1/sy) R(-theta); in = M (out - c - t) + c
        m00, m01 = cos / sx, sin / sx
        m10, m11 = -sin / sy, cos / sy
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        ox, oy = cx + tx, cy + ty
        b0 = cx - (m00 * ox + m01 * oy)
        b1 = cy - (m10 * ox + m11 * oy)
        zeros = tf.zeros_like(theta)
        ones = tf.ones_like(theta)
        identity = tf.stack([ones, zeros, zeros, zeros, ones, zeros, zeros, zeros], axis=1)
        warp = tf.stack([m00, m01, b0, m10, m11, b1, zeros, zeros], axis=1)
        transform = tf.where(apply[:, None], warp, identity)
        return keras.ops.image.affine_transform(
            x, transform, interpolation="bilinear", fill_mode="reflect"
        )

    def __call__(self, x: tf.Tensor, y: tf.Tensor, step: tf.Tensor):
        cfg = self.cfg
        base = tf.stack([tf.cast(self.seed, tf.int64), tf.cast(step, tf.int64)])
        seeds = tf.random.experimental.stateless_split(tf.cast(base, tf.int64), 7)
        if cfg.flip:
            k = tf.random.stateless_uniform([], seeds[5], 0, 4, dtype=tf.int32)
            x = tf.image.rot90(x, k)
        x = self._warp(x, seeds[6])
        for layer in self.layers:
            x = layer(x, training=True)
        if cfg.shadow_p:
            x = _shadow(x, seeds[0], cfg)
        if cfg.noise_std:
            std = _uniform([tf.shape(x)[0], 1, 1, 1], 0.0, cfg.noise_std, seeds[1])
            x = x + std * tf.random.stateless_normal(tf.shape(x), seed=seeds[2])
        x = tf.clip_by_value(x, 0.0, 255.0)
        if cfg.restretch_p:
            x = _restretch(x, seeds[3], cfg.restretch_p)
        if cfg.invert_p:
            flip = _uniform([tf.shape(x)[0], 1, 1, 1], 0.0, 1.0, seeds[4]) < cfg.invert_p
            x = tf.where(flip, 255.0 - x, x)
        return tf.clip_by_value(x, 0.0, 255.0), y
