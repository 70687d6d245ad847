"""Training videos: one screw type per video, written by `screwcam record` and by the
page's Teach panel alike. <out>/<label>_<UTC time>.mp4 (codec mp4v) and a JSON sidecar
<same name>.json (label, source, resolution, fps, start time, frame count). While
recording the video lives under a hidden temporary name (.<name>.part.mp4); the
sidecar is put in place first and the video renamed last, so a killed recorder never
leaves a file under a final name, and a taken name is never overwritten (_2, _3, ...)."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import cv2

from .classes import CLASSES, ENGLISH, label_id
from .errors import CameraError
from .sources import Source, SourceEnded

FOURCC = "mp4v"
SUFFIX = ".mp4"
_PROGRESS_EVERY = 0.25  # seconds between updates of the status line on a terminal
_LOG_EVERY = 2.0  # ... and between lines when stderr is a log file or pipe


@dataclass(frozen=True)
class Recording:
    video: Path
    sidecar: Path
    frames: int
    seconds: float


def part_name(final: Path) -> Path:
    """The temporary name a video is written under: hidden, same folder, same suffix."""
    return final.with_name(f".{final.stem}.part{final.suffix}")


def reserve_name(out_dir: Path, label: int, started: datetime) -> Path:
    """A final video path that does not exist yet: <label>_<UTC stamp>[_<n>].mp4. The
    temporary file is created exclusively, so two recorders never pick the same name."""
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 10_000):
        stem = f"{CLASSES[label]}_{stamp}" + (f"_{n}" if n > 1 else "")
        final = out_dir / f"{stem}{SUFFIX}"
        if final.exists() or final.with_suffix(".json").exists():
            continue
        try:
            os.close(os.open(part_name(final), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        return final
    raise CameraError(f"no free file name for a recording in {out_dir}; clean it up")


class _Status:
    """One updating status line on stderr."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = bool(getattr(stream, "isatty", lambda: False)())
        self._last = 0.0
        self._text = ""

    def update(self, text: str) -> None:
        now = time.monotonic()
        every = _PROGRESS_EVERY if self.live else _LOG_EVERY
        self._text = text
        if now - self._last >= every:
            self._last = now
            self.stream.write(f"\r{text}\x1b[K" if self.live else f"{text}\n")
            self.stream.flush()

    def done(self) -> None:
        self.stream.write("\n" if self.live else f"{self._text}\n")
        self.stream.flush()


def record(
    source: Source,
    label: int,
    out_dir: Path,
    *,
    seconds: float | None = None,
    fps: float | None = None,
    stop: threading.Event | None = None,
    source_spec: str = "",
    progress: TextIO | None = None,
) -> Recording:
    """Record from an opened `source` until `seconds` pass or `stop` is set.
    With `fps` below the source's rate, frames are dropped evenly to reach it."""
    label = label_id(label)
    stop = stop or threading.Event()
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    final = reserve_name(out_dir, label, started)
    part = part_name(final)
    width, height = source.size
    video_fps = float(fps or source.fps)
    status = _Status(progress) if progress is not None else None
    writer: cv2.VideoWriter | None = None
    frames = 0
    t0 = time.monotonic()
    next_keep = t0
    error: CameraError | None = None
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - t0
            if seconds is not None and elapsed >= seconds:
                break
            try:
                frame = source.read()
            except SourceEnded:  # a video file used as the source: its end is a normal stop
                break
            except CameraError as exc:
                error = exc
                break
            now = time.monotonic()
            if fps and now < next_keep:
                continue
            next_keep = max(next_keep + 1.0 / fps, now - 1.0 / fps) if fps else now
            image = frame.image
            if writer is None:
                height, width = image.shape[:2]
                writer = cv2.VideoWriter(
                    str(part), cv2.VideoWriter_fourcc(*FOURCC), video_fps, (width, height)
                )
                if not writer.isOpened():
                    raise CameraError(
                        f"OpenCV cannot write {FOURCC} video to {part}; check that {out_dir} "
                        "is writable and has free space"
                    )
            elif image.shape[:2] != (height, width):
                image = cv2.resize(image, (width, height))
            writer.write(image)
            frames += 1
            if status:
                elapsed = now - t0
                status.update(
                    f"recording {final.name}: {elapsed:6.1f} s  {frames:6d} frames  "
                    + (f"{frames / elapsed:5.1f} fps" if elapsed >= 0.5 else "  --- fps")
                    + (f"  (stop at {seconds:g} s)" if seconds else "  (Ctrl-C stops)")
                )
        duration = time.monotonic() - t0
        if writer is not None:
            writer.release()
            writer = None
        if status:
            status.done()
        if frames == 0:
            if error is not None:
                raise error
            raise CameraError(f"no frames were recorded from {source.name}; nothing saved")
        sidecar = final.with_suffix(".json")
        meta = {
            "label": CLASSES[label],
            "label_id": label,
            "label_english": ENGLISH[CLASSES[label]],
            "source": source_spec or source.name,
            "video": final.name,
            "codec": FOURCC,
            "width": width,
            "height": height,
            "fps": video_fps,
            "measured_fps": round(frames / duration, 3) if duration > 0 else None,
            "start_time": started.isoformat().replace("+00:00", "Z"),
            "duration_s": round(duration, 3),
            "frames": frames,
        }
        tmp = sidecar.with_name(f".{sidecar.name}.part")
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, sidecar)  # sidecar first: a final-named video always has one
        os.replace(part, final)
    finally:
        if writer is not None:
            writer.release()
        if part.exists():
            part.unlink()
    if error is not None:
        raise CameraError(f"{error} -- the {frames} frames recorded before were saved as {final}")
    return Recording(final, sidecar, frames, duration)
