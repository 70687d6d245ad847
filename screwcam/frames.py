"""What every part of screwcam passes around: a `Box` in frame pixels, a `Frame` from a
camera-like `Source`, the ground `Truth` that synthetic sources attach to a frame, and a
`HeadLayer` (one rendered head that a scene composer lays onto its own surface; the
independent generators render_sdf and render_pbr make them).
Imports nothing from screwcam, so every other module can build on it."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in source-frame pixels."""

    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2.0, self.y + self.h / 2.0

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def scaled(self, factor: float) -> Box:
        return Box(*(int(round(v * factor)) for v in (self.x, self.y, self.w, self.h)))


@dataclass(frozen=True, slots=True)
class Truth:
    """Ground truth for one head (only synthetic sources know it)."""

    label: int
    box: Box
    track: int = -1  # which physical head this is, the same in every frame (-1 = not known)


@dataclass(frozen=True, slots=True)
class HeadLayer:
    """One head to lay onto a surface of the caller's own (`render_sdf.render_layer`,
    `render_pbr.render_layer`); all arrays (side, side) float32."""

    radiance: np.ndarray  # gray linear radiance of the head, premultiplied by alpha
    alpha: np.ndarray  # 0..1: how much of each pixel the head covers
    shadow: np.ndarray  # multiply the surface by this: the head's cast shadow, occlusion
    box: Box  # the whole head's box in the layer
    info: dict


@dataclass(slots=True)
class Frame:
    image: np.ndarray  # BGR uint8, (H, W, 3)
    index: int  # index in the source (restarts when a file loops)
    time: float  # time.time() when captured
    truth: list[Truth] | None = field(default=None)


class Source(abc.ABC):
    """One camera-like source of frames."""

    #: short human-readable description, e.g. "demo", "file:clip.mp4", "device 0"
    name: str = "source"

    def __init__(self, fps: float, size: tuple[int, int] = (0, 0)) -> None:
        self._fps = float(fps)
        self._size = (int(size[0]), int(size[1]))

    @property
    def fps(self) -> float:
        """Nominal frames per second."""
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames; valid after open()."""
        return self._size

    @abc.abstractmethod
    def open(self) -> None:
        """Start delivering frames; raise CameraError if that is impossible."""

    @abc.abstractmethod
    def read(self) -> Frame:
        """The next frame; raise CameraError if the source stopped delivering."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device or file. Safe to call twice."""

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
