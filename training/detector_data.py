"""Training scenes for the head detector: many heads at many scales on many surfaces.

`compose_scene(rng, family)` draws one gray scene at the detector's working size with the
box of every head in it. A scene is a surface (our renderer's five kinds, or a crop of a
real photograph shipped in scikit-image: brick, gravel, grass, text, coffee, coins, ...),
clutter that is NOT a head (holes, washers, nuts without a drive, rings, bars, real
coins from the photo), 0-7 heads of any drive type from ~7 px across (a 14 px head in a
640x480 frame) up to one filling the frame, and a lighting condition (even, a cast
shadow, dim, overexposed, side light, or a silhouette like the thesis's images); then
blur, sensor noise and JPEG.

Families (for leave-one-family-out evaluation, see docs/notes/detector.md):
- "render": heads from `screwcam.render` (renderer A) on synthetic surfaces
- "photo":  heads from `screwcam.render` on real-photo surfaces with photo clutter
- "gen2":   scenes of the independent generator `screwcam.render3d` (true 3-D height
            fields, physically based shading, its own distractors); ~0.5 s a scene, so
            mostly a held-out test family
- "sdf":    heads of the third independent generator `screwcam.render_sdf` (ray-marched
            signed distance fields: every head style and finish, top or oblique views), each
            traced at its own size and laid onto a synthetic or real-photo surface with the
            shadow it casts; the scene's lighting, blur, noise and JPEG as in "render"
            (tried in the detector recipe, not shipped: docs/notes/detector.md, session 8)
- "pbr":    the same composition with heads of the fourth independent generator
            `screwcam.render_pbr` (Mitsuba 3's path tracer: measured metal spectra,
            environment maps, area lights); a TEST family only, in no training recipe, so
            its numbers say how a detector does on a look made by code it never saw
            (~1 s a scene; needs Mitsuba, in the [train] extra)
- "demo":   frames of `screwcam.render.DemoSource` (test only: its ground truth)

Training-time only (imports scikit-image's data folder); the device never needs it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from screwcam import photos
from screwcam.classes import NUM_CLASSES
from screwcam.errors import DatasetError
from screwcam.frames import Box
from screwcam.render.drawing import TAU, random_spec
from screwcam.render.scene import (
    BACKGROUNDS,
    Light,
    composite,
    light_field,
    lighting,
    make_background,
    make_placed,
    smooth_noise,
    to_u8,
    warp_matrix,
)

#: the scene canvas (width, height): a 640x480 frame at half size
SCENE_SIZE = (320, 240)
FAMILIES = ("render", "photo", "gen2", "varied", "sdf", "pbr")
SCENE_CONDITIONS = ("even", "shadow", "dim", "overexposed", "side", "silhouette")
# real photographs inside scikit-image's wheel (via screwcam.photos, never downloaded)
_PHOTOS = (
    "brick.png",
    "grass.png",
    "gravel.png",
    "page.png",
    "text.png",
    "coffee.png",
    "coins.png",
    "camera.png",
    "astronaut.png",
    "chelsea.png",
    "rocket.jpg",
    "moon.png",
    "motorcycle_left.png",
    "clock_motion.png",
)


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    """The photos of _PHOTOS that scikit-image has, gray as the decoder makes it."""
    images = tuple(
        photos.decode_photo(name, cv2.IMREAD_GRAYSCALE)
        for name in _PHOTOS
        if name in photos.available()
    )
    if not images:
        raise DatasetError(
            f"no sample photographs found in {photos.data_dir()}; reinstall scikit-image"
        )
    return images


def photo_surface(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random crop of a real photograph, gray float32 0..1, size=(width, height)."""
    width, height = size
    image = _photos()[int(rng.integers(len(_photos())))]
    ih, iw = image.shape
    factor = math.exp(rng.uniform(math.log(0.4), math.log(2.0)))
    cw = int(np.clip(width * factor, 8, iw))
    ch = int(np.clip(cw * height / width, 8, ih))
    cw = int(ch * width / height)
    x, y = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
    crop = image[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1]
    crop = cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_AREA)
    out = crop.astype(np.float32) / 255.0
    if rng.random() < 0.5:  # tone it down or up: surfaces of any brightness
        out = out * rng.uniform(0.5, 1.1) + rng.uniform(-0.1, 0.3)
    return np.clip(out, 0.0, 1.0)


