"""Small, self-made datasets for the training/export/batch-test tests.

`draw_head` paints a simple screw head of each type with OpenCV (a stand-in for
the renderer, so these tests do not depend on it); `make_set` builds an easy,
separable (N, 28, 28) uint8 set through the shared preprocessing.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from screwcam.preprocess import to_model_input


def _star(cx, cy, r_out, r_in, points, rot):
    pts = []
    for k in range(points * 2):
        r = r_out if k % 2 == 0 else r_in
        a = rot + k * math.pi / points
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return np.array(pts, np.int32)


def _poly(cx, cy, r, n, rot):
    angles = [rot + 2 * math.pi * k / n for k in range(n)]
    return np.array([(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles], np.int32)


def draw_head(rng: np.random.Generator, label: int, size: int = 84) -> np.ndarray:
    """A gray image of one screw head of type `label` (0..4), randomly rotated/lit."""
    bg = int(rng.integers(20, 90))
    fg = int(rng.integers(160, 240))
    img = np.full((size, size), bg, np.uint8)
    c = size / 2 + rng.uniform(-3, 3, 2)
    cx, cy = float(c[0]), float(c[1])
    r = size * rng.uniform(0.36, 0.42)
    rot = rng.uniform(0, 2 * math.pi)
    dark = max(0, bg - 10)
    if label == 3:  # hex head: a hexagon, no recess
        cv2.fillPoly(img, [_poly(cx, cy, r, 6, rot)], fg)
    else:
        cv2.circle(img, (int(cx), int(cy)), int(r), fg, -1)
        if label == 0:  # hex socket
            cv2.fillPoly(img, [_poly(cx, cy, r * 0.45, 6, rot)], dark)
        elif label in (1, 2):  # phillips / pozidriv cross
            w = max(2, int(r * 0.16))
            for a in (rot, rot + math.pi / 2):
                dx, dy = math.cos(a) * r * 0.7, math.sin(a) * r * 0.7
                cv2.line(img, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), dark, w)
            if label == 2:  # pozidriv: extra diagonal ticks
                for a in (rot + math.pi / 4 + k * math.pi / 2 for k in range(4)):
                    dx, dy = math.cos(a) * r * 0.45, math.sin(a) * r * 0.45
                    cv2.line(img, (int(cx), int(cy)), (int(cx + dx), int(cy + dy)), dark, 2)
                cv2.circle(img, (int(cx), int(cy)), max(3, int(r * 0.3)), dark, -1)
        elif label == 4:  # torx star
            cv2.fillPoly(img, [_star(cx, cy, r * 0.55, r * 0.33, 6, rot)], dark)
    noise = rng.normal(0, rng.uniform(0, 6), img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def make_set(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label in range(5):
        for _ in range(n_per_class):
            xs.append(to_model_input(draw_head(rng, label)))
            ys.append(label)
    order = rng.permutation(len(ys))
    return np.stack(xs)[order], np.array(ys, np.int64)[order]


def write_thesis_npy(folder: Path, n_train: int, n_test: int, seed: int) -> Path:
    """Thesis-format X_train.npy / y_train.npy / X_test.npy / y_test.npy."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = make_set(n_train, seed)
    np.save(folder / "X_train.npy", x)
    np.save(folder / "y_train.npy", y)
    x, y = make_set(n_test, seed + 1000)
    np.save(folder / "X_test.npy", x)
    np.save(folder / "y_test.npy", y)
    return folder
