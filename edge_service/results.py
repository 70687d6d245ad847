"""What the pipeline publishes, and its wire formats: a `Result` per analysed frame
(heads, timing, camera state; JSON and Server-Sent Event text made once and shared by
every viewer) and a `VideoFrame` per drawn frame (JPEG and MJPEG part, made once)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from screwcam.frames import Box

UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class TrackLabel:
    """A head's track: its id and the label voted over the track's frames."""

    id: int
    label: str  # thesis class name, or "unknown" before the first whole view
    label_en: str
    confidence: float  # mean over the track's views of the confidence voted for `label`
    frames: int  # whole views voted over
    counted: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "label_en": self.label_en,
            "confidence": round(float(self.confidence), 4),
            "frames": self.frames,
            "counted": self.counted,
        }


@dataclass(frozen=True, slots=True)
class Head:
    """One head found in a frame."""

    box: Box
    label: str  # thesis class name, or "unknown" below the confidence threshold
    label_en: str
    confidence: float  # probability of the best class
    best: str  # best class even when below the threshold
    track: TrackLabel | None = None  # None when tracking is off (and for uploads)

    def to_json(self) -> dict[str, Any]:
        return {
            "box": self.box.as_list(),
            "label": self.label,
            "label_en": self.label_en,
            "confidence": round(float(self.confidence), 4),
            "track": None if self.track is None else self.track.to_json(),
        }


@dataclass(frozen=True, slots=True)
class CameraStatus:
    state: str  # "starting" | "ok" | "reconnecting" | "stopped"
    message: str
    since: float
    reconnects: int
    source: str

    @property
    def up(self) -> bool:
        return self.state == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "message": self.message,
            "since": round(self.since, 3),
            "reconnects": self.reconnects,
            "source": self.source,
        }


@dataclass(frozen=True)
class Result:
    """One processed frame, shared read-only by every client."""

    seq: int  # increases by one per published result
    frame_index: int  # index of the frame in its source
    time: float  # capture time (time.time())
    heads: tuple[Head, ...]
    width: int
    height: int
    latency_s: float  # capture -> published
    inference_s: float  # the classifier call alone
    published: float  # time.time() when published
    published_mono: float  # time.monotonic() when published (ages survive clock jumps)
    fps: float
    camera: CameraStatus
    # seconds per step: gray, find_heads, crop, classify (for /metrics and bench)
    stages: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "frame": self.frame_index,
            "time": round(self.time, 3),
            "heads": [h.to_json() for h in self.heads],
            "size": [self.width, self.height],
            "latency_ms": round(self.latency_s * 1000.0, 1),
            "inference_ms": round(self.inference_s * 1000.0, 2),
            "fps": round(self.fps, 2),
            "camera": self.camera.to_json(),
        }

    @functools.cached_property
    def json_text(self) -> str:
        """`to_json()` serialized once, shared by every event viewer and API call."""
        return json.dumps(self.to_json(), separators=(",", ":"))

    @functools.cached_property
    def sse_event(self) -> bytes:
        """The Server-Sent Event every /api/events viewer sends for this result."""
        return f"id: {self.seq}\ndata: {self.json_text}\n\n".encode()


#: the video variants: "labels" = boxes and labels drawn in (/stream.mjpg, for VLC,
#: Home Assistant, ...), "clean" = the frame as captured (/stream.mjpg?labels=0, the
#: page draws its own labels over it)
VARIANTS = ("labels", "clean")


@dataclass(frozen=True)
class VideoFrame:
    """The encoded pictures of one Result, shared read-only by viewers. Only the
    variants someone watches are made (None otherwise), each once per frame."""

    seq: int  # the seq of the Result it shows
    # annotated JPEG and the multipart chunk every MJPEG viewer sends (built once per
    # frame, not per viewer); None when nobody watched the annotated stream
    jpeg: bytes | None = field(repr=False)
    mjpeg_part: bytes | None = field(repr=False)
    width: int
    height: int
    # seconds per step: draw, jpeg, jpeg_clean
    stages: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    # the frame as captured (no drawings): JPEG and multipart chunk, or None
    clean_jpeg: bytes | None = field(default=None, repr=False)
    clean_part: bytes | None = field(default=None, repr=False)

    def part(self, variant: str) -> bytes | None:
        """The multipart chunk of `variant` ("labels" or "clean"), None if not made."""
        return self.clean_part if variant == "clean" else self.mjpeg_part

    def has(self, variant: str) -> bool:
        return self.part(variant) is not None


MJPEG_BOUNDARY = "frame"


def mjpeg_part(jpeg: bytes) -> bytes:
    """One part of a multipart/x-mixed-replace MJPEG stream."""
    return (
        (
            f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
        ).encode()
        + jpeg
        + b"\r\n"
    )
