"""Frames like the thesis's training videos, drawn with OpenCV's primitives and nothing
of screwcam's renderer: a screw-head icon (a flat gray disc with a dark outline and a
dark recess: cross, cross with Pozidriv's ticks, hexalobular star, hexagon socket) or a
solid black hex head, zoomed until it fills the frame.

This is our own check, not held-back data: it is written from the issue's description
of the thesis videos ("icons zoomed until they fill the frame, solid black hex heads"),
by code the detector never trained on (its silhouette scenes draw our renderer's heads).
`docs/notes/thesis-pictures/evaluate.py` reports it by style and size."""

from __future__ import annotations

import math

import cv2
import numpy as np

STYLES = ("icon-light", "icon-dark", "solid-hex")
KINDS = ("innensechskant", "philips", "pozidriv", "sechskant", "torx")


def _polygon(cx: float, cy: float, radii: list[float], rot: float) -> np.ndarray:
    n = len(radii)
    pts = [
        (cx + r * math.cos(rot + math.tau * i / n), cy + r * math.sin(rot + math.tau * i / n))
        for i, r in enumerate(radii)
    ]
    return np.round(np.array(pts) * 16).astype(np.int32)  # 4 fractional bits


def _line(img, p0, p1, value: int, width: float) -> None:
    a = (round(p0[0] * 16), round(p0[1] * 16))
    b = (round(p1[0] * 16), round(p1[1] * 16))
    cv2.line(img, a, b, value, max(1, round(width)), cv2.LINE_AA, 4)


def _cross(img, cx, cy, r, rot, width, value) -> None:
    for k in range(2):
        a = rot + k * math.pi / 2
        dx, dy = r * math.cos(a), r * math.sin(a)
        _line(img, (cx - dx, cy - dy), (cx + dx, cy + dy), value, width)


def picture(
    rng: np.random.Generator,
    style: str,
    kind: str,
    diameter: float,
    size: tuple[int, int] = (640, 480),
    rotation: float | None = None,
    centre: tuple[float, float] | None = None,
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """One gray frame and the head's box (x, y, w, h) clipped to the frame. `style`:
    icon-light (on a white ground), icon-dark (on a dark ground), solid-hex (a black
    hexagon on a light ground; `kind` is then ignored)."""
    width, height = size
    rot = rng.uniform(0, math.pi) if rotation is None else rotation
    cx, cy = centre or (width / 2 + rng.uniform(-30, 30), height / 2 + rng.uniform(-20, 20))
    r = diameter / 2
    hexagon = _polygon(cx, cy, [r] * 6, rot)
    if style == "solid-hex":
        img = np.full((height, width), int(rng.uniform(200, 255)), np.uint8)
        cv2.fillPoly(img, [hexagon], int(rng.uniform(0, 30)), cv2.LINE_AA, 4)
    elif kind == "sechskant":  # an icon of a hex head: a flat hexagon with a dark outline
        ground = int(rng.uniform(235, 255) if style == "icon-light" else rng.uniform(30, 80))
        img = np.full((height, width), ground, np.uint8)
        cv2.fillPoly(img, [hexagon], int(rng.uniform(150, 220)), cv2.LINE_AA, 4)
        cv2.polylines(img, [hexagon], True, 0, max(2, round(r * 0.04)), cv2.LINE_AA, 4)
    else:
        ground = int(rng.uniform(235, 255) if style == "icon-light" else rng.uniform(30, 80))
        img = np.full((height, width), ground, np.uint8)
        c = (round(cx * 16), round(cy * 16))
        cv2.circle(img, c, round(r * 16), int(rng.uniform(150, 220)), -1, cv2.LINE_AA, 4)
        cv2.circle(img, c, round(r * 16), 0, max(2, round(r * 0.04)), cv2.LINE_AA, 4)
        dark = 20
        if kind == "innensechskant":
            cv2.fillPoly(img, [_polygon(cx, cy, [r * 0.45] * 6, rot)], dark, cv2.LINE_AA, 4)
        elif kind == "torx":
            star = _polygon(cx, cy, [r * 0.5, r * 0.32] * 6, rot)
            cv2.fillPoly(img, [star], dark, cv2.LINE_AA, 4)
        else:
            _cross(img, cx, cy, r * 0.6, rot, r * (0.18 if kind == "philips" else 0.16), dark)
            if kind == "pozidriv":
                for k in range(4):
                    a = rot + math.pi / 4 + k * math.pi / 2
                    p0 = (cx + r * 0.12 * math.cos(a), cy + r * 0.12 * math.sin(a))
                    p1 = (cx + r * 0.4 * math.cos(a), cy + r * 0.4 * math.sin(a))
                    _line(img, p0, p1, dark, r * 0.03)
    if style == "solid-hex" or kind == "sechskant":
        corners = hexagon / 16.0
        x0, y0 = corners.min(axis=0)
        x1, y1 = corners.max(axis=0)
    else:
        x0, y0, x1, y1 = cx - r, cy - r, cx + r, cy + r
    x0, y0 = max(0.0, float(x0)), max(0.0, float(y0))
    x1, y1 = min(float(width), float(x1)), min(float(height), float(y1))
    return img, (x0, y0, x1 - x0, y1 - y0)


def camera_look(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A little lens blur and sensor noise, as a camera filming a printed icon adds."""
    out = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)
    out += rng.normal(0, 3, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)
