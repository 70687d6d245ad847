"""`render2d`: the 2-D renderer with everything that is not the drive type randomized.

`render_sample` (in `scene`) draws the look the demo camera shows. `render_head` here
draws one head for classifier training with far more variety, named in families so
whole families can be held out (`screwcam synth --generator render2d`):

- style: pan, countersunk (flush in the surface), cheese, button, flange, cap, and for
  hex heads hex / washer_hex (hex head with a washer face); hex heads may carry an
  embossed property-class marking ("8.8", "A2", ...).
- finish: zinc, black_oxide, brass, stainless, painted, rusty, dirty, worn (scratched,
  with a cammed-out, rounded recess).
- light: even, shadow, dim, overexposed, side, and silhouette (flat pictures in either
  polarity: a solid head, an icon-like outline, or a few gray levels, like the thesis's
  icons and solid black hex heads).
- background: light, dark, wood, noise, metal (drawn) or photo (real photographs
  shipped inside scikit-image, via `screwcam.photos`).
- view: top (tilt < 10 degrees), oblique (10-30 degrees), tiny (12-20 px across, so its
  28x28 crop is upsampled).

Recesses show dark or bright (light reflected off their walls); Pozidriv heads get
their four ticks and usually the second, narrow cross at 45 degrees. Every image then
gets a random mix of defocus, motion blur, sensor noise and JPEG.

Family names match `screwcam.render3d`'s where the two overlap (styles, finishes), so a
family can be held out of both generators at once.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from ..frames import Box
from .drawing import INNENSECHSKANT, PHILIPS, POZIDRIV, SECHSKANT, TAU, TORX, HeadSpec
from .scene import (
    BACKGROUNDS as DRAWN_BACKGROUNDS,
)
from .scene import (
    CONDITIONS,
    composite,
    keystone,
    light_field,
    lighting,
    make_background,
    make_placed,
    to_u8,
    warp_matrix,
)

GENERATOR = "render2d"
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
HEX_STYLES: tuple[str, ...] = ("hex", "washer_hex")
RECESS_STYLES: tuple[str, ...] = STYLES[:6]
FINISHES: tuple[str, ...] = (
    "zinc",
    "black_oxide",
    "brass",
    "stainless",
    "painted",
    "rusty",
    "dirty",
    "worn",
)
LIGHTS: tuple[str, ...] = CONDITIONS  # even, shadow, dim, overexposed, side, silhouette
BACKGROUNDS: tuple[str, ...] = (*DRAWN_BACKGROUNDS, "photo")
VIEWS: tuple[str, ...] = ("top", "oblique", "tiny")
MARKINGS: tuple[str, ...] = ("8.8", "10.9", "12.9", "A2", "A4-70", "5.6", "K", "XH", "8")
_SHAPE_OF_STYLE = {
    "pan": "pan",
    "countersunk": "countersunk",
    "cheese": "cheese",
    "button": "dome",
    "flange": "pan",
    "cap": "cap",
    "hex": "hex",
    "washer_hex": "hex",
}
_OVERRIDES = frozenset({"style", "finish", "light", "background", "view", "fill", "effects"})


def _pick(rng: np.random.Generator, choices: tuple[str, ...], value: str | None, what: str):
    if value is None:
        return choices[int(rng.integers(len(choices)))]
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


def make_spec(rng: np.random.Generator, label: int, style: str, finish: str) -> HeadSpec:
    """A random head of drive type `label` in the given style and finish."""
    washer = 0.0
    if style in ("flange", "washer_hex"):
        washer = float(rng.uniform(1.12, 1.32))
    recess = {
        INNENSECHSKANT: rng.uniform(0.36, 0.62),
        PHILIPS: rng.uniform(0.48, 0.78),
        POZIDRIV: rng.uniform(0.48, 0.76),
        SECHSKANT: 0.0,
        TORX: rng.uniform(0.42, 0.66),
    }[label]
    tint = albedo = None
    blotch = cammed = 0.0
    if finish == "painted":
        albedo = float(rng.uniform(0.12, 0.9))
        tint = tuple(float(v) for v in rng.uniform(0.55, 1.25, 3))
    elif finish == "rusty":
        blotch = float(rng.uniform(0.3, 0.85))
        cammed = float(rng.uniform(0.0, 0.5))
    elif finish == "dirty":
        blotch = float(rng.uniform(0.12, 0.45))
    elif finish == "worn":
        cammed = float(rng.uniform(0.35, 1.0))
    if not cammed and rng.random() < 0.3:
        cammed = float(rng.uniform(0.0, 0.25))
    # most recesses look dark; some catch the light on their walls and look bright
    tone = float(rng.uniform(-1.0, -0.35)) if rng.random() < 0.7 else float(rng.uniform(0.2, 1.0))
    if finish == "dirty":
        tone = -1.0  # grime collects in the recess
    marking = ""
    if label == SECHSKANT and rng.random() < 0.5:
        marking = MARKINGS[int(rng.integers(len(MARKINGS)))]
    return HeadSpec(
        label=label,
        shape=_SHAPE_OF_STYLE[style],
        washer=washer,
        recess=float(recess),
        depth=float(rng.uniform(0.25, 0.75)),
        finish=finish,
        variant=float(rng.random()),
        tint=tint,  # type: ignore[arg-type]
        albedo=albedo,
        recess_tone=tone,
        cammed=cammed,
        blotch=blotch,
        marking=marking,
        ribs=label == POZIDRIV and rng.random() < 0.75,
        shape2=float(rng.random()),
    )


def _background(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """uint8 BGR surface of `kind`."""
    if kind != "photo":
        return to_u8(make_background(rng, size, size, kind))
    from .. import photos  # real photographs from scikit-image (training extra)

    tile = photos.random_crop(rng, (size, size))
    if rng.random() < 0.5:  # photos are busy: calm some of them down a little
        tile = cv2.GaussianBlur(tile, (0, 0), float(rng.uniform(0.5, 2.0)))
    return np.ascontiguousarray(tile)


def _flat(
    rng: np.random.Generator, sprite: np.ndarray, m: np.ndarray, size: int, label: int
) -> np.ndarray:
    """A flat picture of the head (uint8 BGR): a solid silhouette, an icon-like outline,
    or a few gray levels; either polarity, slightly blurred and noisy."""
    ch = cv2.warpAffine(sprite, m, (size, size), flags=cv2.INTER_LINEAR)
    alpha, recess = ch[:, :, 2], ch[:, :, 3]
    mode = ("solid", "outline", "gray")[int(rng.choice(3, p=(0.45, 0.25, 0.3)))]
    if mode == "outline":  # line drawing: the head's rim and the recess
        width = int(max(1.0, rng.uniform(0.02, 0.06) * size))
        inner = cv2.erode(alpha, np.ones((3, 3), np.uint8), iterations=width)
        ring = np.clip(alpha - inner, 0.0, 1.0)
        ink = np.maximum(ring, recess) if label != SECHSKANT else ring
    elif mode == "solid":
        ink = alpha * (1.0 - recess)
    else:  # gray: background, head and recess each a gray level
        levels = rng.uniform(0, 1, 3)
        while abs(levels[1] - levels[2]) < 0.3 or abs(levels[0] - levels[1]) < 0.2:
            levels = rng.uniform(0, 1, 3)
        ink = levels[0] + (levels[1] - levels[0]) * alpha + (levels[2] - levels[1]) * recess * alpha
    ink = cv2.GaussianBlur(ink.astype(np.float32), (0, 0), rng.uniform(0.3, 1.2))
    ink += rng.normal(0.0, rng.uniform(0.0, 0.08), ink.shape).astype(np.float32)
    if mode != "gray" and rng.random() < 0.6:
        ink = (ink > rng.uniform(0.4, 0.6)).astype(np.float32)
    img = 1.0 - np.clip(ink, 0.0, 1.0)  # ink is dark on light
    if rng.random() < 0.4:
        img = 1.0 - img
    return cv2.cvtColor(to_u8(img), cv2.COLOR_GRAY2BGR)


def _effects(rng: np.random.Generator, img: np.ndarray, noise: float, light: str) -> dict:
    """Defocus, motion blur, sensor noise and JPEG, each at random; returns what was done."""
    done: dict[str, Any] = {}
    if rng.random() < 0.45:
        sigma = float(rng.uniform(0.4, 1.6)) + (0.3 if light == "dim" else 0.0)
        img[...] = cv2.GaussianBlur(img, (0, 0), sigma)
        done["defocus"] = round(sigma, 2)
    if rng.random() < 0.25:
        length = int(rng.integers(3, 8))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        kernel /= max(float(kernel.sum()), 1e-6)
        img[...] = cv2.filter2D(img, -1, kernel)
        done["motion_blur"] = length
    sigma = noise * float(rng.uniform(0.5, 2.5))
    img += rng.normal(0.0, sigma, img.shape).astype(np.float32)
    done["noise"] = round(sigma, 2)
    return done


def render_head(
    rng: np.random.Generator, label: int, size: int = 112, **overrides: Any
) -> tuple[np.ndarray, Box, dict[str, Any]]:
    """One head of drive type `label` on a `size` x `size` BGR uint8 image.

    Returns (image, box of the whole head, info naming its families: generator, style,
    finish, light, background, view, tilt, effects). Overrides (each optional): style,
    finish, light, background, view (from STYLES / FINISHES / LIGHTS / BACKGROUNDS /
    VIEWS), fill (head diameter / image side), effects (False: no blur, noise or JPEG).
    """
    unknown = set(overrides) - _OVERRIDES
    if unknown:
        raise TypeError(f"render_head got unknown overrides: {', '.join(sorted(unknown))}")
    if not 0 <= label <= 4:
        raise ValueError(f"label must be 0..4, got {label!r}")
    styles = HEX_STYLES if label == SECHSKANT else RECESS_STYLES
    style = _pick(rng, styles, overrides.get("style"), f"style for label {label}")
    finish = _pick(rng, FINISHES, overrides.get("finish"), "finish")
    light = _pick(rng, LIGHTS, overrides.get("light"), "light")
    background = _pick(rng, BACKGROUNDS, overrides.get("background"), "background")
    view = overrides.get("view")
    if view is None:
        view = VIEWS[int(rng.choice(3, p=(0.45, 0.4, 0.15)))]
    view = _pick(rng, VIEWS, view, "view")
    spec = make_spec(rng, label, style, finish)

    if overrides.get("fill") is not None:
        diameter = size * float(overrides["fill"])
    elif view == "tiny":
        diameter = float(rng.uniform(12.0, 20.0))
    else:
        diameter = size * float(rng.uniform(0.4, 0.85))
    tilt_deg = float(rng.uniform(10.0, 30.0) if view == "oblique" else rng.uniform(0.0, 10.0))
    squash = math.cos(math.radians(tilt_deg))
    tilt_axis = float(rng.uniform(0, math.pi))
    angle = float(rng.uniform(0, TAU))
    head = make_placed(spec, diameter / 2.0, rng)
    margin = diameter / 2.0 + 1.0
    cx = float(rng.uniform(margin, max(margin, size - margin)))
    cy = float(rng.uniform(margin, max(margin, size - margin)))
    side = head.sprite.shape[0]
    m = warp_matrix(angle, 1.0, squash, tilt_axis, (side - 1) / 2.0, (cx, cy))
    alpha = cv2.warpAffine(np.ascontiguousarray(head.sprite[:, :, 2]), m, (size, size))
    info: dict[str, Any] = {
        "generator": GENERATOR,
        "label": int(label),
        "style": style,
        "finish": finish,
        "light": light,
        "background": background,
        "view": view,
        "tilt": round(tilt_deg, 1),
        "recess_tone": "bright" if spec.recess_tone > 0 else "dark",
    }
    if light == "silhouette":
        img = _flat(rng, head.sprite, m, size, label).astype(np.float32)
        info["background"] = "flat"
        noise = 1.0
    else:
        look = lighting(rng, light)
        canvas = _background(rng, size, background)
        shadow = 0.05 if style == "countersunk" else float(rng.uniform(0.2, 0.65))
        composite(
            canvas,
            head,
            cx,
            cy,
            angle,
            look.light,
            squash=squash,
            tilt=tilt_axis,
            shadow_strength=shadow,
        )
        field = light_field(rng, size, size, light, look, shadow=(0.45, 0.8), side=(0.3, 0.6))
        img = canvas.astype(np.float32) * field[:, :, None]
        noise = look.noise
    if rng.random() < 0.5:  # a slightly off-axis camera
        img, alpha = keystone(rng, img, alpha, 0.05)
    if overrides.get("effects", True):
        info["effects"] = _effects(rng, img, noise, light)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if overrides.get("effects", True) and rng.random() < 0.6:
        quality = int(rng.integers(25, 95))
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(enc, cv2.IMREAD_COLOR)
            info["effects"]["jpeg"] = quality
    x, y, w, h = cv2.boundingRect((alpha > 0.5).astype(np.uint8))
    if w == 0:  # cannot happen for a head inside the image; keep the contract anyway
        x, y, w, h = int(cx - margin), int(cy - margin), int(diameter), int(diameter)
    return out, Box(x, y, w, h), info
