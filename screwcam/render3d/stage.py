"""The stage: one height field (pixels), part map, object ids and material maps of a
surface with heads and distractors placed on it; plus the family constants and the
small helpers that render_head/render_distractor (crops.py) and render_scene
(scene.py) share."""

from __future__ import annotations

import cv2
import numpy as np

from .geometry import (
    DISTRACTORS,
    PART_HEAD,
    PART_MARK,
    PART_RECESS,
    RECESS_OF_LABEL,
    build_distractor,
    build_head,
    marks_field,
    recess_params,
    style_params,
)
from .geometry import STYLES as STYLES
from .materials import apply_finish, fbm, finish_params, srgb_to_linear
from .materials import background as surface_material

# Thesis class ids (screwcam.classes order), hard-coded so this package stands alone.
CLASS_NAMES: tuple[str, ...] = ("innensechskant", "philips", "pozidriv", "sechskant", "torx")
VIEWS: tuple[str, ...] = ("top", "oblique")  # tilt < 10° / 10-30°
MAX_TILT = 30.0
GENERATOR = "render3d"

# every kind of non-head object: the geometric ones plus a real coin photo on a disc
DISTRACTOR_KINDS: tuple[str, ...] = DISTRACTORS + ("photo_coin",)
# photos whose texture passes for grime, pitting or tarnish (no text, no faces)
_GRIME = ("brick.png", "gravel.png", "grass.png", "moon.png", "hubble_deep_field.jpg")
# a style pool may hold styles that a given class never has (e.g. 'pan' for hex heads)
_ALL_FAMILY_VALUES = set(STYLES)


def view_family(tilt: float) -> str:
    """'top' for tilts under 10°, else 'oblique' (info['view'] holds the angle)."""
    return "top" if tilt < 10.0 else "oblique"


def pick(rng, options, value, what, pool=None):
    """`value` if given (checked against options), else a random one of options, or of
    the options that are also in `pool` (a caller's subset, e.g. to hold a family out)."""
    if value is None:
        if pool is not None:
            unknown = sorted(set(pool) - set(options) - _ALL_FAMILY_VALUES)
            if unknown:
                raise ValueError(f"unknown {what}: {', '.join(map(str, unknown))}")
            options = tuple(o for o in options if o in pool)
            if not options:
                raise ValueError(f"no {what} left in {sorted(pool)}")
        return str(options[int(rng.integers(len(options)))])
    if value not in options:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(options)}")
    return value


def draw_tilt(rng, value):
    if value is not None:
        if not 0.0 <= float(value) <= 45.0:
            raise ValueError(f"tilt {value} out of range 0-45 degrees")
        return float(value)
    if rng.random() < 0.45:
        return float(rng.uniform(0.0, 8.0))
    return float(rng.uniform(8.0, MAX_TILT))


