"""Classifier generalization experiments: leave-one-generator-out, one change at a time.

    POOL=train-pool TEST=test-pool python -P lofo_experiments.py VARIANT [HOLDS] [MAX_PER_CLASS]

VARIANT contains any of: base, tex (real-photo texture, tone curve, blur/sharpen on half
the crops), strong (STRONG augmentation), wide (48/64/96 channels). HOLDS defaults to
gen=render3d,gen=render2d; results go to res_VARIANT_MAX.json in the current folder.
The pools are `screwcam synth` datasets with families (docs/notes/classifier.md).
"""

import json
import os
import sys
import time

import cv2
import numpy as np

from screwcam import photos
from screwcam.preprocess import normalize
from screwcam.training import augment, models
from screwcam.training import holdout as H


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


def main() -> None:
    variant = sys.argv[1]
    holds = sys.argv[2].split(",") if len(sys.argv) > 2 else ["gen=render3d", "gen=render2d"]
    max_per_class = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    if "strong" in variant:
        augment.VARIED = augment.STRONG
    if "wide" in variant:
        build_edge = models.build_edge
        models.build_edge = lambda total_steps=10_000, widths=(48, 64, 96): build_edge(
            total_steps, widths
        )
    train_pool = H._load_pool(os.environ["POOL"])
    test_pool = H._load_pool(os.environ["TEST"])
    if "tex" in variant:
        train_pool.x[:] = style_randomize(train_pool.x, np.random.default_rng(7))
    t0 = time.time()
    res = H.holdout(train_pool, test_pool, holds, epochs=8, seed=0, max_per_class=max_per_class)
    with open(f"res_{variant}_{max_per_class}.json", "w") as fh:
        json.dump({"variant": variant, "rows": res["rows"]}, fh, indent=1, default=str)
    for r in res["rows"]:
        print(
            variant,
            max_per_class,
            r["hold"],
            f"{r['accuracy'] * 100:.1f}",
            f"in-family {r['in_family_accuracy'] * 100:.1f}",
            "Pozidriv as Phillips",
            r["pozidriv_as_phillips"],
            f"{r['train_seconds']:.0f} s",
        )
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
