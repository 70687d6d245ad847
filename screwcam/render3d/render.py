"""render_head and render_scene: build a stage (height field + materials), shade it,
look at it through an oblique camera, and add lens/sensor effects."""

from __future__ import annotations

import cv2
import numpy as np

from . import camera, geometry, materials, shading
from .geometry import DISTRACTORS, LABEL_STYLES, PART_HEAD, PART_MARK, PART_RECESS, RECESS_OF_LABEL
from .materials import BACKGROUNDS, FINISHES
from .shading import LIGHTS

# Thesis class ids (screwcam.classes order), hard-coded so this package stands alone.
CLASS_NAMES: tuple[str, ...] = ("innensechskant", "philips", "pozidriv", "sechskant", "torx")
STYLES = geometry.STYLES
VIEWS: tuple[str, ...] = ("top", "oblique")  # tilt < 10° / 10-30°
MAX_TILT = 30.0
GENERATOR = "render3d"

_SCENE_DISTRACTORS = DISTRACTORS + ("photo_coin",)


def view_family(tilt: float) -> str:
    """'top' for tilts under 10°, else 'oblique' (info['view'] holds the angle)."""
    return "top" if tilt < 10.0 else "oblique"


def _pick(rng, options, value, what):
    if value is None:
        return str(options[int(rng.integers(len(options)))])
    if value not in options:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(options)}")
    return value


def _tilt(rng, value):
    if value is not None:
        if not 0.0 <= float(value) <= 45.0:
            raise ValueError(f"tilt {value} out of range 0-45 degrees")
        return float(value)
    if rng.random() < 0.45:
        return float(rng.uniform(0.0, 8.0))
    return float(rng.uniform(8.0, MAX_TILT))


class _Stage:
    """Height field (pixels), part map, object ids and material maps of a surface."""

    def __init__(self, rng, shape, background: str):
        self.shape = shape
        base, metal, rough, bump = materials.background(rng, background, shape)
        self.base, self.metal, self.rough = base, metal, rough
        self.z = bump.copy()
        self.part = np.zeros(shape, np.uint8)
        self.obj = np.zeros(shape, np.int16)
        self.next_id = 1

    def _window(self, cx, cy, radius):
        h, w = self.shape
        pad = radius * 1.25 + 2
        x0, x1 = max(0, int(cx - pad)), min(w, int(cx + pad) + 1)
        y0, y1 = max(0, int(cy - pad)), min(h, int(cy + pad) + 1)
        xs = (np.arange(x0, x1, dtype=np.float32) - cx) / radius
        ys = (np.arange(y0, y1, dtype=np.float32) - cy) / radius
        return (slice(y0, y1), slice(x0, x1)), xs, ys

    def add(
        self,
        rng,
        cx,
        cy,
        radius,
        angle,
        *,
        label=None,
        style=None,
        finish=None,
        kind=None,
        coin=None,
    ):
        """Place a head (label/style/finish) or a distractor (kind). Returns its id."""
        win, xs, ys = self._window(cx, cy, radius)
        ca, sa = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        X = xs[None, :] * ca + ys[:, None] * sa
        Y = -xs[None, :] * sa + ys[:, None] * ca
        r = np.hypot(X, Y)
        cam = None
        if kind is None:
            recess = RECESS_OF_LABEL[label]
            sp = geometry.style_params(rng, style, recess)
            rp = geometry.recess_params(rng, recess) if recess else {}
            marks = None
            if recess is None and rng.random() < 0.6:
                marks = geometry.marks_field(rng)
                sp["marks_raised"] = bool(rng.random() < 0.7)
            h, part, mask = geometry.build_head(X, Y, style, sp, recess, rp, marks)
        else:
            p = {
                "hole": rng.uniform(0.3, 0.6),
                "thick": rng.uniform(0.05, 0.15),
                "height": rng.uniform(0.3, 0.9),
                "depth": rng.uniform(0.5, 2.0),
            }
            geo_kind = "coin" if kind == "photo_coin" else kind
            h, part, mask = geometry.build_distractor(X, Y, geo_kind, p)
        h = h * np.float32(radius)
        fp = materials.finish_params(rng, finish or "zinc")
        if kind is None and finish == "worn" and RECESS_OF_LABEL[label] is not None:
            # cammed-out recess: the mouth of the recess worn into an irregular bevel
            rec = (part == PART_RECESS).astype(np.uint8)
            if rec.any():
                dt = cv2.distanceTransform(1 - rec, cv2.DIST_L2, 3)
                amount = fp["cam"] * radius
                wobble = materials.fbm(rng, rec.shape, 5.0)
                cam = np.clip(amount * (0.3 + wobble) - dt * 0.8, 0.0, None) * (part == PART_HEAD)
                h = h - cam
                cam = cam / max(amount, 1e-3)
        region = mask | (np.abs(h) > 1e-3)
        zwin = self.z[win]
        zwin[region] = h[region]
        oid = self.next_id
        self.next_id += 1
        self.obj[win][mask] = oid
        self.part[win][mask] = part[mask]
        if kind in ("hole",):
            # a drilled hole: same material as the surface, darker inside
            self.base[win][mask] *= 0.5
            return oid
        base, metal, rough, bump = materials.apply_finish(rng, fp, part, r, cam)
        if kind == "photo_coin" and coin is not None:
            patch, cmask = coin
            size = (mask.shape[1], mask.shape[0])
            # the coin patch spans the head radius: map it onto [-1, 1]²
            full = cv2.resize(patch, (int(2 * radius) + 1, int(2 * radius) + 1))
            M = np.float32([[1, 0, 0], [0, 1, 0]])
            canvas = np.zeros((size[1], size[0]), np.uint8)
            ox = int(round((0 - xs[0]) * radius - radius))
            oy = int(round((0 - ys[0]) * radius - radius))
            M[0, 2], M[1, 2] = ox, oy
            canvas = cv2.warpAffine(full, M, size, dst=canvas, borderMode=cv2.BORDER_CONSTANT)
            lum = materials.srgb_to_linear(canvas)[..., None]
            tint = np.array(
                rng.choice([[0.75, 0.75, 0.75], [0.35, 0.55, 0.8], [0.3, 0.45, 0.75]]), np.float32
            )
            base = (lum * 1.6 * tint).astype(np.float32)
            metal = np.full_like(metal, 0.5)
            bump = bump + canvas.astype(np.float32) / 255.0 * 0.03
        self.base[win][mask] = base[mask]
        self.metal[win][mask] = metal[mask]
        self.rough[win][mask] = rough[mask]
        zwin[mask] += bump[mask] * radius
        return oid


