"""Contact sheet and speed of the detector's "pbr" test scenes.

    python -P docs/notes/pbrscene/sheet.py OUT.jpg [SCENES] [SEED]

Renders SCENES (default 12) scenes of family "pbr" at 320x240 in this process, prints the
time per scene, and writes the first 12, 2x enlarged with every true head box in red (and
its class), as a sheet four scenes wide.
"""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np

from screwcam.training.detector_data import compose_scene


def main() -> None:
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    rng = np.random.default_rng(int(sys.argv[3]) if len(sys.argv) > 3 else 11)
    tiles, times, heads = [], [], 0
    for _ in range(n):
        t = time.perf_counter()
        scene = compose_scene(rng, "pbr")
        times.append(time.perf_counter() - t)
        heads += len(scene.boxes)
        if len(tiles) == 12:
            continue
        big = cv2.resize(
            cv2.cvtColor(scene.image, cv2.COLOR_GRAY2BGR),
            None,
            fx=2,
            fy=2,
            interpolation=cv2.INTER_NEAREST,
        )
        for b, label in zip(scene.boxes, scene.labels, strict=True):
            p0, p1 = (2 * b.x, 2 * b.y), (2 * (b.x + b.w), 2 * (b.y + b.h))
            cv2.rectangle(big, p0, p1, (0, 0, 255), 1)
            cv2.putText(big, str(label), (p0[0], max(10, p0[1] - 3)), 0, 0.4, (0, 255, 255))
        tiles.append(big)
    t = np.asarray(times)
    print(
        f"{n} scenes 320x240, {heads} heads: {t.mean():.2f} s a scene "
        f"(median {np.median(t):.2f}, max {t.max():.2f})"
    )
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[k : k + 4]) for k in range(0, len(tiles), 4)]
    cv2.imwrite(out, np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 60])


if __name__ == "__main__":
    main()
