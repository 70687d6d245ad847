"""Contact sheet of the pbr generator: per class a row of heads, each as rendered
(scaled to 64 px, the crop's box drawn) next to its 28x28 model input (shown at 64 px),
made exactly as `screwcam synth --generator pbr` makes them (sample i of class c of
seed S: the same render, jittered box and `preprocess`).

    python -P docs/notes/pbrgen/sheet.py OUT.jpg [SEED] [PER_CLASS]   (JPEG quality 90)
"""

import sys

import cv2
import numpy as np

from screwcam.capture.synth_dataset import Recipe, _render_and_find
from screwcam.classes import CLASSES
from screwcam.preprocess import preprocess

TILE = 64


def main() -> None:
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    per_class = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    rows = []
    for label in range(5):
        row = []
        for index in range(per_class):
            image, box, _, condition = _render_and_find(seed, label, index, Recipe("pbr"))
            drawn = image.copy()
            cv2.rectangle(
                drawn, (box.x, box.y), (box.x + box.w - 1, box.y + box.h - 1), (0, 200, 0), 1
            )
            drawn = cv2.resize(drawn, (TILE, TILE), interpolation=cv2.INTER_AREA)
            crop = cv2.resize(
                preprocess(image, box.as_list()), (TILE, TILE), interpolation=cv2.INTER_NEAREST
            )
            gap = np.full((TILE, 3, 3), 255, np.uint8)
            row += [drawn, cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR), gap, gap]
        strip = np.hstack(row)
        label_bar = np.full((14, strip.shape[1], 3), 255, np.uint8)
        cv2.putText(label_bar, CLASSES[label], (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1)
        rows += [label_bar, strip]
    sheet = np.vstack(rows)
    cv2.imwrite(out, sheet, [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
