"""Video and event streams without a server thread per viewer.

A viewer's request is answered by a server thread as usual (token check,
capacity check); then the `StreamHub` takes the connection over: it writes the
response head itself and, from then on, ONE sender thread writes the shared
bytes the pipeline made once per frame (`VideoFrame.part(variant)`,
`Result.sse_event`) to every viewer's non-blocking socket, watched with
`selectors`. The server thread is free again within milliseconds, so any number
of open streams never makes /healthz, the API, the page or uploads wait.

    pipeline ──wait_for_video / wait_for_result──> two waiter threads
        ──(wake)──> sender thread: for each viewer whose last frame is out,
                    queue the newest frame (older ones are skipped) and send()
                    as much as the socket takes; the rest waits for EVENT_WRITE

A slow viewer only skips frames: nothing is copied per viewer (a queued chunk is
a view of the shared bytes), and a viewer is never sent half a frame and then a
newer one. A viewer whose socket accepts no byte for `viewer_timeout_s` while
data waits for it is stalled: it is disconnected (every stream kind alike). The
send buffer of a stream socket is kept small, so a stalled reader shows up as
"no progress" within seconds rather than after megabytes of kernel buffering.

Video viewers are registered with the pipeline per variant ("labels" drawn in,
or "clean" for the page's own overlay): a variant nobody watches is not encoded.

Taking a connection over works with waitress (the server `screwcam serve` runs):
its loop thread hands the socket over (`take_over_waitress`). Under any other
WSGI server the streams fall back to a generator per viewer (`iter_stream`).
"""

from __future__ import annotations

import json
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .metrics import Metrics
from .results import MJPEG_BOUNDARY

log = logging.getLogger(__name__)

KINDS = ("mjpeg", "sse")
CONTENT_TYPES = {
    "mjpeg": f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}",
    "sse": "text/event-stream",
}
NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}
#: kernel send buffer of a stream socket (Linux doubles it): a few video frames,
#: so a viewer that stops reading is noticed quickly
SNDBUF = {"mjpeg": 96 * 1024, "sse": 16 * 1024}
SSE_HELLO = b"retry: 2000\n\n"
#: seconds between camera-status events on every event stream (also a keep-alive)
STATUS_EVERY_S = 2.0
#: a waitress server thread waits at most this long for its loop to hand a socket over
HANDOVER_TIMEOUT_S = 2.0


def response_head(kind: str) -> bytes:
    headers = {"Content-Type": CONTENT_TYPES[kind], **NO_CACHE, "Connection": "close"}
    if kind == "sse":
        headers["X-Accel-Buffering"] = "no"
    lines = ["HTTP/1.1 200 OK", "Server: screwcam", *(f"{k}: {v}" for k, v in headers.items())]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head + SSE_HELLO if kind == "sse" else head


@dataclass(eq=False)
class _Viewer:
    sock: socket.socket
    kind: str
    peer: str
    variant: str = "labels"  # video variant (mjpeg viewers)
    chunks: deque[memoryview] = field(default_factory=deque)
    seq: int = 0  # seq of the last frame/result queued
    next_at: float = 0.0  # earliest time of the next video frame ([stream] max_fps)
    status_at: float = 0.0  # last status event
    waiting_since: float = 0.0  # data has been waiting since (0 = nothing waits)
    writing: bool = False  # registered for EVENT_WRITE
    closed: bool = False

    @property
    def pending(self) -> bool:
        return bool(self.chunks)


