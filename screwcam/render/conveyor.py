"""The conveyor camera: screw heads ride across the frame on a belt — each enters on
the left, crosses and leaves on the right — under the demo's lighting, with the
ground truth (label, box and a track id per physical head) in every frame.

This is the video the line's tracker and counter are measured on: every head of a
pass must be counted once, with the right drive type. The belt loops like a camera:
pass 2 shows the same heads again as new ones (track ids go on counting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..classes import NUM_CLASSES
from ..errors import CameraError
from ..frames import Truth
from .demo import DemoSource, MovingHead
from .drawing import TAU, HeadSpec, random_spec
from .scene import DEMO_CONDITIONS, make_placed


@dataclass(slots=True)
class _BeltHead(MovingHead):
    spec: HeadSpec
    #: the layout generator's state when this head's sprite was drawn: rebuilding
    #: from it gives the same head, so only the heads in view need their maps
    drawn_from: dict
    radius: float
    lane_y: float
    enter_s: float  # seconds into the pass when its centre is `radius` left of the frame
    wobble: float  # px of sideways drift
    wobble_phase: float


class ConveyorSource(DemoSource):
    """A fake camera over a conveyor: `heads` screw heads per pass (the five drive
    types in turn, shuffled), in `lanes` lanes, riding left to right at `speed`
    frame widths per second. `condition` fixes the light to one of
    `DEMO_CONDITIONS`; None cycles through them like the demo. Deterministic for a
    seed; frames carry the ground truth with `Truth.track` = the head's id."""

    name = "conveyor"

    def __init__(
        self,
        size: tuple[int, int] = (640, 480),
        fps: float = 30.0,
        heads: int = 15,
        seed: int = 0,
        realtime: bool = True,
        condition: str | None = None,
        speed: float = 0.22,
        lanes: int = 2,
        spacing_s: float = 0.55,
    ) -> None:
        if not 1 <= heads <= 200:
            raise CameraError(f"conveyor heads must be 1..200, got {heads}")
        if condition is not None and condition not in DEMO_CONDITIONS:
            raise CameraError(
                f"conveyor condition {condition!r} is not one of {', '.join(DEMO_CONDITIONS)}"
            )
        if not 0.02 <= speed <= 2.0:
            raise CameraError(f"conveyor speed must be 0.02..2 frame widths a second, got {speed}")
        if not 1 <= lanes <= 4:
            raise CameraError(f"conveyor lanes must be 1..4, got {lanes}")
        super().__init__(size, fps, heads=1, seed=seed, realtime=realtime)
        self._count = int(heads)
        self._condition = condition
        self._speed_px = float(speed) * self._size[0]  # px per second
        self._lanes = int(lanes)
        self._spacing_s = float(spacing_s)
        self._belt: list[_BeltHead] = []
        self._pass_frames = 1

    # -- what a pass holds ----------------------------------------------------------------

    @property
    def pass_frames(self) -> int:
        """Frames of one pass (valid after open()): the first head enters after it
        starts, the last one has left before it ends."""
        return self._pass_frames

    @property
    def pass_labels(self) -> list[int]:
        """The class id of every head of a pass, in the order they enter."""
        return [h.label for h in self._belt]

    def condition_at(self, index: int) -> str:
        return self._condition or super().condition_at(index)

    # -- set-up ---------------------------------------------------------------------------

    def _layout(self, rng: np.random.Generator, kind: str) -> list:
        width, height = self._size
        lane_h = height / self._lanes
        labels = [i % NUM_CLASSES for i in range(self._count)]
        labels = [labels[i] for i in rng.permutation(self._count)]
        finishes = (
            ("dull", "worn", "black") if kind in ("light", "metal") else ("zinc", "dull", "worn")
        )
        # same-lane neighbours must not touch: enough time between two entries
        radius_hi = 0.21 * min(lane_h, width / 3)
        gap_s = max(self._spacing_s, 2.9 * radius_hi / self._speed_px / self._lanes)
        lead_s = 0.4
        belt = []
        for i, label in enumerate(labels):
            radius = radius_hi * rng.uniform(0.8, 1.0)
            finish = finishes[int(rng.integers(len(finishes)))]
            lane = i % self._lanes
            spec = random_spec(rng, label, finish)
            drawn_from = rng.bit_generator.state
            make_placed(spec, radius, rng, keep_sprite=False)  # draws what the head draws
            belt.append(
                _BeltHead(
                    label=label,
                    spec=spec,
                    drawn_from=drawn_from,
                    placed=None,  # made when the head comes into view
                    radius=radius,
                    lane_y=(lane + 0.5) * lane_h + rng.uniform(-0.12, 0.12) * lane_h,
                    enter_s=lead_s + i * gap_s,
                    wobble=rng.uniform(0.0, 0.06) * lane_h,
                    wobble_phase=rng.uniform(0, TAU),
                    spin=rng.uniform(-0.5, 0.5),
                    angle0=rng.uniform(0, TAU),
                    squash=rng.uniform(0.9, 1.0),
                    tilt=rng.uniform(0, math.pi),
                )
            )
        self._belt = belt
        last = belt[-1]
        cross_s = (width + 2.6 * radius_hi) / self._speed_px
        self._pass_frames = int(math.ceil((last.enter_s + cross_s + lead_s) * self._fps))
        return []  # the demo's drifting heads: none

    # -- frames ---------------------------------------------------------------------------

    def render(self, index: int) -> tuple[np.ndarray, list[Truth]]:
        """Frame `index` (BGR uint8) and its ground truth, without pacing."""
        if not self._opened or self._background is None or self._noise is None:
            raise CameraError("the conveyor source is not open; call open() first")
        width = self._size[0]
        n_pass, local = divmod(index, self._pass_frames)
        t = local / self._fps
        _, light, field = self._look(index)
        canvas = self._background.copy()
        truth: list[Truth] = []
        for i, h in enumerate(self._belt):
            cx = -1.3 * h.radius + self._speed_px * (t - h.enter_s)
            if cx < -1.3 * h.radius or cx > width + 1.3 * h.radius:
                h.placed = None  # out of view: ~0.6 MB of maps a head, 15 heads a pass
                continue
            if h.placed is None:  # the same maps as at open(): the same generator state
                bits = getattr(np.random, h.drawn_from["bit_generator"])()
                bits.state = h.drawn_from
                h.placed = make_placed(
                    h.spec, h.radius, np.random.Generator(bits), keep_sprite=False
                )
            cy = h.lane_y + h.wobble * math.sin(0.9 * t + h.wobble_phase)
            h.paint(canvas, cx, cy, t, light, n_pass * self._count + i, truth)
        return self._expose(canvas, index, field), truth
