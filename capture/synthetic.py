"""Synthetic screw heads: the stand-in for a camera and for a real dataset.

Two users:
- `render_sample(rng, label, condition)` draws ONE head on a small image, for
  synthetic training and test sets (`screwcam synth`).
- `DemoSource` is a fake camera: several heads (all five drive types) drift and
  turn on a surface while the light cycles through even light, a moving cast
  shadow, dim light, overexposure and light from one side. Every frame carries
  the ground truth (label + box of every head).

How a head is drawn (top view, vectorised numpy/OpenCV only):
1. A *sprite* is built once per head from signed-distance shapes: a height map
   (dome / cap / pan / hex head, washer ring, the recess cut into it), an albedo
   map (finish, scratches, darker deep recess), an alpha mask and a recess mask.
2. Per frame the height map's slopes (normals) are lit from the light's direction
   relative to the head (Lambert + Blinn specular + sky light, which darkens the
   rims), the lit sprite is warped (rotation, scale, a slight tilt) and composited
   onto the surface with a contact shadow and a soft drop shadow (blurred alpha
   shifted away from the light). The demo caches lit sprites and shadow maps per
   quantized light-vs-head angle, so a frame costs a few warps.
3. A low-resolution light field (exposure, side-light gradient, large soft
   cast-shadow edges) multiplies the whole frame; then sensor noise.
The "silhouette" condition instead binarizes head and recess (black on white or
white on black), like the thesis's images.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .classes import CLASSES, NUM_CLASSES
from .errors import CameraError
from .heads import Box
from .sources import Frame, Source, Truth

CONDITIONS: tuple[str, ...] = ("even", "shadow", "dim", "overexposed", "side", "silhouette")
#: the lighting cycle of the demo camera (silhouettes are a dataset-only look)
DEMO_CONDITIONS: tuple[str, ...] = CONDITIONS[:5]
BACKGROUNDS: tuple[str, ...] = ("light", "dark", "wood", "noise", "metal")
FINISHES: tuple[str, ...] = ("zinc", "dull", "worn", "black")

INNENSECHSKANT, PHILIPS, POZIDRIV, SECHSKANT, TORX = range(NUM_CLASSES)
_TAU = 2.0 * math.pi

# finish -> (albedo, specular strength, specular power, BGR tint)
_FINISH = {
    "zinc": (0.70, 0.55, 24.0, (1.04, 1.0, 0.95)),
    "dull": (0.50, 0.18, 8.0, (1.0, 1.0, 1.0)),
    "worn": (0.56, 0.30, 12.0, (0.97, 1.0, 1.03)),
    "black": (0.13, 0.35, 18.0, (1.0, 1.0, 1.0)),
}


# ---------------------------------------------------------------------------------------------
# Head geometry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeadSpec:
    """Everything that fixes how one head looks (sizes are fractions of its radius)."""

    label: int
    shape: str  # "dome", "pan", "cap" (round heads) or "hex"
    washer: float  # washer / flange ring outer radius relative to the head, 0 = none
    recess: float  # recess size (fraction of the head radius)
    depth: float  # recess depth (fraction of the head radius)
    finish: str
    variant: float  # drive-specific shape parameter in 0..1

    @property
    def name(self) -> str:
        return CLASSES[self.label]


def random_spec(rng: np.random.Generator, label: int, finish: str | None = None) -> HeadSpec:
    """A random but plausible head of the given drive type."""
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label must be 0..{NUM_CLASSES - 1}, got {label}")
    if label == SECHSKANT:
        shape = "hex"
        washer = float(rng.uniform(1.12, 1.28)) if rng.random() < 0.45 else 0.0
        recess = 0.0
    else:
        shapes = ("cap", "dome", "pan") if label == INNENSECHSKANT else ("pan", "dome", "cap")
        shape = shapes[int(rng.choice(3, p=(0.5, 0.3, 0.2)))]
        washer = float(rng.uniform(1.1, 1.22)) if rng.random() < 0.2 else 0.0
        recess = {
            INNENSECHSKANT: rng.uniform(0.42, 0.58),
            PHILIPS: rng.uniform(0.55, 0.72),
            POZIDRIV: rng.uniform(0.55, 0.70),
            TORX: rng.uniform(0.48, 0.62),
        }[label]
    if finish is None:
        finish = FINISHES[int(rng.choice(4, p=(0.38, 0.27, 0.2, 0.15)))]
    return HeadSpec(
        label=label,
        shape=shape,
        washer=washer,
        recess=float(recess),
        depth=float(rng.uniform(0.35, 0.7)),
        finish=finish,
        variant=float(rng.random()),
    )


def _aa(sdf: np.ndarray, soft: float = 0.7) -> np.ndarray:
    """Anti-aliased inside mask (1 inside, 0 outside) from a signed distance in pixels."""
    return np.clip(0.5 - sdf / (2.0 * soft), 0.0, 1.0)


def _hex_sdf(x: np.ndarray, y: np.ndarray, inradius: float, rot: float) -> np.ndarray:
    d = None
    for k in range(3):
        a = rot + k * math.pi / 3.0
        p = np.abs(x * math.cos(a) + y * math.sin(a))
        d = p if d is None else np.maximum(d, p)
    return d - inradius


def _recess_sdf(spec: HeadSpec, x, y, r, theta, rad: float) -> tuple[np.ndarray, np.ndarray]:
    """(signed distance of the recess outline in px, depth profile 0..1) for a drive."""
    size = spec.recess * rad
    v = spec.variant
    if spec.label == INNENSECHSKANT:
        inr = size * math.cos(math.pi / 6.0)
        sdf = _hex_sdf(x, y, inr, 0.0)
        # flat-walled socket with the drill cone at its bottom
        prof = 0.75 + 0.25 * np.clip(1.0 - r / (0.75 * inr), 0.0, 1.0)
        return sdf, prof
    if spec.label == TORX:
        lobe = 0.26 + 0.08 * v  # lobe depth as a fraction of the outer radius
        c = np.cos(6.0 * theta)
        shaped = np.sign(c) * np.abs(c) ** 0.6
        rt = size * (1.0 - lobe * 0.5 * (1.0 - shaped))
        sdf = (r - rt) * 0.85
        prof = 0.8 + 0.2 * np.clip(1.0 - r / (0.45 * size), 0.0, 1.0)
        return sdf, prof
    ax, ay = np.abs(x), np.abs(y)
    if spec.label == PHILIPS:
        w0, w1 = size * (0.30 + 0.05 * v), size * (0.09 + 0.04 * v)  # V-shaped arms

        def arm(u, w):
            half = w0 + (w1 - w0) * np.clip(u / size, 0.0, 1.0)
            return np.maximum(w - half, u - size)

        sdf = np.minimum(arm(ax, ay), arm(ay, ax))
        sdf = np.minimum(sdf, r - size * (0.34 + 0.05 * v))  # rounded centre
        prof = np.clip(1.05 - r / size, 0.08, 1.0)  # conical: deepest in the centre
        return sdf, prof
    # pozidriv: parallel arms, square-ish centre with small ears on the diagonals
    hw = size * (0.13 + 0.03 * v)  # parallel arms
    sdf = np.minimum(np.maximum(ay - hw, ax - size), np.maximum(ax - hw, ay - size))
    sdf = np.minimum(sdf, (ax + ay) / math.sqrt(2.0) - size * (0.38 + 0.05 * v))  # square centre
    prof = np.clip(1.1 - r / size, 0.15, 1.0) * 0.9
    return sdf, prof


def draw_sprite(
    spec: HeadSpec, radius: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Draw a head (outer radius `radius` px, incl. any washer ring), unrotated.

    Returns (sprite float32 (S, S, 4): height px, albedo 0..1, alpha 0..1, recess 0..1;
    top height in px, used for the length of its drop shadow)."""
    half = int(math.ceil(radius * 1.12)) + 3  # room for the contact shadow
    side = 2 * half + 1
    coords = np.arange(side, dtype=np.float32) - half
    x, y = np.meshgrid(coords, coords)
    r = np.sqrt(x * x + y * y)
    theta = np.arctan2(y, x)
    outer = radius
    head = radius / spec.washer if spec.washer else radius  # radius of the head proper
    top = head * (0.22 if spec.shape != "cap" else 0.3)
    rn = r / head

    if spec.shape == "hex":
        circum = head
        inr = circum * math.cos(math.pi / 6.0)
        body_sdf = _hex_sdf(x, y, inr, 0.0)
        body = _aa(body_sdf)
        # flat top, chamfered corners: the chamfer circle touches the flats
        cham = np.clip((r - 0.93 * inr) / (circum - 0.93 * inr), 0.0, 1.0)
        height = top * (1.0 - 0.55 * cham)
    else:
        body_sdf = r - head
        body = _aa(body_sdf)
        if spec.shape == "dome":
            height = top * np.sqrt(np.clip(1.0 - rn * rn, 0.0, 1.0)) * 1.1
        elif spec.shape == "pan":
            height = top * np.sqrt(np.clip(1.0 - rn**4, 0.0, 1.0))
        else:  # cap: flat top, rounded edge
            edge = np.clip((rn - 0.8) / 0.2, 0.0, 1.0)
            height = top * (1.0 - 0.6 * edge * edge)
    # a small rounded bevel along the outline: rims catch less sky light
    bevel = np.clip(-body_sdf / (0.07 * head + 1.0), 0.0, 1.0)
    height = height * np.sqrt(bevel)
    alpha = body
    if spec.washer:
        ring = _aa(r - outer)
        alpha = np.maximum(alpha, ring)
        ring_bevel = np.clip((outer - r) / (0.05 * head + 1.0), 0.0, 1.0)
        height = np.maximum(height, 0.12 * top * np.sqrt(ring_bevel))

    albedo0 = _FINISH[spec.finish][0]
    albedo = np.full_like(r, albedo0)
    # surface grain: fine noise, and scratches on worn heads
    grain = cv2.resize(
        rng.normal(0.0, 1.0, (side // 3 + 2, side // 3 + 2)).astype(np.float32),
        (side, side),
        interpolation=cv2.INTER_LINEAR,
    )
    albedo += 0.03 * grain
    if spec.finish == "worn":
        scratch = np.zeros((side, side), np.float32)
        for _ in range(int(rng.integers(6, 16))):
            p0 = rng.uniform(0, side, 2)
            ang = rng.uniform(0, _TAU)
            ln = rng.uniform(0.2, 0.8) * side
            p1 = p0 + ln * np.array([math.cos(ang), math.sin(ang)])
            cv2.line(
                scratch,
                tuple(int(v) for v in p0),
                tuple(int(v) for v in p1),
                float(rng.uniform(0.3, 1.0)),
                1,
                cv2.LINE_AA,
            )
        albedo += 0.18 * scratch * (1.0 if rng.random() < 0.5 else -1.0)
    recess = np.zeros_like(r)
    if spec.label != SECHSKANT:
        sdf, prof = _recess_sdf(spec, x, y, r, theta, head)
        inside = _aa(sdf)
        wall = np.clip(-sdf / max(1.0, 0.05 * head), 0.0, 1.0)  # walls slope over a few px
        depth = spec.depth * head * prof * wall
        height = height - depth
        recess = inside
        dark = 0.55 + 0.35 * np.clip(spec.depth * prof, 0.0, 1.0)
        albedo = albedo * (1.0 - dark * inside)
        if spec.label == POZIDRIV:  # the four engraved ticks between the arms
            rot45 = (x + y) / math.sqrt(2.0), (x - y) / math.sqrt(2.0)
            a0, a1 = spec.recess * head * 0.95, spec.recess * head * 0.95 + head * 0.2
            tw = max(0.7, 0.03 * head)
            ticks = None
            for u, w in ((rot45[0], rot45[1]), (rot45[1], rot45[0])):
                au = np.abs(u)
                t = np.maximum(np.abs(w) - tw, np.maximum(a0 - au, au - a1))
                ticks = t if ticks is None else np.minimum(ticks, t)
            tick = _aa(ticks, 0.6) * body
            height = height - 0.04 * head * tick
            albedo = albedo * (1.0 - 0.45 * tick)
            recess = np.maximum(recess, tick)
    albedo = np.clip(albedo, 0.02, 1.0)
    sprite = cv2.merge([height, albedo, alpha, recess]).astype(np.float32)
    return sprite, float(top)


# ---------------------------------------------------------------------------------------------
# Lighting and compositing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Light:
    azimuth: float  # radians, direction the light comes FROM in image coordinates
    elevation: float  # radians above the surface
    ambient: float = 0.35

    def vector(self) -> tuple[float, float, float]:
        c = math.cos(self.elevation)
        return c * math.cos(self.azimuth), c * math.sin(self.azimuth), math.sin(self.elevation)


def _warp_matrix(angle: float, sx: float, sy: float, tilt: float, src_c: float, dst_c):
    """2x3 affine: rotate by `angle`, then scale by (sx, sy) along the axes turned by
    `tilt` (a slightly tilted view), mapping the point (src_c, src_c) to `dst_c`."""
    ca, sa = math.cos(angle), math.sin(angle)
    ct, st = math.cos(tilt), math.sin(tilt)
    # S = T diag(sx, sy) T^T, then S @ R
    s00, s11 = sx * ct * ct + sy * st * st, sx * st * st + sy * ct * ct
    s01 = (sx - sy) * ct * st
    a00, a01 = s00 * ca + s01 * sa, -s00 * sa + s01 * ca
    a10, a11 = s01 * ca + s11 * sa, -s01 * sa + s11 * ca
    tx = dst_c[0] - (a00 + a01) * src_c
    ty = dst_c[1] - (a10 + a11) * src_c
    return np.array([[a00, a01, tx], [a10, a11, ty]], dtype=np.float32)


_ANGLE_STEP = math.radians(3.0)  # shading is cached per 3 degrees of light-vs-head angle


@dataclass(slots=True)
class _Placed:
    """A head's sprite prepared for fast lighting: unit normals, albedo, sky light,
    and, on a canvas padded by `pad`, its contact shadow and the blurred alpha its
    drop shadow is cut from. Lit paint and shadow maps are cached per (quantized)
    light and pose, so a slowly turning head is re-lit only every few frames; the
    cache keys fix the result, so frames stay deterministic in any order."""

    spec: HeadSpec
    sprite: np.ndarray  # (S, S, 4) height, albedo, alpha, recess
    normals: np.ndarray  # (S, S, 3) nx, ny, nz
    albedo: np.ndarray  # (S, S)
    sky: np.ndarray  # (S, S) albedo * nz^3: light from the whole sky, dark rims
    contact_keep: np.ndarray  # (S + 2 pad,) * 2: 1 - contact shadow
    shadow: np.ndarray  # (S + 2 pad + 2 reach,) * 2: blurred alpha
    pad: int
    reach: int  # longest drop-shadow offset in px
    top: float
    cache: dict = field(default_factory=dict)

    def cached(self, key: tuple, make):
        value = self.cache.get(key)
        if value is None:
            if len(self.cache) > 16:
                self.cache.clear()
            value = self.cache[key] = make()
        return value


def _make_placed(spec: HeadSpec, radius: float, rng: np.random.Generator) -> _Placed:
    sprite, top = draw_sprite(spec, radius, rng)
    height = np.ascontiguousarray(sprite[:, :, 0])
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) * 0.125
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) * 0.125
    inv = 1.0 / np.sqrt(gx * gx + gy * gy + 1.0)
    normals = cv2.merge([-gx * inv, -gy * inv, inv])
    albedo = np.ascontiguousarray(sprite[:, :, 1])
    alpha = np.ascontiguousarray(sprite[:, :, 2])
    pad = int(radius * 0.9) + 2
    reach = int(math.ceil(0.3 * sprite.shape[0])) + 1
    # contact shadow: the surface right at the head's foot sees less of the sky
    padded = cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    contact_keep = 1.0 - 0.6 * cv2.GaussianBlur(padded, (0, 0), 0.04 * radius + 0.8)
    # a soft drop shadow: blurred alpha, with room to be shifted away from the light
    wide = cv2.copyMakeBorder(padded, reach, reach, reach, reach, cv2.BORDER_CONSTANT, value=0)
    shadow = cv2.GaussianBlur(wide, (0, 0), 0.2 * radius + 1.0)
    sky = albedo * inv * inv * inv
    return _Placed(spec, sprite, normals, albedo, sky, contact_keep, shadow, pad, reach, float(top))


