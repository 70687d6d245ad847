"""The web app: page, MJPEG stream, event stream, JSON API, health and metrics.

`create_app(config, pipeline)` builds a Flask app around a running (or not yet
started) `Pipeline`; nothing starts at import time. Streams read the pipeline's
latest result with a timeout, so they skip frames when a client is slow and end
promptly when the pipeline stops. Every error, 4xx or 5xx, is JSON.
"""

from __future__ import annotations

import hmac
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from screwcam.classes import ENGLISH

from .analyzer import Analyzer
from .config import Config
from .draw import color_hex
from .pipeline import Pipeline
from .results import MJPEG_BOUNDARY
from .upload import UploadError, decode_upload

log = logging.getLogger(__name__)

# Endpoints that never need the token: the health check (for systemd, load
# balancers and monitoring) and the page's own static files.
_OPEN_ENDPOINTS = {"healthz", "static"}
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class StallGuard:
    """Disconnects viewers that stopped reading.

    A stream's server thread blocks once the viewer's socket and the server's
    output buffer are full (a phone asleep with the page open, a stuck client).
    Each stream marks itself busy while a chunk is being handed to the server;
    when that lasts longer than `limit_s`, this guard closes the connection from
    the server's own loop, which wakes the thread, ends the stream and frees it.
    Its thread starts with the first stream and ends with the pipeline.
    """

    def __init__(self, stop: threading.Event, limit_s: float, on_stalled: Callable[[], None]):
        self._stop = stop
        self.limit_s = limit_s
        self._on_stalled = on_stalled
        self._lock = threading.Lock()
        self._busy: dict[int, tuple[float, Callable[[], None], str]] = {}
        self._thread: threading.Thread | None = None

    @staticmethod
    def closer_for(environ: dict[str, Any]) -> Callable[[], None] | None:
        """A function closing this request's connection in waitress's loop thread
        (None under another server: then stalled viewers are not cut off)."""
        check = environ.get("waitress.client_disconnected")
        channel = getattr(check, "__self__", None)
        trigger = getattr(getattr(channel, "server", None), "trigger", None)
        if channel is None or trigger is None or not hasattr(channel, "handle_close"):
            return None

        def close() -> None:
            if channel.connected:
                channel.handle_close()

        return lambda: trigger.pull_trigger(close)

    def busy(self, key: int, closer: Callable[[], None] | None, peer: str) -> None:
        if closer is None:
            return
        with self._lock:
            self._busy[key] = (time.monotonic(), closer, peer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stall-guard", daemon=True)
                self._thread.start()

    def done(self, key: int) -> None:
        with self._lock:
            self._busy.pop(key, None)

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.limit_s / 4)):
            now = time.monotonic()
            with self._lock:
                stalled = [(k, v) for k, v in self._busy.items() if now - v[0] > self.limit_s]
                for key, _ in stalled:
                    del self._busy[key]
            for _, (since, closer, peer) in stalled:
                log.warning(
                    "viewer %s accepted no data for %.0f s; disconnecting it", peer, now - since
                )
                self._on_stalled()
                try:
                    closer()
                except Exception:
                    log.exception("could not disconnect viewer %s", peer)


