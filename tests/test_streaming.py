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


def test_only_watched_video_variants_are_encoded(model_dir) -> None:
    app, pipeline = make_app(model_dir, stream={"max_fps": 0.0})
    hub: StreamHub = app.extensions["screwcam.streams"]
    stage_totals = pipeline.metrics.stage_totals

    def encoded(stage: str) -> int:
        return stage_totals.get(stage, (0.0, 0))[1]

    def encodings_during(seconds: float) -> tuple[int, int]:
        before = encoded("jpeg"), encoded("jpeg_clean")
        time.sleep(seconds)
        return encoded("jpeg") - before[0], encoded("jpeg_clean") - before[1]

    theirs = None
    try:
        assert pipeline.wait_for_result(0, 10.0) is not None
        analysed = pipeline.metrics.frames_processed
        assert encodings_during(1.0) == (0, 0)  # nobody watches: nothing is encoded
        assert pipeline.metrics.frames_processed > analysed  # while frames are analysed
        assert hub.reserve()
        ours, theirs = socket.socketpair()
        hub.attach(ours, "mjpeg", "test", variant="clean")
        data = _read_until(theirs, b"--frame\r\n", 3)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        labels, clean = encodings_during(1.0)
        assert labels == 0 and clean > 0, (labels, clean)
        assert pipeline.latest_video().jpeg is None
        theirs.close()  # the viewer goes: the clean variant stops too
        assert _wait(lambda: hub.viewers == 0)
        time.sleep(0.3)  # a frame being encoded as the viewer left
        assert encodings_during(1.0) == (0, 0)
        # a caller of wait_for_video gets its variant without registering
        video = pipeline.wait_for_video(0, 10.0, variant="labels")
        assert video is not None and video.jpeg is not None and video.clean_jpeg is None
    finally:
        pipeline.stop()
        hub.stop()
        if theirs is not None:
            theirs.close()


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