class StreamHub:
    """Every MJPEG and event-stream viewer, served by one sender thread.

    `reserve()` claims a viewer slot (False beyond `max_viewers`: answer 503),
    `attach(sock, kind, peer, early)` hands a connected socket over (the slot is
    then the viewer's), `release()` gives back a slot that was not used. The hub
    starts its threads with the first viewer and stops with `stop_event`."""

    def __init__(
        self,
        pipeline: Any,
        *,
        max_viewers: int,
        viewer_timeout_s: float,
        max_fps: float,
        metrics: Metrics | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.max_viewers = max_viewers
        self.viewer_timeout_s = viewer_timeout_s
        self.period = 1.0 / max_fps if max_fps > 0 else 0.0
        self.metrics = metrics or Metrics()
        self.stop_event = stop_event or threading.Event()
        self._lock = threading.Lock()
        self._slots = 0  # reserved + attached
        self._incoming: list[_Viewer] = []
        self._viewers: set[_Viewer] = set()
        self._video: Any = None
        self._result: Any = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._threads: list[threading.Thread] = []
        self.sent_bytes = 0
        self.stalled = 0

    # --- capacity ---------------------------------------------------------------
    def reserve(self) -> bool:
        with self._lock:
            if self._slots >= self.max_viewers or self.stop_event.is_set():
                return False
            self._slots += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._slots = max(0, self._slots - 1)

    @property
    def viewers(self) -> int:
        with self._lock:
            return len(self._viewers) + len(self._incoming)

    # --- taking viewers over ---------------------------------------------------------
    def attach(
        self,
        sock: socket.socket,
        kind: str,
        peer: str,
        early: bytes = b"",
        variant: str = "labels",
    ) -> None:
        """Serve `kind` on a connected socket whose request was read (its slot
        reserved); `early` = bytes owed to the client before our response head;
        `variant` = the video variant of an mjpeg viewer ("labels" or "clean")."""
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF[kind])
        except OSError:
            pass
        viewer = _Viewer(sock, kind, peer, variant)
        if kind == "mjpeg":
            self.pipeline.add_video_viewer(variant)
        for data in (early, response_head(kind)):
            if data:
                viewer.chunks.append(memoryview(data))
        viewer.waiting_since = time.monotonic()
        self.metrics.client_connected(kind)
        log.info("%s client %s connected", "video" if kind == "mjpeg" else "event", peer)
        with self._lock:
            self._incoming.append(viewer)
            self._start_locked()
        self._wake()

    def _start_locked(self) -> None:
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._run, name="stream-sender", daemon=True),
            threading.Thread(target=self._watch, args=("video",), name="stream-video", daemon=True),
            threading.Thread(
                target=self._watch, args=("result",), name="stream-events", daemon=True
            ),
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Close every viewer and end the threads (also happens on `stop_event`)."""
        self.stop_event.set()
        self._wake()
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))

    # --- waiter threads: new frames/results wake the sender ----------------------------
    def _watch(self, what: str) -> None:
        pipeline = self.pipeline
        previous = 0
        while not self.stop_event.is_set():
            if what == "video":  # any variant: viewers registered theirs on attach
                item = pipeline.wait_for_video(previous, timeout=1.0, variant=None)
            else:
                item = pipeline.wait_for_result(previous, timeout=1.0)
            if item is None:
                continue
            previous = item.seq
            if what == "video":
                self._video = item
            else:
                self._result = item
            if self._viewers or self._incoming:  # nobody watching: let the sender sleep
                self._wake()
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # buffer full: the sender is awake anyway
            pass

    # --- the sender thread -------------------------------------------------------
    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        status = b""
        status_at = 0.0
        try:
            while not self.stop_event.is_set():
                for key, mask in sel.select(self._select_timeout()):
                    viewer = key.data
                    if viewer is None:
                        self._drain_wake()
                        continue
                    if mask & selectors.EVENT_READ and not self._check_open(viewer):
                        self._close(sel, viewer, "closed")
                        continue
                    if mask & selectors.EVENT_WRITE:
                        self._flush(sel, viewer)
                with self._lock:
                    incoming, self._incoming = self._incoming, []
                    self._viewers.update(incoming)
                for viewer in incoming:
                    sel.register(viewer.sock, selectors.EVENT_READ, viewer)
                now = time.monotonic()
                if now - status_at >= STATUS_EVERY_S:
                    status_at = now
                    status = self._status_event()
                for viewer in list(self._viewers):
                    if viewer.pending:
                        if now - viewer.waiting_since > self.viewer_timeout_s:
                            self._stalled(sel, viewer, now)
                            continue
                    else:
                        self._queue_next(viewer, now, status, status_at)
                    if viewer.pending and not viewer.writing:
                        self._flush(sel, viewer)
        except Exception:
            log.exception("stream sender failed; closing every stream")
        finally:
            for viewer in list(self._viewers) + self._incoming:
                self._close(sel, viewer, "closed", quiet=True)
            sel.close()

    def _select_timeout(self) -> float:
        # Stalls are checked at least 4 times per timeout; rate-limited viewers
        # get their next frame on time.
        timeout = min(1.0, self.viewer_timeout_s / 4, STATUS_EVERY_S)
        if self.period:
            now = time.monotonic()
            video = self._video
            for viewer in self._viewers:
                if (
                    viewer.kind == "mjpeg"
                    and not viewer.pending
                    and video is not None
                    and video.seq > viewer.seq
                    and video.has(viewer.variant)
                ):
                    timeout = min(timeout, max(0.0, viewer.next_at - now))
        return timeout

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _status_event(self) -> bytes:
        payload = json.dumps(self.pipeline.status_json(), separators=(",", ":"))
        return f"event: status\ndata: {payload}\n\n".encode()

    def _queue_next(self, viewer: _Viewer, now: float, status: bytes, status_at: float) -> None:
        if viewer.kind == "mjpeg":
            video = self._video
            if video is not None and video.seq > viewer.seq and now >= viewer.next_at:
                viewer.seq = video.seq
                part = video.part(viewer.variant)
                if part is not None:  # None: rendered before this viewer came; skip it
                    viewer.next_at = now + self.period
                    viewer.chunks.append(memoryview(part))
        else:
            result = self._result
            if result is not None and result.seq > viewer.seq:
                viewer.seq = result.seq
                viewer.chunks.append(memoryview(result.sse_event))
            if status and viewer.status_at < status_at:
                viewer.status_at = status_at
                viewer.chunks.append(memoryview(status))
        if viewer.chunks:
            viewer.waiting_since = now

    def _flush(self, sel: selectors.BaseSelector, viewer: _Viewer) -> None:
        """Send what the socket takes; watch for writability while data waits."""
        sent = 0
        try:
            while viewer.chunks:
                chunk = viewer.chunks[0]
                n = viewer.sock.send(chunk)
                sent += n
                if n < len(chunk):
                    viewer.chunks[0] = chunk[n:]
                    break
                viewer.chunks.popleft()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(sel, viewer, "dropped")
            return
        if sent:
            self.sent_bytes += sent
            viewer.waiting_since = time.monotonic()
        want_write = bool(viewer.chunks)
        if want_write != viewer.writing:
            viewer.writing = want_write
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
            sel.modify(viewer.sock, events, viewer)

    @staticmethod
    def _check_open(viewer: _Viewer) -> bool:
        """A viewer's socket is readable: it closed (EOF) or sent something we ignore."""
        try:
            return bool(viewer.sock.recv(4096))
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def _stalled(self, sel: selectors.BaseSelector, viewer: _Viewer, now: float) -> None:
        log.warning(
            "viewer %s accepted no data for %.0f s; disconnecting it",
            viewer.peer,
            now - viewer.waiting_since,
        )
        self._close(sel, viewer, "dropped")
        # counted once it is gone: whoever sees the count sees the viewer closed
        self.stalled += 1
        self.metrics.client_stalled()

    def _close(
        self, sel: selectors.BaseSelector, viewer: _Viewer, how: str, quiet: bool = False
    ) -> None:
        if viewer.closed:
            return
        viewer.closed = True
        if viewer.kind == "mjpeg":
            self.pipeline.remove_video_viewer(viewer.variant)
        if viewer in self._viewers:
            self._viewers.discard(viewer)
            try:
                sel.unregister(viewer.sock)
            except (KeyError, ValueError):
                pass
        viewer.chunks.clear()
        try:
            viewer.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        viewer.sock.close()
        self.release()
        self.metrics.client_disconnected(viewer.kind, dropped=how == "dropped")
        if not quiet:
            log.info(
                "%s client %s %s", "video" if viewer.kind == "mjpeg" else "event", viewer.peer, how
            )


