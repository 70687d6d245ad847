"""The stream hub in-process: a real pipeline (demo camera, real bundle) and real
sockets (socketpairs), without a web server; and the generator fallback the app
uses under a server it cannot take connections from (Flask's test client)."""

from __future__ import annotations

import socket
import time

from conftest import make_app

from screwcam.edge_service.streaming import StreamHub


def _read_until(sock: socket.socket, needle: bytes, limit: int, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while data.count(needle) < limit:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(data)} bytes"
        data += chunk
    return data


def test_one_sender_feeds_many_viewers_and_cuts_a_stalled_one(model_dir) -> None:
    app, pipeline = make_app(model_dir, stream={"viewer_timeout_s": 1.0, "max_fps": 0.0})
    hub: StreamHub = app.extensions["screwcam.streams"]
    pairs = []
    try:
        assert pipeline.wait_for_result(0, 10.0) is not None
        for kind in ("mjpeg",) * 5 + ("sse",) * 2:
            assert hub.reserve()
            ours, theirs = socket.socketpair()
            hub.attach(ours, kind, "test")
            pairs.append((kind, theirs))
        for kind, theirs in pairs:
            needle = b"--frame\r\n" if kind == "mjpeg" else b"\ndata: "
            data = _read_until(theirs, needle, 3)
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        # a viewer that stops reading is cut after viewer_timeout_s without progress
        stalled = pairs[0][1]
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and hub.stalled == 0:
            for _, theirs in pairs[1:]:  # the others keep reading
                theirs.settimeout(0.05)
                try:
                    theirs.recv(1 << 20)
                except TimeoutError:
                    pass
        assert hub.stalled == 1
        assert pipeline.metrics.clients["mjpeg"] == 4
        # capacity: slots come back when viewers go
        assert hub.max_viewers == 64
    finally:
        pipeline.stop()
        hub.stop()
        for _, theirs in pairs:
            theirs.close()
    assert pipeline.metrics.client_count() == 0


def test_viewer_capacity_is_a_count_of_slots(model_dir) -> None:
    app, pipeline = make_app(model_dir, stream={"max_viewers": 2})
    hub: StreamHub = app.extensions["screwcam.streams"]
    try:
        assert hub.reserve() and hub.reserve()
        assert not hub.reserve()
        hub.release()
        assert hub.reserve()
    finally:
        pipeline.stop()


def test_the_generator_fallback_streams_under_a_test_client(client) -> None:
    resp = client.get("/stream.mjpg", buffered=False)
    assert resp.status_code == 200
    assert resp.mimetype == "multipart/x-mixed-replace"
    first = next(iter(resp.response))
    assert first.startswith(b"--frame\r\nContent-Type: image/jpeg")
    resp.close()
    events = client.get("/api/events", buffered=False)
    assert events.mimetype == "text/event-stream"
    assert next(iter(events.response)) == b"retry: 2000\n\n"
    events.close()
