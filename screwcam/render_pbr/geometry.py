"""Screw heads as triangle meshes, built in NumPy (no Mitsuba here).

A head is a 2.5-D height field: seen from above, no drive recess has an undercut, so the
top of every head is a function z(x, y). Units: the round head's radius is 1 (a hex head's
corners lie on radius 1); z = 0 is the surface the screw sits on (a countersunk head is
flush with it).

The height field is evaluated on a square raster (`Head.height`, `RASTER` samples across
the head's footprint), so recesses can be worn (cammed out) with image operations and
finishes can put dirt where the recess is deep. The mesh samples that raster on a polar
grid whose outer ring follows the head's outline exactly (a circle, or a hexagon whose
corners are grid vertices), then runs a vertical side wall down into the surface.

Recesses follow the standards' idea of each drive:
- hex socket: a hexagon (across flats 0.38-0.55 of the head diameter), deep, with a
  118-degree drill-point bottom and a small entry countersink;
- Phillips (ISO 4757 type H): four tapered wings whose floors slope up to the rim, V-shaped
  wing walls, and a conical centre that bevels the four inner corners;
- Pozidriv (type Z): four parallel-sided wings with steep walls, a steeper and smaller
  centre cone, four narrow secondary wings at 45 degrees, and four ticks on the head's
  surface at 45 degrees (sometimes faint, worn or painted over);
- Torx (ISO 10664): a hexalobular outline (points 0.46-0.56 of the head radius out,
  inner/outer diameter ratio 0.72) with near-vertical walls and a flat floor;
- hex head: a hexagon prism with a 30-degree chamfer on top, sometimes embossed or
  stamped marks, on its own, with a flange, or on a washer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

RECESS_STYLES: tuple[str, ...] = ("pan", "countersunk", "cheese", "button", "flange")
HEX_STYLES: tuple[str, ...] = ("hex", "flange", "washer")
#: which head styles each class comes in (0 hex socket, 1 Phillips, 2 Pozidriv, 3 hex head,
#: 4 Torx); hex sockets and Torx sit in cap (cheese), button and flange heads too
LABEL_STYLES: dict[int, tuple[str, ...]] = {
    0: ("cheese", "button", "countersunk", "flange", "pan"),
    1: ("pan", "countersunk", "cheese", "flange", "button"),
    2: ("pan", "countersunk", "cheese", "flange", "button"),
    3: HEX_STYLES,
    4: ("pan", "countersunk", "cheese", "button", "flange"),
}
TICK_STATES: tuple[str, ...] = ("sharp", "faint", "worn", "painted")
#: raster samples across the footprint (the height field's resolution)
RASTER = 160
#: polar mesh: rings from the axis to the outline, and angles (a multiple of 24 puts the
#: hexagon's corners and the 45-degree ticks on grid lines)
RINGS, ANGLES = 40, 144
_NO_CUT = -1e9


@dataclass
class Head:
    """One head: its height field on a square raster over [-extent, extent]^2, its outline
    r(theta), and what was drawn (style, recess angle, ...) for the info dict."""

    label: int
    style: str
    extent: float  # half the raster's side, in head radii
    height: np.ndarray  # (RASTER, RASTER) float32 z; row 0 is y = -extent
    depth: np.ndarray  # how far below the untouched head surface each point is cut (>= 0)
    outline: object  # callable theta (array) -> radius of the head's edge
    footprint: float  # largest outline radius
    top: float  # the head's highest z
    hole: float  # radius of the hole in the surface (countersunk: the head's edge)
    facts: dict[str, object] = field(default_factory=dict)


def _grid(extent: float) -> tuple[np.ndarray, np.ndarray]:
    s = np.linspace(-extent, extent, RASTER, dtype=np.float64)
    return np.meshgrid(s, s)


def _rot(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(angle), math.sin(angle)
    return c * x + s * y, -s * x + c * y


def hexagon_sd(x: np.ndarray, y: np.ndarray, apothem: float) -> np.ndarray:
    """Signed distance-like value to a hexagon with flats facing +-x rotated by 0: positive
    inside (apothem minus the largest projection on the three flat normals)."""
    proj = np.abs(x)
    for k in (1, 2):
        a = k * math.pi / 3.0
        proj = np.maximum(proj, np.abs(x * math.cos(a) + y * math.sin(a)))
    return apothem - proj


def hexagon_radius(theta: np.ndarray, apothem: float) -> np.ndarray:
    """The hexagon's boundary radius at angle theta (flat normals at 0, 60, 120 degrees)."""
    local = np.mod(theta + math.pi / 6.0, math.pi / 3.0) - math.pi / 6.0
    return apothem / np.cos(local)


