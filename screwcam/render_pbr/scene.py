"""A head's Mitsuba 3 scene: materials (finishes), surfaces, lights, camera; rendered with
the path tracer. Mitsuba is handed in as a module (`mi`), imported by the package only
when this generator is used."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import RASTER, Head

FINISHES: tuple[str, ...] = ("zinc", "stainless", "black", "brass", "painted", "rusty", "dirty")
LIGHTS: tuple[str, ...] = ("env", "ring", "grazing", "window", "dome", "dim", "overexposed")
BACKGROUNDS: tuple[str, ...] = ("photo", "wood", "flat", "metal")
VIEWS: tuple[str, ...] = ("top", "oblique", "tiny")
#: samples per pixel and path length of the path tracer
SPP, MAX_DEPTH = 8, 4
#: a render is at most this many pixels across (larger outputs are scaled up: the crop
#: the model sees is 28x28)
RENDER_MAX = 56


def _linear(bgr: np.ndarray) -> np.ndarray:
    """sRGB uint8 BGR photo -> linear float32 RGB."""
    rgb = bgr[..., ::-1].astype(np.float32) / 255.0
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Smooth noise in [0, 1] on an n x n raster."""
    field = cv2.GaussianBlur(rng.normal(0, 1, (n, n)).astype(np.float32), (0, 0), sigma)
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


# --- finishes ------------------------------------------------------------------------------


def _rgb(value) -> dict:
    return {"type": "rgb", "value": [float(v) for v in value]}


def _bitmap(mi, array: np.ndarray) -> dict:
    return {
        "type": "bitmap",
        "bitmap": mi.Bitmap(np.ascontiguousarray(array, np.float32)),
        "filter_type": "bilinear",
    }


_IOR: dict[str, tuple[list[float], list[float]]] = {}


def conductor(mi, material: str, alpha: float, tint=(1.0, 1.0, 1.0)) -> dict:
    """A rough conductor with Mitsuba's measured complex index of refraction of `material`
    (Al, Cr, Mo, Au, Cu, Ni_palik, ...), read once per process as RGB eta and k: loading
    the spectra costs ~15 ms per BSDF, the RGB values nothing."""
    if material not in _IOR:
        params = mi.traverse(mi.load_dict({"type": "conductor", "material": material}))
        eta = [float(v) for v in params["eta.value"]]
        k = [float(v) for v in params["k.value"]]
        _IOR[material] = (eta * 3 if len(eta) == 1 else eta, k * 3 if len(k) == 1 else k)
    eta, k = _IOR[material]
    return {
        "type": "roughconductor",
        "eta": _rgb(eta),
        "k": _rgb(k),
        "alpha": float(alpha),
        "specular_reflectance": _rgb(tint),
    }


def plastic(colour, roughness: float) -> dict:
    """Paint, black oxide, varnish: Mitsuba's principled BSDF (a diffuse base under a
    rough dielectric sheen). Not `roughplastic`, whose set-up costs ~50 ms per instance."""
    base = colour if isinstance(colour, dict) else _rgb(colour)
    return {
        "type": "principled",
        "base_color": base,
        "roughness": float(roughness),
        "specular": 0.5,
    }


def _metal(mi, rng: np.random.Generator, kind: str) -> dict:
    if kind == "stainless":
        return conductor(mi, str(rng.choice(["Cr", "Ni_palik", "Mo"])), rng.uniform(0.04, 0.16))
    if kind == "brass":
        tint = (1.0, rng.uniform(0.78, 0.92), rng.uniform(0.45, 0.62))
        return conductor(mi, str(rng.choice(["Au", "Cu"])), rng.uniform(0.08, 0.3), tint)
    # zinc plating: bluish silver, sometimes yellow passivated
    if rng.random() < 0.25:
        tint = (1.0, rng.uniform(0.85, 0.95), rng.uniform(0.45, 0.65))
    else:
        tint = (rng.uniform(0.85, 0.95), rng.uniform(0.9, 0.98), 1.0)
    return conductor(mi, str(rng.choice(["Al", "Cr", "Ni_palik"])), rng.uniform(0.1, 0.35), tint)


