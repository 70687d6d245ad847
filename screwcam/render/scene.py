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
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..frames import Box
from .drawing import FINISH_LOOK, SECHSKANT, TAU, HeadSpec, draw_sprite, random_spec

CONDITIONS: tuple[str, ...] = ("even", "shadow", "dim", "overexposed", "side", "silhouette")
#: the lighting cycle of the demo camera (silhouettes are a dataset-only look)
DEMO_CONDITIONS: tuple[str, ...] = CONDITIONS[:5]
BACKGROUNDS: tuple[str, ...] = ("light", "dark", "wood", "noise", "metal")

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


def warp_matrix(angle: float, sx: float, sy: float, tilt: float, src_c: float, dst_c):
    """2x3 affine for `cv2.warpAffine` that places a head's square sprite: rotate by
    `angle`, then scale by (sx, sy) along the axes turned by `tilt` (a slightly tilted
    view), mapping the sprite point (src_c, src_c) to `dst_c` = (x, y) in the image."""
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
class Placed:
    """A head's sprite prepared for fast lighting: unit normals, albedo, sky light,
    and, on a canvas padded by `pad`, its contact shadow and the blurred alpha its
    drop shadow is cut from. Lit paint and shadow maps are cached per (quantized)
    light and pose, so a slowly turning head is re-lit only every few frames; the
    cache keys fix the result, so frames stay deterministic in any order."""

    spec: HeadSpec
    #: (S, S, 4) height, albedo, alpha, recess; None when made with keep_sprite=False
    #: (lighting and compositing use only the maps below)
    sprite: np.ndarray | None
    alpha: np.ndarray  # (S, S)
    normals: np.ndarray  # (S, S, 3) nx, ny, nz
    albedo: np.ndarray  # (S, S)
    sky: np.ndarray  # (S, S) albedo * nz^3: light from the whole sky, dark rims
    contact_keep: np.ndarray  # (S + 2 pad,) * 2: 1 - contact shadow
    shadow: np.ndarray  # (S + 2 pad + 2 reach,) * 2: blurred alpha
    pad: int
    reach: int  # longest drop-shadow offset in px
    top: float
    cache: dict = field(default_factory=dict)

    #: entries kept per head: the light-vs-head angle moves steadily, so a frame needs
    #: this frame's paint and shadow keys and the last few (a bigger cache or one that
    #: fills and clears misses no less often, and keeps up to 17 images per head)
    CACHE_SIZE = 4

    def cached(self, key: tuple, make):
        """The cached value of `key`, made by `make()` on a miss; the least recently
        used entry makes room."""
        cache = self.cache
        value = cache.pop(key, None)
        if value is None:
            if len(cache) >= self.CACHE_SIZE:
                del cache[next(iter(cache))]
            value = make()
        cache[key] = value  # most recently used last
        return value


def make_placed(
    spec: HeadSpec, radius: float, rng: np.random.Generator, keep_sprite: bool = True
) -> Placed:
    """A head ready to be lit and composited. keep_sprite=False drops the (S, S, 4)
    float sprite, which only crop and detector renderers need (the demo and conveyor
    cameras keep their heads for their whole life)."""
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
    return Placed(
        spec,
        sprite if keep_sprite else None,
        alpha,
        normals,
        albedo,
        sky,
        contact_keep,
        shadow,
        pad,
        reach,
        float(top),
    )


def _shade(head: Placed, light: Light, rel: float) -> np.ndarray:
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
    _, ks, power, _ = FINISH_LOOK[head.spec.finish]
    spec = cv2.pow(ndh, power)
    value = cv2.multiply(head.albedo, ndl, scale=0.7)
    cv2.scaleAdd(head.sky, light.ambient, value, value)
    cv2.scaleAdd(spec, ks, value, value)
    return value


def _paint(head: Placed, light: Light, angle: float) -> np.ndarray:
    """(S, S, 4) uint8: premultiplied, tinted BGR and alpha (x255) of the lit head."""
    q = round((light.azimuth - angle) / _ANGLE_STEP)

    def make() -> np.ndarray:
        alpha = head.alpha
        lit = cv2.multiply(_shade(head, light, q * _ANGLE_STEP), alpha, scale=255.0)
        tint = head.spec.tint or FINISH_LOOK[head.spec.finish][3]
        channels = [lit * tint[0], lit * tint[1], lit * tint[2], alpha * 255.0]
        return cv2.convertScaleAbs(cv2.merge(channels))

    key = ("paint", q, round(light.elevation, 3), round(light.ambient, 3))
    return head.cached(key, make)


