"""render_pbr: a fourth, independently built generator of screw-head images, physically
based (Mitsuba 3's path tracer).

Each head is a triangle mesh built in NumPy (`geometry`: a 2.5-D height field of the head
and its drive recess, sampled on a polar grid, with side walls) standing on or sunk flush
into a surface mesh. Light transport is Mitsuba's: rough conductors with measured metal
spectra (zinc-like Al/Cr/Ni, stainless Cr/Ni/Mo, brass Au/Cu), rough plastic for black
oxide and paint, blended rust and grime; real photographs (scikit-image's samples) wrapped
round the scene as an environment map, which the metal reflects; area lights (ring light,
grazing lamp, window, dome); interreflection inside the recess; a perspective or thin-lens
camera tilted 0-30 degrees. Then sensor: exposure (dim, overexposed), white balance,
noise, slight blur, JPEG; tiny heads are rendered 12-20 px across and scaled up.

It shares no code with `screwcam.render`, `screwcam.render3d` or `screwcam.render_sdf`.

Mitsuba (`mitsuba>=3.9`, part of the `[train]` extra) is imported on the first render,
never by importing this package: the device service never loads it. The scalar CPU
variant is used, on one thread per process (`screwcam synth --jobs` makes processes).

    >>> import numpy as np
    >>> from screwcam import render_pbr
    >>> img, box, info = render_pbr.render_head(np.random.default_rng(0), 4, size=64)

Families (info keys): style, finish, light, bg, view.

`render_layer(rng, label, diameter)` renders one head at a given size as layers (its
radiance, coverage and the shadow it casts) for a caller's own surface: the detector's
held-out test scene family "pbr" (`training/detector_data.py`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..frames import Box, HeadLayer
from . import geometry as G
from .geometry import HEX_STYLES, LABEL_STYLES, RECESS_STYLES
from .layer import LAYER_LIGHTS, LAYER_VIEWS, render_layer
from .loader import mitsuba
from .loader import pick as _pick
from .scene import BACKGROUNDS, FINISHES, LIGHTS, MAX_DEPTH, RENDER_MAX, SPP, VIEWS

__all__ = [
    "BACKGROUNDS",
    "FINISHES",
    "HEX_STYLES",
    "LABEL_STYLES",
    "LAYER_LIGHTS",
    "LAYER_VIEWS",
    "LIGHTS",
    "RECESS_STYLES",
    "VIEWS",
    "HeadLayer",
    "mitsuba",
    "render_head",
    "render_layer",
]


def _develop(
    rng: np.random.Generator, linear: np.ndarray, light: str, head_mask: np.ndarray
) -> np.ndarray:
    """Linear RGB render -> BGR uint8 photo: exposure (metered on the head and its
    surroundings), white balance, gamma, sensor noise."""
    lum = linear @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    meter = float(np.percentile(lum[head_mask] if head_mask.any() else lum, 75)) + 1e-4
    target = {"dim": rng.uniform(0.03, 0.12), "overexposed": rng.uniform(0.9, 2.5)}.get(
        light, rng.uniform(0.25, 0.5)
    )
    img = linear * (target / meter)
    img = img * rng.uniform(0.9, 1.1, 3).astype(np.float32)  # white balance
    img = np.clip(img, 0.0, 1.0) ** (1.0 / rng.uniform(2.0, 2.4))
    gain = 3.0 if light == "dim" else 1.0
    shot = rng.normal(0, 1, img.shape).astype(np.float32) * np.sqrt(img) * 0.02 * gain
    read = rng.normal(0, 1, img.shape[:2]).astype(np.float32)[..., None] * 0.006 * gain
    img = np.clip(img + shot + read, 0.0, 1.0)
    return (img[..., ::-1] * 255.0 + 0.5).astype(np.uint8)


def _lens_and_jpeg(rng: np.random.Generator, bgr: np.ndarray) -> np.ndarray:
    if rng.random() < 0.6:
        bgr = cv2.GaussianBlur(bgr, (0, 0), rng.uniform(0.3, 0.9))
    if rng.random() < 0.15:  # motion blur along a random direction
        n = int(rng.integers(3, 6))
        kernel = np.zeros((n, n), np.float32)
        kernel[n // 2] = 1.0 / n
        rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (n, n))
        bgr = cv2.filter2D(bgr, -1, kernel / max(float(kernel.sum()), 1e-6))
    if rng.random() < 0.7:
        ok, enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 95))])
        if ok:
            bgr = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    return bgr


def render_head(
    rng: np.random.Generator,
    label: int,
    size: int = 64,
    style: str | None = None,
    finish: str | None = None,
    light: str | None = None,
    bg: str | None = None,
    view: str | None = None,
) -> tuple[np.ndarray, Box, dict[str, str]]:
    """One screw head of class `label` (0 hex socket, 1 Phillips, 2 Pozidriv, 3 hex head,
    4 Torx): (BGR uint8 size x size image, Box of the whole head, info naming its
    families). Families not given are drawn from `rng`; the same rng state gives the same
    image. The head fills 40-75 % of the frame."""
    if label not in LABEL_STYLES:
        raise ValueError(f"unknown label {label!r}; labels are 0..4")
    style = _pick(rng, "style", style, LABEL_STYLES[label])
    finish = _pick(rng, "finish", finish, FINISHES)
    light = _pick(rng, "light", light, LIGHTS)
    bg = _pick(rng, "bg", bg, BACKGROUNDS)
    view = _pick(rng, "view", view, VIEWS)
    mi = mitsuba()
    from . import scene as S

    head = G.make_head(rng, label, style)
    if view == "tiny":
        frame_px = int(rng.integers(12, 21))  # the head's width in rendered pixels
    cam = S.camera(mi, rng, head, view)
    verts, faces, uv = G.head_mesh(head)
    if view == "tiny":
        pixels = max(8, int(round(frame_px / (2 * head.footprint / _frame_width(cam)))))
    else:
        pixels = min(int(size), RENDER_MAX)
    ground_bsdf, tile = S.ground_bsdf(mi, rng, bg)
    scene_dict = {
        "type": "scene",
        "integrator": {"type": "path", "max_depth": MAX_DEPTH},
        "sensor": S.sensor(mi, rng, cam, pixels, view, SPP),
        "head": S.mesh(mi, "head", verts, faces, uv, S.head_bsdf(mi, rng, finish, head)),
        "ground": S.mesh(mi, "ground", *G.ground_mesh(head.hole, 60.0, tile), ground_bsdf),
        **S.lights(mi, rng, light, cam.eye),
    }
    scene = mi.load_dict(scene_dict)
    seed = int(rng.integers(0, 2**31 - 1))
    linear = np.asarray(mi.render(scene, seed=seed), dtype=np.float32)[..., :3]
    # the whole head: its top and side walls (a countersunk head: its top), projected
    above = verts[: G.RINGS * G.ANGLES] if style == "countersunk" else verts
    uvpix = cam.project(above.astype(np.float64), pixels)
    x0, y0 = uvpix.min(axis=0)
    x1, y1 = uvpix.max(axis=0)
    head_mask = np.zeros((pixels, pixels), bool)
    head_mask[max(0, int(y0)) : int(math.ceil(y1)), max(0, int(x0)) : int(math.ceil(x1))] = True
    image = _develop(rng, np.nan_to_num(linear), light, head_mask)
    if pixels != size:
        interp = cv2.INTER_CUBIC if view == "tiny" else cv2.INTER_LINEAR
        if pixels > size:
            interp = cv2.INTER_AREA
        image = cv2.resize(image, (size, size), interpolation=interp)
    image = _lens_and_jpeg(rng, image)
    f = size / pixels
    bx0, by0 = max(0, int(math.floor(x0 * f))), max(0, int(math.floor(y0 * f)))
    bx1, by1 = min(size, int(math.ceil(x1 * f))), min(size, int(math.ceil(y1 * f)))
    box = Box(bx0, by0, max(1, bx1 - bx0), max(1, by1 - by0))
    info = {"style": style, "finish": finish, "light": light, "bg": bg, "view": view}
    return image, box, info


def _frame_width(cam) -> float:
    """The frame's width in world units at the target's distance."""
    dist = float(np.linalg.norm(cam.eye - cam.target))
    return 2.0 * dist * math.tan(math.radians(cam.fov) / 2.0)
