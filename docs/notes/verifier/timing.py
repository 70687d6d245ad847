"""Where the head finder's time goes (session 6, docs/notes/verifier.md).

    python -P docs/notes/verifier/timing.py steps          # median ms of each step
    python -P docs/notes/verifier/timing.py batch          # verifier: fixed vs changing batch
    python -P docs/notes/verifier/timing.py ab OUT.pkl     # boxes + crops + median ms, for A/B

`ab` runs the installed package's `find_with_crops` on 380 frames (300 demo frames, 40
scaled to 1280x720, 40 cut to a 360x480 portrait) and pickles every box and crop: run
it under two versions of the code (e.g. PYTHONPATH=<a copy of the old package>),
alternately, and `cmp` the two files. All on models/default, 2 LiteRT threads.
"""

import pickle
import sys
import time

import cv2
import numpy as np

from screwcam.bundle import read_bundle, shipped_bundle
from screwcam.detector import decode, letterbox, load_detector, verifier_crops
from screwcam.heads import refine_boxes
from screwcam.preprocess import to_gray
from screwcam.render import DemoSource


def demo_grays(per_seed: int) -> list[np.ndarray]:
    grays = []
    for seed in (0, 1, 4):  # the bench's surfaces: wood, light, dark
        src = DemoSource(realtime=False, seed=seed)
        src.open()
        grays += [to_gray(src.render(i)[0]) for i in range(0, per_seed * 5, 5)]
        src.close()
    return grays


def steps(det, grays) -> None:
    names = ("letterbox", "network", "decode", "outline pass", "crops", "verifier", "total")
    times: dict[str, list[float]] = {k: [] for k in names}
    ver = det.verifier
    for rep in range(2):
        for g in grays:
            t = [time.perf_counter()]
            canvas, scale, ox, oy = letterbox(g, det.input_size)
            t.append(time.perf_counter())
            heat, box = det.raw(g)[:2]  # letterbox again inside: subtracted below
            t.append(time.perf_counter())
            low = ver.detector_threshold * 0.5
            size = (g.shape[1], g.shape[0])
            found = decode(
                heat, box, threshold=low, stride=det.stride, scale=scale, offset=(ox, oy),
                frame_size=size,
            )  # fmt: skip
            t.append(time.perf_counter())
            tight = refine_boxes(g, [b for b, _ in found])
            t.append(time.perf_counter())
            kept = [b for (b, ok), (_, s) in zip(tight, found, strict=True) if ok or s >= 2 * low]
            crops = verifier_crops(g, kept)
            t.append(time.perf_counter())
            ver.predict_crops(crops)
            t.append(time.perf_counter())
            if rep:
                d = np.diff(t) * 1e3
                d[1] -= d[0]  # raw() letterboxes too
                for k, v in zip(names, [*d, (t[-1] - t[0]) * 1e3 - d[0]], strict=True):
                    times[k].append(v)
    for k, v in times.items():
        print(f"{k:13s} median {np.median(v):.3f} ms")


def batch(det) -> None:
    x = np.random.default_rng(0).integers(0, 255, (5, 28, 28), dtype=np.uint8)
    for label, pick in (("same 5 crops", lambda i: x), ("4-6 crops", lambda i: x[: 4 + i % 3])):
        ts = []
        for i in range(400):
            xs = pick(i)
            t0 = time.perf_counter()
            det.verifier.predict_crops(xs)
            ts.append(time.perf_counter() - t0)
        print(f"verifier, {label}: median {np.median(ts[50:]) * 1e3:.3f} ms")


def ab(det, grays, out: str) -> None:
    grays = grays + [cv2.resize(g, (1280, 720)) for g in grays[:20]]
    grays += [np.ascontiguousarray(g[:, :360]) for g in grays[:20]]
    for g in grays:
        det.find_with_crops(g)
    ts = []
    for _ in range(3):
        for g in grays[:300]:
            t0 = time.perf_counter()
            det.find_with_crops(g)
            ts.append(time.perf_counter() - t0)
    results = []
    for g in grays:
        boxes, crops = det.find_with_crops(g)
        results.append((boxes, None if crops is None else crops.tobytes()))
    with open(out, "wb") as fh:
        pickle.dump(results, fh)
    print(f"{out}: median {np.median(ts) * 1e3:.3f} ms per frame")


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "steps"
    det = load_detector(read_bundle(shipped_bundle()), num_threads=2)
    if what == "batch":
        batch(det)
    elif what == "ab":
        ab(det, demo_grays(100), sys.argv[2])
    else:
        steps(det, demo_grays(60))


if __name__ == "__main__":
    main()
