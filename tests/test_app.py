"""The web app in-process (Flask's test client over a real pipeline: demo camera, the
shipped bundle on LiteRT). What needs a real socket (streams, signals, load) is in
test_service.py."""

from __future__ import annotations

import pytest
from _service_helpers import demo_jpeg
from conftest import make_app


def test_token_guards_uploads(model_dir) -> None:
    app, pipeline = make_app(model_dir, server={"access_token": "s3cret-token"})
    try:
        client = app.test_client()
        jpeg, _ = demo_jpeg()

        def post(headers: dict[str, str]):
            return client.post(
                "/api/classify", data=jpeg, headers={"Content-Type": "image/jpeg", **headers}
            )

        resp = post({})
        assert resp.status_code == 401 and "token" in resp.get_json()["message"]
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert post({"Authorization": "Bearer wrong"}).status_code == 401
        assert post({"Authorization": "Bearer s3cret-token"}).status_code == 200
        # Read-only views stay open unless protect_read_only is set.
        assert pipeline.wait_for_result(0, 10.0) is not None
        assert client.get("/api/predictions").status_code == 200
        assert client.get("/").status_code == 200
    finally:
        pipeline.stop()


def test_protect_read_only_guards_views_but_not_healthz(model_dir) -> None:
    app, pipeline = make_app(model_dir, server={"access_token": "tok", "protect_read_only": True})
    try:
        client = app.test_client()
        assert pipeline.wait_for_result(0, 10.0) is not None
        for path in ("/", "/api/predictions", "/stream.mjpg", "/api/events", "/metrics"):
            assert client.get(path).status_code == 401, path
        assert client.get("/api/predictions?token=tok").status_code == 200
        assert (
            client.get("/api/predictions", headers={"Authorization": "Bearer tok"}).status_code
            == 200
        )
        assert client.get("/healthz").status_code == 200
    finally:
        pipeline.stop()


def test_labels_come_from_the_bundle(client, app, model_dir) -> None:
    labels = (model_dir / "labels.txt").read_text().split()
    data = client.get("/api/predictions").get_json()
    assert data["seq"] >= 1 and data["size"] == [640, 480]
    assert data["heads"], "the demo scene has five heads"
    assert {h["label"] for h in data["heads"]} <= {*labels, "unknown"}
    page = client.get("/").get_data(as_text=True)
    for label in labels:  # the page's legend lists the bundle's classes
        assert f'data-label="{label}"' in page or label in page


@pytest.mark.parametrize("path", ["/nope", "/api/nope"])
def test_unknown_paths_are_json_404(client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404 and resp.is_json and resp.get_json()["error"]
