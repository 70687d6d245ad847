"""Keeping the service's memory near its idle size after a burst of load.

glibc gives every thread that allocates under contention its own malloc arena
(up to 8 per core) and keeps freed memory in them: after a load of uploads and
requests the process stays at its peak size. Two arenas are plenty for a
service whose heavy lifting (LiteRT, OpenCV) runs in a few threads, and
`malloc_trim` hands the free pages of every arena back to the kernel. On a C
library without these calls (musl, macOS) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(count: int = 2) -> bool:
    """At most `count` malloc arenas from now on (like MALLOC_ARENA_MAX)."""
    libc = _libc()
    return bool(libc and libc.mallopt(_M_ARENA_MAX, count) == 1)


def trim() -> bool:
    """Give free heap pages back to the kernel; True if any were."""
    libc = _libc()
    return bool(libc and libc.malloc_trim(0))


class Trimmer:
    """Trims the heap every `every_s` seconds until `stop` is set (a fraction of a
    millisecond each time when there is nothing to give back)."""

    def __init__(self, stop: threading.Event, every_s: float = 5.0) -> None:
        self._stop = stop
        self.every_s = every_s
        self._libc = _libc()
        self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)

    def start(self) -> Trimmer:
        if self._libc is not None:
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self._libc.malloc_trim(0)  # type: ignore[union-attr]
            except Exception:  # never fatal: memory is just not given back
                log.exception("malloc_trim failed")
                return
