"""Finding screw heads in a frame with classical image processing (no model).

`find_heads` returns a box for every head in a frame (the live service, batch
testing of whole photos); `find_main_head` returns the one head a training video
is about (slicing, synthetic data). Both work on gray frames.

NOTE: first cut; the renderer work tunes it against the demo's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .preprocess import to_gray


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in source-frame pixels."""

    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2.0, self.y + self.h / 2.0

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def scaled(self, factor: float) -> Box:
        return Box(*(int(round(v * factor)) for v in (self.x, self.y, self.w, self.h)))


_WORK_SIDE = 320  # detection runs on a frame scaled so its longer side is at most this


def find_heads(
    frame: np.ndarray, *, min_size_frac: float = 0.04, max_size_frac: float = 0.6
) -> list[Box]:
    """Every screw head in the frame, as boxes in the frame's pixels, sorted left
    to right. A head is a compact blob that differs from the local background."""
    gray = to_gray(frame)
    height, width = gray.shape
    scale = min(1.0, _WORK_SIDE / max(height, width))
    small = (
        cv2.resize(gray, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1.0
        else gray
    )
    sh, sw = small.shape
    side = min(sh, sw)
    k = max(3, (int(side * 0.35) | 1))
    background = cv2.medianBlur(cv2.resize(small, (sw // 4 or 1, sh // 4 or 1)), 5)
    background = cv2.resize(background, (sw, sh), interpolation=cv2.INTER_LINEAR)
    background = cv2.blur(background, (k, k))
    diff = cv2.absdiff(cv2.GaussianBlur(small, (5, 5), 0), background)
    _, mask = cv2.threshold(diff, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    min_side, max_side = min_size_frac * side, max_size_frac * side
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if not (min_side <= max(w, h) <= max_side):
            continue
        if not 0.6 <= w / h <= 1.6:
            continue
        if cv2.contourArea(contour) < 0.5 * w * h:
            continue
        boxes.append(Box(x, y, w, h).scaled(1.0 / scale))
    return sorted(boxes, key=lambda b: (b.x, b.y))


def find_main_head(frame: np.ndarray) -> Box | None:
    """The head a single-screw image or training video is about: the largest head
    found, ties broken by nearness to the centre. None when no head is found."""
    boxes = find_heads(frame, max_size_frac=0.98)
    if not boxes:
        return None
    gray = to_gray(frame)
    cy, cx = gray.shape[0] / 2.0, gray.shape[1] / 2.0

    def score(box: Box) -> tuple[float, float]:
        bx, by = box.center
        return (box.w * box.h, -((bx - cx) ** 2 + (by - cy) ** 2))

    return max(boxes, key=score)