class Stage:
    """Height field (pixels), part map, object ids and material maps of a surface."""

    def __init__(self, rng, shape, background: str):
        self.shape = shape
        base, metal, rough, bump = surface_material(rng, background, shape)
        self.base, self.metal, self.rough = base, metal, rough
        self.z = bump.copy()
        self.part = np.zeros(shape, np.uint8)
        self.obj = np.zeros(shape, np.int16)
        self.next_id = 1

    def _window(self, cx, cy, radius):
        h, w = self.shape
        pad = radius * 1.25 + 2
        x0, x1 = max(0, int(cx - pad)), min(w, int(cx + pad) + 1)
        y0, y1 = max(0, int(cy - pad)), min(h, int(cy + pad) + 1)
        xs = (np.arange(x0, x1, dtype=np.float32) - cx) / radius
        ys = (np.arange(y0, y1, dtype=np.float32) - cy) / radius
        return (slice(y0, y1), slice(x0, x1)), xs, ys

    def add(
        self,
        rng,
        cx,
        cy,
        radius,
        angle,
        *,
        label=None,
        style=None,
        finish=None,
        kind=None,
        coin=None,
        base_z=0.0,
        params=None,
    ):
        """Place a head (label/style/finish) or a distractor (kind) at stage pixel
        (cx, cy). base_z lifts it (a head on a washer); params fix distractor shape
        parameters. Returns its id."""
        win, xs, ys = self._window(cx, cy, radius)
        ca, sa = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        X = xs[None, :] * ca + ys[:, None] * sa
        Y = -xs[None, :] * sa + ys[:, None] * ca
        r = np.hypot(X, Y)
        cam = None
        if kind is None:
            recess = RECESS_OF_LABEL[label]
            sp = style_params(rng, style, recess)
            rp = recess_params(rng, recess) if recess else {}
            marks = None
            if recess is None and rng.random() < 0.6:
                marks = marks_field(rng)
                sp["marks_raised"] = bool(rng.random() < 0.7)
            h, part, mask = build_head(X, Y, style, sp, recess, rp, marks)
        else:
            p = {
                "hole": rng.uniform(0.3, 0.6),
                "thick": rng.uniform(0.05, 0.15),
                "height": rng.uniform(0.3, 0.9),
                "depth": rng.uniform(0.5, 2.0),
                "card_w": rng.uniform(0.45, 0.9),
                "rod_t": rng.uniform(0.06, 0.2),
            }
            p.update(params or {})
            geo_kind = "coin" if kind == "photo_coin" else kind
            h, part, mask = build_distractor(X, Y, geo_kind, p)
        h = h * np.float32(radius)
        fp = finish_params(rng, finish or "zinc")
        if finish == "painted" and rng.random() < 0.3:
            # painted over together with the surface: the head has the surface's colour
            # (the low-contrast case: a white screw in a white cupboard)
            surface = self.base[win].reshape(-1, 3).mean(axis=0)
            fp["base"] = (surface * rng.uniform(0.9, 1.1)).astype(np.float32)
        if kind is None and finish == "worn" and RECESS_OF_LABEL[label] is not None:
            # cammed-out recess: the mouth of the recess worn into an irregular bevel
            rec = (part == PART_RECESS).astype(np.uint8)
            if rec.any():
                dt = cv2.distanceTransform(1 - rec, cv2.DIST_L2, 3)
                amount = fp["cam"] * radius
                wobble = fbm(rng, rec.shape, 5.0)
                cam = np.clip(amount * (0.3 + wobble) - dt * 0.8, 0.0, None) * (part == PART_HEAD)
                h = h - cam
                cam = cam / max(amount, 1e-3)
        region = mask | (np.abs(h) > 1e-3)
        if base_z:
            region = mask
            h = h + np.float32(base_z)
        zwin = self.z[win]
        zwin[region] = h[region]
        oid = self.next_id
        self.next_id += 1
        self.obj[win][mask] = oid
        self.part[win][mask] = part[mask]
        if kind in ("hole",):
            # a drilled hole: same material as the surface, darker inside
            self.base[win][mask] *= 0.5
            return oid
        base, metal, rough, bump = apply_finish(rng, fp, part, r, cam)
        if rng.random() < 0.4:
            # grime and texture from a real photograph, faint
            from ..photos import random_crop

            hw = (mask.shape[1], mask.shape[0])
            grime = (
                random_crop(rng, hw, names=_GRIME, gray=True, fast=True).astype(np.float32) / 255.0
            )
            amount = np.float32(rng.uniform(0.15, 0.6))
            base *= (1.0 + amount * (grime - grime.mean()))[..., None]
            rough = np.clip(rough + 0.3 * amount * (grime.mean() - grime), 0.05, 1.0)
        if kind == "photo_coin" and coin is not None:
            patch, cmask = coin
            size = (mask.shape[1], mask.shape[0])
            # the coin patch spans the head radius: map it onto [-1, 1]²
            full = cv2.resize(patch, (int(2 * radius) + 1, int(2 * radius) + 1))
            M = np.float32([[1, 0, 0], [0, 1, 0]])
            canvas = np.zeros((size[1], size[0]), np.uint8)
            ox = int(round((0 - xs[0]) * radius - radius))
            oy = int(round((0 - ys[0]) * radius - radius))
            M[0, 2], M[1, 2] = ox, oy
            canvas = cv2.warpAffine(full, M, size, dst=canvas, borderMode=cv2.BORDER_CONSTANT)
            lum = srgb_to_linear(canvas)[..., None]
            tint = np.array(
                rng.choice([[0.75, 0.75, 0.75], [0.35, 0.55, 0.8], [0.3, 0.45, 0.75]]), np.float32
            )
            base = (lum * 1.6 * tint).astype(np.float32)
            metal = np.full_like(metal, 0.5)
            bump = bump + canvas.astype(np.float32) / 255.0 * 0.03
        if kind == "card":
            from ..photos import random_crop

            hw = (mask.shape[1], mask.shape[0])
            base = srgb_to_linear(random_crop(rng, hw, fast=True))
            metal = np.zeros_like(metal)
            rough = np.full_like(rough, float(rng.uniform(0.3, 0.9)))
        self.base[win][mask] = base[mask]
        self.metal[win][mask] = metal[mask]
        self.rough[win][mask] = rough[mask]
        zwin[mask] += bump[mask] * radius
        return oid


def silhouette_image(part, obj, ids, polarity):
    fg = np.isin(obj, ids) & (part != PART_RECESS) & (part != PART_MARK)
    img = np.where(fg, 0.0, 1.0).astype(np.float32)
    if polarity == "light_on_dark":
        img = 1.0 - img
    return img


def bbox(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
