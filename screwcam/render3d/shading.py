"""Physically based shading of a height field.

Cook-Torrance microfacet specular (GGX distribution, Smith-Schlick geometry, Schlick
Fresnel) plus Lambert diffuse, for directional, point and area lights with height-field
cast shadows; image-based lighting from an environment photo (sphere map, pre-blurred by
roughness, split-sum BRDF approximation) so recess walls can reflect bright as well as
dark; and screen-space ambient occlusion from the height field. All in linear BGR.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import DatasetError
from .materials import fbm, srgb_to_linear

LIGHTS: tuple[str, ...] = (
    "point",
    "area",
    "side",
    "ring",
    "dim",
    "overexposed",
    "hard_shadow",
    "env",
)
_ENV = 64


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def _dir(azimuth: float, elevation: float) -> np.ndarray:
    ce = np.cos(elevation)
    return _unit([ce * np.cos(azimuth), ce * np.sin(azimuth), np.sin(elevation)])


def environment(rng: np.random.Generator, photos=None) -> dict:
    """A sphere-map environment: a real photo (if available) plus bright windows/lamps,
    pre-blurred at a few roughness levels."""
    n = _ENV
    env = None
    try:
        if photos is None:
            from .. import photos as photos_module

            photos = photos_module
        env = srgb_to_linear(photos.random_crop(rng, (n, n), scale=(2.0, 6.0), fast=True))
    except DatasetError:  # scikit-image missing: a procedural room instead
        env = None
    if env is None:
        env = (0.2 + 0.6 * fbm(rng, (n, n), 3.0))[..., None] * rng.uniform(0.5, 1.0, 3)
        env = env.astype(np.float32)
    env = env * float(rng.uniform(0.3, 1.0))
    # bright sources: windows, softboxes, lamps
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(0, n, 2)
        w, h = rng.uniform(3, 22, 2)
        val = float(rng.uniform(1.5, 8.0))
        col = val * rng.uniform(0.8, 1.0, 3).astype(np.float32)
        x0, x1 = int(max(0, cx - w / 2)), int(min(n, cx + w / 2)) + 1
        y0, y1 = int(max(0, cy - h / 2)), int(min(n, cy + h / 2)) + 1
        env[y0:y1, x0:x1] = col
    env = np.ascontiguousarray(env, np.float32)
    levels = [cv2.GaussianBlur(env, (0, 0), s) for s in (0.8, 5.0)]
    diffuse = cv2.GaussianBlur(env, (0, 0), 16.0)
    return {"levels": levels, "diffuse": diffuse, "mean": float(env.mean())}


def _sphere_lookup(img, vx, vy, vz):
    m = 2.0 * np.sqrt(vx * vx + vy * vy + (vz + 1.0) ** 2) + 1e-6
    u = (vx / m + 0.5) * (_ENV - 1)
    v = (vy / m + 0.5) * (_ENV - 1)
    return cv2.remap(
        img,
        u.astype(np.float32),
        v.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


def _dir_light(
    rng: np.random.Generator,
    direction: np.ndarray,
    power: tuple[float, float],
    size: float | tuple[float, float],
    **extra: object,
) -> dict:
    """A directional light from `direction`: power drawn from the range `power`, angular
    size from the range `size` (or that size)."""
    light: dict = {"kind": "dir", "dir": direction, "power": float(rng.uniform(*power))}
    light["size"] = size if isinstance(size, float) else float(rng.uniform(*size))
    return {**light, **extra}


def light_rig(rng: np.random.Generator, light: str, view: np.ndarray, scale_px: float) -> dict:
    """Lights for one lighting family. scale_px: a typical object height in pixels
    (sets point-light distances and shadow lengths)."""
    rig: dict = {"lights": [], "env": 0.25, "exposure": 1.0, "gain_noise": 1.0, "name": light}
    base = light
    if light in ("dim", "overexposed"):
        base = str(rng.choice(["point", "area", "side", "ring", "hard_shadow"]))
    az = float(rng.uniform(0, 2 * np.pi))
    if base == "point":
        el = float(rng.uniform(np.radians(35), np.radians(80)))
        dist = float(rng.uniform(3, 10)) * scale_px
        rig["lights"].append(
            {
                "kind": "point",
                "dir": _dir(az, el),
                "dist": dist,
                "power": float(rng.uniform(2.0, 4.0)),
                "size": 0.02,
            }
        )
        rig["env"] = float(rng.uniform(0.08, 0.3))
    elif base == "area":
        el = float(rng.uniform(np.radians(40), np.radians(88)))
        rig["lights"].append(_dir_light(rng, _dir(az, el), (1.8, 3.2), (0.25, 0.7)))
        rig["env"] = float(rng.uniform(0.2, 0.45))
    elif base == "side":
        el = float(rng.uniform(np.radians(8), np.radians(25)))
        rig["lights"].append(_dir_light(rng, _dir(az, el), (3.0, 5.5), (0.02, 0.15)))
        rig["env"] = float(rng.uniform(0.05, 0.2))
    elif base == "ring":
        rig["lights"].append(_dir_light(rng, _unit(view), (1.8, 3.0), (0.1, 0.3), shadow=False))
        rig["env"] = float(rng.uniform(0.05, 0.2))
    elif base == "hard_shadow":
        el = float(rng.uniform(np.radians(25), np.radians(55)))
        rig["lights"].append(_dir_light(rng, _dir(az, el), (3.0, 5.0), 0.0))
        rig["env"] = float(rng.uniform(0.02, 0.08))
    elif base == "env":
        rig["env"] = float(rng.uniform(0.9, 1.8))
    else:
        raise ValueError(f"unknown light {light!r}")
    if rng.random() < 0.3 and base not in ("env", "hard_shadow"):  # a weaker fill light
        fill = _dir(float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.3, 1.3)))
        rig["lights"].append(_dir_light(rng, fill, (0.3, 1.0), 0.5))
    if light == "dim":
        # a dark room: under-exposed, and what the camera makes up with gain is noise
        rig["exposure"] = float(rng.uniform(0.12, 0.6))
        rig["gain_noise"] = 1.5 / rig["exposure"] ** 0.5
    elif light == "overexposed":
        rig["exposure"] = float(rng.uniform(2.2, 5.0))
    else:
        rig["exposure"] = float(rng.uniform(0.75, 1.35))
    rig["key"] = float(rng.uniform(0.1, 0.3))
    return rig


def normals(z: np.ndarray):
    gx = cv2.Sobel(z, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(z, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    inv = 1.0 / np.sqrt(gx * gx + gy * gy + 1.0)
    return -gx * inv, -gy * inv, inv


def ambient_occlusion(z: np.ndarray, scales: tuple[float, ...]) -> np.ndarray:
    ao = np.ones_like(z)
    h, w = z.shape
    for s in scales:
        f = int(s // 3)  # wide blurs on a reduced copy: same result, a fraction of the time
        if f >= 2:
            small = cv2.resize(z, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
            blur = cv2.resize(cv2.GaussianBlur(small, (0, 0), s / f), (w, h))
        else:
            blur = cv2.GaussianBlur(z, (0, 0), s)
        ao *= np.clip(1.0 - (blur - z) / (2.2 * s), 0.15, 1.0)
    return ao


def shadow(z, ldir, max_len: float, softness: float, hull=None, hull_size=0.0, steps: int = 9):
    """Visibility (0..1) of a directional light over a height field (z in pixels).

    Marches from every pixel towards the light in `steps` geometric steps. Steps longer
    than hull_size sample `hull` (z with recesses closed), so that a long, sparse march
    over a head cannot slip through its recess and print the recess into the shadow."""
    lx, ly, lz = (float(c) for c in ldir)
    horiz = np.hypot(lx, ly)
    if horiz < 1e-3:
        return np.ones_like(z)
    dx, dy, tan_e = lx / horiz, ly / horiz, lz / horiz
    max_len = min(max_len, float(z.max() - z.min()) / max(tan_e, 1e-3) + 1.0)
    vis = np.ones_like(z)
    h, w = z.shape
    for t in np.geomspace(0.8, max(1.0, max_len), steps):
        m = np.array([[1, 0, t * dx], [0, 1, t * dy]], np.float32)
        src = hull if hull is not None and t > hull_size else z
        s = cv2.warpAffine(
            src,
            m,
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        occl = (s - z - t * tan_e) / (softness * t + 0.5)
        vis = np.minimum(vis, np.clip(0.5 - occl, 0.0, 1.0))
    return vis


def _env_brdf(rough, nv):
    # Karis' analytic fit of the split-sum BRDF integral (mobile approximation).
    rx = rough * -1.0 + 1.0
    ry = rough * -0.0275 + 0.0425
    rz = rough * -0.572 + 1.04
    rw = rough * 0.022 - 0.04
    a004 = np.minimum(rx * rx, np.exp2(-9.28 * nv)) * rx + ry
    return a004 * -1.04 + rz, a004 * 1.04 + rw


def shade(
    z,
    base,
    metal,
    rough,
    rig: dict,
    env: dict,
    view: np.ndarray,
    ao_scales,
    shadow_len,
    hull_size: float = 0.0,
):
    """Radiance (linear BGR, h x w x 3) of the height field under the light rig.
    hull_size: about the size of the largest recess in pixels (see `shadow`)."""
    nx, ny, nz = normals(z)
    vx, vy, vz = (float(c) for c in view)
    nv = np.clip(nx * vx + ny * vy + nz * vz, 1e-3, 1.0)
    ao = ambient_occlusion(z, ao_scales)
    metal3 = metal[..., None]
    f0 = 0.04 * (1.0 - metal3) + base * metal3
    diff_col = base * (1.0 - metal3)
    alpha = np.maximum(rough * rough, 0.003)
    h, w = z.shape
    # Lights are white (white balance comes later), so every direct light adds to three
    # scalar maps: diffuse A, specular without Fresnel tail B and Fresnel tail C;
    # radiance = diff_col * (1 - f0) * A + f0 * B + C.
    acc_a = np.zeros(z.shape, np.float32)
    acc_b = np.zeros(z.shape, np.float32)
    acc_c = np.zeros(z.shape, np.float32)
    k = (rough + 1.0) ** 2 / 8.0
    gv = nv / (nv * (1 - k) + k)
    hull = None
    if hull_size >= 3 and any(light.get("shadow", True) for light in rig["lights"]):
        # close the recesses on a reduced copy (a large kernel at full size is slow)
        f = max(1, int(hull_size) // 9)
        h0, w0 = z.shape
        small = cv2.resize(z, (max(1, w0 // f), max(1, h0 // f)), interpolation=cv2.INTER_AREA)
        size = int(hull_size / f) | 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel)
        hull = np.maximum(z, cv2.resize(closed, (w0, h0), interpolation=cv2.INTER_LINEAR))
    for light in rig["lights"]:
        l_vec = light["dir"]
        power = light["power"]
        if light["kind"] == "point":
            # per-pixel direction from the light's position above the image centre
            px = w / 2 + l_vec[0] * light["dist"]
            py = h / 2 + l_vec[1] * light["dist"]
            pz = l_vec[2] * light["dist"]
            xs = np.arange(w, dtype=np.float32)[None, :]
            ys = np.arange(h, dtype=np.float32)[:, None]
            lx, ly, lz = px - xs, py - ys, pz - z
            d2 = lx * lx + ly * ly + lz * lz
            inv = 1.0 / np.sqrt(d2)
            lx, ly, lz = lx * inv, ly * inv, lz * inv
            atten = np.float32(light["dist"] ** 2) / d2
            mean_dir = np.array([lx.mean(), ly.mean(), lz.mean()], np.float32)
        else:
            lx, ly, lz = (np.float32(c) for c in l_vec)
            atten = np.float32(1.0)
            mean_dir = np.asarray(l_vec, np.float32)
        nl = np.clip(nx * lx + ny * ly + nz * lz, 0.0, 1.0)
        hx, hy, hz = lx + vx, ly + vy, lz + vz
        hn = 1.0 / np.sqrt(hx * hx + hy * hy + hz * hz)
        nh = np.clip((nx * hx + ny * hy + nz * hz) * hn, 0.0, 1.0)
        vh = np.clip((vx * hx + vy * hy + vz * hz) * hn, 0.0, 1.0)
        a = np.minimum(alpha + light.get("size", 0.0) * 0.5, 1.0)  # area light: wider lobe
        a2 = a * a
        dd = nh * nh * (a2 - 1.0) + 1.0
        dist = a2 / (np.float32(np.pi) * dd * dd)
        geo = (nl / (nl * (1 - k) + k)) * gv
        one_vh = 1.0 - vh
        fw = one_vh * one_vh
        fw = fw * fw * one_vh  # Schlick (1 - v.h)^5
        e = (np.float32(power * np.pi) * atten) * nl
        if light.get("shadow", True):
            vis = shadow(
                z,
                mean_dir / np.linalg.norm(mean_dir),
                shadow_len,
                softness=max(0.02, light.get("size", 0.0)),
                hull=hull,
                hull_size=hull_size / 2,
            )
            e = e * vis
        spec = dist * geo / (4.0 * nl * nv + 1e-3) * e
        acc_a += (1.0 - fw) * e * np.float32(1 / np.pi)
        acc_c += fw * spec
        acc_b += spec - fw * spec
    out = diff_col * (1.0 - f0) * acc_a[..., None] + f0 * acc_b[..., None] + acc_c[..., None]
    if rig["env"] > 0:
        # image-based lighting: reflection vector into the environment sphere map
        rdot = 2.0 * nv
        rx, ry, rz = rdot * nx - vx, rdot * ny - vy, rdot * nz - vz
        levels = env["levels"]
        sharp = _sphere_lookup(levels[0], rx, ry, rz)
        blurry = _sphere_lookup(levels[1], rx, ry, rz)
        wgt = np.clip(rough * 1.6 - 0.1, 0.0, 1.0)[..., None]
        pre = sharp + (blurry - sharp) * wgt
        ea, eb = _env_brdf(rough, nv)
        spec_env = pre * (f0 * ea[..., None] + eb[..., None])
        irr = _sphere_lookup(env["diffuse"], nx, ny, nz)
        diff_env = diff_col * irr
        out += rig["env"] * (diff_env * ao[..., None] + spec_env * np.sqrt(ao)[..., None])
    else:
        out *= (0.6 + 0.4 * ao)[..., None]
    return np.maximum(out, 0.0, out=out)
