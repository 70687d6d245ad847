"""The frame pipeline: one per camera.

    capture thread ──(1-slot mailbox, newest frame wins)──> processing thread
        find_heads -> preprocess_many -> ONE classifier call -> threshold
        -> publish Result (the predictions) -> wake every waiter
        ──(1-slot mailbox, newest wins)──> render thread
        draw -> encode JPEG once -> publish VideoFrame -> wake every video viewer

Predictions never wait for drawing and JPEG encoding, and on a multi-core
device the two halves of consecutive frames run at the same time.

Every web client reads the latest published `Result` through
`wait_for_result(previous_seq, timeout)` (video viewers: the latest `VideoFrame`
through `wait_for_video`), which never hands the same one to a caller twice.
Nothing the pipeline does waits for a client, so a slow or stalled viewer only
ever skips frames — it never slows the pipeline or the
other viewers.

The capture thread survives camera failures: it marks the camera down, closes
it, and reopens it with exponential backoff until it delivers again.

State lives in instances; both threads stop on one Event, and every wait has a
timeout, so `stop()` returns promptly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from capture.classes import CLASSES, ENGLISH
from capture.errors import CameraError
from capture.heads import Box, find_heads
from capture.preprocess import preprocess_many, to_gray
from capture.sources import Frame, Source

from .draw import annotate, encode_jpeg
from .metrics import Metrics
from .systemd_notify import Notifier

log = logging.getLogger(__name__)

UNKNOWN = "unknown"


class ClassifierLike(Protocol):
    def classify(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Head:
    """One head found in a frame."""

    box: Box
    label: str  # thesis class name, or "unknown" below the confidence threshold
    label_en: str
    confidence: float  # probability of the best class
    best: str  # best class even when below the threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "box": self.box.as_list(),
            "label": self.label,
            "label_en": self.label_en,
            "confidence": round(float(self.confidence), 4),
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
    frame: int  # index of the frame in its source
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
            "frame": self.frame,
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


@dataclass(frozen=True)
class VideoFrame:
    """The annotated, encoded picture of one Result, shared read-only by viewers."""

    seq: int  # the seq of the Result it shows
    jpeg: bytes = field(repr=False)
    # the multipart chunk every MJPEG viewer sends: built once per frame, not per viewer
    mjpeg_part: bytes = field(repr=False)
    width: int
    height: int
    # seconds per step: draw, jpeg
    stages: dict[str, float] = field(default_factory=dict, compare=False, repr=False)


MJPEG_BOUNDARY = "frame"


def mjpeg_part(jpeg: bytes) -> bytes:
    """One part of a multipart/x-mixed-replace MJPEG stream."""
    return (
        f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(jpeg)}\r\n\r\n"
    ).encode() + jpeg + b"\r\n"


class Analyzer:
    """find_heads -> preprocess_many -> one classifier call -> threshold.

    A LiteRT interpreter is not thread-safe: every call holds this analyzer's
    lock. The pipeline and the upload endpoint use separate analyzers (separate
    interpreters), so an upload never makes the pipeline wait.
    """

    def __init__(
        self,
        classifier: ClassifierLike,
        confidence_threshold: float,
        labels: Sequence[str] | None = None,
        find: Callable[[np.ndarray], list[Box]] = find_heads,
    ) -> None:
        self.classifier = classifier
        self.threshold = float(confidence_threshold)
        bundle = getattr(classifier, "bundle", None)
        self.labels = tuple(labels or getattr(bundle, "labels", None) or CLASSES)
        self.find = find
        self._lock = threading.Lock()

    def analyze(
        self, image: np.ndarray, stages: dict[str, float] | None = None
    ) -> tuple[list[Head], float]:
        """Heads in a BGR (or gray) image, and the seconds the classifier took.
        If `stages` is given, the seconds of each step are stored in it."""
        t0 = time.perf_counter()
        gray = to_gray(image)  # once per frame: both the finder and the crops use it
        t1 = time.perf_counter()
        boxes = self.find(gray)
        t2 = time.perf_counter()
        batch = preprocess_many(gray, [b.as_list() for b in boxes]) if boxes else None
        t3 = time.perf_counter()
        inference_s = 0.0
        if batch is not None:
            with self._lock:
                t_call = time.perf_counter()
                probs = np.asarray(self.classifier.classify(batch))
                inference_s = time.perf_counter() - t_call
        if stages is not None:
            stages.update(gray=t1 - t0, find_heads=t2 - t1, crop=t3 - t2, classify=inference_s)
        if batch is None:
            return [], 0.0
        if probs.shape != (len(boxes), len(self.labels)):
            raise RuntimeError(
                f"classifier returned shape {probs.shape} for {len(boxes)} crops and "
                f"{len(self.labels)} labels"
            )
        heads = []
        for box, row in zip(boxes, probs, strict=True):
            best = int(np.argmax(row))
            conf = float(row[best])
            name = self.labels[best]
            if conf >= self.threshold:
                heads.append(Head(box, name, ENGLISH.get(name, name), conf, name))
            else:
                heads.append(Head(box, UNKNOWN, UNKNOWN, conf, name))
        return heads, inference_s


class CaptureWorker:
    """Reads one source in its own thread and keeps only the newest frame."""

    def __init__(
        self,
        source_factory: Callable[[], Source],
        name: str,
        stop: threading.Event,
        metrics: Metrics,
        *,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 10.0,
        on_status: Callable[[CameraStatus], None] | None = None,
    ) -> None:
        self.source_factory = source_factory
        self.name = name
        self._stop = stop
        self.metrics = metrics
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.on_status = on_status
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._frame_seq = 0
        self._taken = True
        self._status = CameraStatus("starting", "opening the camera", time.time(), 0, name)
        self._busy_since: float | None = None  # monotonic start of a blocking source call
        self._thread = threading.Thread(target=self._run, name=f"capture-{name}", daemon=True)

    # --- status ---------------------------------------------------------------
    @property
    def status(self) -> CameraStatus:
        return self._status

    def _set_status(self, state: str, message: str) -> None:
        old = self._status
        reconnects = old.reconnects + (1 if state == "reconnecting" else 0)
        since = old.since if old.state == state else time.time()
        self._status = CameraStatus(state, message, since, reconnects, self.name)
        self.metrics.set_camera_up(state == "ok")
        if state == "reconnecting":
            self.metrics.reconnect()
        if old.state != state:
            level = logging.WARNING if state == "reconnecting" else logging.INFO
            log.log(level, "camera %s: %s%s", self.name, state, f" ({message})" if message else "")
        if self.on_status is not None:
            self.on_status(self._status)

    def stalled_for(self) -> float:
        """Seconds the current open()/read() has been blocking (0 when none is)."""
        since = self._busy_since
        return 0.0 if since is None else time.monotonic() - since

    # --- thread ---------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        delay = self.backoff_min_s
        while not self._stop.is_set():
            source = None
            try:
                self._busy_since = time.monotonic()
                source = self.source_factory()
                source.open()
                self._busy_since = None
                delivered = False
                while not self._stop.is_set():
                    self._busy_since = time.monotonic()
                    frame = source.read()
                    self._busy_since = None
                    if not delivered:
                        delivered = True
                        delay = self.backoff_min_s
                        self._set_status("ok", "")
                    self._put(frame)
            except CameraError as exc:
                self._failed(str(exc), delay)
            except Exception as exc:  # a driver bug must not end the service
                log.exception("camera %s: unexpected error", self.name)
                self._failed(f"{type(exc).__name__}: {exc}", delay)
            finally:
                self._busy_since = None
                if source is not None:
                    try:
                        source.close()
                    except Exception:
                        log.exception("camera %s: close failed", self.name)
            if not self._stop.is_set():
                self._stop.wait(delay)
                delay = min(delay * 2.0, self.backoff_max_s)
        self._set_status("stopped", "service stopping")
        self.wake()

    def _failed(self, message: str, delay: float) -> None:
        if self._stop.is_set():
            return
        self._set_status("reconnecting", f"{message} — retrying in {delay:.1f} s")

    def _put(self, frame: Frame) -> None:
        self.metrics.frame_captured()
        with self._cond:
            if not self._taken:
                self.metrics.frame_dropped()
            self._frame = frame
            self._frame_seq += 1
            self._taken = False
            self._cond.notify_all()

    def get_frame(self, previous: int, timeout: float) -> tuple[int, Frame] | None:
        """The newest frame if it is newer than `previous` (a value this method
        returned before, 0 at first); None after `timeout` s or on stop."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._frame_seq != previous or self._stop.is_set(), timeout
            )
            if self._frame_seq == previous or self._frame is None:
                return None
            self._taken = True
            return self._frame_seq, self._frame


