"""The frame pipeline: one per camera, three threads.

    capture thread (camera.CaptureWorker) ──(1-slot mailbox, newest frame wins)──> processing thread
        find_heads -> preprocess_many -> ONE classifier call -> threshold
        -> tracker (track ids, voted labels, counting; optional)
        -> publish Result (the predictions) -> wake every waiter
        ──(1-slot mailbox, newest wins)──> render thread
        draw -> encode JPEG once -> publish VideoFrame -> wake every video viewer
        (per variant, only while someone watches it: "labels" = boxes and labels
        drawn in, "clean" = the frame as captured, for the page's own overlay)

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

State lives in instances; all three threads stop on one Event, and every wait has
a timeout, so `stop()` returns promptly. /healthz and the systemd watchdog follow the
policy in `health`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from screwcam.frames import Frame, Source

from .analyzer import Analyzer
from .camera import CaptureWorker
from .draw import annotate, encode_jpeg
from .health import WatchdogFeeder, health_report
from .metrics import Metrics
from .results import VARIANTS, CameraStatus, Result, VideoFrame, mjpeg_part
from .systemd_notify import Notifier
from .tracking import HeadTracker

log = logging.getLogger(__name__)

#: a `wait_for_video` call keeps its variant rendered this long (callers that do not
#: register as viewers: tests, bench)
ASKED_KEEP_S = 2.0


class Pipeline:
    """Capture, processing and render threads for one source; clients read `Result`s
    and `VideoFrame`s."""

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
        hung_read_s: float = 30.0,
        stale_after_s: float = 5.0,
        watchdog_every_s: float = 1.0,
        tracker: HeadTracker | None = None,
    ) -> None:
        self.analyzer = analyzer
        #: gives heads a track and a voted label and counts them (None = off)
        self.tracker = tracker
        self.watchdog_every_s = watchdog_every_s
        self.metrics = metrics or Metrics()
        self.notifier = notifier or Notifier(address="")
        self.jpeg_quality = jpeg_quality
        self.hung_read_s = hung_read_s
        self.stale_after_s = stale_after_s
        self.source_name = source_name
        self._stop = threading.Event()
        self._result_cond = threading.Condition()
        self._result: Result | None = None
        # the newest (raw frame, its result): a clean frame for snapshots and teaching
        self._raw: tuple[Frame, Result] | None = None
        self._seq = 0
        self._ready_sent = False
        self._watchdog = WatchdogFeeder(self.notifier, watchdog_every_s, hung_read_s)
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
        # who watches which video variant: registered viewers, and the last time a
        # wait_for_video caller asked for it; nothing watched = nothing drawn or encoded
        self._watch_lock = threading.Lock()
        self._watchers = dict.fromkeys(VARIANTS, 0)
        self._asked = dict.fromkeys(VARIANTS, -1e9)
        self._render_thread = threading.Thread(target=self._render_run, name="render", daemon=True)
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

    def latest_frame(self) -> tuple[Frame, Result] | None:
        """The newest analysed frame as captured (no drawings) with its result."""
        return self._raw

    def wait_for_result(self, previous_seq: int, timeout: float) -> Result | None:
        """The latest result if its seq is greater than `previous_seq`, waiting up
        to `timeout` s for one; None on timeout or stop. Pass the seq of the last
        result you got (0 at first) and you never get the same result twice."""
        with self._result_cond:
            self._result_cond.wait_for(
                lambda: (
                    (self._result is not None and self._result.seq > previous_seq)
                    or self._stop.is_set()
                ),
                timeout,
            )
            result = self._result
        if result is None or result.seq <= previous_seq:
            return None
        return result

    def latest_video(self) -> VideoFrame | None:
        return self._video

    def wait_for_video(
        self, previous_seq: int, timeout: float, variant: str | None = "labels"
    ) -> VideoFrame | None:
        """Like `wait_for_result`, for the encoded picture of the latest result.
        `variant` ("labels" or "clean") is rendered from now on for `ASKED_KEEP_S`
        and the frame returned has it; None = any new frame, asking for nothing
        (for the stream hub, whose viewers are registered with `add_video_viewer`)."""
        if variant is not None:
            self._ask(variant)

        def ready() -> bool:
            video = self._video
            return (
                video is not None
                and video.seq > previous_seq
                and (variant is None or video.has(variant))
            )

        with self._video_cond:
            self._video_cond.wait_for(lambda: ready() or self._stop.is_set(), timeout)
            video = self._video
        if video is None or video.seq <= previous_seq:
            return None
        if variant is not None and not video.has(variant):
            return None
        return video

    # --- who watches the video ------------------------------------------------
    def add_video_viewer(self, variant: str) -> None:
        """A viewer of `variant` came: render it for every frame until it goes."""
        _check_variant(variant)
        with self._watch_lock:
            self._watchers[variant] += 1

    def remove_video_viewer(self, variant: str) -> None:
        with self._watch_lock:
            self._watchers[variant] = max(0, self._watchers[variant] - 1)

    def _ask(self, variant: str) -> None:
        _check_variant(variant)
        with self._watch_lock:
            self._asked[variant] = time.monotonic()

    def wanted_variants(self) -> tuple[str, ...]:
        """The video variants someone watches right now (in `VARIANTS` order)."""
        now = time.monotonic()
        with self._watch_lock:
            return tuple(
                v for v in VARIANTS if self._watchers[v] > 0 or now - self._asked[v] < ASKED_KEEP_S
            )

    def camera_status(self) -> CameraStatus:
        return self.capture.status

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details) for /healthz."""
        result = self._result
        healthy, details = health_report(
            self.capture.status,
            None if result is None else result.published_mono,
            stopping=self.stopping,
            stale_after_s=self.stale_after_s,
            fps=self.metrics.fps(),
        )
        advice = getattr(self.analyzer, "advice", None)
        if advice:  # healthy still: heads are found, just not the small ones
            details["advice"] = advice
        return healthy, details

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
        self._watchdog.feed(self.capture.stalled_for())

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
                        frame.index,
                        self.processing_errors,
                    )
                continue
            published = self._publish(result, frame)
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
            variants = self.wanted_variants()
            if not variants:  # nobody watches: no drawing, no JPEG
                continue
            try:
                video = self.render(*item, variants=variants)
            except Exception:
                self.render_errors += 1
                if self.render_errors <= 3 or self.render_errors % 100 == 0:
                    log.exception(
                        "drawing frame %d failed (%d failures so far)",
                        item[0].index,
                        self.render_errors,
                    )
                continue
            with self._video_cond:
                self._video = video
                self._video_cond.notify_all()

    def analyze(self, frame: Frame) -> Result:
        """Find and classify the heads of one frame (the processing thread's work;
        public so tests and `bench` can run the exact same steps)."""
        stages: dict[str, float] = {}
        heads, inference_s = self.analyzer.analyze(frame.image, stages)
        height, width = frame.image.shape[:2]
        tracker = self.tracker
        if tracker is not None:
            t0 = time.perf_counter()
            heads, _ = tracker.update(heads, frame.time, (width, height))
            stages["track"] = time.perf_counter() - t0
        now, mono = time.time(), time.monotonic()
        latency = max(0.0, now - frame.time)
        self.metrics.frame_processed(
            inference_s=inference_s,
            latency_s=latency,
            labels=[h.label for h in heads],
            now=mono,
            stages=stages,
            tracks=None if tracker is None else tracker.active,
        )
        return Result(
            seq=0,  # set by _publish
            frame_index=frame.index,
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

    def set_analyzer(self, analyzer: Analyzer) -> None:
        """Use another analyzer from the next frame on (the stream goes on). To swap
        only the model, `analyzer.set_classifier(...)` is enough."""
        self.analyzer = analyzer

    def render(
        self, frame: Frame, result: Result, variants: tuple[str, ...] = ("labels",)
    ) -> VideoFrame:
        """Encode the `variants` of a result's frame, once for every viewer (the
        render thread's work): "labels" = boxes and labels drawn in, "clean" = the
        frame as captured."""
        stages: dict[str, float] = {}
        jpeg = clean = None
        if "labels" in variants:
            t0 = time.perf_counter()
            drawn = annotate(frame.image, result.heads)
            t1 = time.perf_counter()
            jpeg = encode_jpeg(drawn, self.jpeg_quality)
            stages["draw"], stages["jpeg"] = t1 - t0, time.perf_counter() - t1
        if "clean" in variants:
            t0 = time.perf_counter()
            clean = encode_jpeg(frame.image, self.jpeg_quality)
            stages["jpeg_clean"] = time.perf_counter() - t0
        self.metrics.frame_rendered(stages)
        return VideoFrame(
            seq=result.seq,
            jpeg=jpeg,
            mjpeg_part=None if jpeg is None else mjpeg_part(jpeg),
            width=result.width,
            height=result.height,
            stages=stages,
            clean_jpeg=clean,
            clean_part=None if clean is None else mjpeg_part(clean),
        )

    def process(
        self, frame: Frame, variants: tuple[str, ...] = ("labels",)
    ) -> tuple[Result, VideoFrame]:
        """Both halves for one frame in the calling thread (tests, `bench`)."""
        result = self.analyze(frame)
        return result, self.render(frame, result, variants)

    def _publish(self, result: Result, frame: Frame | None = None) -> Result:
        with self._result_cond:
            self._seq += 1
            self._result = dataclasses.replace(result, seq=self._seq)
            if frame is not None:
                self._raw = (frame, self._result)
            self._result_cond.notify_all()
            return self._result


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown video variant {variant!r}: use one of {', '.join(VARIANTS)}")