def _shade(head: _Placed, light: Light, rel: float) -> np.ndarray:
    """Lit gray value (float, 0..~1.4) of the unrotated sprite, the light coming from
    `rel` radians relative to the head: the light is turned, not the normals."""
    c = math.cos(light.elevation)
    slx, sly, lz = c * math.cos(rel), c * math.sin(rel), math.sin(light.elevation)
    hx, hy, hz = slx, sly, lz + 1.0
    hn = 1.0 / math.sqrt(hx * hx + hy * hy + hz * hz)
    mat = np.array([[slx, sly, lz], [hx * hn, hy * hn, hz * hn]], np.float32)
    dots = cv2.transform(head.normals, mat)  # (S, S, 2): n.l and n.h
    dots = cv2.max(dots, 0.0)
    ndl, ndh = cv2.split(dots)
    _, ks, power, _ = _FINISH[head.spec.finish]
    spec = cv2.pow(ndh, power)
    value = cv2.multiply(head.albedo, ndl, scale=0.7)
    cv2.scaleAdd(head.sky, light.ambient, value, value)
    cv2.scaleAdd(spec, ks, value, value)
    return value


def _paint(head: _Placed, light: Light, angle: float) -> np.ndarray:
    """(S, S, 4) uint8: premultiplied, tinted BGR and alpha (x255) of the lit head."""
    q = round((light.azimuth - angle) / _ANGLE_STEP)

    def make() -> np.ndarray:
        alpha = head.sprite[:, :, 2]
        lit = cv2.multiply(_shade(head, light, q * _ANGLE_STEP), alpha, scale=255.0)
        tint = _FINISH[head.spec.finish][3]
        channels = [lit * tint[0], lit * tint[1], lit * tint[2], alpha * 255.0]
        return cv2.convertScaleAbs(cv2.merge(channels))

    key = ("paint", q, round(light.elevation, 3), round(light.ambient, 3))
    return head.cached(key, make)


