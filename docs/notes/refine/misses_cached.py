"""docs/notes/detector-sdf/misses.py on the cached test scenes (SCENE_CACHE pickles of
detector-sdf/evaluate.py, /tmp/s14/cache) instead of rendering them again: the same scenes.

    .venv/bin/python -P docs/notes/refine/misses_cached.py OUT.json sdf,pbr 150
"""

import os
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detector-sdf"))
import misses  # noqa: E402

CACHE = Path(os.environ.get("SCENE_CACHE", "/tmp/s14/cache"))


def cached(family, n, seed, chunk=50):
    with (CACHE / f"scenes-{family}-150-{seed}.pkl").open("rb") as f:
        data = pickle.load(f)
    for image, truth, kinds in data[:n]:
        yield image, list(zip(truth, kinds or [0] * len(truth), strict=True))


if __name__ == "__main__":
    misses.render_scenes = cached
    np.seterr(all="ignore")
    misses.main()