def _silhouette(part, obj, ids, polarity):
    fg = np.isin(obj, ids) & (part != PART_RECESS) & (part != PART_MARK)
    img = np.where(fg, 0.0, 1.0).astype(np.float32)
    if polarity == "light_on_dark":
        img = 1.0 - img
    return img


def _bbox(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)


def render_head(rng: np.random.Generator, label: int, size: int = 96, **overrides):
    """One screw head of class `label` (0 innensechskant, 1 philips, 2 pozidriv,
    3 sechskant, 4 torx), centred in a size x size BGR uint8 image.

    Returns (image, box, info): box = (x, y, w, h) of the whole head in image pixels;
    info names the families: generator, label, style, finish, light, view (tilt in
    degrees), view_family, background, recess, silhouette, effects.

    Overrides (each optional; unknown names raise): style, finish, light, background
    (from STYLES / FINISHES / LIGHTS / BACKGROUNDS), tilt (degrees, 0-45), fill (head
    diameter / image side, default 0.4-0.85), angle (in-plane rotation, radians),
    silhouette (bool) with polarity ('dark_on_light' | 'light_on_dark'), lowres (render
    at this many pixels and upscale, e.g. 16 for tiny heads), effects (False: no
    blur/noise/JPEG), defocus, motion_blur, noise, jpeg (bool each), supersample
    (render at this many times the output size; default 1.5 up to 160 px, else 1),
    mask (True: info['mask'] = the head's uint8 mask, 255 = head, same size as image).
    """
    known = {
        "style",
        "finish",
        "light",
        "background",
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
    }
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"render_head got unknown overrides: {', '.join(sorted(unknown))}")
    if label not in LABEL_STYLES:
        raise ValueError(f"label must be 0-4 ({', '.join(CLASS_NAMES)}), got {label!r}")
    size = int(size)
    style = _pick(rng, LABEL_STYLES[label], overrides.get("style"), f"style for label {label}")
    finish = _pick(rng, FINISHES, overrides.get("finish"), "finish")
    light = _pick(rng, LIGHTS, overrides.get("light"), "light")
    bg = _pick(rng, BACKGROUNDS, overrides.get("background"), "background")
    tilt = _tilt(rng, overrides.get("tilt"))
    fill = float(overrides.get("fill") or rng.uniform(0.4, 0.85))
    angle = (
        float(overrides["angle"])
        if overrides.get("angle") is not None
        else float(rng.uniform(0, 2 * np.pi))
    )
    silhouette = bool(overrides.get("silhouette", False))
    polarity = _pick(rng, ("dark_on_light", "light_on_dark"), overrides.get("polarity"), "polarity")
    lowres = overrides.get("lowres")
    work = int(lowres) if lowres else size
    ss = float(overrides.get("supersample") or (1.5 if work <= 160 else 1.0))
    n = int(round(work * ss))
    radius = fill * n / 2.0
    cos_t = np.cos(np.radians(tilt))
    hs = int(np.ceil(n / cos_t * 1.06)) if tilt > 0.5 else n
    ws = int(np.ceil(n * 1.06)) if tilt > 0.5 else n
    stage = _Stage(rng, (hs, ws), bg)
    cx, cy = ws / 2.0, hs / 2.0
    oid = stage.add(rng, cx, cy, radius, angle, label=label, style=style, finish=finish)
    view = np.array([0.0, -np.sin(np.radians(tilt)), np.cos(np.radians(tilt))], np.float32)
    z = stage.z
    zmax = float(z[stage.obj == oid].max()) if (stage.obj == oid).any() else 0.0
    if silhouette:
        color = _silhouette(stage.part, stage.obj, [oid], polarity)[..., None].repeat(3, axis=2)
        rig = {"name": "silhouette"}
    else:
        rig = shading.light_rig(rng, light, view, scale_px=radius)
        env = shading.environment(rng)
        color = shading.shade(
            z,
            stage.base,
            stage.metal,
            stage.rough,
            rig,
            env,
            view,
            ao_scales=(max(1.0, radius * 0.05), max(2.0, radius * 0.2)),
            shadow_len=max(4.0, zmax * 4.0),
        )
    if tilt > 0.5:
        focal = float(rng.uniform(6.0, 20.0)) * radius
        (color, obj, part), covered = camera.project(
            [color, stage.obj, stage.part],
            z,
            tilt,
            (cx, cy),
            (n, n),
            (n / 2.0, n / 2.0),
            focal,
            z0=zmax / 2,
        )
        color = camera.fill_holes(color, covered)
        obj = camera.fill_holes(obj, covered, nearest=True)
    else:
        obj = stage.obj
    head = (obj == oid).astype(np.float32)
    if n != work:
        color = cv2.resize(color, (work, work), interpolation=cv2.INTER_AREA)
        head = cv2.resize(head, (work, work), interpolation=cv2.INTER_AREA)
    if lowres:
        interp = cv2.INTER_LINEAR if silhouette else cv2.INTER_CUBIC
        color = cv2.resize(color, (size, size), interpolation=interp)
        head = cv2.resize(head, (size, size), interpolation=cv2.INTER_LINEAR)
    head_mask = head > 0.3
    box = _bbox(head_mask)
    applied: dict = {}
    if silhouette:
        image = np.where(color > 0.5, 255, 0).astype(np.uint8)
    elif overrides.get("effects", True):
        image, applied = camera.effects(rng, color, rig, size / 96.0, overrides)
    else:
        image = (np.clip(color * rig["exposure"], 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)
    info = {
        "generator": GENERATOR,
        "label": int(label),
        "class_name": CLASS_NAMES[label],
        "style": style,
        "finish": "silhouette" if silhouette else finish,
        "light": "silhouette" if silhouette else light,
        "view": round(tilt, 2),
        "view_family": view_family(tilt),
        "background": "silhouette" if silhouette else bg,
        "recess": RECESS_OF_LABEL[label],
        "silhouette": polarity if silhouette else None,
        "fill": round(fill, 3),
        "lowres": int(lowres) if lowres else None,
        "effects": applied,
    }
    if overrides.get("mask"):
        info["mask"] = head_mask.astype(np.uint8) * 255
    return image, box, info


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
    distractors (washers, nuts, coins, holes, rivets, blank discs, real coin photos)
    that are NOT heads. Returns (image, heads) with heads = [(box, label, info)], box =
    (x, y, w, h) in image pixels, info as in render_head (light, view, background are
    the scene's; style/finish/label the head's).

    Heads are non-overlapping (they may touch) and from ~16 px across up to filling
    the frame (one big head in ~15 % of scenes). Overrides: labels (list of label ids,
    one per head), light, background, tilt, styles/finishes (pools to draw from),
    min_size / max_size (head diameter in pixels), effects (bool), jpeg, noise, ...,
    return_distractors (also return [(box, kind)] of the distractors)."""
    known = {
        "labels",
        "light",
        "background",
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
    light = _pick(rng, LIGHTS, overrides.get("light"), "light")
    bg = _pick(rng, BACKGROUNDS, overrides.get("background"), "background")
    tilt = _tilt(rng, overrides.get("tilt"))
    labels = overrides.get("labels")
    if labels is not None:
        n_heads = len(labels)
    big = n_heads is None and labels is None and rng.random() < 0.15
    if n_heads is None:
        n_heads = 1 if big else int(rng.integers(1, 9))
    if labels is None:
        labels = [int(rng.integers(5)) for _ in range(n_heads)]
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
    stage = _Stage(rng, (hs, ws), bg)
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
    finishes_pool = overrides.get("finishes") or FINISHES
    diams = sorted(
        (
            float(np.exp(rng.uniform(np.log(min_size), np.log(max(min_size, max_size)))))
            for _ in labels
        ),
        reverse=True,
    )
    order = list(range(len(labels)))
    heads = []
    for k, diam in zip(order, diams, strict=True):
        label = int(labels[k])
        pool = LABEL_STYLES[label]
        if styles_pool:
            pool = tuple(s for s in pool if s in styles_pool) or pool
        style = _pick(rng, pool, None, "style")
        finish = _pick(rng, tuple(finishes_pool), None, "finish")
        spot = place(diam)
        if spot is None:
            continue
        sx, sy, rad = spot
        oid = stage.add(
            rng,
            sx,
            sy,
            rad,
            float(rng.uniform(0, 2 * np.pi)),
            label=label,
            style=style,
            finish=finish,
        )
        heads.append((oid, label, style, finish))
    coins = None
    distractors = []
    for _ in range(n_distractors):
        kind = _pick(rng, _SCENE_DISTRACTORS, None, "distractor")
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
        fin = _pick(rng, FINISHES, None, "finish")
        oid = stage.add(
            rng, sx, sy, rad, float(rng.uniform(0, 2 * np.pi)), kind=kind, finish=fin, coin=coin
        )
        distractors.append((oid, kind))
    view = np.array([0.0, -np.sin(np.radians(tilt)), np.cos(np.radians(tilt))], np.float32)
    typical = float(np.median([p[2] for p in placed])) if placed else short / 10
    rig = shading.light_rig(rng, light, view, scale_px=max(typical, short / 8))
    env = shading.environment(rng)
    zmax = float(stage.z.max())
    color = shading.shade(
        stage.z,
        stage.base,
        stage.metal,
        stage.rough,
        rig,
        env,
        view,
        ao_scales=(1.5, 5.0),
        shadow_len=max(4.0, zmax * 4.0),
    )
    (color, obj), covered = camera.project(
        [color, stage.obj], stage.z, tilt, st_c, (ho, wo), out_c, focal
    )
    color = camera.fill_holes(color, covered)
    obj = camera.fill_holes(obj, covered, nearest=True)
    image, applied = (
        camera.effects(rng, color, rig, 1.0, overrides)
        if overrides.get("effects", True)
        else (
            (np.clip(color * rig["exposure"], 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8),
            {},
        )
    )
    out = []
    for oid, label, style, finish in heads:
        box = _bbox(obj == oid)
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
        }
        out.append((box, label, info))
    if overrides.get("return_distractors"):
        dboxes = [(b, kind) for oid, kind in distractors if (b := _bbox(obj == oid)) is not None]
        return image, out, dboxes
    return image, out
