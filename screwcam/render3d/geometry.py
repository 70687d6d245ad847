"""Screw-head geometry as height fields.

Every shape is a function of head-local coordinates (X, Y), in units of the head's
outer radius (the head's outline has radius 1; +Z points at the camera). A head is a
radial or hexagonal *profile* (the style) with a *recess* cut into its top (the drive).
Recesses are defined in their own units (the recess's top opening has radius 1) and
scaled by the style's recess size. Depths follow the standards' proportions:

* Phillips, ISO 4757 type H: four wings with V-tapered flanks (wider at the top, the
  wing floor rising toward the wing tip), a conical bottom and the four sloped faces
  between the wings (the "diamond" seen at the centre).
* Pozidriv, ISO 4757 type Z: four parallel-sided wings with square ends, four narrow
  secondary slots on the 45° diagonals, a flatter bottom, and the four shallow radial
  ticks stamped into the head surface at 45°.
* Torx, ISO 10664 hexalobular: six rounded lobes between six larger concave flanks
  (point-to-point A and across-flats B with B/A = 0.72), vertical walls, cone bottom.
* Hex socket: a hexagon with vertical walls, a 118° drill cone at the bottom and a
  small countersink at the mouth.
* Hex head (no recess): hexagon with a 30° chamfer (the circle seen on its top face),
  optional embossed marks (property class, maker's letters).

The functions return float32 arrays: height (head units, 0 = the surface the screw
sits on) and a uint8 part map (PART_* below).
"""

from __future__ import annotations

import cv2
import numpy as np

PART_NONE, PART_HEAD, PART_RECESS, PART_MARK = 0, 1, 2, 3

# Head styles, and which styles each drive type comes with.
STYLES: tuple[str, ...] = (
    "pan",
    "countersunk",
    "cheese",
    "button",
    "flange",
    "cap",
    "hex",
    "washer_hex",
)
LABEL_STYLES: dict[int, tuple[str, ...]] = {
    0: ("cap", "button", "countersunk", "flange"),  # innensechskant (hex socket)
    1: ("pan", "countersunk", "cheese", "button", "flange"),  # philips
    2: ("pan", "countersunk", "cheese", "button", "flange"),  # pozidriv
    3: ("hex", "washer_hex"),  # sechskant (hex head)
    4: ("pan", "countersunk", "cheese", "button", "flange", "cap"),  # torx
}
RECESS_OF_LABEL: dict[int, "str | None"] = {
    0: "hex_socket",
    1: "phillips",
    2: "pozidriv",
    3: None,
    4: "torx",
}
# Objects that are round/metal/hexagonal like heads but are not heads.
DISTRACTORS: tuple[str, ...] = (
    "washer",
    "nut",
    "coin",
    "hole",
    "rivet",
    "disc",
    "card",  # a flat card/label/paper (printed with a real photo)
    "rod",  # a pen, pencil, cable or pin lying on the surface
)

_COS30 = np.float32(np.cos(np.pi / 6))
_WALL = 9.0  # slope of a "vertical" wall, in head units per head unit (finite for shading)


def _sat(x):
    return np.clip(x, 0.0, 1.0)


def hex_sdf(X: np.ndarray, Y: np.ndarray, corner_radius: float) -> np.ndarray:
    """Signed distance-like field of a hexagon with corners on the X axis."""
    ax, ay = np.abs(X), np.abs(Y)
    return np.maximum(ay, ax * _COS30 + ay * 0.5) - corner_radius * _COS30


# --------------------------------------------------------------------------- recesses
# Each recess function takes recess-unit coordinates and returns (depth >= 0, extra mark
# depth >= 0 for features outside the opening such as Pozidriv ticks). Depth is in
# recess units (1 = the opening's radius).


