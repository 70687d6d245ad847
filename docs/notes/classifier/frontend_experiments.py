"""Leave-one-generator-out with a fixed, appearance-normalizing front-end after the
`edge` model's rescale (docs/notes/classifier.md, "Front-ends"). Run from the repo root:

    python -P docs/notes/classifier/frontend_experiments.py lcn|lcn+raw|grad+raw

lcn: local contrast normalization (subtract a Gaussian blur, sigma 2.5 px, divide by the
local standard deviation); grad: gradient magnitude (Sobel), which is the same for a dark
and a bright recess; raw: the crop itself as a second channel. Same pools and settings as
lofo_experiments.py's base at 2000 per class (8 epochs, seed 0).
"""

import json
import sys

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from screwcam.training import holdout as H
from screwcam.training import models

POOL = "build/default-model/synth-train"
TEST = "build/default-model/heldout-families"


def gauss_kernel(sigma: float, size: int) -> np.ndarray:
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g).astype(np.float32)[:, :, None, None]


class FrontEnd(layers.Layer):
    def __init__(self, kind: str, **kw):
        super().__init__(**kw)
        self.kind = kind
        self.k = tf.constant(gauss_kernel(2.5, 11))
        sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32) / 8
        self.sx = tf.constant(sobel[:, :, None, None])
        self.sy = tf.constant(sobel.T[:, :, None, None])

    def conv(self, x, k):
        return tf.nn.depthwise_conv2d(x, k, [1, 1, 1, 1], "SAME")

    def call(self, x):
        outs = []
        if "lcn" in self.kind:
            d = x - self.conv(x, self.k)
            s = tf.sqrt(self.conv(d * d, self.k) + 1e-4)
            outs.append(tf.clip_by_value(d / (s + 0.02), -3.0, 3.0) / 3.0)
        if "grad" in self.kind:
            gx, gy = self.conv(x, self.sx), self.conv(x, self.sy)
            g = tf.sqrt(gx * gx + gy * gy + 1e-6)
            outs.append(g / (tf.reduce_max(g, axis=[1, 2, 3], keepdims=True) + 1e-3))
        if "raw" in self.kind:
            outs.append(x)
        return tf.concat(outs, axis=-1) if len(outs) > 1 else outs[0]


def build_edge(kind: str):
    def build(total_steps: int = 10_000, widths=models.EDGE_WIDTHS):
        m = 0.99 if total_steps >= 1000 else 0.9
        inp = models._input()
        x = layers.Rescaling(1.0 / 255, name="rescale")(inp)
        x = FrontEnd(kind, name="front")(x)
        for i, (block, w) in enumerate(zip(("b1", "b2", "b3"), widths, strict=True)):
            x = models._conv_bn(x, w, f"{block}a", m)
            x = models._conv_bn(x, w, f"{block}b", m)
            if i < 2:
                x = layers.MaxPooling2D(2)(x)
        x = layers.GlobalAveragePooling2D(name="embedding")(x)
        x = layers.Dropout(0.2)(x)
        out = layers.Dense(5, activation="softmax", name="probs")(x)
        return keras.Model(inp, out, name="edge")

    return build


def main() -> None:
    kind = sys.argv[1]
    models.build_edge = build_edge(kind)
    train_pool, test_pool = H._load_pool(POOL), H._load_pool(TEST)
    holds = ["gen=render3d", "gen=render2d"]
    res = H.holdout(train_pool, test_pool, holds, epochs=8, seed=0, max_per_class=2000)
    with open(f"res_front_{kind}.json", "w") as fh:
        json.dump({"variant": kind, "rows": res["rows"]}, fh, default=str)
    for r in res["rows"]:
        print(kind, r["hold"], f"{r['accuracy'] * 100:.1f}", r["pozidriv_as_phillips"])


if __name__ == "__main__":
    main()
