"""Sphere tracing, soft shadows, ambient occlusion and shading of an SDF scene.

The scene is one head (`geometry.Head`) standing on (or sunk flush into) a ground plane
z = 0. Rays are marched with under-relaxed sphere-tracing steps, only the rays still
marching are evaluated (compaction each step). Shading: Oren-Nayar diffuse, Blinn-Phong
or Ward anisotropic specular (machined metal, tangent along the turning direction),
a sky-gradient environment reflection with Schlick Fresnel, soft shadows by marching
toward each directional light (penumbra from the light's size), and ambient occlusion
from five SDF samples along the normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Head


def bilinear(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample a 2-D (H, W) or (H, W, C) texture at float pixel coords, wrapping."""
    h, w = tex.shape[:2]
    x0 = np.floor(u)
    y0 = np.floor(v)
    fx = (u - x0)[..., None] if tex.ndim == 3 else u - x0
    fy = (v - y0)[..., None] if tex.ndim == 3 else v - y0
    xi = x0.astype(np.int64) % w
    yi = y0.astype(np.int64) % h
    xj = (xi + 1) % w
    yj = (yi + 1) % h
    top = tex[yi, xi] * (1 - fx) + tex[yi, xj] * fx
    bot = tex[yj, xi] * (1 - fx) + tex[yj, xj] * fx
    return top * (1 - fy) + bot * fy


@dataclass
class Scene:
    head: Head
    hole: float  # countersunk: radius of the hole in the ground plane (0 = none)

    def dists(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance to the head, distance to the ground) at the points."""
        head = self.head.sdf(x, y, z)
        ground = z
        if self.hole > 0:
            ground = np.maximum(z, self.hole - np.hypot(x, y))
        return head, ground

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        head, ground = self.dists(x, y, z)
        return np.minimum(head, ground)


def march(
    scene: Scene,
    origin: np.ndarray,
    dirs: np.ndarray,
    t0: np.ndarray,
    eps: float,
    steps: int = 72,
    floor: float = -1.2,
) -> np.ndarray:
    """Distance along each ray (N, 3) to the first surface; rays that fall below `floor`
    or run out of steps are closed on the ground plane's analytic intersection."""
    t = t0.copy()
    active = np.arange(len(dirs))
    ox, oy, oz = origin
    for _ in range(steps):
        if active.size == 0:
            break
        d = dirs[active]
        ta = t[active]
        px = ox + d[:, 0] * ta
        py = oy + d[:, 1] * ta
        pz = oz + d[:, 2] * ta
        dist = scene.sdf(px, py, pz)
        t[active] = ta + dist * 0.8
        done = (dist < eps * (1.0 + ta)) | (pz < floor)
        active = active[~done]
    return t


def normals(scene: Scene, p: np.ndarray, h: float = 2e-3) -> np.ndarray:
    """Unit normals by the tetrahedron technique (4 SDF evaluations)."""
    ks = np.array([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], np.float64)
    n = np.zeros_like(p)
    for k in ks:
        q = p + k * h
        n += k * scene.sdf(q[:, 0], q[:, 1], q[:, 2])[:, None]
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)


def soft_shadow(
    scene: Scene, p: np.ndarray, light: np.ndarray, k: float, steps: int = 22
) -> np.ndarray:
    """Visibility of a directional light (0 shadow .. 1 lit) with penumbra sharpness k."""
    res = np.ones(len(p))
    t = np.full(len(p), 0.02)
    active = np.arange(len(p))
    for _ in range(steps):
        if active.size == 0:
            break
        ta = t[active]
        q = p[active] + light[None, :] * ta[:, None]
        h = scene.sdf(q[:, 0], q[:, 1], q[:, 2])
        res[active] = np.minimum(res[active], k * h / ta)
        t[active] = ta + np.clip(h, 0.02, 0.25)
        keep = (res[active] > 0.02) & (t[active] < 3.0) & (q[:, 2] < 1.5)
        active = active[keep]
    res = np.clip(res, 0.0, 1.0)
    return res * res * (3 - 2 * res)


def ambient_occlusion(scene: Scene, p: np.ndarray, n: np.ndarray, scale: float) -> np.ndarray:
    occ = np.zeros(len(p))
    weight = 1.0
    for i in range(1, 6):
        h = scale * i / 5.0
        q = p + n * h
        occ += (h - scene.sdf(q[:, 0], q[:, 1], q[:, 2])) * weight
        weight *= 0.7
    return np.clip(1.0 - 2.2 * occ / scale, 0.0, 1.0)


