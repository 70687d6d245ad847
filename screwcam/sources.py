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

import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from .errors import CameraError
from .frames import Frame, Source

# --------------------------------------------------------------------------------------
# Concrete sources
# --------------------------------------------------------------------------------------

_DEFAULT_FPS = 30.0
_STREAM_TIMEOUT_MS = 5000  # FFmpeg open/read timeout for network streams


class SourceEnded(CameraError):
    """A video file without looping reached its end. A CameraError like any other
    stop, so callers that only care about "no more frames" need not know it."""


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Frames are BGR uint8 (H, W, 3) whatever the backend delivered."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    return image


class _Pacer:
    """Hands out frames no faster than `fps`, like a camera. If the consumer falls
    behind, it does not try to catch up with a burst."""

    def __init__(self, fps: float) -> None:
        self._period = 1.0 / fps
        self._next: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._next is None or now - self._next > self._period:
            self._next = now
        elif self._next > now:
            time.sleep(self._next - now)  # bounded by one frame period
        self._next += self._period


class VideoFileSource(Source):
    """A video file played like a camera: at its own frame rate (when `realtime`),
    looping by default. Frame.index is the index in the file (0 again after a loop)."""

    def __init__(self, path: str | os.PathLike[str], loop: bool = True, realtime: bool = True):
        self.path = Path(path)
        self.loop = loop
        self.realtime = realtime
        self.name = f"file:{self.path.name}"
        self._cap: cv2.VideoCapture | None = None
        super().__init__(_DEFAULT_FPS)
        self._frame_count = 0
        self._index = 0
        self._pending: np.ndarray | None = None
        self._pacer: _Pacer | None = None

    @property
    def frame_count(self) -> int:
        """Frame count the container claims (0 if unknown); valid after open()."""
        return self._frame_count

    def _reopen(self) -> None:
        """(Re)open the file and decode its first frame, so a file that vanished or
        cannot be decoded is reported here and not as a silent end of stream."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if not self.path.is_file():
            raise CameraError(f"video file {self.path} does not exist (any more); check the path")
        cap = cv2.VideoCapture(str(self.path))
        ok, image = cap.read() if cap.isOpened() else (False, None)
        if not ok or image is None:
            cap.release()
            raise CameraError(
                f"cannot decode video file {self.path}: it is empty, truncated or in a format "
                "OpenCV's FFmpeg cannot read (try re-encoding it as .mp4)"
            )
        fps = cap.get(cv2.CAP_PROP_FPS)
        self._fps = float(fps) if fps and np.isfinite(fps) and 0 < fps <= 1000 else _DEFAULT_FPS
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self._frame_count = int(count) if count and np.isfinite(count) and count > 0 else 0
        self._cap = cap
        self._pending = _as_bgr(image)
        self._size = (self._pending.shape[1], self._pending.shape[0])
        self._index = 0

    def open(self) -> None:
        self._reopen()
        self._pacer = _Pacer(self._fps) if self.realtime else None

    def read(self) -> Frame:
        if self._cap is None:
            raise CameraError(f"{self.name} is not open; call open() first")
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                if not self.loop:
                    raise SourceEnded(f"video file {self.path} ended after {self._index} frames")
                self._reopen()
                pending, self._pending = self._pending, None
                if pending is None:
                    raise CameraError(f"video file {self.path} delivers no frames after reopening")
                image = pending
            image = _as_bgr(image)
        if self._pacer is not None:
            self._pacer.wait()
        frame = Frame(image=image, index=self._index, time=time.time())
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._pending = None


class _CaptureSource(Source):
    """Shared read loop of the sources that wrap a live cv2.VideoCapture."""

    def __init__(self) -> None:
        self._cap: cv2.VideoCapture | None = None
        super().__init__(_DEFAULT_FPS)
        self._index = 0

    def _read_failed(self) -> CameraError:
        raise NotImplementedError

    def _grab(self) -> np.ndarray:
        if self._cap is None:
            raise CameraError(f"{self.name} is not open; call open() first")
        ok, image = self._cap.read()
        if not ok or image is None:  # the flag flask-video-streaming throws away
            raise self._read_failed()
        return _as_bgr(image)

    def _started(self, cap: cv2.VideoCapture, requested_fps: float | None) -> None:
        """Keep an opened capture; its first frame proves it delivers."""
        self._cap = cap
        self._index = 0
        first = self._grab()
        self._size = (first.shape[1], first.shape[0])
        fps = cap.get(cv2.CAP_PROP_FPS)
        if fps and np.isfinite(fps) and 0 < fps <= 1000:
            self._fps = float(fps)
        elif requested_fps:
            self._fps = float(requested_fps)

    def read(self) -> Frame:
        image = self._grab()
        frame = Frame(image=image, index=self._index, time=time.time())
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class DeviceSource(_CaptureSource):
    """A USB/V4L2 camera, /dev/video<index>, through OpenCV."""

    def __init__(
        self, index: int, size: tuple[int, int] | None = None, fps: float | None = None
    ) -> None:
        super().__init__()
        self.index = int(index)
        self.requested_size = size
        self.requested_fps = fps
        self.name = f"device {self.index}"

    def _device_hint(self) -> str:
        return (
            f"check that the camera is plugged in (ls /dev/video*), that no other program "
            f"uses it, and that your user may open /dev/video{self.index} "
            "(sudo usermod -aG video $USER, then log in again)"
        )

    def _read_failed(self) -> CameraError:
        return CameraError(
            f"camera device {self.index} stopped delivering frames; {self._device_hint()}"
        )

    def open(self) -> None:
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        cap = cv2.VideoCapture(self.index, backend)
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"cannot open camera device {self.index} (/dev/video{self.index}); "
                f"{self._device_hint()}"
            )
        if self.requested_size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.requested_size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.requested_size[1])
        if self.requested_fps:
            cap.set(cv2.CAP_PROP_FPS, self.requested_fps)
        try:
            self._started(cap, self.requested_fps)
        except CameraError:
            self.close()
            raise


def _redact(url: str) -> str:
    """The URL without a password, for messages and the source name."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class StreamSource(_CaptureSource):
    """An RTSP or HTTP(S) stream through OpenCV's FFmpeg backend. Opening and every
    read time out after a few seconds instead of hanging."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.name = f"stream:{_redact(url)}"

    def _read_failed(self) -> CameraError:
        return CameraError(
            f"stream {_redact(self.url)} stopped delivering frames (network down, camera off, "
            "or the stream ended)"
        )

    def open(self) -> None:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, _STREAM_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, _STREAM_TIMEOUT_MS,
        ]  # fmt: skip
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"cannot open stream {_redact(self.url)}: check the URL, that the camera is on "
                "and reachable from this machine, and any user name/password in the URL"
            )
        try:
            self._started(cap, None)
        except CameraError:
            self.close()
            raise


_PICAMERA2_HINT = (
    "install it with `sudo apt install python3-picamera2` (Raspberry Pi OS) and use a venv "
    "created with --system-site-packages so it can see the apt package"
)


class Picamera2Source(Source):
    """The Raspberry Pi camera through picamera2 (imported only in open())."""

    def __init__(self, size: tuple[int, int] = (640, 480), fps: float = 30.0) -> None:
        self._requested_size = (int(size[0]), int(size[1]))
        super().__init__(fps, self._requested_size)
        self._camera = None
        self._index = 0
        self.name = "picamera2"

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(f"picamera2 is not available ({exc}); {_PICAMERA2_HINT}") from exc
        try:
            camera = Picamera2()
        except Exception as exc:  # picamera2 raises RuntimeError/IndexError without a camera
            raise CameraError(
                f"cannot open the Raspberry Pi camera ({exc}); check the ribbon cable, that "
                "`rpicam-hello --list-cameras` lists it, and that no other program uses it"
            ) from exc
        try:
            # "RGB888" is libcamera's name for 24-bit pixels stored B, G, R in memory, so
            # capture_array gives exactly the BGR order OpenCV expects: no conversion.
            config = camera.create_video_configuration(
                main={"size": self._requested_size, "format": "RGB888"},
                controls={"FrameRate": self._fps},
            )
            camera.configure(config)
            camera.start()
        except Exception as exc:
            camera.close()
            raise CameraError(f"cannot start the Raspberry Pi camera: {exc}") from exc
        self._camera = camera
        self._index = 0

    def read(self) -> Frame:
        if self._camera is None:
            raise CameraError("picamera2 source is not open; call open() first")
        try:
            array = self._camera.capture_array("main")
        except Exception as exc:
            raise CameraError(f"the Raspberry Pi camera stopped delivering frames: {exc}") from exc
        image = _as_bgr(np.ascontiguousarray(array))
        self._size = (image.shape[1], image.shape[0])
        frame = Frame(image=image, index=self._index, time=time.time())
        self._index += 1
        return frame

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()


#: the help text of every `--source` option (and the config's camera.source)
SOURCE_HELP = (
    "auto | demo | conveyor[:LIGHT] | picamera2 | device number (0 = /dev/video0) | video file "
    "| rtsp/http URL; "
    '"auto" (the default) is the Pi camera if picamera2 sees one, else /dev/video0 if it '
    "delivers a frame, else the demo"
)


def open_source(
    spec: str,
    *,
    loop: bool = True,
    realtime: bool = True,
    label: int | None = None,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
) -> Source:
    """The source a `--source` text names (not yet opened) — the one parser of that text:
    "auto" (`default_source_spec()`), "demo", "conveyor" (heads riding across; "conveyor:dim"
    fixes the light), "picamera2", a device index ("0"), an
    rtsp:// / http(s):// URL, or a video file path. `size` and `fps` are what a camera
    is asked for (the Pi camera and USB devices; files and streams keep their own).
    `loop` and `realtime` apply to files (and `realtime` to the demo). `label`
    (recording a training video) makes the demo show one head of that drive type, as
    a real training video does, with a fresh scene each time."""
    text = str(spec).strip()
    if text == "auto":
        text = default_source_spec()
    if text == "demo":
        from .render import DemoSource  # the renderer; imported only when asked for

        if label is None:
            return DemoSource(realtime=realtime)
        return DemoSource(realtime=realtime, heads=1, labels=[label], seed=time.time_ns() % (2**31))
    if text == "conveyor" or text.startswith("conveyor:"):
        from .render import ConveyorSource  # heads riding across the frame

        condition = text.partition(":")[2] or None
        return ConveyorSource(realtime=realtime, condition=condition)
    if text == "picamera2":
        return Picamera2Source(size=size or (640, 480), fps=fps or 30.0)
    if text.isdigit():
        return DeviceSource(int(text), size=size, fps=fps)
    if text.lower().startswith(("rtsp://", "rtsps://", "http://", "https://")):
        return StreamSource(text)
    path = Path(text).expanduser()
    if not path.is_file():
        raise CameraError(
            f"source {text!r} is not 'demo', 'conveyor[:light]', 'picamera2', a device number, "
            f"a stream URL, or an existing video file (no file {path})"
        )
    return VideoFileSource(path, loop=loop, realtime=realtime)


def _picamera2_camera_present() -> bool:
    try:
        from picamera2 import Picamera2
    except ImportError:
        return False
    try:
        return bool(Picamera2.global_camera_info())
    except Exception:
        return False


def default_source_spec() -> str:
    """What `serve`/`record` use without --source: the Pi camera if picamera2 sees one,
    else /dev/video0 if it opens and delivers a frame, else the demo."""
    if _picamera2_camera_present():
        return "picamera2"
    if Path("/dev/video0").exists():
        try:
            with DeviceSource(0):
                return "0"
        except CameraError:
            pass
    return "demo"
