"""Measuring the classical head finder against the demo camera's ground truth:
`python -m screwcam.render.evaluate [seed] [frames]`."""

from __future__ import annotations

import time

import numpy as np

from .demo import DemoSource
from .scene import DEMO_CONDITIONS

# ---------------------------------------------------------------------------------------------
# Measuring the head finder against the demo's ground truth
# ---------------------------------------------------------------------------------------------


def evaluate_finder(seed: int = 0, frames: int = 300, step: int = 3) -> dict[str, dict[str, float]]:
    """Run `find_heads` on `frames` demo frames (every `step`-th, so all lighting
    conditions come up) and compare with the ground truth. Per condition and "all":
    recall and precision (a match is IoU >= 0.5), share of heads found with
    IoU >= 0.8, mean IoU of matches, and median render / find_heads milliseconds."""
    from ..heads import find_heads

    rows: dict[str, list] = {}
    with DemoSource(seed=seed, realtime=False) as demo:
        for k in range(frames):
            index = k * step
            t0 = time.perf_counter()
            image, truth = demo.render(index)
            t1 = time.perf_counter()
            boxes = find_heads(image)
            t2 = time.perf_counter()
            used: set[int] = set()
            ious = []
            for t in truth:
                scores = [(t.box.iou(b), j) for j, b in enumerate(boxes) if j not in used]
                best, j = max(scores, default=(0.0, -1))
                if best >= 0.5:
                    used.add(j)
                ious.append(best)
            row = (len(truth), len(boxes), ious, t1 - t0, t2 - t1)
            rows.setdefault(demo.condition_at(index), []).append(row)
    rows["all"] = [r for cond in DEMO_CONDITIONS for r in rows.get(cond, [])]
    result = {}
    for name, items in rows.items():
        ious = np.array([v for r in items for v in r[2]])
        matched = ious[ious >= 0.5]
        n_found = sum(r[1] for r in items)
        result[name] = {
            "frames": len(items),
            "heads": int(ious.size),
            "recall": float(matched.size / max(1, ious.size)),
            "precision": float(matched.size / max(1, n_found)),
            "iou_0.8": float((ious >= 0.8).mean()) if ious.size else 0.0,
            "mean_iou": float(matched.mean()) if matched.size else 0.0,
            "render_ms": float(np.median([r[3] for r in items]) * 1000.0),
            "find_ms": float(np.median([r[4] for r in items]) * 1000.0),
        }
    return result


if __name__ == "__main__":  # python -m screwcam.render.evaluate [seed] [frames]
    import sys

    args = [int(a) for a in sys.argv[1:3]]
    stats = evaluate_finder(*args)
    for cond, st in stats.items():
        print(
            f"{cond:12s} frames {st['frames']:4d} heads {st['heads']:5d} "
            f"recall {st['recall']:.3f} precision {st['precision']:.3f} "
            f"IoU>=0.8 {st['iou_0.8']:.3f} mean IoU {st['mean_iou']:.3f} "
            f"render {st['render_ms']:.2f} ms find_heads {st['find_ms']:.2f} ms"
        )
