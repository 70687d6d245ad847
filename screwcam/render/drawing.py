"""Drawing one screw head: a sprite (height map, albedo, masks) built from signed-distance
shapes, top view, vectorised NumPy/OpenCV only. Lighting and compositing live in
`scene`; the demo camera in `demo`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..classes import CLASSES, NUM_CLASSES

FINISHES: tuple[str, ...] = ("zinc", "dull", "worn", "black")

INNENSECHSKANT, PHILIPS, POZIDRIV, SECHSKANT, TORX = range(NUM_CLASSES)
TAU = 2.0 * math.pi

# finish -> (albedo, specular strength, specular power, BGR tint)
FINISH_LOOK = {
    "zinc": (0.70, 0.55, 24.0, (1.04, 1.0, 0.95)),
    "dull": (0.50, 0.18, 8.0, (1.0, 1.0, 1.0)),
    "worn": (0.56, 0.30, 12.0, (0.97, 1.0, 1.03)),
    "black": (0.13, 0.35, 18.0, (1.0, 1.0, 1.0)),
    # the wider set of `variety` (names shared with render3d, so families line up)
    "black_oxide": (0.11, 0.4, 22.0, (1.0, 1.0, 1.02)),
    "brass": (0.62, 0.5, 20.0, (0.55, 0.86, 1.12)),
    "stainless": (0.78, 0.7, 40.0, (1.02, 1.0, 0.98)),
    "painted": (0.5, 0.12, 6.0, (1.0, 1.0, 1.0)),  # albedo and tint come from the spec
    "rusty": (0.34, 0.06, 4.0, (0.62, 0.82, 1.12)),
    "dirty": (0.5, 0.2, 8.0, (0.95, 1.0, 1.03)),
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
    # Looks used by `variety` (defaults = the demo's and render_sample's look):
    tint: tuple[float, float, float] | None = None  # BGR tint instead of the finish's
    albedo: float | None = None  # base albedo instead of the finish's
    recess_tone: float = -1.0  # -1 dark recess .. +1 bright (light off its walls)
    cammed: float = 0.0  # 0 crisp .. 1 worn, rounded recess edges
    blotch: float = 0.0  # rust / dirt patches: share of the surface 0..1
    marking: str = ""  # text embossed on a hex head, e.g. "8.8"
    ribs: bool = False  # pozidriv: the second, narrow cross at 45 degrees
    shape2: float = -1.0  # a second shape parameter in 0..1; -1 = the demo's narrower range

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
    w2 = spec.shape2
    if spec.label == TORX:
        lobe = 0.26 + 0.08 * v if w2 < 0 else 0.18 + 0.2 * w2  # lobe depth / outer radius
        c = np.cos(6.0 * theta)
        shaped = np.sign(c) * np.abs(c) ** 0.6
        rt = size * (1.0 - lobe * 0.5 * (1.0 - shaped))
        sdf = (r - rt) * 0.85
        prof = 0.8 + 0.2 * np.clip(1.0 - r / (0.45 * size), 0.0, 1.0)
        return sdf, prof
    ax, ay = np.abs(x), np.abs(y)
    if spec.label == PHILIPS:
        w0, w1 = size * (0.30 + 0.05 * v), size * (0.09 + 0.04 * v)  # V-shaped arms
        if w2 >= 0:  # from nearly parallel, thin wings to a fat four-point star
            w0, w1 = size * (0.14 + 0.22 * w2), size * (0.06 + 0.07 * v)

        def arm(u, w):
            half = w0 + (w1 - w0) * np.clip(u / size, 0.0, 1.0)
            return np.maximum(w - half, u - size)

        sdf = np.minimum(arm(ax, ay), arm(ay, ax))
        centre = 0.34 + 0.05 * v if w2 < 0 else 0.2 + 0.2 * v
        sdf = np.minimum(sdf, r - size * centre)  # rounded centre
        prof = np.clip(1.05 - r / size, 0.08, 1.0)  # conical: deepest in the centre
        return sdf, prof
    # pozidriv: parallel arms, square-ish centre with small ears on the diagonals
    hw = size * (0.13 + 0.03 * v if w2 < 0 else 0.09 + 0.09 * w2)  # parallel arms
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
    top = head * {"cap": 0.3, "cheese": 0.36, "countersunk": 0.04}.get(spec.shape, 0.22)
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
        elif spec.shape == "countersunk":  # flush in the surface: flat, a thin gap around
            height = top * (1.0 - 0.9 * np.clip((rn - 0.94) / 0.06, 0.0, 1.0))
        elif spec.shape == "cheese":  # tall cylinder, flat top, small chamfer
            edge = np.clip((rn - 0.88) / 0.12, 0.0, 1.0)
            height = top * (1.0 - 0.4 * edge)
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

    albedo0 = FINISH_LOOK[spec.finish][0] if spec.albedo is None else spec.albedo
    albedo = np.full_like(r, albedo0)
    if spec.shape == "countersunk":  # the gap between head and surface is dark
        albedo *= 1.0 - 0.6 * np.clip((rn - 0.93) / 0.07, 0.0, 1.0)
    # surface grain: fine noise, and scratches on worn heads
    grain = cv2.resize(
        rng.normal(0.0, 1.0, (side // 3 + 2, side // 3 + 2)).astype(np.float32),
        (side, side),
        interpolation=cv2.INTER_LINEAR,
    )
    albedo += 0.03 * grain
    if spec.blotch > 0.0:  # rust or dirt: soft patches of a darker, duller surface
        patches = (
            cv2.resize(
                rng.normal(0.0, 1.0, (7, 7)).astype(np.float32), (side, side), cv2.INTER_CUBIC
            )
            + 0.5 * grain
        )
        cut = float(np.quantile(patches, 1.0 - spec.blotch))
        patch = np.clip((patches - cut) * 2.0, 0.0, 1.0)
        albedo = albedo * (1.0 - 0.55 * patch) + (0.08 if spec.finish == "rusty" else 0.0) * patch
    if spec.marking and spec.shape == "hex":
        mark = np.zeros((side, side), np.uint8)
        scale = head / 55.0
        (tw, th), _ = cv2.getTextSize(spec.marking, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        org = (int(half - tw / 2 + rng.uniform(-0.2, 0.2) * head), int(half + th / 2))
        thick = max(1, int(round(head / 30.0)))
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(mark, spec.marking, org, font, scale, 255, thick, cv2.LINE_AA)
        rot = cv2.getRotationMatrix2D((half, half), float(rng.uniform(0, 360)), 1.0)
        mark = cv2.warpAffine(mark, rot, (side, side)).astype(np.float32) / 255.0
        height = height + 0.03 * head * mark
        albedo = albedo * (1.0 + 0.25 * mark * (1.0 if rng.random() < 0.5 else -1.0))
    if spec.finish == "worn":
        scratch = np.zeros((side, side), np.float32)
        for _ in range(int(rng.integers(6, 16))):
            p0 = rng.uniform(0, side, 2)
            ang = rng.uniform(0, TAU)
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
        if spec.ribs:  # pozidriv: a second, narrow cross at 45 degrees
            u, w = np.abs(x + y) / math.sqrt(2.0), np.abs(x - y) / math.sqrt(2.0)
            rib_w, rib_l = 0.05 * spec.recess * head + 0.4, 0.62 * spec.recess * head
            ribs = np.minimum(np.maximum(w - rib_w, u - rib_l), np.maximum(u - rib_w, w - rib_l))
            sdf = np.minimum(sdf, ribs)
        inside = _aa(sdf)
        wall = np.clip(-sdf / max(1.0, 0.05 * head), 0.0, 1.0)  # walls slope over a few px
        if spec.cammed > 0.0:  # worn driver bits round off the recess's edges
            sigma = 0.02 + 0.06 * spec.cammed
            inside = cv2.GaussianBlur(inside, (0, 0), sigma * head)
            wall = cv2.GaussianBlur(wall, (0, 0), sigma * head)
        depth = spec.depth * head * prof * wall
        height = height - depth
        recess = inside
        if spec.recess_tone <= 0.0:
            dark = (0.55 + 0.35 * np.clip(spec.depth * prof, 0.0, 1.0)) * -spec.recess_tone
            albedo = albedo * (1.0 - dark * inside)
        else:  # light reflected off the recess walls: brighter than the head
            albedo = albedo + spec.recess_tone * (1.0 - albedo) * 0.8 * inside
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
