"""Finishes (metal, roughness, colour, wear) and background surfaces.

A material is three per-pixel maps: `base` (linear BGR; the albedo of a dielectric or
the reflectance F0 of a metal), `metal` (0 dielectric .. 1 metal) and `rough` (GGX
roughness, 0.05 mirror .. 1 chalk), plus an optional height perturbation `bump` (pixels).
"""

from __future__ import annotations

import cv2
import numpy as np

from .geometry import PART_MARK, PART_RECESS

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
BACKGROUNDS: tuple[str, ...] = ("plain_light", "plain_dark", "texture", "metal", "photo", "clutter")


def noise(rng: np.random.Generator, shape: tuple[int, int], cells: float) -> np.ndarray:
    """Smooth value noise in [0, 1] with about `cells` blobs across the larger side."""
    h, w = shape
    n = max(2, int(round(cells)))
    gh, gw = (max(2, int(n * h / max(h, w)) + 1), max(2, int(n * w / max(h, w)) + 1))
    grid = rng.random((gh, gw), dtype=np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)


def fbm(rng: np.random.Generator, shape: tuple[int, int], cells: float, octaves: int = 3):
    out = np.zeros(shape, np.float32)
    amp, total = 1.0, 0.0
    for i in range(octaves):
        out += amp * noise(rng, shape, cells * 2**i)
        total += amp
        amp *= 0.5
    return out / total


def srgb_to_linear(img: np.ndarray) -> np.ndarray:
    return (img.astype(np.float32) / 255.0) ** 2.2


def _bgr(b, g, r):
    return np.array([b, g, r], np.float32)


def finish_params(rng: np.random.Generator, finish: str) -> dict:
    """Random constants of one finish (colour, roughness, wear amounts)."""
    p: dict = {"finish": finish}
    if finish == "zinc":
        if rng.random() < 0.25:  # yellow (chromate) zinc
            p.update(base=_bgr(0.32, 0.62, 0.8) * rng.uniform(0.7, 1.0), metal=1.0)
        else:
            p.update(base=_bgr(0.8, 0.78, 0.73) * rng.uniform(0.7, 1.0), metal=1.0)
        p.update(rough=rng.uniform(0.22, 0.55))
    elif finish == "black_oxide":
        p.update(base=_bgr(0.05, 0.045, 0.04) * rng.uniform(0.5, 1.6), metal=0.35)
        p.update(rough=rng.uniform(0.3, 0.65))
    elif finish == "brass":
        p.update(base=_bgr(0.36, 0.66, 0.88) * rng.uniform(0.75, 1.0), metal=1.0)
        p.update(rough=rng.uniform(0.18, 0.45))
    elif finish == "stainless":
        p.update(base=_bgr(0.57, 0.56, 0.55) * rng.uniform(0.8, 1.0), metal=1.0)
        p.update(rough=rng.uniform(0.1, 0.35), turned=rng.random() < 0.35)
    elif finish == "painted":
        palette = [
            (0.75, 0.75, 0.75),
            (0.03, 0.03, 0.03),
            (0.04, 0.04, 0.3),
            (0.3, 0.15, 0.05),
            (0.05, 0.2, 0.06),
            (0.03, 0.3, 0.45),
            (0.5, 0.48, 0.42),
        ]
        col = np.array(palette[int(rng.integers(len(palette)))], np.float32)
        p.update(base=col * rng.uniform(0.7, 1.1), metal=0.0, rough=rng.uniform(0.25, 0.7))
    elif finish == "rusty":
        p.update(base=_bgr(0.45, 0.45, 0.44), metal=1.0, rough=rng.uniform(0.35, 0.6))
        rust = _bgr(0.012, 0.035, 0.11) * rng.uniform(0.5, 1.5)
        p.update(rust=rust, cover=rng.uniform(0.3, 0.95))
    elif finish == "dirty":
        inner = finish_params(rng, str(rng.choice(["zinc", "stainless", "brass", "black_oxide"])))
        p.update({k: v for k, v in inner.items() if k != "finish"})
        p.update(dirt=_bgr(0.06, 0.085, 0.1) * rng.uniform(0.5, 2.0), cover=rng.uniform(0.1, 0.5))
    elif finish == "worn":
        inner = finish_params(rng, str(rng.choice(["zinc", "stainless", "black_oxide", "painted"])))
        p.update({k: v for k, v in inner.items() if k != "finish"})
        p.update(cam=rng.uniform(0.04, 0.12), scratches=int(rng.integers(2, 12)))
    else:
        raise ValueError(f"unknown finish {finish!r}")
    # The driver bit polishes the recess walls, and coatings collect on the flat top:
    # in some heads the recess is brighter, shinier bare metal than the head around it.
    if rng.random() < (0.45 if finish in ("painted", "black_oxide", "worn", "dirty") else 0.15):
        p["bare_recess"] = (float(rng.uniform(0.5, 0.9)), float(rng.uniform(0.08, 0.3)))
    return p


