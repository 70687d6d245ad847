"""Contact sheet of the sdf generator: per class a row of 12 heads at 64 px (box drawn)
and, below it, their 28x28 model inputs (jittered box, `screwcam.preprocess`).

    python -P docs/notes/sdfgen/sheet.py OUT.jpg [SEED]   (JPEG quality 90, as committed)
"""

import sys

import cv2
import numpy as np

from screwcam.preprocess import preprocess
from screwcam.render.families import jitter_box
from screwcam.render_sdf import render_head

out = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
rows = []
for label in range(5):
    top, bottom = [], []
    for i in range(12):
        rng = np.random.default_rng([seed, label, i])
        img, box, info = render_head(rng, label, size=64)
        drawn = img.copy()
        cv2.rectangle(drawn, (box.x, box.y), (box.x + box.w - 1, box.y + box.h - 1), (0, 200, 0), 1)
        top.append(drawn)
        crop = preprocess(img, jitter_box(rng, box, 64, 64).as_list())
        crop = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_NEAREST)
        bottom.append(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR))
    rows += [np.hstack(top), np.hstack(bottom), np.full((4, 64 * 12, 3), 255, np.uint8)]
sheet = np.vstack(rows[:-1])
cv2.imwrite(
    out,
    cv2.resize(sheet, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_NEAREST),
    [cv2.IMWRITE_JPEG_QUALITY, 90],
)