def _keep(head: _Placed, light: Light, angle: float, scale: float, strength: float) -> np.ndarray:
    """How much of the surface's light is left around the head (uint8, x255; contact
    and drop shadow) in the sprite's own frame, at half the sprite's resolution."""
    lx, ly, _ = light.vector()
    flat = max(1e-6, math.hypot(lx, ly))
    length = min(head.reach - 1, head.top * 1.2 / max(math.tan(light.elevation), 0.3))
    sdx, sdy = -lx / flat * length, -ly / flat * length
    ca, sa = math.cos(angle), math.sin(angle)  # into the sprite's frame
    dx, dy = round(ca * sdx + sa * sdy), round(-sa * sdx + ca * sdy)
    size = head.contact_keep.shape[0]

    def make() -> np.ndarray:
        r = head.reach
        drop = head.shadow[r - dy : r - dy + size, r - dx : r - dx + size]
        keep = cv2.convertScaleAbs((1.0 - strength * drop) * head.contact_keep, alpha=255.0)
        # shadows are smooth: half resolution is enough and warps 4x faster
        return cv2.resize(keep, ((size + 1) // 2, (size + 1) // 2), interpolation=cv2.INTER_AREA)

    return head.cached(("keep", dx, dy, round(strength, 3)), make)


def _composite(
    canvas: np.ndarray,
    head: _Placed,
    cx: float,
    cy: float,
    angle: float,
    light: Light,
    *,
    scale: float = 1.0,
    tilt: float = 0.0,
    squash: float = 1.0,
    shadow_strength: float = 0.45,
) -> Box | None:
    """Light and paint one head, with its shadows, onto a uint8 BGR canvas (in
    place). Returns its box (bounding box of alpha > 0.5), None if off-canvas."""
    side = head.sprite.shape[0]
    pside = head.contact_keep.shape[0]
    ch, cw = canvas.shape[:2]
    # the head's patch inside its (larger) shadow patch, both clipped to the canvas
    hh = int(math.ceil(side * scale * 0.5)) + 1
    hp = int(math.ceil(pside * scale * 0.5)) + 1
    hx0, hy0 = max(0, int(cx) - hh), max(0, int(cy) - hh)
    hx1, hy1 = min(cw, int(cx) + hh + 1), min(ch, int(cy) + hh + 1)
    if hx0 >= hx1 or hy0 >= hy1:
        return None
    rx0, ry0 = max(0, int(cx) - hp), max(0, int(cy) - hp)
    rx1, ry1 = min(cw, int(cx) + hp + 1), min(ch, int(cy) + hp + 1)
    # warp straight into the visible part of the patches (4- and 1-channel warps are fast)
    m = _warp_matrix(angle, scale, scale * squash, tilt, (side - 1) / 2.0, (cx - hx0, cy - hy0))
    paint = cv2.warpAffine(_paint(head, light, angle), m, (hx1 - hx0, hy1 - hy0))
    half = _keep(head, light, angle, scale, shadow_strength)  # at half resolution
    rw, rh = rx1 - rx0, ry1 - ry0
    mp = _warp_matrix(
        angle,
        scale,
        scale * squash,
        tilt,
        (half.shape[0] - 1) / 2.0,
        ((cx - rx0) / 2.0 - 0.25, (cy - ry0) / 2.0 - 0.25),
    )
    keep = cv2.warpAffine(
        half,
        mp,
        ((rw + 1) // 2, (rh + 1) // 2),
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=255,
    )
    keep = cv2.resize(keep, (rw, rh), interpolation=cv2.INTER_LINEAR)
    a = cv2.extractChannel(paint, 3)
    # out = background * shadows * (1 - alpha) + premultiplied head colour, in uint8
    sub = (slice(hy0 - ry0, hy1 - ry0), slice(hx0 - rx0, hx1 - rx0))
    keep[sub] = cv2.multiply(keep[sub], cv2.bitwise_not(a), scale=1.0 / 255.0)
    roi = canvas[ry0:ry1, rx0:rx1]
    out = cv2.multiply(roi, cv2.merge([keep, keep, keep]), scale=1.0 / 255.0)
    out[sub] = cv2.add(out[sub], cv2.cvtColor(paint, cv2.COLOR_BGRA2BGR))
    roi[...] = out
    bx, by, bw, bh = cv2.boundingRect(cv2.threshold(a, 127, 1, cv2.THRESH_BINARY)[1])
    if bw == 0:
        return None
    return Box(bx + hx0, by + hy0, bw, bh)


# ---------------------------------------------------------------------------------------------
# Surfaces and light fields
# ---------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth random field in about -1..1 with `cells` blobs along the longer side."""
    ch = max(2, int(round(cells * h / max(h, w))) + 1)
    cw = max(2, int(round(cells * w / max(h, w))) + 1)
    small = rng.normal(0.0, 1.0, (ch, cw)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def make_background(rng: np.random.Generator, h: int, w: int, kind: str | None = None):
    """A surface (float32 BGR 0..1): light, dark, wood, noise (concrete) or metal."""
    kind = kind or BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    low = _smooth_noise(rng, h, w, 3)
    if kind == "light":
        base = rng.uniform(0.7, 0.92)
        gray = base + 0.03 * low + 0.015 * _smooth_noise(rng, h, w, max(8, w // 6))
        color = rng.uniform(0.95, 1.05, 3)
    elif kind == "dark":
        base = rng.uniform(0.1, 0.22)
        gray = base * (1 + 0.1 * low) + 0.012 * _smooth_noise(rng, h, w, max(8, w // 5))
        color = rng.uniform(0.9, 1.1, 3)
    elif kind == "wood":
        ang = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u = xx * math.cos(ang) + yy * math.sin(ang)
        v = -xx * math.sin(ang) + yy * math.cos(ang)
        warp = _smooth_noise(rng, h, w, 4) * rng.uniform(4, 12)
        freq = rng.uniform(0.12, 0.3) * 112.0 / max(112.0, min(h, w) * 0.6)
        grain = np.sin((v + warp + 0.03 * u) * freq)
        base = rng.uniform(0.35, 0.65)
        gray = base * (1 + 0.1 * grain + 0.06 * low)
        color = np.array([0.62, 0.85, 1.12]) * rng.uniform(0.9, 1.1, 3)
    elif kind == "noise":
        base = rng.uniform(0.3, 0.65)
        fine = _smooth_noise(rng, h, w, max(8, w // 3))
        gray = base * (1 + 0.06 * fine + 0.08 * low)
        color = rng.uniform(0.92, 1.08, 3)
    elif kind == "metal":
        base = rng.uniform(0.35, 0.7)
        streak = rng.normal(0, 1, (h, w)).astype(np.float32)
        k = max(9, (w // 6) | 1)
        streak = cv2.blur(streak, (k, 1)) * math.sqrt(k)
        gray = base * (1 + 0.025 * streak + 0.08 * low)
        if rng.random() < 0.5:
            gray = gray.T if h == w else gray
        color = np.array([1.05, 1.0, 0.97]) * rng.uniform(0.97, 1.03, 3)
    else:
        raise ValueError(f"unknown background {kind!r}; choose one of {BACKGROUNDS}")
    gray = np.asarray(gray, np.float32)
    return np.clip(gray[:, :, None] * color.astype(np.float32), 0.0, 1.0).astype(np.float32)


def _shadow_field(
    rng: np.random.Generator, h: int, w: int, pos: float | None = None, angle: float | None = None
) -> np.ndarray:
    """A large cast shadow (0 = lit, 1 = fully in shadow) with a soft curved edge,
    e.g. from a hand or the camera arm; `pos` in 0..1 sweeps it across the scene."""
    angle = rng.uniform(0, _TAU) if angle is None else angle
    pos = rng.uniform(0.25, 0.75) if pos is None else pos
    sh, sw = max(8, h // 8), max(8, w // 8)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xx = xx / (sw - 1) - 0.5
    yy = (yy / (sh - 1) - 0.5) * (h / w)
    d = xx * math.cos(angle) + yy * math.sin(angle) - (pos - 0.5) * 1.3
    d = d + 0.08 * np.sin(3.0 * (-xx * math.sin(angle) + yy * math.cos(angle)) + angle * 5)
    edge = np.clip(0.5 + d / 0.06, 0.0, 1.0)
    return cv2.resize(edge, (w, h), interpolation=cv2.INTER_LINEAR)


def _side_field(h: int, w: int, azimuth: float, low: float, high: float) -> np.ndarray:
    """Brightness falling off away from a light at one side (direction `azimuth`)."""
    sh, sw = max(4, h // 8), max(4, w // 8)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xx = xx / (sw - 1) - 0.5
    yy = (yy / (sh - 1) - 0.5) * (h / w)
    t = 0.5 + (xx * math.cos(azimuth) + yy * math.sin(azimuth))
    field = low + (high - low) * np.clip(t, 0.0, 1.0) ** 1.3
    return cv2.resize(field.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True, slots=True)
class Lighting:
    """The look of one condition: head light direction, exposure, shadows."""

    light: Light
    gain: float
    noise: float  # sensor noise sigma in 0..255 units


def _lighting(rng: np.random.Generator, condition: str) -> Lighting:
    az = rng.uniform(0, _TAU)
    if condition == "side":
        return Lighting(Light(az, rng.uniform(0.25, 0.55), 0.22), rng.uniform(0.9, 1.2), 2.0)
    light = Light(az, rng.uniform(0.85, 1.35), rng.uniform(0.3, 0.45))
    if condition == "dim":
        return Lighting(light, rng.uniform(0.12, 0.3), rng.uniform(1.5, 3.5))
    if condition == "overexposed":
        return Lighting(light, rng.uniform(1.7, 2.6), 1.5)
    return Lighting(light, rng.uniform(0.85, 1.15), rng.uniform(0.8, 2.5))


# ---------------------------------------------------------------------------------------------
# Single samples for datasets
# ---------------------------------------------------------------------------------------------


def _silhouette(
    rng: np.random.Generator, head: _Placed, size: int, cx, cy, angle, scale, squash, tilt
) -> tuple[np.ndarray, Box]:
    side = head.sprite.shape[0]
    m = _warp_matrix(angle, scale, scale * squash, tilt, (side - 1) / 2.0, (cx, cy))
    ch = cv2.warpAffine(head.sprite, m, (size, size), flags=cv2.INTER_LINEAR)
    alpha, recess = ch[:, :, 2], ch[:, :, 3]
    dark = alpha * (1.0 - recess)
    if head.spec.label == SECHSKANT and head.spec.washer and rng.random() < 0.5:
        # the edge between hex and flange often shows as a light line
        lap = np.abs(cv2.Laplacian(ch[:, :, 0], cv2.CV_32F))
        dark = dark * (1.0 - np.clip(lap * 2.0, 0.0, 1.0) * (alpha > 0.9))
    dark = cv2.GaussianBlur(dark, (0, 0), rng.uniform(0.4, 1.2))
    dark += rng.normal(0.0, 0.08, dark.shape).astype(np.float32)
    binary = dark > rng.uniform(0.4, 0.6)
    img = np.where(binary, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        img = 255 - img
    box_mask = (alpha > 0.5).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(box_mask)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), Box(x, y, w, h)


def render_sample(
    rng: np.random.Generator, label: int, condition: str | None = None, size: int = 112
) -> tuple[np.ndarray, Box]:
    """One head of drive type `label` on a `size` x `size` BGR image and its box.

    The head spans roughly 45-85 % of the image side at a random offset, random
    rotation, slight tilt, finish, surface and light; `condition` is one of
    CONDITIONS (random if None)."""
    if condition is None:
        condition = CONDITIONS[int(rng.integers(len(CONDITIONS)))]
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose one of {CONDITIONS}")
    spec = random_spec(rng, label)
    diameter = size * rng.uniform(0.45, 0.85)
    squash = rng.uniform(0.88, 1.0)
    tilt = rng.uniform(0, math.pi)
    angle = rng.uniform(0, _TAU)
    # draw at the final size: the sprite is anti-aliased by its distance fields
    head = _make_placed(spec, diameter / 2.0, rng)
    margin = diameter / 2.0 + 1.0
    cx = rng.uniform(margin, max(margin, size - margin))
    cy = rng.uniform(margin, max(margin, size - margin))
    if condition == "silhouette":
        return _silhouette(rng, head, size, cx, cy, angle, 1.0, squash, tilt)

    look = _lighting(rng, condition)
    canvas = _to_u8(make_background(rng, size, size))
    _composite(
        canvas,
        head,
        cx,
        cy,
        angle,
        look.light,
        squash=squash,
        tilt=tilt,
        shadow_strength=rng.uniform(0.25, 0.6),
    )
    side = head.sprite.shape[0]
    m = _warp_matrix(angle, 1.0, squash, tilt, (side - 1) / 2.0, (cx, cy))
    alpha = cv2.warpAffine(np.ascontiguousarray(head.sprite[:, :, 2]), m, (size, size))
    field = np.full((size, size), look.gain, np.float32)
    if condition == "shadow":
        field *= 1.0 - rng.uniform(0.45, 0.75) * _shadow_field(rng, size, size)
    elif condition == "side":
        field *= _side_field(size, size, look.light.azimuth, rng.uniform(0.35, 0.6), 1.25)
    else:
        field *= 1.0 + 0.12 * _smooth_noise(rng, size, size, 2)
    img = canvas * field[:, :, None]
    if rng.random() < 0.6:  # a slightly oblique camera
        jitter = rng.uniform(-0.06, 0.06, (4, 2)) * size
        src = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
        persp = cv2.getPerspectiveTransform(src, (src + jitter).astype(np.float32))
        img = cv2.warpPerspective(img, persp, (size, size), borderMode=cv2.BORDER_REFLECT)
        alpha = cv2.warpPerspective(alpha, persp, (size, size))
    sigma = rng.uniform(0.0, 1.1) + (0.4 if condition == "dim" else 0.0)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += rng.normal(0.0, look.noise, img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        quality = int(rng.integers(35, 95))
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            img = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    x, y, w, h = cv2.boundingRect((alpha > 0.5).view(np.uint8))
    return img, Box(x, y, w, h)


def render_empty(
    rng: np.random.Generator,
    size: tuple[int, int] = (640, 480),
    condition: str | None = None,
    kind: str | None = None,
) -> np.ndarray:
    """A surface with no head on it (BGR uint8, `size` = (width, height)) under a
    lighting condition: negatives for the head finder (texture, shadow edges)."""
    width, height = size
    condition = condition or DEMO_CONDITIONS[int(rng.integers(len(DEMO_CONDITIONS)))]
    if condition not in DEMO_CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose one of {DEMO_CONDITIONS}")
    look = _lighting(rng, condition)
    img = make_background(rng, height, width, kind) * 255.0
    field = np.full((height, width), look.gain, np.float32)
    if condition == "shadow":
        field *= 1.0 - rng.uniform(0.45, 0.75) * _shadow_field(rng, height, width)
    elif condition == "side":
        field *= _side_field(height, width, look.light.azimuth, rng.uniform(0.35, 0.6), 1.25)
    img = img * field[:, :, None] + rng.normal(0.0, look.noise, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _to_u8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255.0, 0.0, 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# The demo camera
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _DemoHead:
    label: int
    placed: _Placed
    home: tuple[float, float]
    amp: tuple[float, float]
    freq: tuple[float, float]
    phase: tuple[float, float]
    spin: float
    angle0: float
    squash: float
    tilt: float


class DemoSource(Source):
    """A fake camera: `heads` screw heads (all five drive types when heads >= 5)
    drifting and turning on a surface under changing light; frames carry the
    ground truth. Deterministic for a seed. realtime=True paces read() at fps."""

    name = "demo"
    #: seconds each lighting condition lasts
    SEGMENT_SECONDS = 3.0

    def __init__(
        self,
        size: tuple[int, int] = (640, 480),
        fps: float = 30.0,
        heads: int = 5,
        seed: int = 0,
        realtime: bool = True,
        labels: Sequence[int] | None = None,
    ) -> None:
        """`labels`: the drive types to show, repeated over the heads (default: all
        five). `heads=1, labels=[4]` is a training video of one Torx screw."""
        width, height = int(size[0]), int(size[1])
        if width < 160 or height < 120:
            raise CameraError(f"demo size {width}x{height} is too small; use at least 160x120")
        if not 0 < fps <= 1000:
            raise CameraError(f"demo fps must be in (0, 1000], got {fps}")
        if not 1 <= heads <= 12:
            raise CameraError(f"demo heads must be 1..12, got {heads}")
        self._labels = tuple(int(v) for v in (labels or range(NUM_CLASSES)))
        if not self._labels or any(not 0 <= v < NUM_CLASSES for v in self._labels):
            raise CameraError(f"demo labels must be class ids 0..{NUM_CLASSES - 1}, got {labels}")
        super().__init__(fps, (width, height))
        self._n = int(heads)
        self._seed = int(seed)
        self._realtime = bool(realtime)
        self._opened = False
        self._index = 0
        self._t0 = 0.0
        self._heads: list[_DemoHead] = []
        self._background: np.ndarray | None = None
        self._noise: tuple[np.ndarray, np.ndarray] | None = None
        self._over_gain = 1.7

    def condition_at(self, index: int) -> str:
        """The lighting condition of frame `index`."""
        seg = max(1, int(round(self.SEGMENT_SECONDS * self._fps)))
        return DEMO_CONDITIONS[(index // seg) % len(DEMO_CONDITIONS)]

    # -- set-up ------------------------------------------------------------------------------

    def open(self) -> None:
        if self._opened:
            return
        rng = np.random.default_rng(self._seed)
        width, height = self._size
        kind = ("wood", "light", "noise", "metal", "dark")[self._seed % 5]
        bg = make_background(rng, height, width, kind)
        self._background = _to_u8(bg)
        # overexposed: +0.75 EV, but a light surface is pushed only to its clipping point
        bright = float(np.percentile(cv2.cvtColor(self._background, cv2.COLOR_BGR2GRAY), 90))
        self._over_gain = float(np.clip(250.0 / max(bright, 1.0), 1.2, 1.7))
        noise = rng.normal(0.0, 2.5, (height + 16, width + 16, 3))
        self._noise = (
            np.clip(noise, 0, 255).astype(np.uint8),
            np.clip(-noise, 0, 255).astype(np.uint8),
        )
        self._heads = self._layout(rng, kind)
        self._index = 0
        self._t0 = time.monotonic()
        self._opened = True

    def _layout(self, rng: np.random.Generator, kind: str) -> list[_DemoHead]:
        width, height = self._size
        cols = max(1, math.ceil(math.sqrt(self._n * width / height)))
        rows = math.ceil(self._n / cols)
        cw, ch = width / cols, height / rows
        cells = [(c, r) for r in range(rows) for c in range(cols)]
        order = rng.permutation(len(cells))[: self._n]
        labels = [self._labels[i % len(self._labels)] for i in range(self._n)]
        labels = [labels[i] for i in rng.permutation(self._n)]
        # a showcase: finishes that stand out from this surface (datasets mix all)
        finishes = (
            ("dull", "worn", "black") if kind in ("light", "metal") else ("zinc", "dull", "worn")
        )
        heads = []
        cell_min = min(cw, ch)
        for label, cell in zip(labels, order, strict=True):
            c, r = cells[cell]
            finish = finishes[int(rng.integers(len(finishes)))]
            spec = random_spec(rng, label, finish)
            radius = cell_min * rng.uniform(0.2, 0.27)
            placed = _make_placed(spec, radius, rng)
            room_x = max(0.0, cw / 2 - radius * 1.15 - 6)
            room_y = max(0.0, ch / 2 - radius * 1.15 - 6)
            heads.append(
                _DemoHead(
                    label=label,
                    placed=placed,
                    home=((c + 0.5) * cw, (r + 0.5) * ch),
                    amp=(room_x * rng.uniform(0.5, 0.9), room_y * rng.uniform(0.5, 0.9)),
                    freq=(rng.uniform(0.03, 0.09), rng.uniform(0.03, 0.09)),
                    phase=(rng.uniform(0, _TAU), rng.uniform(0, _TAU)),
                    spin=rng.uniform(-0.35, 0.35),
                    angle0=rng.uniform(0, _TAU),
                    squash=rng.uniform(0.9, 1.0),
                    tilt=rng.uniform(0, math.pi),
                )
            )
        return heads

    def close(self) -> None:
        self._opened = False

    # -- frames ------------------------------------------------------------------------------

    def _look(self, index: int) -> tuple[str, Light, float | np.ndarray]:
        """Condition, head light, and the light field of a frame: one gain, or a
        (H, W, 3) uint8 field where 100 means 1.0."""
        width, height = self._size
        t = index / self._fps
        seg = max(1, int(round(self.SEGMENT_SECONDS * self._fps)))
        phase = (index % seg) / seg  # 0..1 within the current condition
        cycle = index // (seg * len(DEMO_CONDITIONS))
        condition = self.condition_at(index)
        az = 0.7 + 0.25 * math.sin(0.2 * t)
        lh, lw = max(6, height // 8), max(8, width // 8)
        if condition == "side":
            az = (cycle * 2.1 + 0.5 * phase) % _TAU + math.pi
            light = Light(az, 0.6, 0.25)
            field = _side_field(lh, lw, az, 0.4, 1.3)
        else:
            light = Light(az, 1.05, 0.38)
            gain = {"even": 1.0, "shadow": 1.05, "dim": 0.22}.get(condition, self._over_gain)
            if condition != "shadow":
                return condition, light, gain
            ang = 0.6 + cycle * 1.9
            sweep = np.random.default_rng([self._seed, cycle])
            field = gain * (1.0 - 0.6 * _shadow_field(sweep, lh, lw, 0.05 + 0.9 * phase, ang))
        small = np.clip(field * 100.0, 0, 255).astype(np.uint8)
        small = cv2.merge([small, small, small])
        return condition, light, cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)

    def render(self, index: int) -> tuple[np.ndarray, list[Truth]]:
        """Frame `index` (BGR uint8) and its ground truth, without pacing."""
        if not self._opened or self._background is None or self._noise is None:
            raise CameraError("the demo source is not open; call open() first")
        width, height = self._size
        t = index / self._fps
        _, light, field = self._look(index)
        canvas = self._background.copy()
        truth = []
        for h in self._heads:
            cx = h.home[0] + h.amp[0] * math.sin(_TAU * h.freq[0] * t + h.phase[0])
            cy = h.home[1] + h.amp[1] * math.sin(_TAU * h.freq[1] * t + h.phase[1])
            box = _composite(
                canvas,
                h.placed,
                cx,
                cy,
                h.angle0 + h.spin * t,
                light,
                squash=h.squash,
                tilt=h.tilt,
            )
            if box is not None:
                truth.append(Truth(h.label, box))
        if isinstance(field, np.ndarray):
            img = cv2.multiply(canvas, field, scale=0.01)
        else:
            img = cv2.convertScaleAbs(canvas, alpha=field)
        # sensor noise: a random window of a pre-drawn noise buffer, added and subtracted
        pos, neg = self._noise
        rs = (index * 7919 + self._seed * 104729) % (16 * 16)
        oy, ox = divmod(rs, 16)
        img = cv2.add(img, pos[oy : oy + height, ox : ox + width])
        img = cv2.subtract(img, neg[15 - oy : 15 - oy + height, 15 - ox : 15 - ox + width])
        return img, truth

    def read(self) -> Frame:
        if not self._opened:
            raise CameraError("the demo source is not open; call open() first")
        index = self._index
        if self._realtime:
            due = self._t0 + index / self._fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 1.0))
            elif delay < -1.0:  # the reader stalled: resume pacing from now, no burst
                self._t0 = time.monotonic() - index / self._fps
        image, truth = self.render(index)
        self._index += 1
        return Frame(image=image, index=index, time=time.time(), truth=truth)


# ---------------------------------------------------------------------------------------------
# Measuring the head finder against the demo's ground truth
# ---------------------------------------------------------------------------------------------


def evaluate_finder(seed: int = 0, frames: int = 300, step: int = 3) -> dict[str, dict[str, float]]:
    """Run `find_heads` on `frames` demo frames (every `step`-th, so all lighting
    conditions come up) and compare with the ground truth. Per condition and "all":
    recall and precision (a match is IoU >= 0.5), share of heads found with
    IoU >= 0.8, mean IoU of matches, and median render / find_heads milliseconds."""
    from .heads import find_heads  # noqa: PLC0415 - heads imports nothing from here

    rows: dict[str, list] = {}
    with DemoSource(seed=seed, realtime=False) as demo:
        for k in range(frames):
            index = k * step
            t0 = time.perf_counter()
            image, truth = demo.render(index)
            t1 = time.perf_counter()
            boxes = find_heads(image)
            t2 = time.perf_counter()
            used: set[int] = set()
            ious = []
            for t in truth:
                scores = [(t.box.iou(b), j) for j, b in enumerate(boxes) if j not in used]
                best, j = max(scores, default=(0.0, -1))
                if best >= 0.5:
                    used.add(j)
                ious.append(best)
            row = (len(truth), len(boxes), ious, t1 - t0, t2 - t1)
            rows.setdefault(demo.condition_at(index), []).append(row)
    rows["all"] = [r for cond in DEMO_CONDITIONS for r in rows.get(cond, [])]
    result = {}
    for name, items in rows.items():
        ious = np.array([v for r in items for v in r[2]])
        matched = ious[ious >= 0.5]
        n_found = sum(r[1] for r in items)
        result[name] = {
            "frames": len(items),
            "heads": int(ious.size),
            "recall": float(matched.size / max(1, ious.size)),
            "precision": float(matched.size / max(1, n_found)),
            "iou_0.8": float((ious >= 0.8).mean()) if ious.size else 0.0,
            "mean_iou": float(matched.mean()) if matched.size else 0.0,
            "render_ms": float(np.median([r[3] for r in items]) * 1000.0),
            "find_ms": float(np.median([r[4] for r in items]) * 1000.0),
        }
    return result


if __name__ == "__main__":  # python -m capture.synthetic [seed] [frames]
    import sys

    args = [int(a) for a in sys.argv[1:3]]
    stats = evaluate_finder(*args)
    for cond, st in stats.items():
        print(
            f"{cond:12s} frames {st['frames']:4d} heads {st['heads']:5d} "
            f"recall {st['recall']:.3f} precision {st['precision']:.3f} "
            f"IoU>=0.8 {st['iou_0.8']:.3f} mean IoU {st['mean_iou']:.3f} "
            f"render {st['render_ms']:.2f} ms find_heads {st['find_ms']:.2f} ms"
        )
