"""The demo camera: screw heads drifting and turning on a surface under a cycling
light, with the ground truth of every head in each frame."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..classes import NUM_CLASSES
from ..errors import CameraError
from ..frames import Box, Frame, Source, Truth
from .drawing import TAU, random_spec
from .scene import (
    DEMO_CONDITIONS,
    Light,
    Placed,
    composite,
    make_background,
    make_placed,
    shadow_field,
    side_field,
    to_u8,
)

# ---------------------------------------------------------------------------------------------
# The demo camera
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class MovingHead:
    """A head a fake camera shows: its drive type, sprite, and how it turns and sits."""

    label: int
    placed: Placed | None  # lit-ready maps; None while out of view (the conveyor's)
    spin: float  # radians per second
    angle0: float
    squash: float
    tilt: float

    def paint(
        self,
        canvas: np.ndarray,
        cx: float,
        cy: float,
        t: float,
        light: Light,
        track: int,
        truth: list[Truth],
    ) -> None:
        """Composite the head, centred at (cx, cy) at time `t`, into `canvas`; if any of
        it shows, its ground truth (with `track`) is added to `truth`."""
        if self.placed is None:
            return
        box = composite(
            canvas,
            self.placed,
            cx,
            cy,
            self.angle0 + self.spin * t,
            light,
            squash=self.squash,
            tilt=self.tilt,
        )
        if box is not None:
            truth.append(Truth(self.label, box, track=track))


@dataclass(slots=True)
class _DemoHead(MovingHead):
    home: tuple[float, float]
    amp: tuple[float, float]
    freq: tuple[float, float]
    phase: tuple[float, float]


def _percentile_u8(gray: np.ndarray, q: float) -> float:
    """np.percentile(gray, q) of a uint8 image, to the last bit, from its histogram:
    np.percentile imports numpy.ma (0.5 MB and 10 ms) for a check it makes."""
    n = gray.size
    virtual = (n - 1) * (q / 100)
    k = math.floor(virtual)
    t = virtual - k
    cum = np.cumsum(np.bincount(gray.ravel(), minlength=256))
    a = int(np.searchsorted(cum, k, side="right"))  # the k-th smallest value
    b = int(np.searchsorted(cum, min(k + 1, n - 1), side="right"))
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)  # numpy's own lerp


def _sensor_noise(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian noise (sigma 2.5) as its positive and negative parts, (h, w, 3) uint8
    each. Drawn in bands of rows: the same numbers as one (h, w, 3) draw, without
    its 8 bytes per value (a 640x480 frame's would be 7.8 MB, three times over)."""
    pos = np.empty((h, w, 3), np.uint8)
    neg = np.empty((h, w, 3), np.uint8)
    for y in range(0, h, 32):
        band = rng.normal(0.0, 2.5, (min(32, h - y), w, 3))
        pos[y : y + len(band)] = np.clip(band, 0, 255).astype(np.uint8)
        neg[y : y + len(band)] = np.clip(-band, 0, 255).astype(np.uint8)
    return pos, neg


