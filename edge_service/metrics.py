"""Service metrics in the Prometheus text format, written by hand (no dependency).

One `Metrics` instance per service; every method is thread-safe. `render()`
returns the text for GET /metrics.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import deque

#: upper bounds (seconds) of the latency histograms
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # last = +Inf only
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{le="+Inf"}} {self.n}')
        out.append(f"{name}_sum {self.total:.6f}")
        out.append(f"{name}_count {self.n}")
        return out


class Metrics:
    def __init__(self, fps_window: int = 30, labels: tuple[str, ...] = ()) -> None:
        #: the bundle's labels (every one is reported, also at 0); others seen are added
        self.labels = tuple(labels)
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.frames_captured = 0
        self.frames_processed = 0
        self.frames_dropped = 0
        self.camera_reconnects = 0
        self.camera_up = 0
        self.inference = Histogram()
        self.latency = Histogram()
        self.clients: dict[str, int] = {"mjpeg": 0, "sse": 0}
        self.clients_dropped = 0
        self.clients_stalled = 0
        self.heads_in_view: dict[str, int] = {}
        self.heads_total: dict[str, int] = {}
        self.uploads = 0
        self.stage_totals: dict[str, tuple[float, int]] = {}  # step -> (seconds, frames)
        self._times: deque[float] = deque(maxlen=fps_window)

    # --- updates -------------------------------------------------------------

    def _label_names(self) -> list[str]:
        seen = [n for n in sorted({*self.heads_total, *self.heads_in_view}) if n != "unknown"]
        return [*self.labels, *(n for n in seen if n not in self.labels), "unknown"]

    def frame_captured(self) -> None:
        with self._lock:
            self.frames_captured += 1

    def frame_dropped(self, n: int = 1) -> None:
        with self._lock:
            self.frames_dropped += n

    def reconnect(self) -> None:
        with self._lock:
            self.camera_reconnects += 1

    def set_camera_up(self, up: bool) -> None:
        with self._lock:
            self.camera_up = int(up)

    def frame_processed(
        self,
        *,
        inference_s: float,
        latency_s: float,
        labels: list[str],
        now: float,
        stages: dict[str, float] | None = None,
    ) -> None:
        with self._lock:
            self.frames_processed += 1
            for name, seconds in (stages or {}).items():
                total, n = self.stage_totals.get(name, (0.0, 0))
                self.stage_totals[name] = (total + seconds, n + 1)
            self.inference.observe(inference_s)
            self.latency.observe(latency_s)
            self._times.append(now)
            counts: dict[str, int] = {}
            for label in labels:
                counts[label] = counts.get(label, 0) + 1
                self.heads_total[label] = self.heads_total.get(label, 0) + 1
            self.heads_in_view = counts

    def frame_rendered(self, stages: dict[str, float]) -> None:
        """Time of the render thread's steps (draw, jpeg) for one frame."""
        with self._lock:
            for name, seconds in stages.items():
                total, n = self.stage_totals.get(name, (0.0, 0))
                self.stage_totals[name] = (total + seconds, n + 1)

    def client_connected(self, kind: str) -> None:
        with self._lock:
            self.clients[kind] = self.clients.get(kind, 0) + 1

    def client_disconnected(self, kind: str, *, dropped: bool = False) -> None:
        with self._lock:
            self.clients[kind] = max(0, self.clients.get(kind, 0) - 1)
            if dropped:
                self.clients_dropped += 1

    def client_stalled(self) -> None:
        with self._lock:
            self.clients_stalled += 1

    def upload_classified(self) -> None:
        with self._lock:
            self.uploads += 1

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
        fps = self.fps()
        with self._lock:
            out = [
                "# HELP screwcam_fps Frames processed per second (recent window).",
                "# TYPE screwcam_fps gauge",
                f"screwcam_fps {fps:.3f}",
                "# HELP screwcam_frames_captured_total Frames read from the camera.",
                "# TYPE screwcam_frames_captured_total counter",
                f"screwcam_frames_captured_total {self.frames_captured}",
                "# HELP screwcam_frames_processed_total Frames analysed and published.",
                "# TYPE screwcam_frames_processed_total counter",
                f"screwcam_frames_processed_total {self.frames_processed}",
                "# HELP screwcam_frames_dropped_total Frames skipped because a newer one "
                "arrived before they were processed.",
                "# TYPE screwcam_frames_dropped_total counter",
                f"screwcam_frames_dropped_total {self.frames_dropped}",
                "# HELP screwcam_camera_reconnects_total Camera failures (open or read), each "
                "followed by a reopen after the backoff wait.",
                "# TYPE screwcam_camera_reconnects_total counter",
                f"screwcam_camera_reconnects_total {self.camera_reconnects}",
                "# HELP screwcam_camera_up 1 while the camera delivers frames.",
                "# TYPE screwcam_camera_up gauge",
                f"screwcam_camera_up {self.camera_up}",
                "# HELP screwcam_inference_seconds Time of one classifier call (all heads "
                "of a frame).",
                "# TYPE screwcam_inference_seconds histogram",
                *self.inference.lines("screwcam_inference_seconds"),
                "# HELP screwcam_frame_latency_seconds From capture to published result "
                "(find heads, classify, draw, encode).",
                "# TYPE screwcam_frame_latency_seconds histogram",
                *self.latency.lines("screwcam_frame_latency_seconds"),
                "# HELP screwcam_stage_seconds Time per processing step of a frame (gray, "
                "find_heads, crop, classify, draw, jpeg).",
                "# TYPE screwcam_stage_seconds summary",
                *(
                    line
                    for name, (total, n) in self.stage_totals.items()
                    for line in (
                        f'screwcam_stage_seconds_sum{{stage="{name}"}} {total:.6f}',
                        f'screwcam_stage_seconds_count{{stage="{name}"}} {n}',
                    )
                ),
                "# HELP screwcam_clients_connected Open video and event streams.",
                "# TYPE screwcam_clients_connected gauge",
                *(
                    f'screwcam_clients_connected{{kind="{k}"}} {v}'
                    for k, v in sorted(self.clients.items())
                ),
                "# HELP screwcam_clients_dropped_total Streams ended by the viewer going away "
                "(a failed write or a closed connection).",
                "# TYPE screwcam_clients_dropped_total counter",
                f"screwcam_clients_dropped_total {self.clients_dropped}",
                "# HELP screwcam_clients_stalled_total Viewers disconnected because they "
                "stopped reading (stream viewer_timeout_s).",
                "# TYPE screwcam_clients_stalled_total counter",
                f"screwcam_clients_stalled_total {self.clients_stalled}",
                "# HELP screwcam_heads_in_view Heads per class in the latest frame.",
                "# TYPE screwcam_heads_in_view gauge",
                *(
                    f'screwcam_heads_in_view{{label="{name}"}} {self.heads_in_view.get(name, 0)}'
                    for name in self._label_names()
                ),
                "# HELP screwcam_heads_detected_total Heads per class over all frames.",
                "# TYPE screwcam_heads_detected_total counter",
                *(
                    f'screwcam_heads_detected_total{{label="{name}"}} '
                    f"{self.heads_total.get(name, 0)}"
                    for name in self._label_names()
                ),
                "# HELP screwcam_uploads_classified_total Images classified via "
                "POST /api/classify.",
                "# TYPE screwcam_uploads_classified_total counter",
                f"screwcam_uploads_classified_total {self.uploads}",
                "# HELP screwcam_uptime_seconds Seconds since the service started.",
                "# TYPE screwcam_uptime_seconds gauge",
                f"screwcam_uptime_seconds {time.monotonic() - self.started:.1f}",
            ]
        return "\n".join(out) + "\n"