def head_bsdf(mi, rng: np.random.Generator, finish: str, head: Head) -> dict:
    """The head's BSDF: rough conductors with Mitsuba's measured metal spectra (Al, Cr, Ni,
    Mo, Au, Cu), rough plastic for black oxide and paint, blends for rust and dirt (dirt
    collects where the recess is deep)."""
    if finish in ("zinc", "stainless", "brass"):
        return _metal(mi, rng, finish)
    if finish == "black":
        return plastic([rng.uniform(0.015, 0.06)] * 3, rng.uniform(0.3, 0.65))
    if finish == "painted":
        colours = (
            (0.8, 0.8, 0.78),
            (0.6, 0.05, 0.04),
            (0.05, 0.2, 0.5),
            (0.1, 0.35, 0.12),
            (0.75, 0.6, 0.35),
            (0.2, 0.2, 0.2),
            (0.85, 0.7, 0.1),
        )
        c = np.asarray(colours[int(rng.integers(len(colours)))]) * rng.uniform(0.6, 1.1)
        return plastic(np.clip(c, 0.01, 0.9), rng.uniform(0.25, 0.65))
    n = RASTER
    if finish == "rusty":
        mask = _noise(rng, n, rng.uniform(1.0, 4.0))
        cover = rng.uniform(0.3, 0.85)
        weight = np.clip((mask - (1.0 - cover)) * 4.0, 0.0, 1.0)
        rust = np.stack(
            [
                rng.uniform(0.2, 0.45) * (0.6 + 0.4 * _noise(rng, n, 1.5)),
                rng.uniform(0.07, 0.16) * np.ones((n, n)),
                rng.uniform(0.02, 0.05) * np.ones((n, n)),
            ],
            -1,
        )
        return {
            "type": "blendbsdf",
            "weight": _bitmap(mi, weight[..., None]),
            "a": _metal(mi, rng, "zinc"),
            "b": {"type": "diffuse", "reflectance": _bitmap(mi, rust)},
        }
    # dirty: grime in the recess (where it is deep) and in patches
    depth = np.clip(head.depth / max(float(head.depth.max()), 1e-3), 0, 1)
    grime = np.clip(
        0.8 * depth**0.5 * rng.uniform(0.4, 1.0)
        + (_noise(rng, n, 4.0) - 0.5) * rng.uniform(0.3, 1.2),
        0.0,
        1.0,
    )
    shade = rng.uniform(0.03, 0.15)
    dirt = {"type": "diffuse", "reflectance": _rgb([shade * 1.1, shade, shade * 0.8])}
    return {
        "type": "blendbsdf",
        "weight": _bitmap(mi, grime[..., None]),
        "a": _metal(mi, rng, str(rng.choice(["zinc", "stainless"]))),
        "b": dirt,
    }


# --- the surface around the head -----------------------------------------------------------