def _clutter(rng: np.random.Generator, canvas: np.ndarray, n: int) -> None:
    """Things that are NOT screw heads, drawn into a gray float canvas in place: holes,
    washers (rings), plain discs (rivets, buttons), nuts seen from above (a hexagon with
    a round hole), bars and lines, blobs."""
    h, w = canvas.shape
    for _ in range(n):
        kind = rng.choice(["hole", "ring", "disc", "nut", "bar", "line", "blob"])
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = math.exp(rng.uniform(math.log(4), math.log(min(h, w) * 0.3)))
        value = rng.uniform(0.0, 1.0)
        layer = np.zeros_like(canvas)
        c = (int(cx * 4), int(cy * 4))
        if kind == "hole":
            cv2.circle(layer, c, int(r * 4), 1.0, -1, cv2.LINE_AA, 2)
            value = rng.uniform(0.0, 0.15)
        elif kind == "ring":
            cv2.circle(layer, c, int(r * 4), 1.0, -1, cv2.LINE_AA, 2)
            cv2.circle(layer, c, int(r * 4 * rng.uniform(0.35, 0.6)), 0.0, -1, cv2.LINE_AA, 2)
        elif kind == "disc":
            cv2.circle(layer, c, int(r * 4), 1.0, -1, cv2.LINE_AA, 2)
        elif kind == "nut":
            a0 = rng.uniform(0, TAU)
            pts = np.array(
                [
                    [cx + r * math.cos(a0 + k * TAU / 6), cy + r * math.sin(a0 + k * TAU / 6)]
                    for k in range(6)
                ]
            )
            cv2.fillPoly(layer, [(pts * 4).astype(np.int32)], 1.0, cv2.LINE_AA, 2)
            cv2.circle(layer, c, int(r * 4 * rng.uniform(0.45, 0.6)), 0.0, -1, cv2.LINE_AA, 2)
        elif kind in ("bar", "line"):
            ang = rng.uniform(0, math.pi)
            length = r * rng.uniform(2, 6)
            dx, dy = math.cos(ang) * length, math.sin(ang) * length
            thick = max(1, int(r * (0.6 if kind == "bar" else 0.1)))
            p0 = (int((cx - dx) * 4), int((cy - dy) * 4))
            p1 = (int((cx + dx) * 4), int((cy + dy) * 4))
            cv2.line(layer, p0, p1, 1.0, thick * 4, cv2.LINE_AA, 2)
        else:
            blob = smooth_noise(rng, h, w, int(rng.integers(3, 8)))
            layer = (blob > rng.uniform(0.8, 1.5)).astype(np.float32)
        layer = cv2.GaussianBlur(layer, (0, 0), rng.uniform(0.4, 1.5))
        canvas *= 1.0 - layer
        canvas += layer * value


@dataclass(frozen=True, slots=True)
class Scene:
    image: np.ndarray  # gray uint8 (H, W)
    boxes: list[Box]
    labels: list[int]


def _diameters(rng: np.random.Generator, height: int) -> list[float]:
    """Head diameters (px) of one scene: mostly several small-to-medium heads, sometimes
    one big head (up to the whole frame), sometimes none."""
    u = rng.random()
    if u < 0.08:
        return []
    if u < 0.28:  # one big head: 35-100 % of the frame's height
        return [height * rng.uniform(0.35, 1.0)]
    n = int(rng.integers(1, 8))
    lo, hi = math.log(7.0), math.log(height * 0.4)
    return [math.exp(rng.uniform(lo, hi)) for _ in range(n)]


def _thesis_diameters(rng: np.random.Generator, height: int) -> list[float]:
    """Head diameters of a silhouette scene: half of them one head zoomed until it fills
    the frame, as in the thesis's videos (60-130 % of the frame's height, so often cut
    by its edges), the rest as in `_diameters`."""
    if rng.random() < 0.5:
        return [height * rng.uniform(0.6, 1.3)]
    return _diameters(rng, height)


def _place(rng, diameters, w, h) -> list[tuple[float, float, float]]:
    """(cx, cy, diameter) of heads that do not overlap much (big heads first)."""
    placed: list[tuple[float, float, float]] = []
    for d in sorted(diameters, reverse=True):
        r = d / 2.0
        for _ in range(20):
            # big heads may be cut by the frame edge a little; small ones stay inside
            m = r * (0.75 if d > 0.5 * h else 1.0)
            cx = rng.uniform(m, max(m + 1, w - m))
            cy = rng.uniform(m, max(m + 1, h - m))
            if all(math.hypot(cx - x, cy - y) > 0.9 * (r + q / 2.0) for x, y, q in placed):
                placed.append((cx, cy, d))
                break
    return placed


