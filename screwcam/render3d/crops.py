"""Crops: one head (render_head) or one non-head object (render_distractor), centred,
on a surface, under a light, through an oblique camera, with lens/sensor effects."""

from __future__ import annotations

import cv2
import numpy as np

from .camera import effects, expose, fill_holes, project, to_uint8
from .geometry import DISTRACTORS, LABEL_STYLES, PART_RECESS, RECESS_OF_LABEL
from .materials import BACKGROUNDS, FINISHES
from .shading import LIGHTS, environment, light_rig, shade
from .stage import (
    CLASS_NAMES,
    DISTRACTOR_KINDS,
    GENERATOR,
    Stage,
    bbox,
    draw_tilt,
    pick,
    silhouette_image,
    view_family,
)


def render_head(rng: np.random.Generator, label: int, size: int = 96, **overrides):
    """One screw head of class `label` (0 innensechskant, 1 philips, 2 pozidriv,
    3 sechskant, 4 torx), centred in a size x size BGR uint8 image.

    Returns (image, box, info): box = (x, y, w, h) of the whole head in image pixels;
    info names the families: generator, label, style, finish, light, view (tilt in
    degrees), view_family, background, recess, silhouette, effects.

    Overrides (each optional; unknown names raise): style, finish, light, background
    (from STYLES / FINISHES / LIGHTS / BACKGROUNDS), or pools to draw them from: styles,
    finishes, lights, backgrounds (e.g. finishes=set(FINISHES) - {"rusty"} holds rust
    out), tilt (degrees, 0-45; view_family 'top' under 10, else 'oblique'), fill (head
    diameter / image side, default 0.4-0.85), angle (in-plane rotation, radians),
    silhouette (bool) with polarity ('dark_on_light' | 'light_on_dark'), lowres (render
    at this many pixels and upscale, e.g. 16 for tiny heads), effects (False: no
    blur/noise/JPEG), defocus, motion_blur, noise, jpeg (bool each), supersample
    (render at this many times the output size; default 1.25 up to 160 px, else 1),
    mask (True: info['mask'] = the head's uint8 mask, 255 = head, same size as image,
    and info['recess_mask'] = the recess's; info['recess_box'] is always there, None for
    hex heads),
    neighbors (how many other heads/distractors to place around it, cut by the crop's
    edge; default 0 in 80 % of crops, else 1-2).
    """
    if label not in LABEL_STYLES:
        raise ValueError(f"label must be 0-4 ({', '.join(CLASS_NAMES)}), got {label!r}")
    return _render_crop(rng, size, overrides, label=label, kind=None, caller="render_head")


def render_distractor(rng: np.random.Generator, size: int = 96, kind=None, **overrides):
    """A non-head object (DISTRACTOR_KINDS: washer, nut, coin, hole, rivet, disc, card,
    rod, or photo_coin, a real coin from coins.png) centred like render_head's heads, on the
    same surfaces, lights, views and camera: negatives for a classifier's 'unknown' or a
    detector. Returns (image, box, info) with info['label'] None and info['style'] the
    kind. Overrides as in render_head, except style/styles/silhouette."""
    kind = pick(rng, DISTRACTOR_KINDS, kind, "distractor")
    for name in ("style", "styles", "silhouette", "polarity"):
        if name in overrides:
            raise TypeError(f"render_distractor does not take {name}")
    return _render_crop(rng, size, overrides, label=None, kind=kind, caller="render_distractor")


