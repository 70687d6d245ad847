"""Screw heads as signed distance fields (SDFs), vectorized over points.

Units: the head's nominal radius is 1, the axis is +z, the surface the screw sits in is
the plane z = 0. A head is a solid SDF with the drive recess subtracted from it
(smooth subtraction: the smoothing radius is the wear). Every function takes flat
arrays x, y, z of the same shape and returns distances of that shape (exact or a
lower bound scaled by a Lipschitz factor, good enough for sphere tracing with
under-relaxed steps).

Shapes follow the standards' ideas, drawn from their published proportions, not from
any other generator in this project:
- Phillips (ISO 4757 type H): a cross of wings that narrow and shorten with depth, a
  conical centre, and a concave countersink between the wings at the top;
- Pozidriv (type Z): a cross of straight-walled (parallel) wings, four short secondary
  wings at 45 degrees and four tick grooves on the head surface at 45 degrees;
- Torx (ISO 10664): a hexalobular prism with a conical bottom;
- hex socket: a hexagon prism with a drill-point cone at the bottom;
- hex head: a hexagonal prism with a 30-degree top chamfer, optional flange or washer
  face and embossed marks, no recess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: head solids per class (0 hex socket, 1 Phillips, 2 Pozidriv, 3 hex head, 4 Torx)
RECESS_STYLES: tuple[str, ...] = ("pan", "countersunk", "cheese", "button", "flange")
HEX_STYLES: tuple[str, ...] = ("hex", "hex_flange", "hex_washer")
LABEL_STYLES: dict[int, tuple[str, ...]] = {
    0: RECESS_STYLES,
    1: RECESS_STYLES,
    2: RECESS_STYLES,
    3: HEX_STYLES,
    4: RECESS_STYLES,
}


def smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (union with a fillet of radius ~k)."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def smax(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth maximum (intersection / subtraction with rounded edges)."""
    return -smin(-a, -b, k)


def box2(x: np.ndarray, y: np.ndarray, hx, hy) -> np.ndarray:
    """2-D box of half sizes (hx, hy) centred at the origin (hx, hy may be arrays)."""
    qx = np.abs(x) - hx
    qy = np.abs(y) - hy
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    return outside + np.minimum(np.maximum(qx, qy), 0.0)


def hexagon2(x: np.ndarray, y: np.ndarray, apothem: float) -> np.ndarray:
    """2-D regular hexagon with the given inradius, flats parallel to the x axis."""
    kx, ky, kz = -0.8660254, 0.5, 0.57735027
    px, py = np.abs(x), np.abs(y)
    d = 2.0 * np.minimum(kx * px + ky * py, 0.0)
    px = px - d * kx
    py = py - d * ky
    px = px - np.clip(px, -kz * apothem, kz * apothem)
    py = py - apothem
    return np.hypot(px, py) * np.sign(py)


def cross2(x: np.ndarray, y: np.ndarray, length, half_width) -> np.ndarray:
    """Plus-shaped cross: two boxes of half length `length` and half width `half_width`."""
    return np.minimum(box2(x, y, length, half_width), box2(x, y, half_width, length))


def rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return c * x + s * y, -s * x + c * y


