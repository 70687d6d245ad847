"""Service metrics for GET /metrics, through `prometheus_client`.

One `Metrics` instance per service, with its own `CollectorRegistry` (no global
registry: tests run several services in one process). Every method is
thread-safe; `render()` returns the text exposition format. The few numbers the
code itself reads (frames captured / processed / dropped, the fps window) are
kept as plain attributes as well.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from screwcam.classes import CLASSES

#: upper bounds (seconds) of the latency histograms
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, fps_window: int = 30, labels: tuple[str, ...] = CLASSES) -> None:
        #: the bundle's labels: every one is reported, also at 0 (others when seen)
        self.labels = tuple(labels)
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.frames_captured = 0
        self.frames_processed = 0
        self.frames_dropped = 0
        self._times: deque[float] = deque(maxlen=fps_window)
        self.stage_totals: dict[str, tuple[float, int]] = {}  # step -> (seconds, frames)
        self._in_view_labels: set[str] = {*self.labels, "unknown"}
        self.clients: dict[str, int] = {"mjpeg": 0, "sse": 0}
        r = self.registry = CollectorRegistry(auto_describe=True)
        p = "screwcam_"
        Gauge(p + "fps", "Frames processed per second (recent window).", registry=r).set_function(
            self.fps
        )
        self._captured = Counter(p + "frames_captured", "Frames read from the camera.", registry=r)
        self._processed = Counter(
            p + "frames_processed", "Frames analysed and published.", registry=r
        )
        self._dropped = Counter(
            p + "frames_dropped",
            "Frames skipped because a newer one arrived before they were processed.",
            registry=r,
        )
        self._reconnects = Counter(
            p + "camera_reconnects",
            "Camera failures (open or read), each followed by a reopen after the backoff wait.",
            registry=r,
        )
        self._camera_up = Gauge(p + "camera_up", "1 while the camera delivers frames.", registry=r)
        self._inference = Histogram(
            p + "inference_seconds",
            "Time of one classifier call (all heads of a frame).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._latency = Histogram(
            p + "frame_latency_seconds",
            "From capture to published result (find heads, classify, track).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._stages = Summary(
            p + "stage_seconds",
            "Time per processing step of a frame (gray, find_heads, crop, classify, track, "
            "draw, jpeg, jpeg_clean).",
            ["stage"],
            registry=r,
        )
        self._clients_g = Gauge(
            p + "clients_connected", "Open video and event streams.", ["kind"], registry=r
        )
        for kind in self.clients:
            self._clients_g.labels(kind)
        self._clients_dropped = Counter(
            p + "clients_dropped",
            "Streams ended by the viewer going away (a failed write or a closed connection).",
            registry=r,
        )
        self._clients_stalled = Counter(
            p + "clients_stalled",
            "Viewers disconnected because they stopped reading (stream viewer_timeout_s).",
            registry=r,
        )
        self._in_view = Gauge(
            p + "heads_in_view", "Heads per class in the latest frame.", ["label"], registry=r
        )
        self._detected = Counter(
            p + "heads_detected", "Heads per class over all frames.", ["label"], registry=r
        )
        self._counted = Counter(
            p + "heads_counted",
            "Heads counted once per track, per voted class (since start; /api/counts can "
            "be reset, this cannot).",
            ["label"],
            registry=r,
        )
        for name in (*self.labels, "unknown"):
            self._in_view.labels(name)
            self._detected.labels(name)
        for name in self.labels:
            self._counted.labels(name)
        self._tracks = Gauge(p + "tracks_active", "Tracks seen recently.", registry=r)
        self._uploads = Counter(
            p + "uploads_classified", "Images classified via POST /api/classify.", registry=r
        )
        self._swaps = Counter(
            p + "model_swaps",
            "Models loaded while running (POST /api/model, SIGHUP).",
            ["result"],
            registry=r,
        )
        for result in ("ok", "refused"):
            self._swaps.labels(result)
        self._model = Info(p + "model", "The model bundle in use.", registry=r)
        Gauge(p + "uptime_seconds", "Seconds since the service started.", registry=r).set_function(
            lambda: time.monotonic() - self.started
        )

    # --- updates -------------------------------------------------------------
    def frame_captured(self) -> None:
        with self._lock:
            self.frames_captured += 1
        self._captured.inc()

    def frame_dropped(self, n: int = 1) -> None:
        with self._lock:
            self.frames_dropped += n
        self._dropped.inc(n)

    def reconnect(self) -> None:
        self._reconnects.inc()

    def set_camera_up(self, up: bool) -> None:
        self._camera_up.set(int(up))

    def frame_processed(
        self,
        *,
        inference_s: float,
        latency_s: float,
        labels: list[str],
        now: float,
        stages: dict[str, float] | None = None,
        tracks: int | None = None,
    ) -> None:
        with self._lock:
            self.frames_processed += 1
            self._times.append(now)
        self._processed.inc()
        self._observe_stages(stages or {})
        self._inference.observe(inference_s)
        self._latency.observe(latency_s)
        with self._lock:
            shown = self._in_view_labels = {*self._in_view_labels, *labels}
        counts = dict.fromkeys(shown, 0)
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        for label, n in counts.items():
            self._in_view.labels(label).set(n)
            if n:
                self._detected.labels(label).inc(n)
        if tracks is not None:
            self._tracks.set(tracks)

    def frame_rendered(self, stages: dict[str, float]) -> None:
        """Time of the render thread's steps (draw, jpeg) for one frame."""
        self._observe_stages(stages)

    def _observe_stages(self, stages: dict[str, float]) -> None:
        with self._lock:
            for name, seconds in stages.items():
                total, n = self.stage_totals.get(name, (0.0, 0))
                self.stage_totals[name] = (total + seconds, n + 1)
        for name, seconds in stages.items():
            self._stages.labels(name).observe(seconds)

    def head_counted(self, label: str) -> None:
        self._counted.labels(label).inc()

    def client_connected(self, kind: str) -> None:
        with self._lock:
            self.clients[kind] = self.clients.get(kind, 0) + 1
            self._clients_g.labels(kind).set(self.clients[kind])

    def client_disconnected(self, kind: str, *, dropped: bool = False) -> None:
        with self._lock:
            self.clients[kind] = max(0, self.clients.get(kind, 0) - 1)
            self._clients_g.labels(kind).set(self.clients[kind])
        if dropped:
            self._clients_dropped.inc()

    def client_stalled(self) -> None:
        self._clients_stalled.inc()

    def upload_classified(self) -> None:
        self._uploads.inc()

    def model_loaded(self, info: dict[str, object], *, swapped: bool = False) -> None:
        self._model.info({k: str(v) for k, v in info.items() if v is not None})
        if swapped:
            self._swaps.labels("ok").inc()

    def model_refused(self) -> None:
        self._swaps.labels("refused").inc()

    def watch_mqtt(self, state: Callable[[], dict[str, float]]) -> None:
        """Export the MQTT publisher's state (connected, queued, published, dropped,
        connects), read at each scrape."""
        self.registry.register(_MqttCollector(state))

    # --- reads -----------------------------------------------------------------
    def fps(self, now: float | None = None) -> float:
        """Processed frames per second over the recent window (0 when stalled);
        times are time.monotonic() values."""
        with self._lock:
            times = list(self._times)
        if len(times) < 2:
            return 0.0
        now = time.monotonic() if now is None else now
        span = times[-1] - times[0]
        if span <= 0 or now - times[-1] > 2.0:
            return 0.0
        return (len(times) - 1) / span

    def client_count(self) -> int:
        with self._lock:
            return sum(self.clients.values())

    def render(self) -> str:
        return generate_latest(self.registry).decode()


class _MqttCollector:
    """The publisher's own numbers, as metrics (read when scraped)."""

    def __init__(self, state: Callable[[], dict[str, float]]) -> None:
        self._state = state

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        s = self._state()
        p = "screwcam_mqtt_"
        yield GaugeMetricFamily(
            p + "connected", "1 while connected to the MQTT broker.", value=s["connected"]
        )
        yield GaugeMetricFamily(
            p + "queue_length",
            "Counted-head events not yet acknowledged by the broker (waiting or in flight).",
            value=s["queued"],
        )
        yield CounterMetricFamily(
            p + "events_published",
            "Counted-head events acknowledged by the broker.",
            value=s["published"],
        )
        yield CounterMetricFamily(
            p + "events_dropped",
            "Events dropped because the queue was full while the broker was away.",
            value=s["dropped"],
        )
        yield CounterMetricFamily(
            p + "connects", "Connections made to the broker (1 + reconnects).", value=s["connects"]
        )