def compose_scene(
    rng: np.random.Generator,
    family: str = "render",
    condition: str | None = None,
    size: tuple[int, int] = SCENE_SIZE,
    camouflage: float = 0.0,
) -> Scene:
    """One gray scene (uint8, size=(width, height)) with the box and label of every head.
    `camouflage`: the share of the render and photo families' heads painted in the
    surface's own tone (`_camouflage`); 0 draws no extra random numbers, so the scenes
    of a seed stay the ones they were."""
    width, height = size
    if family == "gen2":
        from screwcam.render3d import render_scene

        image, heads3d = render_scene(rng, size=size)
        boxes3d = [Box(*(int(v) for v in box)) for box, _, _ in heads3d]
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return Scene(gray, boxes3d, [int(label) for _, label, _ in heads3d])
    if family in ("sdf", "pbr"):
        return _layered_scene(rng, family, condition, size)
    condition = condition or SCENE_CONDITIONS[int(rng.integers(len(SCENE_CONDITIONS)))]
    varied = family == "varied"  # render2d's heads, on either kind of surface
    if family == "photo" or (varied and rng.random() < 0.5):
        surface = photo_surface(rng, size)
    elif family in ("render", "varied"):
        kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        surface = cv2.cvtColor(make_background(rng, height, width, kind), cv2.COLOR_BGR2GRAY)
    else:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    n_clutter = int(rng.integers(0, 6 if family == "photo" else 4))
    _clutter(rng, surface, n_clutter)
    silhouette = condition == "silhouette"
    diameters = _thesis_diameters(rng, height) if silhouette else _diameters(rng, height)
    heads = _place(rng, diameters, width, height)
    labels = [int(rng.integers(NUM_CLASSES)) for _ in heads]
    if silhouette:
        return _silhouette_scene(rng, heads, labels, size)
    look = lighting(rng, condition)
    canvas = cv2.cvtColor(to_u8(surface), cv2.COLOR_GRAY2BGR)
    boxes, kept = [], []
    for (cx, cy, d), label in zip(heads, labels, strict=True):
        # (the draws of the other families stay in their original order: same seed, same
        # scenes as before this family existed)
        squash = shadow = None
        if varied:
            spec, squash, shadow = _varied_head(rng, label)
        else:
            spec = random_spec(rng, label)
        head = make_placed(spec, d / 2.0, rng)
        light = Light(
            look.light.azimuth + rng.normal(0, 0.2), look.light.elevation, look.light.ambient
        )
        camo = camouflage > 0 and not varied and rng.random() < camouflage
        before = canvas.copy() if camo else None
        box = composite(
            canvas,
            head,
            cx,
            cy,
            rng.uniform(0, TAU),
            light,
            squash=rng.uniform(0.85, 1.0) if squash is None else squash,
            tilt=rng.uniform(0, math.pi),
            shadow_strength=rng.uniform(0.2, 0.6) if shadow is None else shadow,
        )
        if box is not None and before is not None:
            _camouflage(rng, canvas, before, box)
        if box is not None and min(box.w, box.h) >= 4:
            boxes.append(box)
            kept.append(label)
    gray = cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY).astype(np.float32)
    field = light_field(rng, height, width, condition, look)
    return Scene(_finish(rng, gray * field, look.noise), boxes, kept)