def _wood(rng: np.random.Generator, n: int = 128) -> np.ndarray:
    """Linear RGB wood grain: stretched, warped rings in a random brown."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
    warp = _noise(rng, n, 6.0) * rng.uniform(1.0, 4.0)
    freq = rng.uniform(6.0, 18.0)
    grain = 0.5 + 0.5 * np.sin((y * freq + warp + 0.3 * x) * 2 * math.pi)
    grain = grain ** rng.uniform(1.0, 3.0)
    fine = _noise(rng, n, 0.7)
    base = np.asarray([rng.uniform(0.25, 0.6), rng.uniform(0.12, 0.3), rng.uniform(0.04, 0.12)])
    light = 0.6 + 0.3 * grain + 0.15 * fine
    img = base[None, None, :] * light[..., None]
    if rng.random() < 0.5:
        img = np.transpose(img, (1, 0, 2))
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def ground_bsdf(mi, rng: np.random.Generator, bg: str) -> tuple[dict, float]:
    """(BSDF of the surface, texture tile size in head radii)."""
    tile = float(rng.uniform(3.0, 9.0))
    if bg == "photo":
        from .. import photos

        crop = photos.random_crop(rng, (128, 128), scale=(0.7, 3.0))
        albedo = _linear(crop) * rng.uniform(0.5, 1.0)
        return {"type": "diffuse", "reflectance": _bitmap(mi, albedo)}, tile
    if bg == "wood":
        tex = _bitmap(mi, _wood(rng))
        if rng.random() < 0.5:  # varnished
            return plastic(tex, rng.uniform(0.3, 0.6)), tile
        return {"type": "diffuse", "reflectance": tex}, tile
    if bg == "metal":
        bsdf = conductor(mi, str(rng.choice(["Al", "Cr", "Ni_palik"])), rng.uniform(0.15, 0.5))
        if rng.random() < 0.5:  # a painted or coated plate instead of bare metal
            grey = rng.uniform(0.05, 0.6)
            bsdf = plastic([grey] * 3, rng.uniform(0.3, 0.7))
        return bsdf, tile
    if rng.random() < 0.5:
        grey = rng.uniform(0.03, 0.85)
        colour = [grey] * 3
    else:
        colour = list(rng.uniform(0.05, 0.7, 3))
    return {"type": "diffuse", "reflectance": _rgb(colour)}, tile


# --- lights ----------------------------------------------------------------------------------


def _envmap(mi, rng: np.random.Generator, strength: float) -> dict:
    """The surroundings: a real photo wrapped round the scene as an environment map (the
    heads reflect it), sometimes with a brighter patch of 'sky' or lamp."""
    from .. import photos

    crop = photos.random_crop(rng, (96, 48), scale=(1.0, 4.0))
    env = _linear(crop) * strength
    if rng.random() < 0.6:  # a bright region (window, lamp) somewhere above the horizon
        y, x = np.mgrid[0:48, 0:96].astype(np.float32)
        cx, cy = rng.uniform(0, 96), rng.uniform(2, 20)
        spot = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * rng.uniform(3, 10) ** 2))
        env = env + spot[..., None] * strength * rng.uniform(2.0, 10.0)
    T = mi.ScalarTransform4f
    return {
        "type": "envmap",
        "bitmap": mi.Bitmap(np.ascontiguousarray(env, np.float32)),
        "to_world": T.rotate([0, 0, 1], float(rng.uniform(0, 360))).rotate([1, 0, 0], 90),
    }


def _area(radiance: float, tint: np.ndarray) -> dict:
    return {"type": "area", "radiance": _rgb(tint * radiance)}


def _rect_light(mi, rng, elevation, distance, size, radiance, tint) -> dict:
    T = mi.ScalarTransform4f
    az = rng.uniform(0, 2 * math.pi)
    el = math.radians(elevation)
    pos = [
        distance * math.cos(el) * math.cos(az),
        distance * math.cos(el) * math.sin(az),
        distance * math.sin(el),
    ]
    return {
        "type": "rectangle",
        "to_world": T.look_at(origin=pos, target=[0, 0, 0], up=[0, 0, 1]).scale(
            [size, size * rng.uniform(0.4, 1.0), 1]
        ),
        "emitter": _area(radiance, tint),
    }


def lights(mi, rng: np.random.Generator, light: str, eye: np.ndarray) -> dict:
    """Scene entries for one lighting family (every one also has the photo surroundings)."""
    tint = np.asarray([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.65, 1.0)])
    if rng.random() < 0.3:
        tint = tint[::-1].copy()  # cool light
    out: dict = {}
    env_strength = {
        "env": 1.0,
        "ring": 0.15,
        "grazing": 0.1,
        "window": 0.4,
        "dome": 0.2,
        "dim": 0.5,
        "overexposed": 0.6,
    }[light] * rng.uniform(0.5, 1.5)
    out["env"] = _envmap(mi, rng, env_strength)
    if light == "ring":  # a ring light round the lens: small bright spheres
        T = mi.ScalarTransform4f
        dist = float(np.linalg.norm(eye))
        axis = eye / dist
        helper = np.array([1.0, 0, 0]) if abs(axis[0]) < 0.9 else np.array([0, 1.0, 0])
        u = np.cross(axis, helper)
        u /= np.linalg.norm(u)
        v = np.cross(axis, u)
        ring_r = dist * rng.uniform(0.12, 0.35)
        count = int(rng.integers(6, 10))
        power = rng.uniform(15.0, 40.0) * (dist / 8.0) ** 2 / count
        for k in range(count):
            a = 2 * math.pi * k / count
            p = eye * rng.uniform(1.0, 1.3) + ring_r * (math.cos(a) * u + math.sin(a) * v)
            out[f"ring{k}"] = {
                "type": "sphere",
                "radius": float(dist * 0.025),
                "to_world": T.translate([float(c) for c in p]),
                "emitter": _area(power, tint),
            }
    elif light == "grazing":
        out["lamp"] = _rect_light(
            mi,
            rng,
            rng.uniform(4, 20),
            rng.uniform(6, 12),
            rng.uniform(1.0, 3.0),
            rng.uniform(20, 60),
            tint,
        )
    elif light in ("window", "dim", "overexposed"):
        out["lamp"] = _rect_light(
            mi,
            rng,
            rng.uniform(25, 65),
            rng.uniform(8, 14),
            rng.uniform(4, 9),
            rng.uniform(2, 8),
            tint,
        )
    elif light == "dome":  # a big diffuser above (behind) the camera
        height = float(eye[2] * rng.uniform(1.05, 1.4))
        T = mi.ScalarTransform4f
        out["lamp"] = {
            "type": "disk",
            "to_world": T.translate([0, 0, height])
            .rotate([1, 0, 0], 180)
            .scale(height * float(rng.uniform(0.5, 1.0))),
            "emitter": _area(rng.uniform(1.0, 3.0), tint),
        }
    return out


# --- camera ----------------------------------------------------------------------------------


@dataclass
class Camera:
    eye: np.ndarray
    target: np.ndarray
    fov: float  # degrees, across the image
    world: np.ndarray  # 4x4 camera-to-world (Mitsuba's look_at)
    up: list[float]

    def project(self, points: np.ndarray, pixels: int) -> np.ndarray:
        """World points (N, 3) -> pixel coordinates (N, 2) in a pixels x pixels image, the
        way Mitsuba's perspective camera maps them (local +x is image left, +y up)."""
        local = np.c_[points, np.ones(len(points))] @ np.linalg.inv(self.world).T
        t = math.tan(math.radians(self.fov) / 2.0)
        z = np.maximum(local[:, 2], 1e-6)
        u = 0.5 - local[:, 0] / z / (2.0 * t)
        v = 0.5 - local[:, 1] / z / (2.0 * t)
        return np.c_[u, v] * pixels