def take_over_waitress(environ: dict[str, Any]) -> tuple[socket.socket, bytes] | None:
    """Take this request's connection away from waitress: (socket, bytes still
    owed to the client from earlier responses on it), or None when not served
    by waitress. Runs the hand-over in waitress's loop thread, so nothing there
    touches the connection at the same time; afterwards waitress sees a closed
    client and writes nothing more to it."""
    check = environ.get("waitress.client_disconnected")
    channel = getattr(check, "__self__", None)
    trigger = getattr(getattr(channel, "server", None), "trigger", None)
    if channel is None or trigger is None or not hasattr(channel, "outbufs"):
        return None
    done = threading.Event()
    box: dict[str, Any] = {}
    lock = threading.Lock()

    def hand_over() -> None:
        try:
            if not channel.connected or channel.socket is None:
                return
            with channel.outbuf_lock:
                early = b"".join(buf.get() for buf in channel.outbufs if len(buf))
                sock = channel.socket.dup()
            channel.handle_close()  # closes waitress's descriptor; ours stays open
            with lock:
                if box.get("abandoned"):
                    sock.close()
                    return
                box["result"] = (sock, early)
        except Exception:
            log.exception("could not take over a stream connection")
        finally:
            done.set()

    trigger.pull_trigger(hand_over)
    done.wait(HANDOVER_TIMEOUT_S)
    with lock:
        box["abandoned"] = True
        return box.get("result")


class QuietHandover(logging.Filter):
    """Waitress logs 'Client disconnected while serving ...' for every connection
    taken over; that is expected, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client disconnected while serving")


def iter_stream(
    hub: StreamHub,
    kind: str,
    peer: str,
    stop: Callable[[], bool] | None = None,
    variant: str = "labels",
) -> Iterator[bytes]:
    """The generator fallback (a WSGI server we cannot take connections from):
    one thread per viewer, frames skipped when the viewer is slow."""
    pipeline, metrics = hub.pipeline, hub.metrics
    stopped = stop or hub.stop_event.is_set
    metrics.client_connected(kind)
    if kind == "mjpeg":
        pipeline.add_video_viewer(variant)
    previous, finished = 0, False
    try:
        if kind == "sse":
            yield SSE_HELLO
        last_status = 0.0
        while not stopped():
            if kind == "mjpeg":
                video = pipeline.wait_for_video(previous, timeout=1.0, variant=None)
                if video is None:
                    continue
                previous = video.seq
                part = video.part(variant)
                if part is None:
                    continue
                sent_at = time.monotonic()
                yield part
                if hub.period:
                    hub.stop_event.wait(max(0.0, hub.period - (time.monotonic() - sent_at)))
                continue
            result = pipeline.wait_for_result(previous, timeout=1.0)
            if result is not None:
                previous = result.seq
                yield result.sse_event
            now = time.monotonic()
            if result is None or now - last_status > STATUS_EVERY_S:
                last_status = now
                yield hub._status_event()
        finished = True
    finally:
        if kind == "mjpeg":
            pipeline.remove_video_viewer(variant)
        hub.release()
        metrics.client_disconnected(kind, dropped=not finished)
