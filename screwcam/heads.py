"""Finding screw heads in a frame with classical image processing (no model).

`find_heads` returns a box for every head in a frame (the live service, batch
testing of whole photos); `find_main_head` returns the one head a training video
is about (slicing, synthetic data). Both work on gray frames.

How: on a copy scaled to at most 320 px, edges are found as brightness *ratios*
(the gradient of a log image, after brightening a dim frame), so dim, overexposed
and shadowed parts count alike while soft shadow edges and surface texture stay
below the threshold. Closed, compact outlines become heads; an outline broken on
its shadow side is completed from its arcs (their enclosing circle). Tuned and
tested against the ground truth of `screwcam.render.DemoSource`.
"""

from __future__ import annotations

import cv2
import numpy as np

from .frames import Box
from .preprocess import to_gray

_WORK_SIDE = 320  # detection runs on a frame scaled so its longer side is at most this
_LOG_OFFSET = 24.0  # keeps the log of dark, noisy pixels from exploding
# A head's outline is an edge whose brightness ratio exceeds this across ~2 px at the
# working scale; soft shadow edges and surface texture stay below it.
_EDGE_RATIO = 1.3
_MIN_FILL = 0.62  # a head fills at least this share of its box (circle: 0.79, hex: 0.75)


def _log_lut() -> np.ndarray:
    """uint8 -> uint8 lookup: scaled log brightness, so differences are ratios."""
    values = np.log(np.arange(256, dtype=np.float64) + _LOG_OFFSET)
    values = (values - values[0]) * (255.0 / (values[-1] - values[0]))
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


_LUT = _log_lut()
_ARC_GROWTH = 1.08  # enclosing circle this much larger than the box: an incomplete outline
_ARC_FILL = 0.55  # ... if the arc's hull still covers this much of the circle
_ROUND_ASPECT = 0.85  # heads are round or hexagonal: a flatter box is an incomplete outline
_JOIN_REACH = 1.1  # pieces within this many enclosing-circle radii join an outline
_MAX_STRETCH = 4.0  # a dim frame is brightened at most this much (more only lifts noise)
_LOG_SCALE = 255.0 / (np.log(255.0 + _LOG_OFFSET) - np.log(_LOG_OFFSET))
_EDGE_THRESHOLD = float(np.log(_EDGE_RATIO) * _LOG_SCALE)
_K3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
_K5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def work_size(height: int, width: int) -> tuple[tuple[int, int], float]:
    """((width, height), scale) of the working copy of a frame: scaled (INTER_AREA) so
    its longer side is at most _WORK_SIDE."""
    scale = min(1.0, _WORK_SIDE / max(height, width))
    if scale >= 1.0:
        return (width, height), 1.0
    return (max(1, int(round(width * scale))), max(1, int(round(height * scale)))), scale


def _work_image(frame: np.ndarray) -> tuple[np.ndarray, float]:
    gray = to_gray(frame)
    size, scale = work_size(*gray.shape[:2])
    if scale < 1.0:
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray, scale


def _candidates(small: np.ndarray, min_side: float) -> list[tuple[int, int, int, int, float]]:
    """(x, y, w, h, fill) of closed outlines in a work-scale gray image."""
    small = _stretched(small)
    logimg = cv2.medianBlur(cv2.LUT(small, _LUT), 3)
    edges = cv2.morphologyEx(logimg, cv2.MORPH_GRADIENT, _K3)
    _, mask = cv2.threshold(edges, _EDGE_THRESHOLD, 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _K5)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [_shape(points) for points in _group_arcs(contours, min_side)]