# --- head solids --------------------------------------------------------------------------


def _profile(r: np.ndarray, height: float, p: float, q: float) -> np.ndarray:
    """A rounded head profile: height * (1 - r^p)^(1/q) for r < 1, 0 outside."""
    inside = np.clip(1.0 - np.clip(r, 0.0, 1.0) ** p, 0.0, 1.0)
    return height * inside ** (1.0 / q)


def _round_head(rng: np.random.Generator, style: str, r: np.ndarray) -> tuple[np.ndarray, float]:
    """(z of the untouched head surface, hole radius in the ground)."""
    if style == "pan":
        k = rng.uniform(0.5, 0.78)
        return _profile(r, k, rng.uniform(2.6, 4.5), rng.uniform(2.0, 3.2)), 0.9
    if style == "button":
        k = rng.uniform(0.42, 0.62)
        return _profile(r, k, rng.uniform(1.8, 2.4), rng.uniform(1.5, 2.0)), 0.9
    if style == "cheese":
        k = rng.uniform(0.7, 1.3)
        return _profile(r, k, rng.uniform(10.0, 24.0), rng.uniform(4.0, 8.0)), 0.9
    if style == "flange":
        k = rng.uniform(0.45, 0.7)
        inner = rng.uniform(0.68, 0.8)
        dome = _profile(r / inner, k, rng.uniform(2.5, 4.0), rng.uniform(2.0, 3.0))
        t = rng.uniform(0.07, 0.14)
        flange = t * (1.0 - 0.35 * np.clip((r - inner) / (1.0 - inner), 0, 1)) * (r < 1.0)
        flange = flange * np.clip((1.0 - r) / 0.03, 0.0, 1.0) ** 0.5
        return np.maximum(dome, flange), 0.95
    if style == "countersunk":
        # the top face flush with the surface (a little proud or sunk), a small edge bevel
        z0 = rng.uniform(-0.03, 0.02)
        bevel = np.clip((r - 0.97) / 0.03, 0.0, 1.0) * 0.03
        return z0 - bevel, 1.0
    raise ValueError(f"unknown head style {style!r}")


# --- recesses: cut depth below the apex, _NO_CUT where the head is untouched -----------


def _phillips(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, size: float) -> np.ndarray:
    L = size  # recess radius (wing tip)
    b0 = L * rng.uniform(0.2, 0.26)  # wing half-width at the centre
    taper = rng.uniform(0.25, 0.4)  # type H wings narrow towards the tips
    deep = L * rng.uniform(0.7, 0.95)
    u = np.maximum(np.abs(x), np.abs(y))
    v = np.minimum(np.abs(x), np.abs(y))
    half = b0 * (1.0 - taper * u / L)
    floor = 0.08 + deep * np.clip(1.0 - u / L, 0.0, 1.0) ** 1.1  # wing floors climb to the rim
    wall = (half - v) * rng.uniform(4.0, 7.0)  # V-shaped wing walls
    arm = np.where((u < L) & (v < half), np.minimum(floor, wall + 0.05), _NO_CUT)
    r = np.hypot(x, y)
    cone_r = b0 * rng.uniform(1.75, 2.05)  # the centre cone bevels the inner corners
    cone = np.where(r < cone_r, (cone_r - r) * rng.uniform(1.6, 2.2), _NO_CUT)
    return np.maximum(arm, cone)