def phillips(X, Y, p):
    ax, ay = np.abs(X), np.abs(Y)
    u = np.maximum(ax, ay)  # along the wing
    w = np.minimum(ax, ay)  # across the wing
    depth = p.get("depth", 0.95)
    taper = p.get("taper", 0.5)
    half = p.get("wing", 0.2) * (1.0 - taper * u)  # flank half-width at the top
    wall = (half - w) * 5.0  # V flanks (~11° per side)
    floor = depth * _sat((1.0 - u) * 1.5)  # the wing floor rises to the tip
    wings = np.minimum(wall, floor)
    # the four sloped faces between the wings (centre "diamond", corners on the wings)
    diamond = (p.get("diamond", 0.42) - (ax + ay) * 0.70710677) * 1.4
    d = np.maximum(wings, diamond)
    # conical bottom: deepest at the centre
    d = np.minimum(d, depth * (1.05 - 0.55 * np.hypot(X, Y)))
    # slightly rounded tips
    d = np.minimum(d, (1.0 - np.hypot(u, w * 1.6)) * 3.0 + 0.1)
    return np.maximum(d, 0.0), None


def pozidriv(X, Y, p):
    ax, ay = np.abs(X), np.abs(Y)
    u = np.maximum(ax, ay)
    w = np.minimum(ax, ay)
    depth = p.get("depth", 0.85)
    half = p.get("wing", 0.17)
    wall = (half - w) * 12.0  # parallel, nearly vertical flanks
    end = (0.93 - u) * 10.0  # square wing ends
    floor = depth * _sat((1.0 - u) * 3.0)
    wings = np.minimum(np.minimum(wall, end), floor)
    # secondary slots on the diagonals
    dx, dy = (ax + ay) * 0.70710677, np.abs(ax - ay) * 0.70710677
    sec = np.minimum((p.get("sec_wing", 0.075) - dy) * 12.0, (p.get("sec_len", 0.52) - dx) * 8.0)
    sec = np.minimum(sec, depth * 0.7)
    # square-ish centre
    centre = np.minimum((0.3 - u) * 8.0, depth)
    d = np.maximum(np.maximum(wings, sec), centre)
    d = np.minimum(d, depth * (1.1 - 0.45 * np.hypot(X, Y)))
    d = np.maximum(d, 0.0)
    # the four ticks on the head surface, at 45° between the wings
    t0, t1 = p.get("tick_from", 0.72), p.get("tick_to", 1.2)
    tick = np.minimum((p.get("tick_w", 0.035) - dy) * 6.0, np.minimum(dx - t0, t1 - dx) * 2.0)
    tick = np.clip(tick, 0.0, p.get("tick_depth", 0.06))
    return d, tick


def torx(X, Y, p):
    r = np.hypot(X, Y)
    phi = np.arctan2(Y, X)
    sector = np.float32(np.pi / 3)
    f = (phi + sector / 2) % sector - sector / 2
    px, py = r * np.cos(f), np.abs(r * np.sin(f))
    re, ri = p.get("re", 0.17), p.get("ri", 0.42)
    inner = p.get("inner", 0.72)  # B / A
    lobe = np.hypot(px - (1.0 - re), py) - re
    core = r - (inner + 0.12)
    rho = inner + ri
    cut = np.hypot(px - rho * 0.8660254, py - rho * 0.5) - ri
    k = 0.08  # smooth union of lobes and core
    h = _sat(0.5 + 0.5 * (core - lobe) / k)
    shape = core * (1 - h) + lobe * h - k * h * (1 - h)
    sdf = np.maximum(shape, -cut)
    depth = p.get("depth", 0.9)
    d = np.minimum(-sdf * 14.0, depth + 0.25 * _sat(1.0 - r))
    return np.maximum(d, 0.0), None


def hex_socket(X, Y, p):
    r = np.hypot(X, Y)
    sdf = hex_sdf(X, Y, 1.0)
    depth = p.get("depth", 1.3)
    cone = 0.6 * _sat(0.866 - r)  # 118° drill point
    d = np.minimum(-sdf * 14.0, depth + cone)
    if p.get("countersink"):  # a small countersink at the mouth (not on every head)
        sink = (p["countersink"] - r) * 0.9
        d = np.maximum(d, np.clip(sink, 0.0, 0.12))
    return np.maximum(d, 0.0), None


RECESSES = {
    "phillips": phillips,
    "pozidriv": pozidriv,
    "torx": torx,
    "hex_socket": hex_socket,
}