def _group_arcs(contours, min_side: float) -> list[np.ndarray]:
    """Point sets of outlines. An outline broken into arcs (a rim that fades into
    the surface on one side) comes back as one set: small pieces lying within the
    enclosing circle of a bigger piece join it."""
    pieces = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if w >= 4 or h >= 4:
            pieces.append((w * h, x, y, w, h, contour))
    pieces.sort(key=lambda p: p[0], reverse=True)
    if not pieces:
        return []
    boxes = np.array([p[1:5] for p in pieces], dtype=np.float32)
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    taken = np.zeros(len(pieces), dtype=bool)
    groups = []
    for i, (_, _, _, w, h, contour) in enumerate(pieces):
        if taken[i]:
            continue
        taken[i] = True
        if max(w, h) < min_side:
            continue  # too small to be a head; smaller pieces cannot make it one
        (cx, cy), radius = cv2.minEnclosingCircle(contour)
        reach = _JOIN_REACH * radius
        near = (
            ~taken
            & (np.maximum(np.abs(x0 - cx), np.abs(x1 - cx)) <= reach)
            & (np.maximum(np.abs(y0 - cy), np.abs(y1 - cy)) <= reach)
        )
        members = [contour] + [pieces[j][5] for j in np.flatnonzero(near)]
        taken |= near
        groups.append(np.vstack(members) if len(members) > 1 else contour)
    return groups


def _shape(points: np.ndarray) -> tuple[int, int, int, int, float]:
    """(x, y, w, h, fill) of one outline's point set."""
    x, y, w, h = cv2.boundingRect(points)
    # the hull closes an outline that has gaps (a dark rim against a dark shadow)
    hull = cv2.convexHull(points)
    fill = cv2.contourArea(hull) / float(w * h)
    (cx, cy), radius = cv2.minEnclosingCircle(hull)
    if 2.0 * radius > _ARC_GROWTH * max(w, h) or min(w, h) < _ROUND_ASPECT * max(w, h):
        # only an arc of a round outline is visible (side light: the far rim melts
        # into the head's own shadow); the arc's enclosing circle is the head
        circle_fill = cv2.contourArea(hull) / (np.pi * radius * radius)
        fill = circle_fill if circle_fill >= _ARC_FILL else 0.0
        side = int(round(2.0 * radius))
        x, y = int(round(cx - radius)), int(round(cy - radius))
        w = h = side
    return x, y, w, h, fill