def create_app(
    config: Config,
    pipeline: Pipeline,
    *,
    upload_analyzer: Analyzer | None = None,
    model_info: dict[str, Any] | None = None,
) -> Flask:
    """The Flask app serving `pipeline`. `upload_analyzer` classifies uploads
    (its own interpreter); without it uploads share the pipeline's analyzer,
    whose lock keeps the interpreter single-threaded."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_upload_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    token = config.token()
    analyzer = upload_analyzer or pipeline.analyzer
    model = dict(model_info or {})
    stream_period = 1.0 / config.stream.max_fps if config.stream.max_fps > 0 else 0.0
    stop = pipeline.stop_event
    metrics = pipeline.metrics
    guard = StallGuard(stop, config.stream.viewer_timeout_s, metrics.client_stalled)
    stream_ids = itertools.count(1)

    # --- access token -----------------------------------------------------------
    def _given_token() -> str:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return request.args.get("token", "")

    @app.before_request
    def _check_token() -> Any:
        if not token or request.endpoint in _OPEN_ENDPOINTS:
            return None
        changing = request.method not in _SAFE_METHODS
        if not changing and not config.server.protect_read_only:
            return None
        given = _given_token()
        if given and hmac.compare_digest(given.encode(), token.encode()):
            return None
        return _error(
            401,
            "unauthorized",
            "this request needs the access token: send 'Authorization: Bearer <token>' "
            "(or ?token=<token>)",
            headers={"WWW-Authenticate": 'Bearer realm="screwcam"'},
        )

    # --- errors: always JSON ------------------------------------------------------
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        message = exc.description or exc.name
        if code == 413:
            message = (
                f"upload too large: at most {config.server.max_upload_bytes} bytes are "
                "accepted ([server] max_upload_bytes)"
            )
        return _error(code, exc.name.lower().replace(" ", "_"), message)

    @app.errorhandler(Exception)
    def _internal_error(exc: Exception) -> Response:
        log.exception("unhandled error for %s %s", request.method, request.path)
        return _error(500, "internal_error", f"internal error: {type(exc).__name__}")

    # --- page -----------------------------------------------------------------------
    @app.get("/")
    def index() -> str:
        classes = [  # the bundle's labels, in its output order
            {"name": name, "en": ENGLISH.get(name, name), "color": color_hex(name)}
            for name in pipeline.analyzer.labels
        ]
        classes.append({"name": "unknown", "en": "unknown", "color": color_hex("unknown")})
        return render_template(
            "index.html",
            classes=classes,
            model=model,
            source=pipeline.source_name,
            threshold=config.model.confidence_threshold,
        )

    # --- streams ----------------------------------------------------------------------
    @app.get("/stream.mjpg")
    def stream() -> Response:
        peer = request.remote_addr or "?"
        return Response(
            _mjpeg(peer, StallGuard.closer_for(request.environ)),
            mimetype=f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}",
            headers=_no_cache(),
        )

    def _mjpeg(peer: str, closer: Callable[[], None] | None) -> Iterator[bytes]:
        metrics.client_connected("mjpeg")
        log.info("video client %s connected", peer)
        previous, finished, key = 0, False, next(stream_ids)
        try:
            while not stop.is_set():
                video = pipeline.wait_for_video(previous, timeout=1.0)
                if video is None:
                    continue
                previous = video.seq
                sent_at = time.monotonic()
                guard.busy(key, closer, peer)
                yield video.mjpeg_part
                guard.done(key)
                if stream_period:  # at most max_fps for this viewer
                    stop.wait(max(0.0, stream_period - (time.monotonic() - sent_at)))
            finished = True
        finally:
            # GeneratorExit here means the server gave up on the client (its
            # socket write failed or it disconnected): drop it, nothing else.
            guard.done(key)
            metrics.client_disconnected("mjpeg", dropped=not finished)
            log.info("video client %s %s", peer, "closed" if finished else "dropped")

    @app.get("/api/events")
    def events() -> Response:
        peer = request.remote_addr or "?"
        headers = _no_cache()
        headers["X-Accel-Buffering"] = "no"
        closer = StallGuard.closer_for(request.environ)
        return Response(_sse(peer, closer), mimetype="text/event-stream", headers=headers)

    def _sse(peer: str, closer: Callable[[], None] | None) -> Iterator[bytes]:
        metrics.client_connected("sse")
        previous, finished, key = 0, False, next(stream_ids)
        try:
            yield b"retry: 2000\n\n"
            last_status = 0.0
            while not stop.is_set():
                result = pipeline.wait_for_result(previous, timeout=1.0)
                if result is not None:
                    previous = result.seq
                    guard.busy(key, closer, peer)
                    yield result.sse_event
                    guard.done(key)
                now = time.monotonic()
                if result is None or now - last_status > 2.0:
                    # Camera state even while no frames arrive (and a keep-alive).
                    last_status = now
                    payload = json.dumps(pipeline.status_json(), separators=(",", ":"))
                    yield f"event: status\ndata: {payload}\n\n".encode()
            finished = True
        finally:
            guard.done(key)
            metrics.client_disconnected("sse", dropped=not finished)
            log.debug("event client %s %s", peer, "closed" if finished else "dropped")

    # --- JSON API ---------------------------------------------------------------------
    @app.get("/api/predictions")
    def predictions() -> Response:
        result = pipeline.latest()
        if result is None:
            return _error(
                503,
                "no_frame_yet",
                "no frame has been processed yet; try again",
                extra=pipeline.status_json(),
            )
        return Response(result.json_text, mimetype="application/json")

    @app.post("/api/classify")
    def classify() -> Response:
        if "image" in request.files:
            data = request.files["image"].read()
        elif request.files:
            return _error(400, "bad_request", "send the image in the multipart field 'image'")
        else:
            data = request.get_data(cache=False)
        try:
            image = decode_upload(data, config.server.max_upload_pixels)
        except UploadError as exc:
            return _error(exc.status, "bad_image", str(exc))
        heads, inference_s = analyzer.analyze(image)
        metrics.upload_classified()
        return jsonify(
            {
                "seq": 0,
                "frame": 0,
                "time": round(time.time(), 3),
                "heads": [h.to_json() for h in heads],
                "size": [int(image.shape[1]), int(image.shape[0])],
                "inference_ms": round(inference_s * 1000.0, 2),
            }
        )

    @app.get("/healthz")
    def healthz() -> Response:
        healthy, details = pipeline.health()
        details["model"] = model
        response = jsonify(details)
        response.status_code = 200 if healthy else 503
        response.headers.update(_no_cache())
        return response

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), mimetype="text/plain; version=0.0.4")

    return app


def _no_cache() -> dict[str, str]:
    return {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


def _error(
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body = {"error": code, "message": message, **(extra or {})}
    response = jsonify(body)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response