#: recess -> parameter -> (low, high): standard-like proportions, drawn uniformly
_RECESS_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "phillips": {
        "depth": (0.8, 1.1),
        "wing": (0.22, 0.3),
        "taper": (0.25, 0.5),
        "diamond": (0.42, 0.56),
    },
    "pozidriv": {
        "depth": (0.7, 1.0),
        "wing": (0.16, 0.22),
        "sec_wing": (0.055, 0.08),
        "sec_len": (0.32, 0.45),
        "tick_from": (0.65, 0.85),
        "tick_to": (1.1, 1.35),
        "tick_w": (0.025, 0.045),
        "tick_depth": (0.03, 0.09),
    },
    "torx": {"depth": (0.7, 1.1), "re": (0.14, 0.2), "ri": (0.36, 0.48), "inner": (0.69, 0.75)},
}


def recess_params(rng: np.random.Generator, recess: str) -> dict:
    """Random but standard-like proportions for one recess."""
    if recess == "hex_socket":
        sink = rng.uniform(1.02, 1.12) if rng.random() < 0.6 else 0.0
        return {"depth": rng.uniform(1.0, 1.6), "countersink": sink}
    ranges = _RECESS_RANGES.get(recess)
    if ranges is None:
        raise ValueError(f"unknown recess {recess!r}")
    return {name: rng.uniform(low, high) for name, (low, high) in ranges.items()}


# --------------------------------------------------------------------------- styles


def style_params(rng: np.random.Generator, style: str, recess: "str | None") -> dict:
    """Random proportions for a head style (heights in head radii)."""
    p: dict = {"style": style}
    if style == "pan":
        p.update(height=rng.uniform(0.45, 0.75), q=rng.uniform(2.2, 4.0), recess=(0.5, 0.64))
    elif style == "cheese":
        p.update(height=rng.uniform(0.55, 0.8), q=rng.uniform(6.0, 12.0), recess=(0.48, 0.6))
    elif style == "button":
        p.update(height=rng.uniform(0.35, 0.55), recess=(0.42, 0.55))
    elif style == "countersunk":
        p.update(raised=rng.choice([0.0, rng.uniform(0.04, 0.15)]), recess=(0.5, 0.62))
        p.update(gap=rng.uniform(0.0, 0.05))
    elif style == "flange":
        p.update(
            body=rng.uniform(0.68, 0.8),
            flange_h=rng.uniform(0.06, 0.14),
            height=rng.uniform(0.45, 0.7),
            recess=(0.5, 0.62),
        )
    elif style == "cap":
        p.update(height=rng.uniform(0.8, 1.2), chamfer=rng.uniform(0.8, 0.9), recess=(0.52, 0.64))
        # DIN 912 heads are often knurled: straight ridges, seen on the side when tilted
        p.update(knurl=int(rng.integers(40, 90)) if rng.random() < 0.5 else 0)
    elif style == "hex":
        p.update(height=rng.uniform(0.5, 0.8), chamfer=rng.uniform(0.86, 0.95))
    elif style == "washer_hex":
        p.update(
            height=rng.uniform(0.5, 0.75),
            hex_r=rng.uniform(0.74, 0.86),
            washer_h=rng.uniform(0.06, 0.14),
            chamfer=rng.uniform(0.86, 0.95),
        )
    else:
        raise ValueError(f"unknown style {style!r}")
    if recess is not None and "recess" in p:
        lo, hi = p["recess"]
        scale = rng.uniform(lo, hi)
        if recess == "hex_socket":
            scale *= 0.95
        if style == "flange":
            scale *= p["body"]
        p["recess_r"] = scale
    return p