def _drop_nested(boxes: list[Box]) -> list[Box]:
    """Keep the larger of two boxes when one lies mostly inside the other (a recess
    found separately from its head's broken outline)."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: b.w * b.h, reverse=True):
        area = box.w * box.h
        inside = False
        for big in kept:
            ix = max(0, min(box.x + box.w, big.x + big.w) - max(box.x, big.x))
            iy = max(0, min(box.y + box.h, big.y + big.h) - max(box.y, big.y))
            if ix * iy >= 0.6 * area:
                inside = True
                break
        if not inside:
            kept.append(box)
    return kept


def find_heads(
    frame: np.ndarray, *, min_size_frac: float = 0.04, max_size_frac: float = 0.6
) -> list[Box]:
    """Every screw head in the frame, as boxes in the frame's pixels, sorted left
    to right. A head is a compact, closed outline of strong *relative* contrast
    (a brightness ratio, so dim, overexposed and shadowed parts count alike);
    soft shadow edges, surface texture and elongated shapes are rejected."""
    small, scale = _work_image(frame)
    height, width = frame.shape[:2]
    side = min(small.shape)
    min_side, max_side = min_size_frac * side, max_size_frac * side
    boxes = []
    for x, y, w, h, fill in _candidates(small, min_side):
        if not (min_side <= max(w, h) <= max_side):
            continue
        if not 0.7 <= w / h <= 1.43 or fill < _MIN_FILL:
            continue
        # the outline's edge band lies ~1 px outside the head: shrink it back
        box = Box(x + 1, y + 1, w - 2, h - 2)
        box = box.scaled(1.0 / scale) if scale < 1.0 else box
        # a completed arc may reach past the border: keep boxes inside the frame
        x0, y0 = max(0, box.x), max(0, box.y)
        x1, y1 = min(width, box.x + box.w), min(height, box.y + box.h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            boxes.append(Box(x0, y0, x1 - x0, y1 - y0))
    return sorted(_drop_nested(boxes), key=lambda b: (b.x, b.y))


def _stretched(small: np.ndarray) -> np.ndarray:
    """Brighten a dim work image so its highlights sit near white (at most
    _MAX_STRETCH times): contrast then means the same whatever the exposure."""
    hist = cv2.calcHist([small], [0], None, [256], [0, 256]).ravel()
    high = int(np.searchsorted(np.cumsum(hist), 0.995 * small.size))
    if high < 200:
        small = cv2.convertScaleAbs(small, alpha=min(_MAX_STRETCH, 230.0 / max(high, 1)))
    return small


def _main_circle(frame: np.ndarray) -> Box | None:
    """The strongest large circle (radius 18-50 % of the shorter side) by the Hough
    transform: robust to shadow edges crossing the head and to faint outlines, but
    less tight than the outline (a hex head gets its circumcircle)."""
    small, scale = _work_image(frame)
    blurred = cv2.GaussianBlur(_stretched(small), (5, 5), 0)
    side = min(blurred.shape)
    circles = cv2.HoughCircles(
        blurred,
        cv2.HOUGH_GRADIENT_ALT,
        dp=1.5,
        minDist=side,
        param1=150,
        param2=0.6,
        minRadius=int(0.18 * side),
        maxRadius=int(0.5 * side),
    )
    if circles is None:
        return None
    x, y, r = (float(v) for v in circles[0][0])
    box = Box(int(round(x - r)), int(round(y - r)), int(round(2 * r)), int(round(2 * r)))
    return box.scaled(1.0 / scale) if scale < 1.0 else box


def find_main_head(frame: np.ndarray) -> Box | None:
    """The head a single-screw image or training video is about, or None.

    The outline finder's largest head (ties: nearest the centre) is cross-checked
    with the strongest Hough circle. The circle wins when the outline finder found
    nothing (a hard shadow edge crossing the head, a washed-out outline) or only
    the recess inside it; otherwise the tighter outline box is kept."""
    boxes = find_heads(frame, max_size_frac=0.98)
    circle = _main_circle(frame)
    if not boxes:
        return circle
    gray = to_gray(frame)
    cy, cx = gray.shape[0] / 2.0, gray.shape[1] / 2.0

    def score(box: Box) -> tuple[float, float]:
        bx, by = box.center
        return (box.w * box.h, -((bx - cx) ** 2 + (by - cy) ** 2))

    best = max(boxes, key=score)
    if circle is None or best.iou(circle) >= 0.5:
        return best
    ix = max(0, min(best.x + best.w, circle.x + circle.w) - max(best.x, circle.x))
    iy = max(0, min(best.y + best.h, circle.y + circle.h) - max(best.y, circle.y))
    area = best.w * best.h
    if ix * iy >= 0.8 * area and circle.w * circle.h > 1.8 * area:
        return circle  # the outline finder only saw the recess
    return best


_REFINE_AGREE = 0.6  # an outline replaces a learned box only if they overlap this much


def refine_boxes(
    gray: np.ndarray, boxes: list[Box], small: np.ndarray | None = None
) -> list[tuple[Box, bool]]:
    """A learned detector's boxes snapped to the heads' own outlines, where found:
    (box, whether an outline confirmed it) for each box.

    One pass of the outline finder above over the whole frame (at its working scale)
    gives the closed, compact outlines; each box is replaced by the outline that
    overlaps it most if their IoU is at least 0.6 (so never by the recess alone nor by
    a neighbour), else kept as it is: the detector finds the heads, the outlines make
    their boxes tight. Costs about one classical pass, whatever the number of heads.
    `small`: the frame already scaled to `work_size` (INTER_AREA), if the caller has it
    (the detector's letterbox makes the same image); it saves one resize."""
    if not boxes:
        return []
    if small is None:
        small, scale = _work_image(gray)
    else:
        size, scale = work_size(*gray.shape[:2])
        if small.shape[:2] != size[::-1]:
            raise ValueError(f"work image {small.shape[:2]} is not the frame's {size[::-1]}")
    min_side = 0.5 * min(max(b.w, b.h) for b in boxes) * scale
    outlines = []
    for x, y, w, h, fill in _candidates(small, min_side):
        if fill < _MIN_FILL or not 0.7 <= w / h <= 1.43:
            continue
        # the outline's edge band lies ~1 px outside the head: shrink it back
        box = Box(x + 1, y + 1, w - 2, h - 2)
        outlines.append(box.scaled(1.0 / scale) if scale < 1.0 else box)
    refined = []
    for box in boxes:
        best, best_iou = box, _REFINE_AGREE
        for outline in outlines:
            iou = outline.iou(box)
            if iou > best_iou:
                best, best_iou = outline, iou
        refined.append((best, best is not box))
    return refined