def _render_crop(rng, size, overrides, *, label, kind, caller):
    known = {
        "style",
        "finish",
        "light",
        "background",
        "styles",
        "finishes",
        "lights",
        "backgrounds",
        "tilt",
        "fill",
        "angle",
        "silhouette",
        "polarity",
        "lowres",
        "effects",
        "defocus",
        "motion_blur",
        "noise",
        "jpeg",
        "supersample",
        "mask",
        "neighbors",
    }
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"{caller} got unknown overrides: {', '.join(sorted(unknown))}")
    size = int(size)
    if kind is None:
        style = pick(
            rng,
            LABEL_STYLES[label],
            overrides.get("style"),
            f"style for label {label}",
            overrides.get("styles"),
        )
    else:
        style = kind
    finish = pick(rng, FINISHES, overrides.get("finish"), "finish", overrides.get("finishes"))
    light = pick(rng, LIGHTS, overrides.get("light"), "light", overrides.get("lights"))
    bg = pick(
        rng, BACKGROUNDS, overrides.get("background"), "background", overrides.get("backgrounds")
    )
    tilt = draw_tilt(rng, overrides.get("tilt"))
    fill = float(overrides.get("fill") or rng.uniform(0.4, 0.85))
    angle = (
        float(overrides["angle"])
        if overrides.get("angle") is not None
        else float(rng.uniform(0, 2 * np.pi))
    )
    silhouette = bool(overrides.get("silhouette", False))
    polarity = pick(rng, ("dark_on_light", "light_on_dark"), overrides.get("polarity"), "polarity")
    lowres = overrides.get("lowres")
    work = int(lowres) if lowres else size
    ss = float(overrides.get("supersample") or (1.25 if work <= 160 else 1.0))
    n = int(round(work * ss))
    radius = fill * n / 2.0
    cos_t = np.cos(np.radians(tilt))
    hs = int(np.ceil(n / cos_t * 1.06)) if tilt > 0.5 else n
    ws = int(np.ceil(n * 1.06)) if tilt > 0.5 else n
    stage = Stage(rng, (hs, ws), bg)
    cx, cy = ws / 2.0, hs / 2.0
    if kind is None:
        oid = stage.add(rng, cx, cy, radius, angle, label=label, style=style, finish=finish)
    else:
        coin = None
        if kind == "photo_coin":
            from ..photos import coin_patches

            coins = coin_patches()
            coin = coins[int(rng.integers(len(coins)))]
        oid = stage.add(rng, cx, cy, radius, angle, kind=kind, finish=finish, coin=coin)
    n_near = overrides.get("neighbors")
    if n_near is None:
        n_near = 0 if silhouette or rng.random() < 0.8 else int(rng.integers(1, 3))
    for _ in range(int(n_near)):
        # a neighbouring head or distractor, cut by the crop's edge (as crops from a
        # busy frame are); it never covers the head
        r2 = radius * float(rng.uniform(0.4, 1.1))
        ang = float(rng.uniform(0, 2 * np.pi))
        dist = radius + r2 + float(rng.uniform(0.02, 0.3)) * radius
        nx, ny = cx + dist * np.cos(ang), cy + dist * np.sin(ang)
        if rng.random() < 0.5:
            other = int(rng.integers(5))
            stage.add(
                rng,
                nx,
                ny,
                r2,
                float(rng.uniform(0, 2 * np.pi)),
                label=other,
                style=pick(rng, LABEL_STYLES[other], None, "style"),
                finish=pick(rng, FINISHES, None, "finish"),
            )
        else:
            stage.add(
                rng,
                nx,
                ny,
                r2,
                float(rng.uniform(0, 2 * np.pi)),
                kind=pick(rng, DISTRACTORS, None, "distractor"),
                finish=pick(rng, FINISHES, None, "finish"),
            )
    view = np.array([0.0, -np.sin(np.radians(tilt)), np.cos(np.radians(tilt))], np.float32)
    z = stage.z
    zmax = float(z[stage.obj == oid].max()) if (stage.obj == oid).any() else 0.0
    if silhouette:
        color = silhouette_image(stage.part, stage.obj, [oid], polarity)[..., None].repeat(
            3, axis=2
        )
        rig = {"name": "silhouette"}
    else:
        rig = light_rig(rng, light, view, scale_px=radius)
        env = environment(rng)
        color = shade(
            z,
            stage.base,
            stage.metal,
            stage.rough,
            rig,
            env,
            view,
            ao_scales=(max(1.0, radius * 0.05), max(2.0, radius * 0.2)),
            shadow_len=max(4.0, zmax * 8.0),
            hull_size=radius * 1.3,
        )
    if tilt > 0.5:
        focal = float(rng.uniform(6.0, 20.0)) * radius
    # object id and part travel together through the camera: id * 4 + part
    tagged = (stage.obj * 4 + stage.part).astype(np.int16)
    if tilt > 0.5:
        focal = float(rng.uniform(6.0, 20.0)) * radius
        (color, tagged), covered = project(
            [color, tagged],
            z,
            tilt,
            (cx, cy),
            (n, n),
            (n / 2.0, n / 2.0),
            focal,
            z0=zmax / 2,
        )
        color = fill_holes(color, covered)
        tagged = fill_holes(tagged, covered, nearest=True)
    head = (tagged // 4 == oid).astype(np.float32)
    recess = (tagged == oid * 4 + PART_RECESS).astype(np.float32)
    for out_size, area in ((work, n != work), (size, bool(lowres))):
        if not area:
            continue
        down = out_size < color.shape[0]
        interp = cv2.INTER_AREA if down else (cv2.INTER_LINEAR if silhouette else cv2.INTER_CUBIC)
        color = cv2.resize(color, (out_size, out_size), interpolation=interp)
        mask_interp = cv2.INTER_AREA if down else cv2.INTER_LINEAR
        head = cv2.resize(head, (out_size, out_size), interpolation=mask_interp)
        recess = cv2.resize(recess, (out_size, out_size), interpolation=mask_interp)
    head_mask = head > 0.3
    recess_mask = recess > 0.3
    box = bbox(head_mask)
    applied: dict = {}
    if silhouette:
        image = np.where(color > 0.5, 255, 0).astype(np.uint8)
    elif overrides.get("effects", True):
        image, applied = effects(rng, color, rig, size / 96.0, overrides)
    else:
        image = to_uint8(expose(color, rig))
    info = {
        "generator": GENERATOR,
        "label": None if label is None else int(label),
        "class_name": None if label is None else CLASS_NAMES[label],
        "style": style,
        "finish": "silhouette" if silhouette else finish,
        "light": "silhouette" if silhouette else light,
        "view": round(tilt, 2),
        "view_family": view_family(tilt),
        "background": "silhouette" if silhouette else bg,
        "recess": None if label is None else RECESS_OF_LABEL[label],
        "silhouette": polarity if silhouette else None,
        "fill": round(fill, 3),
        "lowres": int(lowres) if lowres else None,
        "neighbors": int(n_near),
        # the recess alone: a box around only this is a wrong head box (hard negative)
        "recess_box": bbox(recess_mask),
        "effects": applied,
    }
    if overrides.get("mask"):
        info["mask"] = head_mask.astype(np.uint8) * 255
        info["recess_mask"] = recess_mask.astype(np.uint8) * 255
    return image, box, info