def _pozidriv(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, size: float) -> np.ndarray:
    L = size
    b0 = L * rng.uniform(0.17, 0.22)  # parallel wings
    deep = L * rng.uniform(0.7, 0.9)
    u = np.maximum(np.abs(x), np.abs(y))
    v = np.minimum(np.abs(x), np.abs(y))
    floor = 0.1 + deep * (1.0 - 0.75 * u / L)
    wall = (b0 - v) * 14.0  # steep, parallel walls
    arm = np.where((u < L) & (v < b0), np.minimum(floor, wall + 0.05), _NO_CUT)
    r = np.hypot(x, y)
    cone_r = b0 * rng.uniform(1.5, 1.7)
    cone = np.where(r < cone_r, (cone_r - r) * rng.uniform(2.4, 3.2), _NO_CUT)
    # secondary wings: narrow slots on the diagonals, shorter and shallower
    d1, d2 = (x + y) / math.sqrt(2.0), (x - y) / math.sqrt(2.0)
    du = np.maximum(np.abs(d1), np.abs(d2))
    dv = np.minimum(np.abs(d1), np.abs(d2))
    sec_len = L * rng.uniform(0.5, 0.62)
    sec_w = L * rng.uniform(0.05, 0.075)
    sec = np.where(
        (du < sec_len) & (dv < sec_w),
        np.minimum(0.05 + 0.45 * deep * (1.0 - du / sec_len), (sec_w - dv) * 12.0 + 0.03),
        _NO_CUT,
    )
    return np.maximum(np.maximum(arm, cone), sec)


def torx_sd(x: np.ndarray, y: np.ndarray, outer: float) -> np.ndarray:
    """Signed distance-like value to an ISO 10664 hexalobular outline with its points at
    radius `outer` (on the +-x axis and every 60 degrees); positive inside."""
    inner = 0.72 * outer
    cut_r = 0.36 * outer  # the concave arcs between the lobes
    cut_c = inner + cut_r
    sd = outer - np.hypot(x, y)
    for k in range(6):
        a = math.pi / 6.0 + k * math.pi / 3.0
        sd = np.minimum(sd, np.hypot(x - cut_c * math.cos(a), y - cut_c * math.sin(a)) - cut_r)
    return sd


def _torx(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, size: float) -> np.ndarray:
    sd = torx_sd(x, y, size)
    deep = size * rng.uniform(0.75, 1.0)
    r = np.hypot(x, y)
    floor = deep + np.clip(0.3 * size - r, 0.0, None) * 0.6  # a shallow centre cone
    return np.where(sd > 0, np.minimum(floor, sd * rng.uniform(10.0, 18.0) + 0.03), _NO_CUT)


def _socket(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, size: float) -> np.ndarray:
    apothem = size
    sd = hexagon_sd(x, y, apothem)
    deep = rng.uniform(0.55, 0.85)
    r = np.hypot(x, y)
    floor = deep + np.clip(apothem - r, 0.0, None) * math.tan(math.radians(31.0))  # drill point
    wall = np.where(sd > 0, np.minimum(floor, sd * 20.0 + 0.04), _NO_CUT)
    sink_r = apothem * rng.uniform(1.06, 1.16)  # entry countersink
    sink = np.where(r < sink_r, (sink_r - r) * 1.0, _NO_CUT)
    return np.maximum(wall, sink)


_RECESS = {0: _socket, 1: _phillips, 2: _pozidriv, 4: _torx}


def _recess_size(rng: np.random.Generator, label: int, style: str) -> float:
    """Recess radius (wing tip / lobe point / hexagon apothem) in head radii."""
    if label == 0:  # socket across flats / head diameter: cap ~0.5, button ~0.38
        return rng.uniform(0.34, 0.42) if style == "button" else rng.uniform(0.4, 0.52)
    if label == 4:
        return rng.uniform(0.44, 0.56)
    return rng.uniform(0.46, 0.6)  # cross recesses: m / dk ~ 0.5-0.6


