"""Drawing the annotations onto a frame: a box per head with its English class
name and confidence (with tracking: the track id and the label voted over the track).
The same colours are used by the web page (static/app.js)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import cv2
import numpy as np

# BGR colours per thesis class name; the page uses the same ones as CSS hex.
COLORS_BGR: dict[str, tuple[int, int, int]] = {
    "innensechskant": (60, 180, 255),  # orange
    "philips": (255, 160, 40),  # blue
    "pozidriv": (220, 90, 220),  # purple
    "sechskant": (80, 200, 80),  # green
    "torx": (60, 60, 240),  # red
    "unknown": (170, 170, 170),  # grey
}


def color_hex(label: str) -> str:
    b, g, r = COLORS_BGR.get(label, COLORS_BGR["unknown"])
    return f"#{r:02x}{g:02x}{b:02x}"


class HeadLike(Protocol):
    box: Any  # screwcam.heads.Box or (x, y, w, h)
    label: str
    label_en: str
    confidence: float


def annotate(image: np.ndarray, heads: Sequence[HeadLike]) -> np.ndarray:
    """A copy of the BGR frame with every head's box, English name and confidence."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    height, width = out.shape[:2]
    scale = max(0.4, min(width, height) / 700.0)
    thickness = max(1, int(round(2 * scale)))
    font = cv2.FONT_HERSHEY_SIMPLEX
    for head in heads:
        box = head.box.as_list() if hasattr(head.box, "as_list") else head.box
        x, y, w, h = (int(v) for v in box)
        track = getattr(head, "track", None)
        if track is not None and track.label != "unknown":
            # the label voted over the head's track: steady, it does not flicker
            label, text = track.label, f"#{track.id} {track.label_en} {track.confidence:.0%}"
        else:
            label, text = head.label, f"{head.label_en} {head.confidence * 100:.0f}%"
        color = COLORS_BGR.get(label, COLORS_BGR["unknown"])
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thickness, cv2.LINE_AA)
        (tw, th), base = cv2.getTextSize(text, font, 0.6 * scale, max(1, thickness - 1))
        ty = y - 4 if y - th - base - 4 >= 0 else min(height - 1, y + h + th + 4)
        tx = min(max(0, x), max(0, width - tw - 4))
        cv2.rectangle(out, (tx, ty - th - base), (tx + tw + 4, ty + base // 2), color, -1)
        cv2.putText(
            out,
            text,
            (tx + 2, ty - base // 2),
            font,
            0.6 * scale,
            (0, 0, 0),
            max(1, thickness - 1),
            cv2.LINE_AA,
        )
    return out


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
