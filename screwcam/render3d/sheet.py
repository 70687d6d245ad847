"""Contact sheet of render3d: python -m screwcam.render3d.sheet OUT.png [--seed N]

One row per class (columns vary style, finish, light and view), a row of silhouettes
and tiny heads, and two scenes with their head boxes (green) and distractors (red)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

from . import CLASS_NAMES, FINISHES, LABEL_STYLES, LIGHTS, render_head, render_scene

TILE = 128
TILTS = (0, 0, 12, 30, 5, 22, 0, 28)


def _caption(img, lines):
    img = img.copy()
    for i, text in enumerate(lines):
        y = img.shape[0] - 4 - 11 * (len(lines) - 1 - i)
        cv2.putText(img, text, (3, y), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.putText(img, text, (3, y), cv2.FONT_HERSHEY_PLAIN, 0.8, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def contact_sheet(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = []
    for label in range(5):
        tiles = []
        styles = LABEL_STYLES[label]
        for j in range(8):
            img, box, info = render_head(
                rng,
                label,
                size=TILE,
                style=styles[j % len(styles)],
                finish=FINISHES[j],
                light=LIGHTS[j],
                tilt=TILTS[j],
            )
            lines = [f"{info['style']} {info['finish']}", f"{info['light']} {info['view']:.0f}deg"]
            if j == 0:
                lines = [CLASS_NAMES[label], *lines]
            tiles.append(_caption(img, lines))
        rows.append(np.hstack(tiles))
    tiles = []
    for j in range(8):
        label = j % 5
        if j < 4:
            img, _, info = render_head(
                rng,
                label,
                size=TILE,
                silhouette=True,
                polarity=("dark_on_light", "light_on_dark")[j % 2],
            )
            text = "silhouette"
        else:
            img, _, info = render_head(rng, label, size=TILE, lowres=16 + 4 * (j - 4))
            text = f"from {info['lowres']} px"
        tiles.append(_caption(img, [CLASS_NAMES[label], text]))
    rows.append(np.hstack(tiles))
    width = rows[0].shape[1]
    scenes = []
    for _ in range(2):
        img, heads, distractors = render_scene(rng, size=(640, 480), return_distractors=True)
        img = img.copy()
        for (x, y, w, h), label, _ in heads:
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (0, 255, 0), 2)
            cv2.putText(
                img,
                CLASS_NAMES[label],
                (x, max(10, y - 3)),
                cv2.FONT_HERSHEY_PLAIN,
                1.0,
                (0, 255, 0),
                1,
                cv2.LINE_AA,
            )
        for (x, y, w, h), _kind in distractors:
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (0, 0, 255), 1)
        scenes.append(
            cv2.resize(img, (width // 2, width // 2 * 3 // 4), interpolation=cv2.INTER_AREA)
        )
    rows.append(np.hstack(scenes))
    return np.vstack(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"{args.out} exists; not overwriting (remove it first)")
        return 1
    sheet = contact_sheet(args.seed)
    tmp = args.out.with_name(args.out.name + ".tmp.png")
    try:  # a 256-colour palette keeps the PNG small enough for the repository
        from PIL import Image

        rgb = Image.fromarray(cv2.cvtColor(sheet, cv2.COLOR_BGR2RGB))
        rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(tmp, optimize=True)
    except ImportError:
        cv2.imwrite(str(tmp), sheet)
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