def _ticks(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, size: float, state: str
) -> np.ndarray:
    """Pozidriv's four ticks at 45 degrees: shallow radial grooves outside the recess."""
    if state == "painted":
        return np.zeros_like(x)
    d1, d2 = (x + y) / math.sqrt(2.0), (x - y) / math.sqrt(2.0)
    du = np.maximum(np.abs(d1), np.abs(d2))
    dv = np.minimum(np.abs(d1), np.abs(d2))
    start = size * rng.uniform(0.72, 0.95)
    length = size * rng.uniform(0.3, 0.5)
    width = rng.uniform(0.018, 0.03)
    depth = {"sharp": rng.uniform(0.03, 0.05), "faint": rng.uniform(0.008, 0.016)}.get(
        state, rng.uniform(0.012, 0.025)
    )
    groove = np.clip(1.0 - dv / width, 0.0, 1.0) ** (0.4 if state == "sharp" else 1.5)
    along = (du > start) & (du < start + length)
    return depth * groove * along


def _marks(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, apothem: float) -> np.ndarray:
    """Marks embossed (raised) or stamped into a hex head's top: property class,
    maker's letters or dots; 0..1 mask on the raster."""
    n = x.shape[0]
    canvas = np.zeros((n, n), np.uint8)
    texts = ("8.8", "10.9", "A2", "A4-70", "12.9", "XY", "8.8 F", "5.6", "K")
    count = int(rng.integers(1, 3))
    scale = n / 160.0
    for k in range(count):
        text = texts[int(rng.integers(len(texts)))]
        font_scale = rng.uniform(0.45, 0.75) * scale
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        cx = n / 2 + (k - (count - 1) / 2) * rng.uniform(0.25, 0.35) * n * apothem / 1.3
        cy = n / 2 + rng.normal(0, 0.05) * n
        org = (int(cx - tw / 2), int(cy + th / 2))
        cv2.putText(
            canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 255, max(1, int(2 * scale))
        )
    if rng.random() < 0.3:  # dots
        for _ in range(int(rng.integers(1, 4))):
            c = (int(n / 2 + rng.normal(0, 0.12) * n), int(n / 2 + rng.normal(0, 0.12) * n))
            cv2.circle(canvas, c, max(1, int(3 * scale)), 255, -1)
    angle = rng.uniform(0, 360)
    rot = cv2.getRotationMatrix2D((n / 2, n / 2), angle, 1.0)
    canvas = cv2.warpAffine(canvas, rot, (n, n))
    return cv2.GaussianBlur(canvas.astype(np.float32) / 255.0, (0, 0), 0.8)


