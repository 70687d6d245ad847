"""Scenes: a frame with several heads and distractors on one surface, under one light,
seen by one pitched camera with perspective (render_scene)."""

from __future__ import annotations

import numpy as np

from .camera import effects, expose, fill_holes, project, to_uint8
from .geometry import LABEL_STYLES, PART_RECESS, RECESS_OF_LABEL
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
    view_family,
)


def _plane_to_stage(xo, yo, out_center, stage_center, tilt, focal):
    """Invert the camera for a point on the surface (z = 0): output -> stage pixels,
    and the local magnification there."""
    t = np.radians(tilt)
    c, s = np.cos(t), np.sin(t)
    yy = yo - out_center[1]
    ys = yy * focal / (c * focal - yy * s)
    scale = focal / (focal + ys * s)
    xs = (xo - out_center[0]) / scale
    return stage_center[0] + xs, stage_center[1] + ys, scale


def render_scene(
    rng: np.random.Generator, size=(640, 480), n_heads=None, n_distractors=None, **overrides
):
    """A size=(width, height) BGR uint8 frame of several screw heads on a surface, with
    distractors (washers, nuts, coins, holes, rivets, blank discs, cards, rods, real coins)
    that are NOT heads. Returns (image, heads) with heads = [(box, label, info)], box =
    (x, y, w, h) in image pixels, info as in render_head (light, view, background are
    the scene's; style/finish/label the head's).

    Heads are non-overlapping (they may touch) and from ~16 px across up to filling
    the frame (one big head in ~15 % of scenes). Overrides: labels (list of label ids,
    one per head), light, background, tilt, styles / finishes / lights / backgrounds
    (pools to draw from, as in render_head),
    min_size / max_size (head diameter in pixels), effects (bool), jpeg, noise, ...,
    return_distractors (also return [(box, kind)] of the distractors)."""
    known = {
        "labels",
        "light",
        "background",
        "lights",
        "backgrounds",
        "tilt",
        "styles",
        "finishes",
        "min_size",
        "max_size",
        "effects",
        "defocus",
        "motion_blur",
        "noise",
        "jpeg",
        "return_distractors",
    }
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"render_scene got unknown overrides: {', '.join(sorted(unknown))}")
    wo, ho = int(size[0]), int(size[1])
    light = pick(rng, LIGHTS, overrides.get("light"), "light", overrides.get("lights"))
    bg = pick(
        rng, BACKGROUNDS, overrides.get("background"), "background", overrides.get("backgrounds")
    )
    tilt = draw_tilt(rng, overrides.get("tilt"))
    labels = overrides.get("labels")
    if labels is not None:
        n_heads = len(labels)
    big = n_heads is None and labels is None and rng.random() < 0.15
    if n_heads is None:
        n_heads = 1 if big else int(rng.integers(1, 9))
    if labels is None:
        labels = [int(rng.integers(5)) for _ in range(n_heads)]
    bad = [label for label in labels if label not in LABEL_STYLES]
    if bad:
        raise ValueError(f"labels must be 0-4 ({', '.join(CLASS_NAMES)}), got {bad}")
    if wo < 32 or ho < 32:
        raise ValueError(f"scene size {wo}x{ho} is too small; use at least 32x32")
    if n_distractors is None:
        n_distractors = int(rng.integers(0, 3 if big else 7))
    short = min(wo, ho)
    min_size = float(overrides.get("min_size", 16))
    max_size = float(overrides.get("max_size", short * (0.95 if big else 0.4)))
    if big:
        min_size = max(min_size, short * 0.5)
    cos_t = np.cos(np.radians(tilt))
    focal = float(rng.uniform(1.2, 3.0)) * max(wo, ho)
    ws = int(np.ceil(wo * 1.25))
    hs = int(np.ceil(ho / cos_t * 1.25))
    stage = Stage(rng, (hs, ws), bg)
    # The camera sits on the stage's -y side; the frame is flipped upside down at the
    # end so that the near side of the table is at the bottom, as in a photo. Flip the
    # surface now so that photos come out upright.
    stage.base = np.ascontiguousarray(stage.base[::-1])
    stage.z = np.ascontiguousarray(stage.z[::-1])
    stage.metal = np.ascontiguousarray(stage.metal[::-1])
    stage.rough = np.ascontiguousarray(stage.rough[::-1])
    out_c, st_c = (wo / 2.0, ho / 2.0), (ws / 2.0, hs / 2.0)
    placed: list = []  # (sx, sy, radius_stage)

    def place(diam_out):
        for _ in range(60):
            r_out = diam_out / 2.0
            margin = r_out * 1.1 + 2
            if 2 * margin >= min(wo, ho):
                xo, yo = wo / 2.0, ho / 2.0
            else:
                xo = rng.uniform(margin, wo - margin)
                yo = rng.uniform(margin, ho - margin)
            sx, sy, scale = _plane_to_stage(xo, yo, out_c, st_c, tilt, focal)
            rad = r_out / scale
            if all(np.hypot(sx - px, sy - py) >= (rad + pr) * 0.98 for px, py, pr in placed):
                placed.append((sx, sy, rad))
                return sx, sy, rad
            diam_out *= 0.9
        return None

    styles_pool = overrides.get("styles")
    finishes_pool = overrides.get("finishes")
    diams = sorted(
        (
            float(np.exp(rng.uniform(np.log(min_size), np.log(max(min_size, max_size)))))
            for _ in labels
        ),
        reverse=True,
    )
    order = list(range(len(labels)))
    heads = []
    distractors = []
    for k, diam in zip(order, diams, strict=True):
        label = int(labels[k])
        style = pick(rng, LABEL_STYLES[label], None, f"style for label {label}", styles_pool)
        finish = pick(rng, FINISHES, None, "finish", finishes_pool)
        # some heads sit on a washer (the washer is not part of the head's box)
        washer = style not in ("countersunk", "washer_hex", "flange") and rng.random() < 0.12
        ratio = float(rng.uniform(1.3, 1.7)) if washer else 1.0
        spot = place(diam * ratio)
        if spot is None:
            continue
        sx, sy, rad = spot
        base_z = 0.0
        if washer:
            thick = float(rng.uniform(0.04, 0.1))
            wid = stage.add(
                rng,
                sx,
                sy,
                rad,
                0.0,
                kind="washer",
                finish=pick(rng, FINISHES, None, "finish"),
                params={"thick": thick, "hole": 0.5 / ratio},
            )
            distractors.append((wid, "washer"))
            base_z = thick * rad
            rad = rad / ratio
        oid = stage.add(
            rng,
            sx,
            sy,
            rad,
            float(rng.uniform(0, 2 * np.pi)),
            label=label,
            style=style,
            finish=finish,
            base_z=base_z,
        )
        heads.append((oid, label, style, finish))
    coins = None
    for _ in range(n_distractors):
        kind = pick(rng, DISTRACTOR_KINDS, None, "distractor")
        diam = float(np.exp(rng.uniform(np.log(14), np.log(max(15, short * 0.3)))))
        spot = place(diam)
        if spot is None:
            continue
        sx, sy, rad = spot
        coin = None
        if kind == "photo_coin":
            if coins is None:
                from .. import photos

                coins = photos.coin_patches()
            coin = coins[int(rng.integers(len(coins)))]
        fin = pick(rng, FINISHES, None, "finish")
        oid = stage.add(
            rng, sx, sy, rad, float(rng.uniform(0, 2 * np.pi)), kind=kind, finish=fin, coin=coin
        )
        distractors.append((oid, kind))
    view = np.array([0.0, -np.sin(np.radians(tilt)), np.cos(np.radians(tilt))], np.float32)
    # scale_px sets a point light 0.75-2.5 frame widths above the table
    rig = light_rig(rng, light, view, scale_px=max(wo, ho) / 4.0)
    env = environment(rng)
    zmax = float(stage.z.max())
    color = shade(
        stage.z,
        stage.base,
        stage.metal,
        stage.rough,
        rig,
        env,
        view,
        ao_scales=(1.5, 5.0),
        shadow_len=max(4.0, zmax * 8.0),
        hull_size=1.3 * max((p[2] for p in placed), default=10.0),
    )
    tagged = (stage.obj.astype(np.int32) * 4 + stage.part).astype(np.int32)
    (color, tagged), covered = project([color, tagged], stage.z, tilt, st_c, (ho, wo), out_c, focal)
    color = fill_holes(color, covered)[::-1]
    tagged = fill_holes(tagged.astype(np.float32), covered, nearest=True)[::-1].astype(np.int32)
    obj = tagged // 4
    image, applied = (
        effects(rng, color, rig, 1.0, overrides)
        if overrides.get("effects", True)
        else (
            to_uint8(expose(color, rig)),
            {},
        )
    )
    out = []
    for oid, label, style, finish in heads:
        box = bbox(obj == oid)
        if box is None or box[2] < 4 or box[3] < 4:
            continue
        info = {
            "generator": GENERATOR,
            "label": label,
            "class_name": CLASS_NAMES[label],
            "style": style,
            "finish": finish,
            "light": light,
            "view": round(tilt, 2),
            "view_family": view_family(tilt),
            "background": bg,
            "recess": RECESS_OF_LABEL[label],
            "silhouette": None,
            "effects": applied,
            "recess_box": bbox(tagged == oid * 4 + PART_RECESS),
        }
        out.append((box, label, info))
    if overrides.get("return_distractors"):
        dboxes = [(b, kind) for oid, kind in distractors if (b := bbox(obj == oid)) is not None]
        return image, out, dboxes
    return image, out