def _profile(style: str, X, Y, r, p):
    """Height of the head body (no recess) and its outline mask."""
    if style == "pan":
        q = p["q"]
        top = p["height"] * _sat(1.0 - r**q) ** (1.0 / q)
        h = np.minimum(top + 0.05, (1.0 - r) * _WALL)
    elif style == "cheese":
        q = p["q"]
        top = p["height"] * (_sat(1.0 - r**q) ** (1.0 / q)) * (1.0 - 0.06 * r * r)
        h = np.minimum(top + 0.05, (1.0 - r) * _WALL)
    elif style == "button":
        top = 0.08 + p["height"] * np.sqrt(_sat(1.0 - r * r))
        h = np.minimum(top, (1.0 - r) * _WALL)
    elif style == "countersunk":
        raised = p["raised"]
        h = raised * np.sqrt(_sat(1.0 - r * r))
        # the countersink gap around the head: a thin dark groove
        gap = p["gap"]
        groove = -0.15 * _sat(1.0 - np.abs(r - 1.0 - gap / 2) / (gap / 2 + 0.012))
        h = np.where(r < 1.0, h, groove)
    elif style == "flange":
        b = p["body"]
        flange = np.minimum(p["flange_h"], (1.0 - r) * _WALL)
        rb = r / b
        body = p["height"] * _sat(1.0 - rb**3) ** (1 / 3)
        h = np.maximum(flange, np.minimum(body + p["flange_h"], (b - r) * _WALL + p["flange_h"]))
    elif style == "cap":
        c = p["chamfer"]
        h = np.minimum(p["height"], p["height"] - (r - c) * 1.4)
        rr = r
        if p.get("knurl"):
            rr = r * (1.0 + 0.015 * np.sin(np.arctan2(Y, X) * p["knurl"]))
        h = np.minimum(h, (1.0 - rr) * _WALL)
    elif style == "hex":
        sdf = hex_sdf(X, Y, 1.0)
        c = p["chamfer"] * _COS30
        h = np.minimum(p["height"], p["height"] - (r - c) * 0.58)  # 30° chamfer
        h = np.minimum(h, -sdf * _WALL)
    elif style == "washer_hex":
        hr = p["hex_r"]
        washer = np.minimum(p["washer_h"], (1.0 - r) * _WALL)
        sdf = hex_sdf(X, Y, hr)
        c = p["chamfer"] * _COS30 * hr
        body = np.minimum(p["height"], p["height"] - (r - c) * 0.58)
        body = np.minimum(body, -sdf * _WALL) + p["washer_h"]
        h = np.maximum(washer, np.where(sdf < 0, body, 0.0))
    else:
        raise ValueError(f"unknown style {style!r}")
    h = np.asarray(h, np.float32)
    if style == "countersunk":
        mask = r < 1.0
    else:
        h = np.maximum(h, 0.0)
        mask = h > 1e-4
    return h, mask