def _hex_head(rng: np.random.Generator, style: str, x: np.ndarray, y: np.ndarray):
    """(z, depth, outline, footprint, hole, facts) of a hex head."""
    apothem = math.cos(math.pi / 6.0)  # corners on radius 1
    angle = rng.uniform(0.0, math.pi / 3.0)
    xr, yr = _rot(x, y, angle)
    r = np.hypot(x, y)
    sd = hexagon_sd(xr, yr, apothem)
    k = rng.uniform(0.55, 0.9)
    chamfer_r = apothem * rng.uniform(0.94, 1.06)
    top = k - np.clip(r - chamfer_r, 0.0, None) * math.tan(math.radians(30.0))
    corner = 0.02
    top = np.where(sd > -corner, top, -1.0)
    facts: dict[str, object] = {"marks": "none"}
    if rng.random() < 0.45:
        mark = _marks(rng, x, y, apothem)
        raised = rng.random() < 0.6
        facts["marks"] = "embossed" if raised else "stamped"
        top = top + (1 if raised else -1) * rng.uniform(0.015, 0.03) * mark * (sd > 0.05)
    z = top
    footprint = 1.0
    outline = lambda t: hexagon_radius(t - angle, apothem)  # noqa: E731
    if style in ("flange", "washer"):
        # a flange a little wider than the corners; a washer (face) from just past the
        # flats to well past the corners
        rad = apothem * (rng.uniform(1.18, 1.4) if style == "flange" else rng.uniform(1.05, 1.45))
        thick = rng.uniform(0.08, 0.16) if style == "flange" else rng.uniform(0.06, 0.12)
        ring = thick * (1.0 - 0.4 * np.clip((r - apothem) / (rad - apothem), 0, 1))
        if style == "washer":
            ring = np.full_like(r, thick)
        ring = np.where(r < rad, ring, -1.0)
        # where the hexagon stands on the washer or flange: a narrow dark groove
        groove = (sd < 0) & (sd > -rng.uniform(0.015, 0.04))
        ring = np.where(groove, ring * rng.uniform(0.0, 0.5), ring)
        z = np.maximum(z, ring)
        footprint = max(rad, 1.0)
        if rad > 1.0:
            outline = lambda t: np.full_like(t, rad)  # noqa: E731
        else:
            outline = lambda t: np.maximum(hexagon_radius(t - angle, apothem), rad)  # noqa: E731
    facts["angle"] = math.degrees(angle)
    return z, np.zeros_like(z), outline, footprint, 0.9 * apothem, facts


