"""The line's web API (a Flask blueprint), registered by `serve.Service`:

    GET  /api/counts         {"counts": {<thesis class name>: n, ...}, "total": n, "since": ISO}
    POST /api/counts/reset   the same, after starting again from zero (token-guarded)
    GET  /api/model          the live model
    POST /api/model          load another bundle ({"path": ...}) or reload the current one
                             (empty body); the stream goes on; a bad bundle is refused (422)
                             and the running one stays (token-guarded)

The app's token guard (`create_app`) covers these routes like every other one:
changing requests need the token when one is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from screwcam.errors import ScrewcamError

from .tracking import Tally


def line_blueprint(
    tally: Tally | None,
    swap_model: Callable[[str | None], dict[str, Any]],
    model_info: Callable[[], dict[str, Any]],
    on_reset: Callable[[dict[str, Any]], None] | None = None,
) -> Blueprint:
    bp = Blueprint("line", __name__)

    def _error(status: int, code: str, message: str) -> Response:
        response = jsonify({"error": code, "message": message})
        response.status_code = status
        return response

    @bp.get("/api/counts")
    def counts() -> Response:
        if tally is None:
            return _error(404, "tracking_off", "tracking is off ([tracking] enabled = false)")
        return jsonify(tally.snapshot())

    @bp.post("/api/counts/reset")
    def reset() -> Response:
        if tally is None:
            return _error(404, "tracking_off", "tracking is off ([tracking] enabled = false)")
        snapshot = tally.reset()
        if on_reset is not None:
            on_reset(snapshot)
        return jsonify(snapshot)

    @bp.get("/api/model")
    def model() -> Response:
        return jsonify(model_info())

    @bp.post("/api/model")
    def load_model() -> Response:
        body = request.get_json(silent=True) if request.get_data(cache=True) else {}
        if not isinstance(body, dict):
            return _error(
                400, "bad_request", 'send JSON {"path": "<bundle folder>"}, or nothing to reload'
            )
        path = body.get("path")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            return _error(400, "bad_request", '"path" must be the bundle folder, as a string')
        try:
            info = swap_model(path)
        except ScrewcamError as exc:
            return _error(422, "model_refused", f"{exc}; the running model stays")
        return jsonify(info)

    return bp