class DemoSource(Source):
    """A fake camera: `heads` screw heads (all five drive types when heads >= 5)
    drifting and turning on a surface under changing light; frames carry the
    ground truth. Deterministic for a seed. realtime=True paces read() at fps."""

    name = "demo"
    #: seconds each lighting condition lasts
    SEGMENT_SECONDS = 3.0

    def __init__(
        self,
        size: tuple[int, int] = (640, 480),
        fps: float = 30.0,
        heads: int = 5,
        seed: int = 0,
        realtime: bool = True,
        labels: Sequence[int] | None = None,
    ) -> None:
        """`labels`: the drive types to show, repeated over the heads (default: all
        five). `heads=1, labels=[4]` is a training video of one Torx screw."""
        width, height = int(size[0]), int(size[1])
        if width < 160 or height < 120:
            raise CameraError(f"demo size {width}x{height} is too small; use at least 160x120")
        if not 0 < fps <= 1000:
            raise CameraError(f"demo fps must be in (0, 1000], got {fps}")
        if not 1 <= heads <= 12:
            raise CameraError(f"demo heads must be 1..12, got {heads}")
        self._labels = tuple(int(v) for v in (labels or range(NUM_CLASSES)))
        if not self._labels or any(not 0 <= v < NUM_CLASSES for v in self._labels):
            raise CameraError(f"demo labels must be class ids 0..{NUM_CLASSES - 1}, got {labels}")
        super().__init__(fps, (width, height))
        self._n = int(heads)
        self._seed = int(seed)
        self._realtime = bool(realtime)
        self._opened = False
        self._index = 0
        self._t0 = 0.0
        self._heads: list[_DemoHead] = []
        self._background: np.ndarray | None = None
        self._noise: tuple[np.ndarray, np.ndarray] | None = None
        self._over_gain = 1.7

    def condition_at(self, index: int) -> str:
        """The lighting condition of frame `index`."""
        seg = max(1, int(round(self.SEGMENT_SECONDS * self._fps)))
        return DEMO_CONDITIONS[(index // seg) % len(DEMO_CONDITIONS)]

    # -- set-up ------------------------------------------------------------------------------

    def open(self) -> None:
        if self._opened:
            return
        rng = np.random.default_rng(self._seed)
        width, height = self._size
        kind = ("wood", "light", "noise", "metal", "dark")[self._seed % 5]
        bg = make_background(rng, height, width, kind)
        self._background = to_u8(bg)
        # overexposed: +0.75 EV, but a light surface is pushed only to its clipping point
        bright = _percentile_u8(cv2.cvtColor(self._background, cv2.COLOR_BGR2GRAY), 90)
        self._over_gain = float(np.clip(250.0 / max(bright, 1.0), 1.2, 1.7))
        self._noise = _sensor_noise(rng, height + 16, width + 16)
        self._heads = self._layout(rng, kind)
        self._index = 0
        self._t0 = time.monotonic()
        self._opened = True

    def _layout(self, rng: np.random.Generator, kind: str) -> list[_DemoHead]:
        width, height = self._size
        cols = max(1, math.ceil(math.sqrt(self._n * width / height)))
        rows = math.ceil(self._n / cols)
        cw, ch = width / cols, height / rows
        cells = [(c, r) for r in range(rows) for c in range(cols)]
        order = rng.permutation(len(cells))[: self._n]
        labels = [self._labels[i % len(self._labels)] for i in range(self._n)]
        labels = [labels[i] for i in rng.permutation(self._n)]
        # a showcase: finishes that stand out from this surface (datasets mix all)
        finishes = (
            ("dull", "worn", "black") if kind in ("light", "metal") else ("zinc", "dull", "worn")
        )
        heads = []
        cell_min = min(cw, ch)
        for label, cell in zip(labels, order, strict=True):
            c, r = cells[cell]
            finish = finishes[int(rng.integers(len(finishes)))]
            spec = random_spec(rng, label, finish)
            radius = cell_min * rng.uniform(0.2, 0.27)
            placed = make_placed(spec, radius, rng, keep_sprite=False)
            room_x = max(0.0, cw / 2 - radius * 1.15 - 6)
            room_y = max(0.0, ch / 2 - radius * 1.15 - 6)
            heads.append(
                _DemoHead(
                    label=label,
                    placed=placed,
                    home=((c + 0.5) * cw, (r + 0.5) * ch),
                    amp=(room_x * rng.uniform(0.5, 0.9), room_y * rng.uniform(0.5, 0.9)),
                    freq=(rng.uniform(0.03, 0.09), rng.uniform(0.03, 0.09)),
                    phase=(rng.uniform(0, TAU), rng.uniform(0, TAU)),
                    spin=rng.uniform(-0.35, 0.35),
                    angle0=rng.uniform(0, TAU),
                    squash=rng.uniform(0.9, 1.0),
                    tilt=rng.uniform(0, math.pi),
                )
            )
        return heads

    def close(self) -> None:
        self._opened = False

    # -- frames ------------------------------------------------------------------------------

    def _look(self, index: int) -> tuple[str, Light, float | np.ndarray]:
        """Condition, head light, and the light field of a frame: one gain, or a
        (H, W, 3) uint8 field where 100 means 1.0."""
        width, height = self._size
        t = index / self._fps
        seg = max(1, int(round(self.SEGMENT_SECONDS * self._fps)))
        phase = (index % seg) / seg  # 0..1 within the current condition
        cycle = index // (seg * len(DEMO_CONDITIONS))
        condition = self.condition_at(index)
        az = 0.7 + 0.25 * math.sin(0.2 * t)
        lh, lw = max(6, height // 8), max(8, width // 8)
        if condition == "side":
            az = (cycle * 2.1 + 0.5 * phase) % TAU + math.pi
            light = Light(az, 0.6, 0.25)
            field = side_field(lh, lw, az, 0.4, 1.3)
        else:
            light = Light(az, 1.05, 0.38)
            gain = {"even": 1.0, "shadow": 1.05, "dim": 0.22}.get(condition, self._over_gain)
            if condition != "shadow":
                return condition, light, gain
            ang = 0.6 + cycle * 1.9
            sweep = np.random.default_rng([self._seed, cycle])
            field = gain * (1.0 - 0.6 * shadow_field(sweep, lh, lw, 0.05 + 0.9 * phase, ang))
        small = np.clip(field * 100.0, 0, 255).astype(np.uint8)
        small = cv2.merge([small, small, small])
        return condition, light, cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)

    def render(self, index: int) -> tuple[np.ndarray, list[Truth]]:
        """Frame `index` (BGR uint8) and its ground truth, without pacing."""
        if not self._opened or self._background is None or self._noise is None:
            raise CameraError("the demo source is not open; call open() first")
        t = index / self._fps
        _, light, field = self._look(index)
        canvas = self._background.copy()
        truth: list[Truth] = []
        for i, h in enumerate(self._heads):
            cx = h.home[0] + h.amp[0] * math.sin(TAU * h.freq[0] * t + h.phase[0])
            cy = h.home[1] + h.amp[1] * math.sin(TAU * h.freq[1] * t + h.phase[1])
            h.paint(canvas, cx, cy, t, light, i, truth)
        return self._expose(canvas, index, field), truth

    def _expose(self, canvas: np.ndarray, index: int, field: float | np.ndarray) -> np.ndarray:
        """The camera's view of a painted canvas: the light field, then sensor noise.
        Works in place: the canvas (a fresh copy of the background) becomes the frame."""
        assert self._noise is not None
        width, height = self._size
        if isinstance(field, np.ndarray):
            cv2.multiply(canvas, field, dst=canvas, scale=0.01)
        else:
            cv2.convertScaleAbs(canvas, dst=canvas, alpha=field)
        # sensor noise: a random window of a pre-drawn noise buffer, added and subtracted
        pos, neg = self._noise
        rs = (index * 7919 + self._seed * 104729) % (16 * 16)
        oy, ox = divmod(rs, 16)
        cv2.add(canvas, pos[oy : oy + height, ox : ox + width], dst=canvas)
        cv2.subtract(canvas, neg[15 - oy : 15 - oy + height, 15 - ox : 15 - ox + width], dst=canvas)
        return canvas

    def read(self) -> Frame:
        if not self._opened:
            raise CameraError("the demo source is not open; call open() first")
        index = self._index
        if self._realtime:
            due = self._t0 + index / self._fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 1.0))
            elif delay < -1.0:  # the reader stalled: resume pacing from now, no burst
                self._t0 = time.monotonic() - index / self._fps
        image, truth = self.render(index)
        self._index += 1
        return Frame(image=image, index=index, time=time.time(), truth=truth)


def demo_mosaic(n: int) -> tuple[np.ndarray, list[Box]]:
    """n x n demo frames side by side (BGR, 640n x 480n; wood, light and dark surfaces in
    turn, every lighting condition) and every head's box: a photo-sized image whose heads,
    85-112 px across, are as small against it as a head is in a phone photo. For tests
    and `screwcam bench` of how a large image is searched (`Detector.tile_scale`)."""
    tiles, truth = [], []
    for k in range(n * n):
        src = DemoSource(realtime=False, seed=(0, 1, 4)[k % 3])
        src.open()
        image, heads = src.render(10 + 37 * k)
        src.close()
        row, col = divmod(k, n)
        tiles.append(image)
        truth += [Box(t.box.x + 640 * col, t.box.y + 480 * row, t.box.w, t.box.h) for t in heads]
    return np.vstack([np.hstack(tiles[r * n : (r + 1) * n]) for r in range(n)]), truth