def _camouflage(rng: np.random.Generator, canvas: np.ndarray, before: np.ndarray, box: Box) -> None:
    """The head just painted into `box` made the surface's own gray, in place: its face's
    median shifted to the surface's mean under it and its contrast cut to 25-60 %, so
    that mostly the recess and a faint rim show (a zinc head on a light ground, a black
    one on a dark ground: the heads the detector boxed on their recess alone,
    docs/notes/detector.md, session 13); around it the surface as it was, no shadow.
    The box stays the whole head's."""
    h, w = canvas.shape[:2]
    pad = max(2, box.w // 3)
    x0, y0 = max(0, box.x - pad), max(0, box.y - pad)
    x1, y1 = min(w, box.x + box.w + pad), min(h, box.y + box.h + pad)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    centre = (box.x + box.w // 2 - x0, box.y + box.h // 2 - y0)
    cv2.ellipse(mask, (centre, (box.w, box.h), 0), 255, -1)
    inside = mask > 0
    now = canvas[y0:y1, x0:x1].astype(np.float32)
    bg = before[y0:y1, x0:x1].astype(np.float32)
    if not inside.any():
        return
    g_now, g_bg = now.mean(axis=2), bg.mean(axis=2)
    face, level = float(np.median(g_now[inside])), float(g_bg[inside].mean())
    k = rng.uniform(0.25, 0.6)
    out = bg.copy()  # outside the head: the surface as it was (no shadow)
    delta = (level - face) + (g_now - face) * (k - 1.0)
    out[inside] = now[inside] + delta[inside][:, None]
    canvas[y0:y1, x0:x1] = np.clip(out, 0, 255).astype(np.uint8)


def _layer_renderer(family: str):
    """(render_layer(rng, label, diameter, side_light) -> HeadLayer) of a family whose
    heads are traced one at a time and laid onto our surfaces."""
    if family == "pbr":
        from screwcam import render_pbr

        render_pbr.mitsuba()  # DatasetError naming the [train] extra if it is missing
        module = render_pbr
    elif family == "sdf":
        from screwcam import render_sdf

        module = render_sdf
    else:
        raise ValueError(f"family {family!r} does not lay traced heads onto surfaces")

    def layer(rng, label, diameter, side_light):
        light = "grazing" if side_light else None
        return module.render_layer(rng, label, diameter, light=light)

    return layer


def _layered_scene(
    rng: np.random.Generator, family: str, condition: str | None, size: tuple[int, int]
) -> Scene:
    """A scene of heads another generator traces one at a time (family "sdf": render_sdf's
    heads, "pbr": render_pbr's): on a synthetic or real-photo surface with clutter, each
    head traced at its size, its radiance laid over the surface and its shadow multiplied
    into it (in linear light), then the scene's lighting."""
    render_layer = _layer_renderer(family)
    width, height = size
    lit = SCENE_CONDITIONS[:-1]  # no silhouettes: those are drawn by the other families
    condition = condition or lit[int(rng.integers(len(lit)))]
    if condition == "silhouette":
        raise ValueError(f"the {family} family draws lit heads, not silhouettes")
    if rng.random() < 0.5:
        surface = photo_surface(rng, size)
    else:
        kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        surface = cv2.cvtColor(make_background(rng, height, width, kind), cv2.COLOR_BGR2GRAY)
    _clutter(rng, surface, int(rng.integers(0, 5)))
    canvas = np.clip(surface, 0.0, 1.0) ** 2.2  # linear light
    heads = _place(rng, _diameters(rng, height), width, height)
    boxes, kept = [], []
    for cx, cy, d in heads:
        label = int(rng.integers(NUM_CLASSES))
        layer = render_layer(rng, label, max(d, 4.0), condition == "side")
        b = layer.box  # centred on the drawn head centre
        x0 = int(round(cx - (b.x + b.w / 2.0)))
        y0 = int(round(cy - (b.y + b.h / 2.0)))
        side = layer.alpha.shape[0]
        # the part of the layer inside the frame
        lx0, ly0 = max(0, -x0), max(0, -y0)
        lx1, ly1 = min(side, width - x0), min(side, height - y0)
        if lx1 <= lx0 or ly1 <= ly0:
            continue
        a = layer.alpha[ly0:ly1, lx0:lx1]
        rad = layer.radiance[ly0:ly1, lx0:lx1]
        region = canvas[y0 + ly0 : y0 + ly1, x0 + lx0 : x0 + lx1]
        ground = region[a < 0.05]
        around = float(ground.mean()) if ground.size else float(region.mean())
        head = float(rad.sum() / max(a.sum(), 1e-6))
        # as render_sdf does for its own ground: a head the brightness of its surface is
        # rare in real pictures (photographers light what they show); most of the time
        # push it 0.15-0.4 away from the surface in display brightness (gamma 2.2)
        g_head, g_around = head ** (1 / 2.2), around ** (1 / 2.2)
        if rng.random() < 0.8 and abs(g_head - g_around) < 0.15:
            up = g_around < 0.35 or (g_around < 0.65 and rng.random() < 0.5)
            target = g_around + (1 if up else -1) * rng.uniform(0.15, 0.4)
            rad = rad * (float(np.clip(target, 0.02, 1.0)) ** 2.2 / max(head, 1e-4))
        region[:] = region * layer.shadow[ly0:ly1, lx0:lx1] * (1.0 - a) + rad
        # the box of what is in the frame of the head (as the other families box theirs)
        bx, by, bw, bh = cv2.boundingRect((a > 0.5).astype(np.uint8))
        if min(bw, bh) >= 4:
            boxes.append(Box(x0 + lx0 + bx, y0 + ly0 + by, bw, bh))
            kept.append(label)
    look = lighting(rng, condition)
    if rng.random() < 0.5:  # a film-like shoulder on the highlights, as render_sdf does
        canvas = 1.0 - np.exp(-canvas * rng.uniform(1.0, 1.8))
    gray = np.clip(canvas, 0.0, 1.0) ** (1 / 2.2) * 255.0
    field = light_field(rng, height, width, condition, look)
    return Scene(_finish(rng, gray.astype(np.float32) * field, look.noise), boxes, kept)


def _varied_head(rng: np.random.Generator, label: int):
    """(spec, squash, shadow strength or None) of a head as the 2-D variety renderer
    (`screwcam.render.variety`, "render2d") draws them: any head style (countersunk flush
    in the surface, cheese, button, flange, washer-faced hex...), finish (black oxide,
    brass, painted, rusty, dirty, worn), a dark or bright recess, seen up to 30 degrees
    off axis."""
    from screwcam.render import variety

    styles = variety.HEX_STYLES if label == variety.SECHSKANT else variety.RECESS_STYLES
    style = styles[int(rng.integers(len(styles)))]
    finish = variety.FINISHES[int(rng.integers(len(variety.FINISHES)))]
    spec = variety.make_spec(rng, label, style, finish)
    squash = math.cos(math.radians(rng.uniform(0.0, 30.0)))
    return spec, squash, (0.05 if style == "countersunk" else None)


def _silhouette_scene(rng, heads, labels, size) -> Scene:
    """Heads as flat pictures, like the thesis's icon videos and solid black hex heads:
    half of the scenes silhouettes (a dark head with its recess cut out on a light
    ground, or inverted), half drawn icons (a flat gray head with a dark outline and a
    dark recess, on a light or dark ground); gray levels vary from scene to scene."""
    width, height = size
    icon = rng.random() < 0.5
    if icon:
        ground = rng.uniform(0.75, 1.0) if rng.random() < 0.7 else rng.uniform(0.0, 0.35)
        face, line = rng.uniform(0.45, 0.85), rng.uniform(0.0, 0.2)
    else:
        ground, face = rng.uniform(0.75, 1.0), rng.uniform(0.0, 0.25)
        if rng.random() < 0.3:
            ground, face = face, ground
        line = ground
    img = np.full((height, width), ground, np.float32)
    boxes, kept = [], []
    for (cx, cy, d), label in zip(heads, labels, strict=True):
        spec = random_spec(rng, label)
        head = make_placed(spec, d / 2.0, rng)
        side = head.sprite.shape[0]
        m = warp_matrix(
            rng.uniform(0, TAU),
            1.0,
            rng.uniform(0.88, 1.0),
            rng.uniform(0, 3),
            (side - 1) / 2.0,
            (cx, cy),
        )
        ch = cv2.warpAffine(head.sprite, m, (width, height), flags=cv2.INTER_LINEAR)
        alpha, recess = ch[:, :, 2], ch[:, :, 3]
        value = face * (1.0 - recess) + line * recess
        if icon:  # the outline: the head's rim, 1.5-3 % of its diameter wide
            k = max(1, int(round(d * rng.uniform(0.015, 0.03))))
            disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
            rim = np.clip(alpha - cv2.erode(alpha, disk), 0.0, 1.0)
            value = value * (1.0 - rim) + line * rim
        img = img * (1.0 - alpha) + value * alpha
        x, y, w, h = cv2.boundingRect((alpha > 0.5).astype(np.uint8))
        if min(w, h) >= 4:
            boxes.append(Box(x, y, w, h))
            kept.append(label)
    return Scene(_finish(rng, img * 255.0, 2.0), boxes, kept)


def _finish(rng: np.random.Generator, img: np.ndarray, noise: float) -> np.ndarray:
    sigma = rng.uniform(0.0, 1.2)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])
        if ok:
            out = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    return out