def apply_finish(rng, fp: dict, part: np.ndarray, r: np.ndarray, cam: "np.ndarray | None"):
    """Per-pixel material maps for a finish over a head window.

    part: the head's part map; r: radius in head units (for turned marks);
    cam: where a worn recess was cammed out (0..1), or None.
    Returns base (h,w,3), metal (h,w), rough (h,w), bump (h,w, head units)."""
    shape = part.shape
    n = fbm(rng, shape, 4.0)
    base = np.broadcast_to(fp["base"], shape + (3,)).copy()
    base *= (0.85 + 0.3 * n)[..., None]
    metal = np.full(shape, fp["metal"], np.float32)
    rough = np.clip(fp["rough"] + 0.15 * (n - 0.5), 0.05, 1.0).astype(np.float32)
    bump = np.zeros(shape, np.float32)
    recess = part == PART_RECESS
    if fp.get("turned"):
        rough = np.clip(rough + 0.03 * np.sin(r * float(rng.uniform(80, 200))), 0.05, 1.0)
    if "rust" in fp:
        m = fbm(rng, shape, 6.0, 4)
        grain = fbm(rng, shape, max(shape) / 3.0, 2)
        rust = np.clip((m - (1.0 - fp["cover"])) * 4.0 + (grain - 0.5), 0.0, 1.0)
        tone = (0.4 + 1.2 * grain)[..., None]
        base = base * (1 - rust[..., None]) + fp["rust"] * tone * rust[..., None]
        metal = metal * (1 - rust)
        rough = rough * (1 - rust) + 0.9 * rust
        bump += 0.02 * rust * fbm(rng, shape, 24.0, 2)
    if "dirt" in fp:
        m = fbm(rng, shape, 5.0, 4)
        dirt = np.clip((m - (1.0 - fp["cover"])) * 5.0, 0.0, 1.0)
        dirt = np.maximum(dirt, recess * float(rng.uniform(0.3, 1.0)) * (m > 0.35))
        base = base * (1 - dirt[..., None]) + fp["dirt"] * dirt[..., None]
        metal = metal * (1 - dirt)
        rough = rough * (1 - dirt) + 0.95 * dirt
    if cam is not None:
        bright = np.clip(cam * 3.0, 0.0, 1.0)
        steel = _bgr(0.6, 0.6, 0.6)
        base = base * (1 - bright[..., None]) + steel * bright[..., None]
        metal = np.maximum(metal, bright)
        rough = rough * (1 - bright) + 0.2 * bright
    if "scratches" in fp:
        h, w = shape
        lines = np.zeros(shape, np.uint8)
        for _ in range(fp["scratches"]):
            x0, y0 = rng.integers(0, w), rng.integers(0, h)
            ang = rng.uniform(0, np.pi)
            ln = rng.uniform(0.05, 0.3) * w
            x1, y1 = int(x0 + ln * np.cos(ang)), int(y0 + ln * np.sin(ang))
            cv2.line(lines, (int(x0), int(y0)), (x1, y1), 255, 1, cv2.LINE_AA)
        s = lines.astype(np.float32) / 255.0 * float(rng.uniform(0.3, 0.8))
        base = base * (1 - s[..., None]) + _bgr(0.6, 0.6, 0.6) * s[..., None]
        metal = np.maximum(metal, s)
        rough = rough * (1 - s) + 0.25 * s
    if "bare_recess" in fp and recess.any():
        f0, r0 = fp["bare_recess"]
        base[recess] = _bgr(0.62, 0.62, 0.6) * f0 / 0.62
        metal[recess] = 1.0
        rough[recess] = r0
    mark = part == PART_MARK
    if mark.any():
        rough = np.where(mark, np.minimum(1.0, rough + 0.1), rough)
    return base.astype(np.float32), metal, rough.astype(np.float32), bump


