"""Health policy: when the service reports itself healthy (/healthz), and when it
stops feeding systemd's watchdog so that systemd restarts it."""

from __future__ import annotations

import logging
import time
from typing import Any

from .results import CameraStatus
from .systemd_notify import Notifier

log = logging.getLogger(__name__)


def health_report(
    status: CameraStatus,
    published_mono: float | None,
    *,
    stopping: bool,
    stale_after_s: float,
    fps: float,
) -> tuple[bool, dict[str, Any]]:
    """(healthy, details): healthy while the camera is up and a result was published
    within `stale_after_s` (on the monotonic clock) and the service is not stopping."""
    age = None if published_mono is None else max(0.0, time.monotonic() - published_mono)
    fresh = age is not None and age <= stale_after_s
    healthy = status.up and fresh and not stopping
    if stopping:
        reason = "stopping"
    elif not status.up:
        reason = f"camera {status.state}: {status.message}".rstrip(": ")
    elif not fresh:
        reason = "no frame processed yet" if age is None else f"no frame processed for {age:.1f} s"
    else:
        reason = ""
    return healthy, {
        "status": "ok" if healthy else "unavailable",
        "reason": reason,
        "camera": status.to_json(),
        "last_frame_age_s": None if age is None else round(age, 3),
        "fps": round(fps, 2),
    }


class WatchdogFeeder:
    """Feeds systemd's watchdog at most every `every_s` seconds, unless a camera call
    has hung for more than `hung_after_s`: such a read will not come back, so the
    feeding stops and systemd restarts the service."""

    def __init__(self, notifier: Notifier, every_s: float, hung_after_s: float) -> None:
        self.notifier = notifier
        self.every_s = every_s
        self.hung_after_s = hung_after_s
        self._last = 0.0

    def feed(self, camera_blocked_s: float) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        if camera_blocked_s > self.hung_after_s:
            if now - self._last > 10.0:
                log.error(
                    "camera read hung for %.0f s; no longer feeding the watchdog", camera_blocked_s
                )
                self._last = now
            return
        self._last = now
        self.notifier.watchdog()
