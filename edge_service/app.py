"""The web app: page, MJPEG stream, event stream, JSON API, health and metrics.

`create_app(config, pipeline)` builds a Flask app around a running (or not yet
started) `Pipeline`; nothing starts at import time. A stream request is checked
here (token, viewer capacity: 503 beyond) and then handed to the `StreamHub`
(streaming.py), whose one sender thread writes every viewer, so streams never
hold a server thread. Uploads are decoded within the device's memory and at most
`max_concurrent_uploads` at once (upload.py). Every error, 4xx or 5xx, is JSON.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from screwcam.classes import ENGLISH

from .analyzer import Analyzer
from .config import Config
from .draw import color_hex
from .metrics import CONTENT_TYPE
from .pipeline import Pipeline
from .streaming import CONTENT_TYPES, NO_CACHE, StreamHub, iter_stream, take_over_waitress
from .upload import UploadError, UploadGate, decode_upload

log = logging.getLogger(__name__)

# Endpoints that never need the token: the health check (for systemd, load
# balancers and monitoring) and the page's own static files.
_OPEN_ENDPOINTS = {"healthz", "static"}
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_YES = {"1", "true", "yes", "on", ""}
_NO = {"0", "false", "no", "off"}


def create_app(
    config: Config,
    pipeline: Pipeline,
    *,
    upload_analyzer: Analyzer | None = None,
    model_info: dict[str, Any] | None = None,
    health_extras: Callable[[], dict[str, Any]] | None = None,
) -> Flask:
    """The Flask app serving `pipeline`. `upload_analyzer` classifies uploads
    (its own interpreter); without it uploads share the pipeline's analyzer,
    whose lock keeps the interpreter single-threaded. `model_info` is read live
    (the page and /healthz show a swapped model); `health_extras` adds sections
    to /healthz (tracking, MQTT)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_upload_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    token = config.token()
    analyzer = upload_analyzer or pipeline.analyzer
    model = model_info if model_info is not None else {}  # live: a model swap updates it
    stop = pipeline.stop_event
    metrics = pipeline.metrics
    hub = StreamHub(
        pipeline,
        max_viewers=config.stream.max_viewers,
        viewer_timeout_s=config.stream.viewer_timeout_s,
        max_fps=config.stream.max_fps,
        metrics=metrics,
        stop_event=stop,
    )
    app.extensions["screwcam.streams"] = hub
    gate = UploadGate(config.server.max_concurrent_uploads)

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
            teach="teach" in app.blueprints,
            tracking=config.tracking.enabled,
        )

    # --- streams: served by the hub's one sender thread (see streaming.py) ---------
    @app.get("/stream.mjpg")
    def stream() -> Response:
        # ?labels=0: the frames as captured (the page draws its own labels over them);
        # without it boxes and labels are drawn in (VLC, Home Assistant, ...)
        value = request.args.get("labels", "1").strip().lower()
        if value not in _YES | _NO:
            return _error(
                400,
                "bad_request",
                f"labels={value!r} is not understood: use labels=1 (drawn in, the default) "
                "or labels=0 (the clean video)",
            )
        return _stream("mjpeg", "clean" if value in _NO else "labels")

    @app.get("/api/events")
    def events() -> Response:
        return _stream("sse")

    def _stream(kind: str, variant: str = "labels") -> Response:
        if not hub.reserve():
            return _error(
                503,
                "too_many_viewers",
                f"{hub.max_viewers} viewers are watching already ([stream] max_viewers); "
                "try again later",
                headers={"Retry-After": "5"},
            )
        headers = {**NO_CACHE, "X-Accel-Buffering": "no"}
        if request.method == "HEAD":
            hub.release()
            return Response(mimetype=CONTENT_TYPES[kind], headers=headers)
        peer = request.remote_addr or "?"
        taken = take_over_waitress(request.environ)
        if taken is not None:
            hub.attach(taken[0], kind, peer, early=taken[1], variant=variant)
            return Response(status=204)  # never sent: the connection is the hub's now
        return Response(
            iter_stream(hub, kind, peer, variant=variant),
            mimetype=CONTENT_TYPES[kind],
            headers=headers,
        )

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
        # Before the body is read: a refused upload costs no memory.
        if not gate.try_enter():
            return _error(
                503,
                "busy",
                f"{gate.limit} uploads are being classified already "
                "([server] max_concurrent_uploads); try again in a moment",
                headers={"Retry-After": "1"},
            )
        try:
            return _classify()
        finally:
            gate.leave()

    def _classify() -> Response:
        if request.mimetype == "multipart/form-data":
            if "image" not in request.files:
                return _error(400, "bad_request", "send the image in the multipart field 'image'")
            data = request.files["image"].read()
        else:  # the raw body, whatever it claims to be (curl --data-binary says form data)
            data = request.get_data(cache=False, parse_form_data=False)
        try:
            upload = decode_upload(
                data, config.server.max_upload_pixels, config.server.max_decode_pixels
            )
        except UploadError as exc:
            return _error(exc.status, "bad_image", str(exc))
        del data
        heads, inference_s = analyzer.analyze(upload.image)
        metrics.upload_classified()
        if upload.scale != 1:  # boxes in the (upright) original image's pixels
            heads = [dataclasses.replace(h, box=h.box.scaled(upload.scale)) for h in heads]
        return jsonify(
            {
                "seq": 0,
                "frame": 0,
                "time": round(time.time(), 3),
                "heads": [h.to_json() for h in heads],
                "size": [upload.width, upload.height],
                "inference_ms": round(inference_s * 1000.0, 2),
            }
        )

    @app.get("/healthz")
    def healthz() -> Response:
        healthy, details = pipeline.health()
        details["model"] = dict(model)
        if health_extras is not None:
            details.update(health_extras())
        response = jsonify(details)
        response.status_code = 200 if healthy else 503
        response.headers.update(NO_CACHE)
        return response

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), content_type=CONTENT_TYPE)

    return app


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