def background(rng: np.random.Generator, kind: str, shape: tuple[int, int], photos=None):
    """Material maps of the surface the objects lie on: base, metal, rough, bump (px)."""
    h, w = shape
    metal = np.zeros(shape, np.float32)
    rough = np.full(shape, float(rng.uniform(0.5, 0.95)), np.float32)
    bump = np.zeros(shape, np.float32)
    if kind == "plain_light":
        tint = rng.uniform(0.85, 1.0, 3).astype(np.float32)
        base = tint * float(rng.uniform(0.35, 0.85))
        base = base * (0.93 + 0.14 * fbm(rng, shape, 3.0))[..., None]
    elif kind == "plain_dark":
        tint = rng.uniform(0.7, 1.0, 3).astype(np.float32)
        base = tint * float(rng.uniform(0.01, 0.08))
        base = base * (0.85 + 0.3 * fbm(rng, shape, 3.0))[..., None]
    elif kind == "texture":
        style = rng.integers(3)
        if style == 0:  # wood: growth rings cut at a slant, plus fine fibres along the grain
            yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
            warp = fbm(rng, shape, 2.5) * float(rng.uniform(1, 5))
            phase = yy * float(rng.uniform(6, 30)) + warp
            rings = np.abs(np.sin(phase * np.pi)) ** float(rng.uniform(0.5, 3.0))
            fibres = cv2.resize(rng.random((max(2, h // 2), 6), dtype=np.float32), (w, h))
            grain = 0.55 * rings + 0.3 * fibres + 0.15 * fbm(rng, shape, 6.0)
            tones = ((0.1, 0.25, 0.45), (0.05, 0.12, 0.25), (0.3, 0.45, 0.6), (0.03, 0.06, 0.12))
            col = np.array(tones[int(rng.integers(len(tones)))], np.float32)
            col = col * float(rng.uniform(0.6, 1.3))
            base = col * (0.55 + 0.6 * grain)[..., None]
            bump = 0.8 * rings + 0.4 * fibres
            if rng.random() < 0.5:  # grain across instead of along
                base = np.asarray(cv2.resize(np.ascontiguousarray(base.transpose(1, 0, 2)), (w, h)))
                bump = np.asarray(cv2.resize(np.ascontiguousarray(bump.T), (w, h)))
        elif style == 1:  # fabric / mat: fine noise
            base = (
                rng.uniform(0.05, 0.6, 3).astype(np.float32)
                * (0.7 + 0.6 * fbm(rng, shape, max(h, w) / 6.0, 2))[..., None]
            )
            bump = 1.5 * fbm(rng, shape, max(h, w) / 4.0, 1)
        else:  # speckled stone / concrete
            m = fbm(rng, shape, max(h, w) / 10.0, 3)
            base = (
                np.float32(rng.uniform(0.1, 0.5))
                * (0.6 + 0.8 * m)[..., None]
                * np.ones(3, np.float32)
            )
            bump = 2.0 * m
    elif kind == "metal":
        base = _bgr(0.6, 0.6, 0.6) * float(rng.uniform(0.5, 1.0))
        base = base * (0.9 + 0.2 * fbm(rng, shape, 4.0))[..., None]
        metal[:] = 1.0
        rough[:] = float(rng.uniform(0.15, 0.6))
        if rng.random() < 0.5:  # brushed
            streak = cv2.resize(rng.random((h, 4), dtype=np.float32), (w, h))
            rough += 0.1 * (streak - 0.5)
    elif kind in ("photo", "clutter"):
        if photos is None:
            from .. import photos as photos_module

            photos = photos_module
        img = photos.random_crop(rng, (w, h)) if kind == "photo" else photos.tiles(rng, (w, h))
        base = srgb_to_linear(img) * float(rng.uniform(0.6, 1.0))
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
        bump = gray * float(rng.uniform(0.0, 2.0))
    else:
        raise ValueError(f"unknown background {kind!r}")
    base = np.array(np.broadcast_to(base, shape + (3,)), np.float32)  # writable copy
    return base, metal, np.clip(rough, 0.05, 1.0), bump.astype(np.float32)


__all__ = ["FINISHES", "BACKGROUNDS", "finish_params", "apply_finish", "background", "noise"]
_ = PART_MARK