def marks_field(rng: np.random.Generator, res: int = 96) -> np.ndarray:
    """A small image of embossed hex-head marks (property class, maker's letters) in
    [0, 1], to be sampled in head coordinates (the image spans [-1, 1]²)."""
    img = np.zeros((res, res), np.uint8)
    texts = [str(rng.choice(["8.8", "10.9", "12.9", "5.6", "A2-70", "A4-80"]))]
    if rng.random() < 0.7:
        texts.append(str(rng.choice(["WB", "HF", "BUL", "SW", "TF", "KAM", "F", "RI"])))
    font = cv2.FONT_HERSHEY_SIMPLEX
    spots = [(0.0, 0.35), (0.0, -0.3)] if len(texts) == 2 else [(0.0, 0.1)]
    rng.shuffle(spots)
    for text, (sx, sy) in zip(texts, spots, strict=False):
        scale = res / 190.0
        (tw, th), _ = cv2.getTextSize(text, font, scale, 2)
        x = int(res / 2 + sx * res / 2 - tw / 2)
        y = int(res / 2 + sy * res / 2 + th / 2)
        cv2.putText(img, text, (x, y), font, scale, 255, max(1, res // 48), cv2.LINE_AA)
    return img.astype(np.float32) / 255.0


def build_head(X, Y, style: str, sp: dict, recess: "str | None", rp: dict, marks=None):
    """Height field (head units) and part map of one head at head-local coords X, Y."""
    r = np.hypot(X, Y)
    h, mask = _profile(style, X, Y, r, sp)
    part = np.where(mask, PART_HEAD, PART_NONE).astype(np.uint8)
    if recess is not None:
        s = sp["recess_r"]
        inside = r < s * 1.45
        if inside.any():
            xs, ys = X[inside] / s, Y[inside] / s
            d, tick = RECESSES[recess](xs, ys, rp)
            depth = d * s
            hv = h[inside] - depth
            # the recess proper (deeper than a countersink or worn bevel at its mouth)
            pv = np.where(d > 0.22, PART_RECESS, part[inside])
            if tick is not None:
                hv = hv - tick * s
                pv = np.where((tick > 1e-3) & (d <= 1e-3), PART_MARK, pv)
            h[inside] = hv
            part[inside] = pv
    if marks is not None and style in ("hex", "washer_hex"):
        size = marks.shape[0]
        span = 0.62 * (sp.get("hex_r", 1.0))
        mx = ((X / span) * 0.5 + 0.5) * (size - 1)
        my = ((Y / span) * 0.5 + 0.5) * (size - 1)
        m = cv2.remap(marks, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR)
        sign = 1.0 if sp.get("marks_raised", True) else -1.0
        h = h + sign * 0.035 * m  # embossed: part of the head (PART_MARK is for recess ticks)
    return h, part, mask


def build_distractor(X, Y, kind: str, p: dict):
    """Height field and mask of a non-head object (one of DISTRACTORS)."""
    r = np.hypot(X, Y)
    if kind == "washer":
        hole = p.get("hole", 0.5)
        th = p.get("thick", 0.12)
        h = np.minimum(th, np.minimum((1.0 - r), (r - hole)) * _WALL)
        h = np.where(r < hole, 0.0, np.maximum(h, 0.0))
        mask = (r < 1.0) & (r > hole)
    elif kind == "nut":
        sdf = hex_sdf(X, Y, 1.0)
        hole = p.get("hole", 0.45)
        height = p.get("height", 0.8)
        body = np.minimum(height, height - (r - 0.9 * _COS30) * 0.58)
        body = np.minimum(body, -sdf * _WALL)
        thread = 0.04 * np.sin(r * 60.0)
        inner = np.minimum(body, (r - hole) * 2.0 + thread)
        h = np.where(r < hole, -0.6, np.maximum(inner, 0.0))
        mask = sdf < 0
    elif kind == "coin":
        th = p.get("thick", 0.08)
        h = np.minimum(th, (1.0 - r) * _WALL)
        rim = 0.02 * _sat(1.0 - np.abs(r - 0.92) / 0.04)
        h = np.maximum(h, 0.0) + rim * (r < 1)
        mask = r < 1.0
    elif kind == "hole":
        h = np.where(r < 1.0, -p.get("depth", 1.0), 0.0)
        h = np.maximum(h, -(1.06 - r) * 1.5)
        h = np.minimum(h, 0.0)
        mask = r < 1.0
    elif kind == "rivet":
        h = 0.05 + p.get("height", 0.45) * np.sqrt(_sat(1.0 - r * r))
        h = np.minimum(h, (1.0 - r) * _WALL)
        h = np.maximum(h, 0.0)
        mask = r < 1.0
    elif kind == "disc":
        h = np.minimum(p.get("height", 0.5), (1.0 - r) * _WALL)
        h = np.minimum(h, p.get("height", 0.5) - (r - 0.85) * 1.2)
        h = np.maximum(h, 0.0)
        mask = r < 1.0
    elif kind == "card":
        half_w = p.get("card_w", 0.8)
        half_h = np.sqrt(max(0.05, 1.0 - half_w * half_w))  # corners on the unit circle
        inside = np.maximum(np.abs(X) - half_w, np.abs(Y) - half_h)
        h = np.where(inside < 0, p.get("thick", 0.1) * 0.3, 0.0)
        mask = inside < 0
    elif kind == "rod":
        half_t = p.get("rod_t", 0.15)
        d = np.hypot(np.maximum(np.abs(X) - (1.0 - half_t), 0.0), Y)  # capsule along X
        h = half_t * np.sqrt(_sat(1.0 - (d / half_t) ** 2))
        mask = d < half_t
    else:
        raise ValueError(f"unknown distractor {kind!r}")
    h = np.asarray(h, np.float32)
    part = np.where(mask, PART_HEAD, PART_NONE).astype(np.uint8)
    return h, part, mask
