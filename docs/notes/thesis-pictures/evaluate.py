"""Thesis-like pictures (tests/_thesis_pictures.py: icons zoomed until they fill the
frame, solid black hex heads, drawn with OpenCV's primitives, never trained on): in how
many 640x480 frames does a bundle's detector find the head, as `slice` asks it
(`Detector.main_head`: the head a training video is about), boxed with IoU >= 0.5?

    python -P docs/notes/thesis-pictures/evaluate.py [--seed 7919] [--frames 100]
        [--json OUT] BUNDLE...

Each frame goes through JPEG (quality 80) as a video's frames would. Sizes are the head's
diameter (a hexagon's corner-to-corner width) over the frame's height; above 1.0 the head
is cut by the frame's edges and its box is the part inside the frame."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from _thesis_pictures import KINDS, STYLES, camera_look, picture  # noqa: E402

from screwcam.bundle import read_bundle  # noqa: E402
from screwcam.detector import load_detector  # noqa: E402
from screwcam.frames import Box  # noqa: E402

SIZES = ((0.5, 0.8), (0.8, 1.0), (1.0, 1.3))


def evaluate(bundle: Path, seed: int, frames: int) -> dict:
    detector = load_detector(read_bundle(bundle), num_threads=2)
    rows = {}
    for style in STYLES:
        for lo, hi in SIZES:
            rng = np.random.default_rng([seed, STYLES.index(style), int(lo * 10)])
            found = boxed = 0
            for i in range(frames):
                img, (x, y, w, h) = picture(rng, style, KINDS[i % 5], rng.uniform(lo, hi) * 480)
                img = camera_look(rng, img)
                img = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], 0)
                box = detector.main_head(img)
                if box is not None:
                    found += 1
                    truth = Box(round(x), round(y), round(w), round(h))
                    boxed += box.iou(truth) >= 0.5
            rows[f"{style} {lo:.1f}-{hi:.1f}"] = {"frames": frames, "found": found, "boxed": boxed}
            print(
                f"{bundle}: {style:10s} {lo:.1f}-{hi:.1f} x height: head found in "
                f"{found}/{frames}, boxed (IoU >= 0.5) in {boxed}/{frames}",
                flush=True,
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--seed", type=int, default=7919)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out = {str(b): evaluate(b, args.seed, args.frames) for b in args.bundles}
    if args.json:
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seed": args.seed, "results": out}, indent=1) + "\n")
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