def _keep(head: Placed, light: Light, angle: float, scale: float, strength: float) -> np.ndarray:
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


def composite(
    canvas: np.ndarray,
    head: Placed,
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
    side = head.alpha.shape[0]
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
    m = warp_matrix(angle, scale, scale * squash, tilt, (side - 1) / 2.0, (cx - hx0, cy - hy0))
    paint = cv2.warpAffine(_paint(head, light, angle), m, (hx1 - hx0, hy1 - hy0))
    half = _keep(head, light, angle, scale, shadow_strength)  # at half resolution
    rw, rh = rx1 - rx0, ry1 - ry0
    mp = warp_matrix(
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


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """A smooth random field (float32, h x w) in about -1..1 with `cells` blobs along
    the longer side: low-frequency texture, uneven light, warps."""
    ch = max(2, int(round(cells * h / max(h, w))) + 1)
    cw = max(2, int(round(cells * w / max(h, w))) + 1)
    small = rng.normal(0.0, 1.0, (ch, cw)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def make_background(rng: np.random.Generator, h: int, w: int, kind: str | None = None):
    """A surface (float32 BGR 0..1): light, dark, wood, noise (concrete) or metal."""
    kind = kind or BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    low = smooth_noise(rng, h, w, 3)
    if kind == "light":
        base = rng.uniform(0.7, 0.92)
        gray = base + 0.03 * low + 0.015 * smooth_noise(rng, h, w, max(8, w // 6))
        color = rng.uniform(0.95, 1.05, 3)
    elif kind == "dark":
        base = rng.uniform(0.1, 0.22)
        gray = base * (1 + 0.1 * low) + 0.012 * smooth_noise(rng, h, w, max(8, w // 5))
        color = rng.uniform(0.9, 1.1, 3)
    elif kind == "wood":
        ang = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u = xx * math.cos(ang) + yy * math.sin(ang)
        v = -xx * math.sin(ang) + yy * math.cos(ang)
        warp = smooth_noise(rng, h, w, 4) * rng.uniform(4, 12)
        freq = rng.uniform(0.12, 0.3) * 112.0 / max(112.0, min(h, w) * 0.6)
        grain = np.sin((v + warp + 0.03 * u) * freq)
        base = rng.uniform(0.35, 0.65)
        gray = base * (1 + 0.1 * grain + 0.06 * low)
        color = np.array([0.62, 0.85, 1.12]) * rng.uniform(0.9, 1.1, 3)
    elif kind == "noise":
        base = rng.uniform(0.3, 0.65)
        fine = smooth_noise(rng, h, w, max(8, w // 3))
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


def shadow_field(
    rng: np.random.Generator, h: int, w: int, pos: float | None = None, angle: float | None = None
) -> np.ndarray:
    """A large cast shadow (0 = lit, 1 = fully in shadow) with a soft curved edge,
    e.g. from a hand or the camera arm; `pos` in 0..1 sweeps it across the scene."""
    angle = rng.uniform(0, TAU) if angle is None else angle
    pos = rng.uniform(0.25, 0.75) if pos is None else pos
    sh, sw = max(8, h // 8), max(8, w // 8)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xx = xx / (sw - 1) - 0.5
    yy = (yy / (sh - 1) - 0.5) * (h / w)
    d = xx * math.cos(angle) + yy * math.sin(angle) - (pos - 0.5) * 1.3
    d = d + 0.08 * np.sin(3.0 * (-xx * math.sin(angle) + yy * math.cos(angle)) + angle * 5)
    edge = np.clip(0.5 + d / 0.06, 0.0, 1.0)
    return cv2.resize(edge, (w, h), interpolation=cv2.INTER_LINEAR)


def side_field(h: int, w: int, azimuth: float, low: float, high: float) -> np.ndarray:
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


def lighting(rng: np.random.Generator, condition: str) -> Lighting:
    """A random look for a lighting `condition` (one of CONDITIONS): the light on the
    heads, the exposure gain and the sensor noise. "side" is a low light; "dim",
    "overexposed" set the gain; the others are an even overhead light (the scene's
    shadow or silhouette is drawn by the caller, see `light_field`)."""
    az = rng.uniform(0, TAU)
    if condition == "side":
        return Lighting(Light(az, rng.uniform(0.25, 0.55), 0.22), rng.uniform(0.9, 1.2), 2.0)
    light = Light(az, rng.uniform(0.85, 1.35), rng.uniform(0.3, 0.45))
    if condition == "dim":
        return Lighting(light, rng.uniform(0.12, 0.3), rng.uniform(1.5, 3.5))
    if condition == "overexposed":
        return Lighting(light, rng.uniform(1.7, 2.6), 1.5)
    return Lighting(light, rng.uniform(0.85, 1.15), rng.uniform(0.8, 2.5))


def light_field(
    rng: np.random.Generator,
    h: int,
    w: int,
    condition: str,
    look: Lighting,
    *,
    shadow: tuple[float, float] = (0.45, 0.75),
    side: tuple[float, float] = (0.35, 0.6),
    uneven: bool = True,
) -> np.ndarray:
    """The brightness (float32, h x w) a scene is multiplied by under `condition`:
    `look.gain` everywhere, times a cast shadow of a random strength in `shadow`
    ("shadow"), a fall-off from `look`'s side light down to a random low in `side`
    ("side"), or else, if `uneven`, a gentle +-12 % unevenness."""
    field = np.full((h, w), look.gain, np.float32)
    if condition == "shadow":
        field *= 1.0 - rng.uniform(*shadow) * shadow_field(rng, h, w)
    elif condition == "side":
        field *= side_field(h, w, look.light.azimuth, rng.uniform(*side), 1.25)
    elif uneven:
        field *= 1.0 + 0.12 * smooth_noise(rng, h, w, 2)
    return field


def keystone(
    rng: np.random.Generator, img: np.ndarray, alpha: np.ndarray, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    """A slightly off-axis camera: the square `img` and its head mask `alpha` warped by
    one random perspective that moves each corner by up to `spread` of the side."""
    size = img.shape[0]
    jitter = rng.uniform(-spread, spread, (4, 2)) * size
    src = np.float32([[0, 0], [size, 0], [size, size], [0, size]])
    persp = cv2.getPerspectiveTransform(src, (src + jitter).astype(np.float32))
    img = cv2.warpPerspective(img, persp, (size, size), borderMode=cv2.BORDER_REFLECT)
    return img, cv2.warpPerspective(alpha, persp, (size, size))


# ---------------------------------------------------------------------------------------------
# Single samples for datasets
# ---------------------------------------------------------------------------------------------


def _silhouette(
    rng: np.random.Generator, head: Placed, size: int, cx, cy, angle, scale, squash, tilt
) -> tuple[np.ndarray, Box]:
    side = head.sprite.shape[0]
    m = warp_matrix(angle, scale, scale * squash, tilt, (side - 1) / 2.0, (cx, cy))
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
    angle = rng.uniform(0, TAU)
    # draw at the final size: the sprite is anti-aliased by its distance fields
    head = make_placed(spec, diameter / 2.0, rng)
    margin = diameter / 2.0 + 1.0
    cx = rng.uniform(margin, max(margin, size - margin))
    cy = rng.uniform(margin, max(margin, size - margin))
    if condition == "silhouette":
        return _silhouette(rng, head, size, cx, cy, angle, 1.0, squash, tilt)

    look = lighting(rng, condition)
    canvas = to_u8(make_background(rng, size, size))
    composite(
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
    m = warp_matrix(angle, 1.0, squash, tilt, (side - 1) / 2.0, (cx, cy))
    alpha = cv2.warpAffine(np.ascontiguousarray(head.sprite[:, :, 2]), m, (size, size))
    field = light_field(rng, size, size, condition, look)
    img = canvas * field[:, :, None]
    if rng.random() < 0.6:  # a slightly oblique camera
        img, alpha = keystone(rng, img, alpha, 0.06)
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
    look = lighting(rng, condition)
    img = make_background(rng, height, width, kind) * 255.0
    field = light_field(rng, height, width, condition, look, uneven=False)
    img = img * field[:, :, None] + rng.normal(0.0, look.noise, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def to_u8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255.0, 0.0, 255.0).astype(np.uint8)