@dataclass
class Head:
    """One head's drawn parameters (all lengths in head radii)."""

    label: int
    style: str
    height: float  # top of the head above the surface plane (countersunk: ~0)
    radius: float  # outer radius of the whole head incl. flange (for framing)
    params: dict = field(default_factory=dict)

    # ----- solids -----------------------------------------------------------------
    def solid(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        p = self.params
        r = np.hypot(x, y)
        st = self.style
        if st in ("pan", "cheese", "flange"):
            h, rr = p["h"], p["round"]
            qx = r - (1.0 - rr)
            qy = np.abs(z - h / 2.0) - (h / 2.0 - rr)
            d = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
            d = d - rr
            if p.get("dome", 0.0) > 0:  # sphere through the rim, peak at z = h
                rs = p["dome"]
                d = np.maximum(d, np.sqrt(r * r + (z - (h - rs)) ** 2) - rs)
            if st == "flange":
                fr, fh = p["flange_r"], p["flange_h"]
                disk = np.maximum(r - fr, np.abs(z - fh / 2.0) - fh / 2.0)
                d = smin(d, disk, 0.04)
            return d
        if st == "button":
            h = p["h"]
            rs = (1.0 + h * h) / (2.0 * h)
            return np.maximum(np.sqrt(r * r + (z - (h - rs)) ** 2) - rs, -z)
        if st == "countersunk":  # 90-degree cone, top flush just under z = 0
            top = self.height
            cone = (r - (1.0 + (z - top))) * 0.7071
            return np.maximum(np.maximum(cone, z - top), -(z - (top - 0.9)))
        # hex heads
        h, a = p["h"], p["apothem"]
        prism = np.maximum(hexagon2(x, y, a), np.abs(z - h / 2.0) - h / 2.0)
        chamfer = (r - (p["chamfer_r"] + (h - z) * 1.732)) * 0.5
        d = np.maximum(prism, chamfer)
        if st == "hex_flange":
            fr, fh = p["flange_r"], p["flange_h"]
            disk = np.maximum(r - fr, np.abs(z - fh / 2.0) - fh / 2.0)
            d = smin(d, disk, 0.05)
        elif st == "hex_washer":
            wr = p["washer_r"]
            disk = np.maximum(r - wr, np.abs(z - 0.03) - 0.03)
            d = np.minimum(d, disk)
        for mx, my, hx, hy in p.get("marks", ()):  # embossed bars on the top face
            bar = np.maximum(box2(x - mx, y - my, hx, hy), np.abs(z - h) - 0.035)
            d = np.minimum(d, bar)
        return d

    def top_at(self, r: np.ndarray) -> np.ndarray:
        """Height of the (domed) top face at radius r (for marks cut into the surface)."""
        p = self.params
        rs = p.get("dome", 0.0)
        if self.style == "button":
            h = p["h"]
            rs = (1.0 + h * h) / (2.0 * h)
        if rs <= 0 or self.style not in ("pan", "cheese", "flange", "button"):
            return np.full_like(r, self.height)
        return self.height - rs + np.sqrt(np.maximum(rs * rs - r * r, 0.0))

    # ----- recesses (positive depth below the top: zz = top - z) --------------------
    def recess(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray | None:
        if self.label == 3:
            return None
        p = self.params
        x, y = rotate(x, y, p["angle"])
        zz = self.height - z
        r = np.hypot(x, y)
        if self.label == 0:  # hex socket
            a, depth = p["size"], p["depth"]
            bottom = depth + np.maximum(a - r, 0.0) * 0.58
            return np.maximum(hexagon2(x, y, a), (zz - bottom) * 0.85)
        if self.label == 4:  # Torx: hexalobular star
            ro, ri, depth = p["size"], p["size"] * p["inner"], p["depth"]
            theta = np.arctan2(y, x)
            c = np.cos(6.0 * theta)
            shape = np.sign(c) * np.abs(c) ** p["sharp"]
            rho = (ro + ri) / 2.0 + (ro - ri) / 2.0 * shape
            star = (r - rho) * p["lip"]
            bottom = depth + np.maximum(ri - r, 0.0) * 0.6
            return np.maximum(star, (zz - bottom) * 0.85)
        # crosses
        L0, w0, depth = p["size"], p["width"], p["depth"]
        zc = np.maximum(zz, 0.0)
        if self.label == 1:  # Phillips: tapered wings, conical centre, countersink
            length = np.maximum(L0 - zc * p["taper"], 0.04)
            width = np.maximum(w0 - zc * 0.16, 0.03)
            wings = np.maximum(cross2(x, y, length, width) * 0.7, zz - depth)
            centre = (r - (p["centre"] - zc * 0.55)) * 0.85
            sink = (r - (p["sink"] - zz * 1.1)) * 0.67
            return np.minimum(np.minimum(wings, np.maximum(centre, zz - depth * 1.1)), sink)
        # Pozidriv: parallel wings, secondary 45-degree wings, ticks on the surface
        length = np.maximum(L0 - zc * p["taper"], 0.04)
        wings = np.maximum(cross2(x, y, length, w0) * 0.75, zz - depth)
        xr, yr = rotate(x, y, np.pi / 4.0)
        second = np.maximum(
            cross2(xr, yr, p["second"] - zc * 0.5, w0 * 0.7) * 0.75, zz - depth * 0.6
        )
        centre = (r - (p["centre"] - zc * 0.45)) * 0.85
        d = np.minimum(np.minimum(wings, second), np.maximum(centre, zz - depth * 1.1))
        if p["ticks"] is None:  # worn off or painted over
            return d
        t0, t1, tw, td = p["ticks"]
        zs = self.top_at(r) - z  # depth under the local (domed) surface
        c, hl = (t0 + t1) / 2.0, (t1 - t0) / 2.0
        grooves = np.minimum(box2(np.abs(xr) - c, yr, hl, tw), box2(np.abs(yr) - c, xr, hl, tw))
        ticks = np.maximum(grooves, zs - td)
        return np.minimum(d, ticks)

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = self.solid(x, y, z)
        cut = self.recess(x, y, z)
        if cut is None:
            return d
        return smax(d, -cut, self.params["wear"])


def draw_head(rng: np.random.Generator, label: int, style: str) -> Head:
    """Random proportions, recess size, depth, rotation and wear for one head."""
    u = rng.uniform
    p: dict = {"angle": float(u(0, 2 * np.pi)), "wear": float(rng.choice([0.0, u(0.01, 0.07)]))}
    radius = 1.0
    if style == "pan":
        p.update(h=u(0.35, 0.6), round=u(0.12, 0.3), dome=u(2.5, 6.0))
    elif style == "cheese":
        p.update(h=u(0.55, 0.85), round=u(0.03, 0.1), dome=float(rng.choice([0.0, u(4.0, 10.0)])))
    elif style == "flange":
        p.update(h=u(0.35, 0.55), round=u(0.1, 0.25), dome=u(2.0, 6.0))
        p.update(flange_r=u(1.2, 1.4), flange_h=u(0.06, 0.12))
        radius = p["flange_r"]
    elif style == "button":
        p.update(h=u(0.3, 0.5))
    elif style == "countersunk":
        p.update(h=0.0)
    elif style in HEX_STYLES:
        p.update(h=u(0.5, 0.85), apothem=0.866, chamfer_r=u(0.88, 1.0))
        if style == "hex_flange":
            p.update(flange_r=u(1.15, 1.35), flange_h=u(0.07, 0.13))
            radius = p["flange_r"]
        elif style == "hex_washer":
            p.update(washer_r=u(0.8, 0.92))
        if rng.random() < 0.45:
            marks = []
            for _ in range(int(rng.integers(2, 5))):
                marks.append((u(-0.45, 0.45), u(-0.3, 0.3), u(0.03, 0.1), u(0.03, 0.1)))
            p["marks"] = marks
    else:
        raise ValueError(f"unknown head style {style!r}")
    height = -float(u(0.0, 0.04)) if style == "countersunk" else p["h"]
    if label == 0:
        p.update(size=u(0.42, 0.6), depth=u(0.4, 0.8))
    elif label == 4:
        p.update(size=u(0.42, 0.6), inner=u(0.66, 0.78), depth=u(0.35, 0.7))
        p.update(sharp=u(0.5, 0.9), lip=0.55)
    elif label in (1, 2):
        p.update(size=u(0.5, 0.72), width=u(0.075, 0.12), depth=u(0.4, 0.75))
        p.update(centre=p["size"] * u(0.3, 0.42))
        if label == 1:
            p.update(taper=u(0.6, 1.1), sink=p["size"] * u(0.42, 0.6))
        else:
            # secondary wings from barely past the centre to well out (real ones are small)
            p.update(taper=u(0.15, 0.4), second=p["size"] * u(0.38, 0.62))
            # the four ticks: clear on new screws, faint when worn, gone under paint or dirt
            t0 = p["size"] * u(0.75, 0.95)
            ticks = rng.choice(["clear", "faint", "none"], p=[0.4, 0.3, 0.3])
            if ticks == "clear":
                p["ticks"] = (t0, t0 + u(0.15, 0.3), u(0.025, 0.045), u(0.03, 0.07))
            elif ticks == "faint":
                p["ticks"] = (t0, t0 + u(0.1, 0.25), u(0.015, 0.03), u(0.006, 0.02))
            else:
                p["ticks"] = None
    return Head(label, style, float(height), radius, p)