def camera(mi, rng: np.random.Generator, head: Head, view: str) -> Camera:
    """A perspective camera tilted 0-8 (top, tiny) or 12-30 (oblique) degrees off the
    axis, at a distance where the head fills 40-75 % of the frame, aimed a little off."""
    tilt = math.radians(rng.uniform(12.0, 30.0) if view == "oblique" else rng.uniform(0.0, 8.0))
    az = rng.uniform(0, 2 * math.pi)
    fov = float(rng.uniform(18.0, 40.0))
    frac = rng.uniform(0.42, 0.68)
    dist = head.footprint / (frac * math.tan(math.radians(fov) / 2.0))
    slack = (1.0 - frac) * 0.3 * dist * math.tan(math.radians(fov) / 2.0)
    target = np.array([rng.uniform(-slack, slack), rng.uniform(-slack, slack), head.top * 0.4])
    eye = target + dist * np.array(
        [math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az), math.cos(tilt)]
    )
    roll = rng.uniform(0, 2 * math.pi)  # the camera turned about its axis
    up = [math.cos(roll), math.sin(roll), 0.0]
    T = mi.ScalarTransform4f
    world = T.look_at(origin=[float(c) for c in eye], target=[float(c) for c in target], up=up)
    return Camera(eye, target, fov, np.array(world.matrix, dtype=np.float64), up)


def sensor(mi, rng: np.random.Generator, cam: Camera, pixels: int, view: str, spp: int) -> dict:
    T = mi.ScalarTransform4f
    to_world = T.look_at(
        origin=[float(c) for c in cam.eye], target=[float(c) for c in cam.target], up=cam.up
    )
    out = {
        "type": "perspective",
        "fov": cam.fov,
        "to_world": to_world,
        "film": {
            "type": "hdrfilm",
            "width": pixels,
            "height": pixels,
            "rfilter": {"type": "gaussian", "stddev": 0.4},
        },
        "sampler": {"type": "independent", "sample_count": spp},
    }
    if view == "oblique" and rng.random() < 0.4:  # depth of field: focus on the head
        dist = float(np.linalg.norm(cam.eye - cam.target))
        out["type"] = "thinlens"
        out["focus_distance"] = dist * rng.uniform(0.95, 1.05)
        out["aperture_radius"] = dist * rng.uniform(0.005, 0.02)
    return out


def mesh(
    mi,
    name: str,
    verts: np.ndarray,
    faces: np.ndarray,
    uv: np.ndarray,
    bsdf: dict,
    emitter: dict | None = None,
):
    """A Mitsuba triangle mesh with `bsdf` (and, given `emitter`, an area light on it)."""
    m = mi.Mesh(
        name,
        len(verts),
        len(faces),
        has_vertex_normals=True,
        has_vertex_texcoords=True,
        props=_props(mi, bsdf, emitter),
    )
    params = mi.traverse(m)
    params["vertex_positions"] = verts.ravel()
    params["faces"] = faces.ravel()
    params["vertex_texcoords"] = uv.ravel()
    params.update()
    m.recompute_vertex_normals()
    return m


def _props(mi, bsdf: dict, emitter: dict | None = None):
    props = mi.Properties()
    props["bsdf"] = mi.load_dict(bsdf)
    if emitter is not None:
        props["emitter"] = mi.load_dict(emitter)
    return props
