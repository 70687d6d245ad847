"""Camera sources behind one small interface.

A source yields `Frame`s. `open_source(spec)` turns the `--source` text into a
source: "demo", "picamera2", a device index ("0"), a video file path, or an
RTSP/HTTP URL. picamera2 is imported only inside its own source.

Contract every source keeps:
- `open()` raises CameraError with an actionable message if it cannot start.
- `read()` blocks until the next frame and returns it; in real-time mode a file
  or the demo is paced at its own frame rate, like a camera. It raises
  CameraError when the source stops delivering (unplugged, stream ended, file
  vanished). It never returns None.
- `close()` is idempotent. Sources are context managers.
- `Frame.index` is the frame's index in its source: for a file, its index in the
  file, restarting at 0 when the file loops.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from .heads import Box


@dataclass(frozen=True, slots=True)
class Truth:
    """Ground truth for one head (only synthetic sources know it)."""

    label: int
    box: Box


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

    @property
    @abc.abstractmethod
    def fps(self) -> float:
        """Nominal frames per second."""

    @property
    @abc.abstractmethod
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames; valid after open()."""

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
