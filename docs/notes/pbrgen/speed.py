"""Milliseconds per crop of the pbr generator, one process, one thread: render_head alone
at 64x64, and a whole `screwcam synth` sample (render at 112 -> jittered box -> 28x28),
median and mean over N crops cycling through the classes (after one warm-up render that
imports Mitsuba). Wall time, and the process's CPU time (what a crop costs one core,
nearly independent of other work on the machine).

    python -P docs/notes/pbrgen/speed.py [N]
"""

import sys
import time

import numpy as np

from screwcam.capture.synth_dataset import Recipe, make_sample
from screwcam.render_pbr import render_head


def timed(fn, n: int) -> tuple[np.ndarray, np.ndarray]:
    wall, cpu = [], []
    for i in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(i)
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    return np.asarray(wall), np.asarray(cpu)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    render_head(np.random.default_rng(0), 1, 64)  # imports Mitsuba
    rng = np.random.default_rng(1)
    alone = timed(lambda i: render_head(rng, i % 5, 64), n)
    sample = timed(lambda i: make_sample(1, i % 5, i // 5, Recipe("pbr")), n)
    for name, (wall, cpu) in (("render_head 64x64", alone), ("synth sample (112 -> 28)", sample)):
        print(
            f"{name}: wall median {np.median(wall):.1f} ms, mean {wall.mean():.1f} ms; "
            f"CPU median {np.median(cpu):.1f} ms, mean {cpu.mean():.1f} ms, "
            f"p90 {np.percentile(cpu, 90):.1f} ms (over {n})"
        )


if __name__ == "__main__":
    main()
