"""Milliseconds per crop of the sdf generator, one process: render_head alone at the
synth size (112) and at 64, and the whole synth sample (render, jittered box, 28x28
preprocess) as `screwcam synth` makes it.

    python -P docs/notes/sdfgen/speed.py [N]
"""

import sys
import time

import numpy as np

from screwcam.capture.synth_dataset import Recipe, make_sample
from screwcam.render_sdf import render_head

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
render_head(np.random.default_rng(0), 0, 64)  # warm the photo cache
for size in (64, 112):
    t0 = time.perf_counter()
    for i in range(n):
        render_head(np.random.default_rng(i), i % 5, size)
    print(f"render_head size {size}: {(time.perf_counter() - t0) / n * 1000:.1f} ms per head")
t0 = time.perf_counter()
for i in range(n):
    make_sample(1, i % 5, i // 5, Recipe("sdf"))
print(f"synth sample (112 px, jitter, 28x28): {(time.perf_counter() - t0) / n * 1000:.1f} ms")
