"""One pbr head as layers for a caller's own surface (`render_layer`): the detector's test
scene family "pbr" (`training/detector_data.py`) lays such heads onto its surfaces.

Three renders of the same head, camera and lights (Mitsuba's path tracer):
1. the head on a flat gray diffuse ground;
2. the same ground without the head (same sensor, lights and sampler seed, so most of the
   path tracer's noise cancels in the ratio): light the ground received with the head /
   without it = the shadow the head casts and the light it takes from the ground nearby;
3. coverage: the head's mesh as a white area light over a black ground, directly visible
   emission only, the same pixel filter: how much of each pixel the head covers.
The head's premultiplied radiance is render 1 minus the ground's share of each pixel
(1 - coverage) x shadow x render 2, gray, scaled so that a white sheet on the ground,
unshadowed, would be about 1.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..frames import Box, HeadLayer
from .geometry import ANGLES, LABEL_STYLES, RINGS, Head, ground_mesh, head_mesh, make_head
from .loader import mitsuba, pick
from .scene import FINISHES, MAX_DEPTH, Camera, camera, head_bsdf, mesh, sensor
from .scene import lights as scene_lights

#: lights of a layer: "dim" and "overexposed" only set the exposure, which a scene sets
LAYER_LIGHTS: tuple[str, ...] = ("env", "ring", "grazing", "window", "dome")
#: views of a layer: a tiny head is a small diameter
LAYER_VIEWS: tuple[str, ...] = ("top", "oblique")
#: render resolution (pixels across) of a layer: ~1.5 render pixels per output pixel,
#: within these bounds (bigger layers are scaled up)
LAYER_MIN, LAYER_MAX = 24, 128
#: samples per pixel of the two shading renders and of the coverage render
LAYER_SPP, COVER_SPP = 16, 8
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def _frame(rng: np.random.Generator, cam: Camera, head: Head, verts: np.ndarray):
    """Widen the camera's field of view (the head fills 30-55 % of the layer, leaving
    room for its shadow) and return the head's box in frame units (0..1) as
    (x0, y0, x1, y1): its top and walls down to the ground (a countersunk head: its
    top)."""
    half = math.tan(math.radians(cam.fov) / 2.0) * rng.uniform(1.2, 1.45)
    cam.fov = math.degrees(2.0 * math.atan(half))
    if head.style == "countersunk":
        seen = verts[: RINGS * ANGLES]
    else:
        seen = verts.copy()
        seen[:, 2] = np.maximum(seen[:, 2], 0.0)  # below z = 0 the ground hides the wall
    uv = cam.project(seen.astype(np.float64), 1)
    return (*uv.min(axis=0), *uv.max(axis=0))


def _gray(value: float) -> dict:
    return {"type": "rgb", "value": [float(value)] * 3}


def _render(mi, scene_dict: dict, seed: int) -> np.ndarray:
    image = mi.render(mi.load_dict(scene_dict), seed=seed)
    return np.nan_to_num(np.asarray(image, dtype=np.float32)[..., :3])


def _ground_ratio(lit: np.ndarray, clear: np.ndarray, known: np.ndarray, sigma: float):
    """lit / clear over the `known` (ground only) pixels, both smoothed first (the path
    tracer's noise would speckle a per-pixel ratio), carried into the other pixels from
    their neighbours; 1 where no ground is near."""
    w = known.astype(np.float32)
    out = np.ones_like(lit)
    todo = np.ones(lit.shape, bool)
    for s in (sigma, sigma * 4.0):  # where the first blur's reach ends, spread wider
        num = cv2.GaussianBlur(lit * w, (0, 0), s)
        den = cv2.GaussianBlur(clear * w, (0, 0), s)
        ok = todo & (cv2.GaussianBlur(w, (0, 0), s) > 1e-3) & (den > 1e-9)
        out[ok] = num[ok] / den[ok]
        todo &= ~ok
    return out


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
    layers (premultiplied linear gray radiance, coverage, the shadow it casts on the
    ground) for a caller that composes scenes on its own surfaces. Lights: LAYER_LIGHTS;
    views: LAYER_VIEWS; lens and sensor effects are the caller's. Families not given are
    drawn from `rng`; the same rng state gives the same layer."""
    if not 4 <= diameter <= 2000:
        raise ValueError(f"diameter must be 4..2000 px, got {diameter}")
    if label not in LABEL_STYLES:
        raise ValueError(f"unknown label {label!r}; labels are 0..4")
    style = pick(rng, "style", style, LABEL_STYLES[label])
    finish = pick(rng, "finish", finish, FINISHES)
    light = pick(rng, "light", light, LAYER_LIGHTS)
    view = pick(rng, "view", view, LAYER_VIEWS)
    mi = mitsuba()

    head = make_head(rng, label, style)
    cam = camera(mi, rng, head, view)
    verts, faces, uv = head_mesh(head)
    x0, y0, x1, y1 = _frame(rng, cam, head, verts)
    extent = max(x1 - x0, y1 - y0)  # the head's longer side, in frame widths
    side = max(4, int(round(diameter / extent)))  # the layer's side in output pixels
    pixels = int(np.clip(round(1.5 * side), LAYER_MIN, LAYER_MAX))

    albedo = float(rng.uniform(0.15, 0.6))
    grey = {"type": "diffuse", "reflectance": _gray(albedo)}
    film = sensor(mi, rng, cam, pixels, view, LAYER_SPP)
    metal = head_bsdf(mi, rng, finish, head)
    lamps = scene_lights(mi, rng, light, cam.eye)
    seed = int(rng.integers(0, 2**31 - 1))
    tile = 5.0  # texture repeat (the ground is one grey: unused)
    integrator = {"type": "path", "max_depth": MAX_DEPTH}

    def ground(hole: float, bsdf: dict):
        return mesh(mi, "ground", *ground_mesh(hole, 60.0, tile), bsdf)

    with_head = _render(
        mi,
        {
            "type": "scene",
            "integrator": integrator,
            "sensor": film,
            "head": mesh(mi, "head", verts, faces, uv, metal),
            "ground": ground(head.hole, grey),
            **lamps,
        },
        seed,
    )
    without = _render(
        mi,
        {
            "type": "scene",
            "integrator": integrator,
            "sensor": film,
            "ground": ground(0.02, grey),
            **lamps,
        },
        seed,
    )
    black = {"type": "diffuse", "reflectance": _gray(0.0)}
    white = {"type": "area", "radiance": _gray(1.0)}
    cover_film = {**film, "sampler": {"type": "independent", "sample_count": COVER_SPP}}
    cover = _render(
        mi,
        {
            "type": "scene",
            "integrator": {"type": "path", "max_depth": 1},
            "sensor": cover_film,
            "head": mesh(mi, "head", verts, faces, uv, black, white),
            "ground": ground(head.hole, black),
        },
        seed,
    )

    alpha = np.clip(cover @ _LUMA, 0.0, 1.0)
    lit, clear = with_head @ _LUMA, without @ _LUMA
    square = np.ones((3, 3), np.uint8)
    only_ground = cv2.erode((alpha < 0.002).astype(np.uint8), square) > 0
    only_head = cv2.erode((alpha > 0.998).astype(np.uint8), square) > 0
    # fireflies (a rare path that found a lamp: one pixel many times too bright, a blob
    # once the layer is scaled up) clamped to 4x their neighbourhood's median, away from
    # the head's outline (where a bright head meets a dark ground)
    calm = np.minimum(lit, 4.0 * cv2.medianBlur(lit, 3) + 1e-3 * float(lit.max()))
    lit = np.where(only_ground | only_head, calm, lit)
    # the ground's share of each pixel: the ratio where only ground is seen, carried
    # into the pixels at the head's edge from their neighbours
    # (a metal head throws light onto the ground, but at these sample counts as single
    # bright pixels: at most 1.3 times the light the ground had before, per pixel)
    bounded = np.minimum(lit, 1.3 * clear)
    shadow = _ground_ratio(bounded, clear, only_ground, max(1.0, pixels / 80))
    shadow = np.clip(shadow, 0.0, 1.5)
    radiance = np.maximum(lit - (1.0 - alpha) * shadow * clear, 0.0)
    radiance[alpha < 0.002] = 0.0
    shadow[alpha > 0.998] = 1.0
    # exposure: a white sheet on the ground, unshadowed, is about 1 (0.6-1.1); a head
    # brighter than that is metered down, as a photographer would (its 90th percentile
    # at most 0.55-0.95: a head reflecting a lamp would otherwise be a white disc)
    white_level = float(np.median(clear)) / albedo
    exposure = rng.uniform(0.6, 1.1) / max(white_level, 1e-6)
    solid = alpha > 0.5
    ceiling = rng.uniform(0.55, 0.95)
    if solid.any():
        bright = float(np.percentile(radiance[solid] / alpha[solid], 90)) * exposure
        exposure *= min(1.0, ceiling / max(bright, 1e-6))
    radiance *= exposure

    interp = cv2.INTER_AREA if side < pixels else cv2.INTER_LINEAR
    size = (side, side)
    alpha = np.clip(cv2.resize(alpha, size, interpolation=interp), 0.0, 1.0)
    radiance = np.maximum(cv2.resize(radiance, size, interpolation=interp), 0.0)
    radiance[alpha <= 0.0] = 0.0
    shadow = cv2.resize(shadow, size, interpolation=interp)
    # the layer ends where its frame ends: fade the shadow out towards the border, so a
    # long one (a grazing lamp) does not stop at a straight line in the scene
    ramp = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32)
    ramp = np.clip(ramp / max(0.15 * side, 1.0), 0.0, 1.0)
    fade = np.minimum(ramp[:, None], ramp[None, :])
    shadow = (1.0 + (shadow - 1.0) * fade).astype(np.float32)

    bx0, by0 = max(0, int(math.floor(x0 * side))), max(0, int(math.floor(y0 * side)))
    bx1, by1 = min(side, int(math.ceil(x1 * side))), min(side, int(math.ceil(y1 * side)))
    box = Box(bx0, by0, max(1, bx1 - bx0), max(1, by1 - by0))
    axis = (cam.eye - cam.target) / np.linalg.norm(cam.eye - cam.target)
    info = {
        "style": style,
        "finish": finish,
        "light": light,
        "view": view,
        "tilt": math.degrees(math.acos(float(np.clip(axis[2], -1.0, 1.0)))),
        "generator": "pbr",
    }
    return HeadLayer(radiance.astype(np.float32), alpha.astype(np.float32), shadow, box, info)