class Pipeline:
    """Capture + processing threads for one source; clients read `Result`s."""

    def __init__(
        self,
        source_factory: Callable[[], Source],
        analyzer: Analyzer,
        *,
        source_name: str = "camera",
        metrics: Metrics | None = None,
        notifier: Notifier | None = None,
        jpeg_quality: int = 80,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 10.0,
        stall_timeout_s: float = 30.0,
        stale_after_s: float = 5.0,
        watchdog_every_s: float = 1.0,
    ) -> None:
        self.analyzer = analyzer
        self.watchdog_every_s = watchdog_every_s
        self.metrics = metrics or Metrics()
        self.notifier = notifier or Notifier(address="")
        self.jpeg_quality = jpeg_quality
        self.stall_timeout_s = stall_timeout_s
        self.stale_after_s = stale_after_s
        self.source_name = source_name
        self._stop = threading.Event()
        self._result_cond = threading.Condition()
        self._result: Result | None = None
        self._seq = 0
        self._ready_sent = False
        self._last_watchdog = 0.0
        self.processing_errors = 0
        self.capture = CaptureWorker(
            source_factory,
            source_name,
            self._stop,
            self.metrics,
            backoff_min_s=backoff_min_s,
            backoff_max_s=backoff_max_s,
            on_status=self._camera_status_changed,
        )
        self._thread = threading.Thread(target=self._run, name="processing", daemon=True)
        # processing -> render: the newest (frame, result) waiting to be drawn
        self._render_cond = threading.Condition()
        self._to_render: tuple[Frame, Result] | None = None
        self._video_cond = threading.Condition()
        self._video: VideoFrame | None = None
        self.render_errors = 0
        self._render_thread = threading.Thread(
            target=self._render_run, name="render", daemon=True
        )
        self._started = False

    # --- lifecycle ------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def start(self) -> Pipeline:
        if self._started:
            raise RuntimeError("pipeline already started")
        self._started = True
        self.capture.start()
        self._thread.start()
        self._render_thread.start()
        return self

    def stop(self, timeout: float = 1.5) -> bool:
        """Stop all three threads; True if they ended within `timeout` seconds."""
        self._stop.set()
        self.capture.wake()
        for cond in (self._result_cond, self._render_cond, self._video_cond):
            with cond:
                cond.notify_all()
        if not self._started:
            return True
        deadline = time.monotonic() + timeout
        ok = self.capture.join(max(0.0, deadline - time.monotonic()))
        for thread in (self._thread, self._render_thread):
            thread.join(max(0.0, deadline - time.monotonic()))
            ok = ok and not thread.is_alive()
        if not ok:
            log.warning("pipeline threads did not stop within %.1f s", timeout)
        return ok

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- reading results ------------------------------------------------------
    def latest(self) -> Result | None:
        return self._result

    def wait_for_result(self, previous_seq: int, timeout: float) -> Result | None:
        """The latest result if its seq is greater than `previous_seq`, waiting up
        to `timeout` s for one; None on timeout or stop. Pass the seq of the last
        result you got (0 at first) and you never get the same result twice."""
        with self._result_cond:
            self._result_cond.wait_for(
                lambda: (self._result is not None and self._result.seq > previous_seq)
                or self._stop.is_set(),
                timeout,
            )
            result = self._result
        if result is None or result.seq <= previous_seq:
            return None
        return result

    def latest_video(self) -> VideoFrame | None:
        return self._video

    def wait_for_video(self, previous_seq: int, timeout: float) -> VideoFrame | None:
        """Like `wait_for_result`, for the annotated JPEG of the latest result."""
        with self._video_cond:
            self._video_cond.wait_for(
                lambda: (self._video is not None and self._video.seq > previous_seq)
                or self._stop.is_set(),
                timeout,
            )
            video = self._video
        if video is None or video.seq <= previous_seq:
            return None
        return video

    def camera_status(self) -> CameraStatus:
        return self.capture.status

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details) for /healthz."""
        status = self.capture.status
        result = self._result
        age = None if result is None else max(0.0, time.monotonic() - result.published_mono)
        fresh = age is not None and age <= self.stale_after_s
        healthy = status.up and fresh and not self.stopping
        if self.stopping:
            reason = "stopping"
        elif not status.up:
            reason = f"camera {status.state}: {status.message}".rstrip(": ")
        elif not fresh:
            reason = (
                "no frame processed yet"
                if age is None
                else f"no frame processed for {age:.1f} s"
            )
        else:
            reason = ""
        return healthy, {
            "status": "ok" if healthy else "unavailable",
            "reason": reason,
            "camera": status.to_json(),
            "last_frame_age_s": None if age is None else round(age, 3),
            "fps": round(self.metrics.fps(), 2),
        }

    def status_json(self) -> dict[str, Any]:
        """Camera state and rates, for event streams while no frames arrive."""
        return {"camera": self.capture.status.to_json(), "fps": round(self.metrics.fps(), 2)}

    # --- processing thread ----------------------------------------------------
    def _camera_status_changed(self, status: CameraStatus) -> None:
        if status.state == "reconnecting":
            self.notifier.status(f"camera {self.source_name} down: {status.message}")
            # The service itself is up and serving its page and status: tell
            # systemd so, instead of letting a missing camera time out the start.
            self._send_ready(f"waiting for camera {self.source_name}")
        elif status.state == "ok":
            self.notifier.status(f"camera {self.source_name} ok")
        with self._result_cond:
            self._result_cond.notify_all()

    def _send_ready(self, status: str) -> None:
        if not self._ready_sent:
            self._ready_sent = True
            self.notifier.ready(status)

    def _feed_watchdog(self) -> None:
        now = time.monotonic()
        if now - self._last_watchdog < self.watchdog_every_s:
            return
        stalled = self.capture.stalled_for()
        if stalled > self.stall_timeout_s:
            # A read that hangs this long will not come back: let systemd restart us.
            if now - self._last_watchdog > 10.0:
                log.error("camera read hung for %.0f s; no longer feeding the watchdog", stalled)
                self._last_watchdog = now
            return
        self._last_watchdog = now
        self.notifier.watchdog()

    def _run(self) -> None:
        previous = 0
        while not self._stop.is_set():
            self._feed_watchdog()
            item = self.capture.get_frame(previous, timeout=min(0.5, self.watchdog_every_s))
            if item is None:
                continue
            previous, frame = item
            try:
                result = self.analyze(frame)
            except Exception:
                self.processing_errors += 1
                if self.processing_errors <= 3 or self.processing_errors % 100 == 0:
                    log.exception(
                        "processing frame %d failed (%d failures so far)",
                        frame.index, self.processing_errors,
                    )
                continue
            published = self._publish(result)
            with self._render_cond:
                self._to_render = (frame, published)  # an undrawn older one is skipped
                self._render_cond.notify()
            self._send_ready(f"serving {self.source_name}")

    def _render_run(self) -> None:
        while not self._stop.is_set():
            with self._render_cond:
                self._render_cond.wait_for(
                    lambda: self._to_render is not None or self._stop.is_set(), 0.5
                )
                item, self._to_render = self._to_render, None
            if item is None:
                continue
            try:
                video = self.render(*item)
            except Exception:
                self.render_errors += 1
                if self.render_errors <= 3 or self.render_errors % 100 == 0:
                    log.exception("drawing frame %d failed (%d failures so far)",
                                  item[0].index, self.render_errors)
                continue
            with self._video_cond:
                self._video = video
                self._video_cond.notify_all()

    def analyze(self, frame: Frame) -> Result:
        """Find and classify the heads of one frame (the processing thread's work;
        public so tests and `bench` can run the exact same steps)."""
        stages: dict[str, float] = {}
        heads, inference_s = self.analyzer.analyze(frame.image, stages)
        now, mono = time.time(), time.monotonic()
        latency = max(0.0, now - frame.time)
        self.metrics.frame_processed(
            inference_s=inference_s, latency_s=latency, labels=[h.label for h in heads], now=mono,
            stages=stages,
        )
        height, width = frame.image.shape[:2]
        return Result(
            seq=0,  # set by _publish
            frame=frame.index,
            time=frame.time,
            heads=tuple(heads),
            width=width,
            height=height,
            latency_s=latency,
            inference_s=inference_s,
            published=now,
            published_mono=mono,
            fps=self.metrics.fps(mono),
            camera=self.capture.status,
            stages=stages,
        )

    def render(self, frame: Frame, result: Result) -> VideoFrame:
        """Draw a result onto its frame and encode the JPEG, once for every viewer
        (the render thread's work)."""
        t0 = time.perf_counter()
        drawn = annotate(frame.image, result.heads)
        t1 = time.perf_counter()
        jpeg = encode_jpeg(drawn, self.jpeg_quality)
        stages = {"draw": t1 - t0, "jpeg": time.perf_counter() - t1}
        self.metrics.frame_rendered(stages)
        return VideoFrame(
            seq=result.seq, jpeg=jpeg, mjpeg_part=mjpeg_part(jpeg),
            width=result.width, height=result.height, stages=stages,
        )

    def process(self, frame: Frame) -> tuple[Result, VideoFrame]:
        """Both halves for one frame in the calling thread (tests, `bench`)."""
        result = self.analyze(frame)
        return result, self.render(frame, result)

    def _publish(self, result: Result) -> Result:
        with self._result_cond:
            self._seq += 1
            self._result = dataclasses.replace(result, seq=self._seq)
            self._result_cond.notify_all()
            return self._result