def make_head(rng: np.random.Generator, label: int, style: str, wear: float | None = None) -> Head:
    """Draw one head of class `label` in `style` (random proportions, recess angle, wear)."""
    if style not in LABEL_STYLES[label]:
        raise ValueError(
            f"unknown style for label {label}: {style!r}; choose one of "
            f"{', '.join(LABEL_STYLES[label])}"
        )
    if label == 3:
        extent = 1.75
        x, y = _grid(extent)
        z, depth, outline, footprint, hole, facts = _hex_head(rng, style, x, y)
        return Head(
            label,
            style,
            extent,
            z.astype(np.float32),
            depth.astype(np.float32),
            outline,
            footprint,
            float(z.max()),
            hole,
            facts,
        )
    extent = 1.05
    x, y = _grid(extent)
    r = np.hypot(x, y)
    surface, hole = _round_head(rng, style, r)
    size = _recess_size(rng, label, style)
    angle = rng.uniform(0.0, math.pi / 2.0)
    xr, yr = _rot(x, y, angle)
    cut = _RECESS[label](rng, xr, yr, size)
    apex = float(surface[RASTER // 2, RASTER // 2])
    wear = float(rng.choice([0.0, 0.0, 0.0, rng.uniform(0.3, 1.0)])) if wear is None else wear
    if wear > 0:  # cam-out: the recess's rim rounded and widened
        spread = cv2.GaussianBlur(np.maximum(cut, -0.2).astype(np.float32), (0, 0), 1.0 + 3 * wear)
        cut = np.maximum(cut, spread - 0.04 * (1.0 - wear))
    z = np.minimum(surface, apex - cut)
    facts: dict[str, object] = {"angle": math.degrees(angle), "wear": round(wear, 2)}
    if label == 2:
        state = TICK_STATES[int(rng.choice(4, p=[0.45, 0.25, 0.15, 0.15]))]
        z = z - _ticks(rng, xr, yr, size, state) * (r < 0.97)
        facts["ticks"] = state
    # tiny dents and machining marks on the surface
    bumps = cv2.GaussianBlur(rng.normal(0, 1, (RASTER, RASTER)).astype(np.float32), (0, 0), 3.0)
    z = z + bumps * rng.uniform(0.0, 0.006)
    z = np.where(r <= 1.0, z, -1.0)
    depth = np.clip(surface - z, 0.0, None) * (r <= 1.0)
    return Head(
        label,
        style,
        extent,
        z.astype(np.float32),
        depth.astype(np.float32),
        lambda t: np.ones_like(t),
        1.0,
        float(surface.max()),
        hole,
        facts,
    )


# --- meshes ---------------------------------------------------------------------------------


def sample(head: Head, x: np.ndarray, y: np.ndarray, image: np.ndarray | None = None):
    """Bilinear samples of the head's raster (or another raster of the same grid)."""
    image = head.height if image is None else image
    scale = (RASTER - 1) / (2.0 * head.extent)
    mx = ((x + head.extent) * scale).astype(np.float32)
    my = ((y + head.extent) * scale).astype(np.float32)
    out = cv2.remap(
        image,
        mx.reshape(1, -1),
        my.reshape(1, -1),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return out.reshape(x.shape)


def _grid_faces(rows: int, cols: int) -> np.ndarray:
    """Two triangles per cell of a (rows x cols) polar grid (columns wrap round), wound
    so that their normals face up and out (Mitsuba's BSDFs are one-sided)."""
    i = np.arange(rows - 1)[:, None]
    j = np.arange(cols)[None, :]
    a = i * cols + j
    b = i * cols + (j + 1) % cols
    c = (i + 1) * cols + j
    d = (i + 1) * cols + (j + 1) % cols
    return np.concatenate(
        [np.stack([a, d, b], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)]
    )


def head_mesh(head: Head, bottom: float = -0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices (N, 3) float32, faces (M, 3) uint32, texture coordinates (N, 2) float32):
    the top sampled on a polar grid out to the outline, then a side wall down to `bottom`
    (countersunk heads: a cone down into the surface)."""
    theta = np.linspace(0.0, 2.0 * math.pi, ANGLES, endpoint=False)
    edge = head.outline(theta) * 0.998
    s = np.linspace(0.0, 1.0, RINGS) ** 0.9  # rings a little denser near the axis
    X = edge[None, :] * s[:, None] * np.cos(theta)[None, :]
    Y = edge[None, :] * s[:, None] * np.sin(theta)[None, :]
    Z = sample(head, X, Y)
    # side wall: the outer ring's z down to the bottom
    walls = 4
    t = np.linspace(0.0, 1.0, walls + 1)[1:]
    rim = Z[-1]
    if head.style == "countersunk":
        shrink = 1.0 - 0.5 * t  # a 90-degree cone under the surface
        wz = rim[None, :] - (rim[None, :] - (-0.5)) * t[:, None]
    else:
        shrink = np.ones_like(t)
        wz = rim[None, :] + (bottom - rim[None, :]) * t[:, None]
    WX = X[-1][None, :] * shrink[:, None]
    WY = Y[-1][None, :] * shrink[:, None]
    X = np.vstack([X, WX])
    Y = np.vstack([Y, WY])
    Z = np.vstack([Z, wz])
    verts = np.stack([X, Y, Z], -1).reshape(-1, 3).astype(np.float32)
    faces = _grid_faces(X.shape[0], ANGLES).astype(np.uint32)
    uv = np.stack(
        [(X + head.extent) / (2 * head.extent), (Y + head.extent) / (2 * head.extent)], -1
    ).reshape(-1, 2)
    return verts, faces, uv.astype(np.float32)


def ground_mesh(hole: float, far: float, tile: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The surface around the head: a flat annulus from `hole` to `far` at z = 0, texture
    coordinates repeating every `tile` units."""
    theta = np.linspace(0.0, 2.0 * math.pi, ANGLES, endpoint=False)
    radii = hole * (far / hole) ** np.linspace(0.0, 1.0, 8)
    X = radii[:, None] * np.cos(theta)[None, :]
    Y = radii[:, None] * np.sin(theta)[None, :]
    verts = np.stack([X, Y, np.zeros_like(X)], -1).reshape(-1, 3).astype(np.float32)
    faces = _grid_faces(len(radii), ANGLES).astype(np.uint32)
    uv = np.stack([X / tile + 0.5, Y / tile + 0.5], -1).reshape(-1, 2).astype(np.float32)
    return verts, faces, uv