@dataclass
class Light:
    direction: np.ndarray  # unit vector toward the light
    colour: np.ndarray  # RGB intensity
    sharpness: float  # soft-shadow k: small = big area light, soft penumbra


@dataclass
class Material:
    albedo: np.ndarray  # (N, 3) per hit point
    spec: np.ndarray  # (N, 3) specular colour
    shininess: float  # Blinn-Phong exponent (used when aniso is None)
    aniso: tuple[float, float] | None  # Ward alphas (along, across the tangent)
    rough: float  # Oren-Nayar sigma (radians)
    env: float  # strength of the environment reflection


def shade(
    p: np.ndarray,
    n: np.ndarray,
    view: np.ndarray,
    mat: Material,
    lights: list[tuple[Light, np.ndarray]],
    ambient: np.ndarray,
    ao: np.ndarray,
    sky: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Linear RGB radiance at the hit points. `lights`: (light, visibility per point);
    `sky`: (horizon colour, zenith colour, sun-spot direction, sun-spot colour)."""
    nv = np.clip(np.sum(n * view, axis=1), 1e-3, 1.0)
    out = ambient[None, :] * mat.albedo * ao[:, None]
    s2 = mat.rough**2
    on_a = 1.0 - 0.5 * s2 / (s2 + 0.33)
    on_b = 0.45 * s2 / (s2 + 0.09)
    tangent = None
    if mat.aniso is not None:  # turning marks run around the screw axis
        t = np.stack([-p[:, 1], p[:, 0], np.zeros(len(p))], axis=1)
        t = t - n * np.sum(t * n, axis=1, keepdims=True)
        bad = np.linalg.norm(t, axis=1) < 1e-6
        t[bad] = np.array([1.0, 0.0, 0.0])
        tangent = t / np.linalg.norm(t, axis=1, keepdims=True)
        bitangent = np.cross(n, tangent)
    for light, vis in lights:
        ld = light.direction
        nl = np.clip(n @ ld, 0.0, 1.0)
        # Oren-Nayar (qualitative model)
        lv = ld[None, :] - n * (n @ ld)[:, None]
        vv = view - n * nv[:, None]
        cos_phi = np.sum(lv * vv, axis=1) / np.maximum(
            np.linalg.norm(lv, axis=1) * np.linalg.norm(vv, axis=1), 1e-6
        )
        ti = np.arccos(np.clip(nl, 0, 1))
        tr = np.arccos(nv)
        alpha = np.maximum(ti, tr)
        beta = np.minimum(ti, tr)
        diffuse = nl * (on_a + on_b * np.maximum(cos_phi, 0) * np.sin(alpha) * np.tan(beta))
        half = ld[None, :] + view
        half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
        nh = np.clip(np.sum(n * half, axis=1), 1e-4, 1.0)
        if tangent is None or mat.aniso is None:
            spec = (mat.shininess + 8) / (8 * np.pi) * nh**mat.shininess * nl
        else:
            ax, ay = mat.aniso
            ht = np.sum(half * tangent, axis=1) / ax
            hb = np.sum(half * bitangent, axis=1) / ay
            spec = np.exp(-(ht**2 + hb**2) / nh**2) / (
                4 * np.pi * ax * ay * np.sqrt(np.maximum(nl * nv, 1e-4))
            )
            spec = spec * nl
        spec = np.minimum(spec, 40.0)
        out += (mat.albedo * diffuse[:, None] / np.pi * 3.0 + mat.spec * spec[:, None] * 0.25) * (
            light.colour[None, :] * vis[:, None]
        )
    # environment reflection: sky gradient + a bright window, Schlick Fresnel
    refl = 2 * nv[:, None] * n - view
    horizon, zenith, sun_dir, sun_col = sky
    up = np.clip(refl[:, 2], 0, 1)[:, None]
    env = horizon[None, :] * (1 - up) + zenith[None, :] * up
    env = env * (refl[:, 2:3] > -0.1)  # below the horizon: the (dark) ground
    spot = np.clip(refl @ sun_dir, 0, 1) ** 24
    env = env + spot[:, None] * sun_col[None, :]
    fres = 0.3 + 0.7 * (1 - nv) ** 5
    out += mat.env * mat.spec * env * (fres * ao)[:, None]
    return out
