"""The camera thread: reads one source, keeps only the newest frame (a 1-slot mailbox),
and survives camera failures by reopening with exponential backoff."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from screwcam.errors import CameraError
from screwcam.frames import Frame, Source

from .metrics import Metrics
from .results import CameraStatus

log = logging.getLogger(__name__)


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
            self._cond.wait_for(lambda: self._frame_seq != previous or self._stop.is_set(), timeout)
            if self._frame_seq == previous or self._frame is None:
                return None
            self._taken = True
            return self._frame_seq, self._frame
