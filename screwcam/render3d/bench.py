"""Speed of render3d on one core: python -m screwcam.render3d.bench [--n 300]

Prints heads/s for 96 px crops (default supersampling and 1x) and scenes/s for
640x480 frames. OpenCV is limited to one thread; both wall-clock and process CPU
time are reported (CPU time is the steadier number on a shared machine)."""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from . import render_head, render_scene


def _rate(fn, n):
    fn(0)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, n / cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="heads per measurement")
    parser.add_argument("--scenes", type=int, default=20, help="scenes per measurement")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    for label, kw in (
        ("96 px heads, default supersampling (1.25x)", {}),
        ("96 px heads, supersample=1.5", {"supersample": 1.5}),
        ("96 px heads, supersample=1", {"supersample": 1}),
        ("28 px heads", {"size": 28}),
    ):
        kw = {"size": 96, **kw}
        wall, cpu = _rate(lambda i, kw=kw: render_head(rng, i % 5, **kw), args.n)
        print(f"{label}: {wall:.0f} heads/s wall, {cpu:.0f} heads/s CPU (n={args.n})")
    wall, cpu = _rate(lambda i: render_scene(rng, size=(640, 480)), args.scenes)
    print(f"640x480 scenes: {wall:.1f} scenes/s wall, {cpu:.1f} scenes/s CPU (n={args.scenes})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
