"""render_sdf: a third, independently built generator of screw-head images.

Heads are signed distance fields (`geometry`): head solids (pan, countersunk flush in a
surface, cheese, button, flange; hex heads with chamfer, flange or washer face) with the
drive recess subtracted by a smooth (worn) subtraction. Each image is ray-marched
(sphere tracing, `tracer`) through a tilted perspective camera, shaded with Oren-Nayar
diffuse and Blinn-Phong or Ward anisotropic specular, soft shadows marched toward 1-3
lights, SDF ambient occlusion and a sky-gradient reflection; the ground plane carries a
real-photo, wood, brushed-metal or flat albedo. Then lens and sensor: defocus, motion
blur, noise, JPEG, and for tiny heads a render 12-20 px across scaled up.

It shares no code with `screwcam.render` (2-D layers) or `screwcam.render3d` (shaded
height fields): a model trained on those can be tested on this one, and the reverse.

    >>> import numpy as np
    >>> from screwcam import render_sdf
    >>> img, box, info = render_sdf.render_head(np.random.default_rng(0), 4, size=64)

Families (info keys): style, finish, light, bg, view.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import DatasetError
from ..frames import Box, HeadLayer
from .geometry import HEX_STYLES, LABEL_STYLES, RECESS_STYLES, draw_head
from .tracer import (
    Light,
    Material,
    Scene,
    ambient_occlusion,
    bilinear,
    march,
    normals,
    shade,
    soft_shadow,
)

FINISHES: tuple[str, ...] = ("zinc", "black", "brass", "stainless", "painted", "rusty")
LIGHTS: tuple[str, ...] = ("soft", "grazing", "ring", "dome", "dim", "overexposed")
BACKGROUNDS: tuple[str, ...] = ("photo", "flat", "wood", "metal")
VIEWS: tuple[str, ...] = ("top", "oblique", "tiny")
#: the internal render resolution (rays per side); the image is resized to `size`
TRACE_SIZE = 56
#: lights of `render_layer`: a scene dims or overexposes its heads itself
LAYER_LIGHTS: tuple[str, ...] = ("soft", "grazing", "ring", "dome")

__all__ = [
    "BACKGROUNDS",
    "FINISHES",
    "HEX_STYLES",
    "LABEL_STYLES",
    "LIGHTS",
    "RECESS_STYLES",
    "TRACE_SIZE",
    "VIEWS",
    "HeadLayer",
    "render_head",
    "render_layer",
]


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def _direction(azimuth: float, elevation: float) -> np.ndarray:
    ce = np.cos(elevation)
    return np.array([ce * np.cos(azimuth), ce * np.sin(azimuth), np.sin(elevation)])


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from .. import photos

    out = []
    for name in photos.available():
        img = photos.load_photo(name, gray=False).astype(np.float32) / 255.0
        out.append(img[..., ::-1].copy())  # RGB
    return tuple(out)


def _noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """Smooth value noise, a (64, 64) float texture in [0, 1]."""
    g = rng.random((cells, cells)).astype(np.float32)
    big = cv2.resize(g, (64, 64), interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0, 1)


def _ground_albedo(rng: np.random.Generator, bg: str, x: np.ndarray, y: np.ndarray):
    """RGB albedo of the ground at world points (and a specular strength)."""
    n = len(x)
    ang = rng.uniform(0, np.pi)
    c, s = np.cos(ang), np.sin(ang)
    u, v = c * x + s * y, -s * x + c * y
    if bg == "photo":
        pics = _photos()
        if not pics:  # never draw another surface under the name "photo"
            raise DatasetError(
                "scikit-image's sample photographs are missing, so bg=photo cannot be "
                "drawn; reinstall scikit-image or leave the family out (--exclude bg=photo)"
            )
        tex = pics[int(rng.integers(len(pics)))]
        scale = rng.uniform(15, 90)  # photo pixels per head radius
        off = rng.uniform(0, 1000, 2)
        rgb = bilinear(tex, u * scale + off[0], v * scale + off[1])
        if rng.random() < 0.5:
            rgb = rgb.mean(axis=1, keepdims=True) * np.ones(3)
        return rgb * rng.uniform(0.5, 1.1), 0.02
    if bg == "flat":
        base = rng.uniform(0.03, 0.9) * (1 + rng.normal(0, 0.08, 3))
        grain = bilinear(_noise(rng, 6), u * 4 + 7, v * 4 + 3)
        return np.clip(base[None, :] * (0.92 + 0.16 * grain[:, None]), 0, 1), 0.02
    if bg == "wood":
        base = np.array([0.55, 0.36, 0.2]) * rng.uniform(0.4, 1.2) * (1 + rng.normal(0, 0.1, 3))
        warp = bilinear(_noise(rng, 5), u * 3 + 11, v * 3 + 5) * rng.uniform(1, 4)
        rings = 0.5 + 0.5 * np.sin(v * rng.uniform(6, 18) + warp * 3)
        rgb = base[None, :] * (0.7 + 0.35 * rings[:, None])
        return np.clip(rgb, 0, 1), 0.05
    # brushed metal plate: noise stretched along u
    tone = rng.uniform(0.25, 0.75)
    streak = bilinear(_noise(rng, 24), u * 1.5 + 3, v * 40 + 9)
    rgb = (tone * (0.85 + 0.3 * streak))[:, None] * np.ones((n, 3))
    return np.clip(rgb, 0, 1), 0.6


def _finish(rng: np.random.Generator, finish: str, p: np.ndarray) -> Material:
    """Material of the head at the hit points p (N, 3)."""
    n = len(p)
    ones = np.ones((n, 1))
    tint = 1 + rng.normal(0, 0.04, 3)
    noise = bilinear(_noise(rng, 10), p[:, 0] * 20 + 31, p[:, 1] * 20 + 17)[:, None]
    if finish == "zinc":
        col = np.array([0.62, 0.64, 0.68]) if rng.random() < 0.75 else np.array([0.72, 0.64, 0.35])
        col = col * tint * rng.uniform(0.7, 1.1)
        return Material(
            ones * col * 0.5, ones * col, rng.uniform(20, 120), None, 0.2, rng.uniform(0.5, 1.2)
        )
    if finish == "black":
        col = np.full(3, rng.uniform(0.03, 0.09)) * tint
        return Material(
            ones * col, ones * rng.uniform(0.1, 0.35), rng.uniform(8, 60), None, 0.3, 0.35
        )
    if finish == "brass":
        col = np.array([0.78, 0.6, 0.26]) * tint * rng.uniform(0.7, 1.1)
        return Material(
            ones * col * 0.45, ones * col, rng.uniform(25, 90), None, 0.15, rng.uniform(0.6, 1.2)
        )
    if finish == "stainless":
        col = np.full(3, rng.uniform(0.5, 0.7)) * tint
        aniso = (rng.uniform(0.05, 0.15), rng.uniform(0.25, 0.5))
        return Material(ones * col * 0.45, ones * col, 40.0, aniso, 0.2, rng.uniform(0.5, 1.1))
    if finish == "painted":
        col = (
            rng.uniform(0.05, 0.9, 3) if rng.random() < 0.6 else np.full(3, rng.uniform(0.05, 0.95))
        )
        return Material(
            ones * col, ones * rng.uniform(0.05, 0.3), rng.uniform(8, 40), None, 0.35, 0.15
        )
    # rusty: brown oxide with patches of bare metal, very rough
    rust = np.array([0.36, 0.17, 0.07]) * tint * rng.uniform(0.6, 1.2)
    metal = np.array([0.45, 0.45, 0.47])
    mix = np.clip((noise - rng.uniform(0.2, 0.6)) * 4, 0, 1)
    albedo = rust * (1 - mix) + metal * 0.5 * mix
    albedo = albedo * (0.7 + 0.6 * bilinear(_noise(rng, 30), p[:, 0] * 30, p[:, 1] * 30)[:, None])
    return Material(albedo, 0.1 * mix * ones, 10.0, None, rng.uniform(0.4, 0.8), 0.1)


def _lights(rng: np.random.Generator, light: str, cam_dir: np.ndarray):
    """(lights, ambient RGB, exposure, sky) for a lighting family."""
    warm = 1 + rng.normal(0, 0.06, 3)

    def az() -> float:
        return float(rng.uniform(0, 2 * np.pi))

    lights: list[Light] = []
    exposure = rng.uniform(0.8, 1.25)
    if light in ("soft", "dim", "overexposed"):
        for i in range(int(rng.integers(1, 4))):
            el = np.radians(rng.uniform(25, 80))
            lights.append(
                Light(
                    _direction(az(), el),
                    warm * rng.uniform(0.5, 1.2) / (1 + i * 0.5),
                    rng.uniform(3, 12),
                )
            )
        ambient = warm * rng.uniform(0.1, 0.3)
    elif light == "grazing":
        el = np.radians(rng.uniform(4, 20))
        lights.append(
            Light(_direction(az(), el), warm * rng.uniform(1.2, 2.2), rng.uniform(10, 40))
        )
        ambient = warm * rng.uniform(0.03, 0.15)
    elif light == "ring":  # lights around the lens: flat faces bright, recesses dark
        base = np.arctan2(cam_dir[1], cam_dir[0])
        el = np.arcsin(np.clip(cam_dir[2], -1, 1))
        spread = np.radians(rng.uniform(4, 15))
        for k in range(3):
            a = base + k * 2 * np.pi / 3
            d = _unit(_direction(base, el) + spread * np.array([np.cos(a), np.sin(a), 0]))
            lights.append(Light(d, warm * 0.45, rng.uniform(6, 20)))
        ambient = warm * rng.uniform(0.02, 0.1)
    else:  # dome: overcast sky, light mostly from the ambient and the environment
        lights.append(Light(_direction(az(), np.radians(rng.uniform(50, 90))), warm * 0.3, 2.0))
        ambient = warm * rng.uniform(0.45, 0.8)
    if light == "dim":
        exposure *= rng.uniform(0.15, 0.4)
    elif light == "overexposed":
        exposure *= rng.uniform(1.5, 2.6)
    horizon = warm * rng.uniform(0.1, 0.6)
    zenith = warm * rng.uniform(0.3, 1.2)
    sun = lights[0].direction if rng.random() < 0.7 else _direction(az(), rng.uniform(0.2, 1.4))
    sky = (horizon, zenith, sun, warm * rng.uniform(0.5, 3.0))
    return lights, ambient, exposure, sky


def _camera(rng: np.random.Generator, head, tilt: float, res: int):
    """Ray origin and unit directions (res*res, 3) of a tilted perspective camera."""
    az = rng.uniform(0, 2 * np.pi)
    t = np.radians(tilt)
    back = np.array([np.sin(t) * np.cos(az), np.sin(t) * np.sin(az), np.cos(t)])
    target = np.array([*rng.normal(0, 0.12, 2), max(head.height, 0.0) * 0.5])
    dist = float(np.exp(rng.uniform(np.log(3.0), np.log(16.0))))
    origin = target + back * dist
    fwd = -back
    hint = _direction(rng.uniform(0, 2 * np.pi), 0.0)  # in-plane roll
    right = np.cross(fwd, hint)
    if np.linalg.norm(right) < 1e-6:
        right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
    right = _unit(right)
    up = np.cross(right, fwd)
    frac = rng.uniform(0.4, 0.72)  # head diameter / image width
    half = head.radius / frac / dist
    s = (np.arange(res) + 0.5) / res * 2 - 1
    uu, vv = np.meshgrid(s * half, -s * half)
    dirs = fwd[None, :] + uu.reshape(-1, 1) * right[None, :] + vv.reshape(-1, 1) * up[None, :]
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return origin, dirs, back, 2 * half / res


def _choose(rng, label, style, finish, light, bg, view, lights=LIGHTS, views=VIEWS):
    """The families of one head: those given, checked; the others drawn at random (in
    this order: style, finish, light, bg, view)."""
    if label not in LABEL_STYLES:
        raise ValueError(f"label must be 0..4, got {label}")
    style = style or LABEL_STYLES[label][int(rng.integers(len(LABEL_STYLES[label])))]
    if style not in LABEL_STYLES[label]:
        raise ValueError(f"style {style!r} does not fit label {label}")
    finish = finish or FINISHES[int(rng.integers(len(FINISHES)))]
    light = light or lights[int(rng.integers(len(lights)))]
    bg = bg or BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    view = view or views[int(rng.integers(len(views)))]
    for name, value, options in (
        ("finish", finish, FINISHES),
        ("light", light, lights),
        ("bg", bg, BACKGROUNDS),
        ("view", view, views),
    ):
        if value not in options:
            raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(options)}")
    return style, finish, light, bg, view


@dataclass(frozen=True, slots=True)
class _Traced:
    rgb: np.ndarray  # (res*res, 3) linear radiance, before exposure
    on_head: np.ndarray  # (res*res,) bool
    exposure: float
    tilt: float
    # light the ground received / light it would receive with no head (1 on the head):
    # the head's cast shadow and occlusion; None unless asked for
    shadow: np.ndarray | None


def _trace(rng, label, style, finish, light, bg, view, res, shadow=False) -> _Traced:
    """Ray-march one head and its ground at res x res rays and shade them."""
    head = draw_head(rng, label, style)
    hole = 1.0 + rng.uniform(0.01, 0.05) if style == "countersunk" else 0.0
    scene = Scene(head, hole)
    tilt = rng.uniform(10, 30) if view == "oblique" else rng.uniform(0, 10)
    origin, dirs, cam_dir, pix = _camera(rng, head, tilt, res)
    top = max(head.height, 0.0) + 0.3
    t0 = np.maximum((origin[2] - top) / np.maximum(-dirs[:, 2], 1e-3), 0.0)
    t = march(scene, origin, dirs, t0, eps=pix * 0.3 / max(origin[2], 1.0))
    p = origin[None, :] + dirs * t[:, None]
    # rays closed on the floor limit: put them on the ground plane
    low = p[:, 2] < -0.5
    if low.any():
        tg = origin[2] / np.maximum(-dirs[low, 2], 1e-3)
        p[low] = origin[None, :] + dirs[low] * tg[:, None]
    d_head, d_ground = scene.dists(p[:, 0], p[:, 1], p[:, 2])
    on_head = (d_head <= d_ground) & (np.hypot(p[:, 0], p[:, 1]) < head.radius + 0.1)
    n = normals(scene, p)
    view_v = -dirs

    lights, ambient, exposure, sky = _lights(rng, light, cam_dir)
    ao = ambient_occlusion(scene, p, n, 0.25)
    lit = []
    for lt in lights:
        vis = np.zeros(len(p))
        facing = (n @ lt.direction) > 0
        if facing.any():
            pf = p[facing] + n[facing] * 0.01
            vis[facing] = soft_shadow(scene, pf, lt.direction, lt.sharpness)
        lit.append((lt, vis))
    rgb = np.zeros((len(p), 3))
    hi = np.flatnonzero(on_head)
    gi = np.flatnonzero(~on_head)
    if hi.size:
        mat = _finish(rng, finish, p[hi])
        sub = [(lt, v[hi]) for lt, v in lit]
        rgb[hi] = shade(p[hi], n[hi], view_v[hi], mat, sub, ambient, ao[hi], sky)
    if gi.size:
        alb, spec = _ground_albedo(rng, bg, p[gi, 0], p[gi, 1])
        gm = Material(alb, np.full((len(gi), 3), spec), 30.0, None, 0.3, spec * 0.5)
        sub = [(lt, v[gi]) for lt, v in lit]
        rgb[gi] = shade(p[gi], n[gi], view_v[gi], gm, sub, ambient, ao[gi], sky)

    ratio = None
    if shadow:
        ratio = np.ones(len(p))
        if gi.size:
            up = np.tile(np.array([0.0, 0.0, 1.0]), (gi.size, 1))
            free = [(lt, np.ones(gi.size)) for lt, _ in lit]
            ones = np.ones(gi.size)
            clear = shade(p[gi], up, view_v[gi], gm, free, ambient, ones, sky).mean(axis=1)
            got = rgb[gi].mean(axis=1)
            ratio[gi] = np.clip(got / np.maximum(clear, 1e-6), 0.0, 1.5)

    if hi.size and gi.size and rng.random() < 0.8:
        # a head the same brightness as its surface is rare in real pictures: most of
        # the time push the surface at least 25 % away from the head's mean brightness
        head_l, ground_l = rgb[hi].mean(), rgb[gi].mean()
        if abs(ground_l - head_l) < 0.25 * max(head_l, ground_l, 1e-3):
            darker = rng.random() < 0.5 if head_l > 0.05 else False
            factor = rng.uniform(0.3, 0.7) if darker else rng.uniform(1.4, 2.5)
            rgb[gi] *= factor
    return _Traced(rgb, on_head, float(exposure), float(tilt), ratio)


def render_head(
    rng: np.random.Generator,
    label: int,
    size: int = 64,
    style: str | None = None,
    finish: str | None = None,
    light: str | None = None,
    bg: str | None = None,
    view: str | None = None,
) -> tuple[np.ndarray, Box, dict]:
    """One head of class `label` (0 hex socket, 1 Phillips, 2 Pozidriv, 3 hex head,
    4 Torx): (BGR uint8 image size x size, Box of the whole head, info naming its
    families). Families left None are drawn at random."""
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    style, finish, light, bg, view = _choose(rng, label, style, finish, light, bg, view)
    res = min(TRACE_SIZE, size)
    tr = _trace(rng, label, style, finish, light, bg, view, res)
    rgb, on_head, tilt = tr.rgb, tr.on_head, tr.tilt
    exposure = tr.exposure
    img = rgb.reshape(res, res, 3) * exposure
    img = 1.0 - np.exp(-img * rng.uniform(1.0, 1.8)) if rng.random() < 0.5 else img
    img = np.clip(img, 0, 1) ** (1 / 2.2)
    mask = on_head.reshape(res, res)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:  # cannot happen with the framing above; keep a centred box
        xs, ys = np.array([res // 4, 3 * res // 4]), np.array([res // 4, 3 * res // 4])
    img = (img[..., ::-1] * 255).astype(np.float32)  # BGR
    scale = size / res
    if size != res:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    box = Box(
        int(np.floor(xs.min() * scale)),
        int(np.floor(ys.min() * scale)),
        max(1, int(np.ceil((xs.max() + 1 - xs.min()) * scale))),
        max(1, int(np.ceil((ys.max() + 1 - ys.min()) * scale))),
    )
    img = _camera_effects(rng, img, box, view, light)
    info = {
        "style": style,
        "finish": finish,
        "light": light,
        "bg": bg,
        "view": view,
        "tilt": float(tilt),
        "generator": "sdf",
    }
    return img, box, info


def render_layer(
    rng: np.random.Generator,
    label: int,
    diameter: float,
    style: str | None = None,
    finish: str | None = None,
    light: str | None = None,
    view: str | None = None,
) -> HeadLayer:
    """One head of class `label`, `diameter` pixels across (its box's longer side), as
    layers (linear radiance, coverage, the shadow it casts on the ground) for a caller
    that composes scenes on its own surfaces: the detector's scene family "sdf"
    (`training/detector_data.py`). Lights: LAYER_LIGHTS; views: top or oblique (a tiny
    head is a small `diameter`); lens and sensor effects are the caller's."""
    if not 4 <= diameter <= 2000:
        raise ValueError(f"diameter must be 4..2000 px, got {diameter}")
    style, finish, light, bg, view = _choose(
        rng, label, style, finish, light, "flat", view, LAYER_LIGHTS, ("top", "oblique")
    )
    # about 1.5 rays per output pixel (the head is 40-72 % of the traced width)
    res = int(np.clip(round(1.5 * diameter / 0.56), 20, 112))
    tr = _trace(rng, label, style, finish, light, bg, view, res, shadow=True)
    mask = tr.on_head.reshape(res, res).astype(np.float32)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:  # cannot happen with the camera's framing; keep a centred head
        xs, ys = np.array([res // 4, 3 * res // 4]), np.array([res // 4, 3 * res // 4])
    extent = max(xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    scale = diameter / extent
    side = max(4, int(round(res * scale)))
    gray = (tr.rgb.mean(axis=1) * tr.exposure).reshape(res, res).astype(np.float32)
    shadow = tr.shadow.reshape(res, res).astype(np.float32)
    interp = cv2.INTER_AREA if side < res else cv2.INTER_LINEAR
    alpha = np.clip(cv2.resize(mask, (side, side), interpolation=interp), 0.0, 1.0)
    radiance = np.maximum(cv2.resize(gray * mask, (side, side), interpolation=interp), 0.0)
    shadow = cv2.resize(shadow, (side, side), interpolation=interp)
    f = side / res
    box = Box(
        int(np.floor(xs.min() * f)),
        int(np.floor(ys.min() * f)),
        max(1, int(np.ceil((xs.max() + 1 - xs.min()) * f))),
        max(1, int(np.ceil((ys.max() + 1 - ys.min()) * f))),
    )
    info = {
        "style": style,
        "finish": finish,
        "light": light,
        "view": view,
        "tilt": tr.tilt,
        "generator": "sdf",
    }
    return HeadLayer(radiance, alpha, shadow, box, info)


def _camera_effects(
    rng: np.random.Generator, img: np.ndarray, box: Box, view: str, light: str
) -> np.ndarray:
    """Tiny-head resampling, defocus or motion blur, noise and JPEG; float BGR in,
    uint8 BGR out."""
    size = img.shape[0]
    if view == "tiny":  # a head 12-20 px across, scaled back up
        side = max(box.w, box.h, 1)
        f = rng.uniform(12, 20) / side
        small = max(4, int(round(size * f)))
        img = cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA)
        interp = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    r = rng.random()
    if r < 0.35:  # defocus
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.3) * size / 64)
    elif r < 0.47:  # motion blur
        k = max(3, int(rng.uniform(2, 6) * size / 64) | 1)
        kern = np.zeros((k, k), np.float32)
        kern[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        turned = cv2.warpAffine(kern, rot, (k, k))
        img = cv2.filter2D(img, -1, turned / max(turned.sum(), 1e-6))
    sigma = rng.uniform(1.0, 6.0) * (1.5 if light == "dim" else 1.0)
    noisy = img + rng.normal(0, sigma, img.shape).astype(np.float32)
    if rng.random() < 0.5:  # gray sensor noise (luma only)
        noisy = noisy + rng.normal(0, sigma * 0.5, img.shape[:2]).astype(np.float32)[..., None]
    out: np.ndarray = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            out = decoded
    return out
