"""The line, end to end: a REAL `screwcam serve` process, a REAL Mosquitto broker
and a paho-mqtt subscriber; conveyor videos written by OpenCV with known heads.

- events arrive once per head over a pass of a ground-truth video;
- the broker is stopped and restarted mid-run and no event is lost;
- two services with different `device` publish side by side to one broker, each
  with its retained status and last will;
- /api/counts and its token-guarded reset;
- a live model swap (POST /api/model, SIGHUP) keeps an open MJPEG stream going,
  and a bad bundle is refused while the running one stays.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import pytest
from _mqtt_helpers import MOSQUITTO, Broker, Subscriber
from _service_helpers import Server, model_dir, open_stream, wait_until

from screwcam.classes import CLASSES
from screwcam.render import DEMO_CONDITIONS

needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None, reason="Debian's mosquitto is not installed (./dev test installs it)"
)


@pytest.fixture
def broker(tmp_path: Path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()


#: seconds of empty belt appended to a conveyor video: the test reads the counts then
TAIL_S = 3.0


def write_conveyor_video(
    path: Path, heads: int = 8, condition: str = "even", seed: int = 5
) -> tuple[list[int], int]:
    """One conveyor pass as a real mp4 (empty belt at both ends, TAIL_S of it at the
    end); the class ids of its heads and the first frame of the tail."""
    from screwcam.render import ConveyorSource

    with ConveyorSource(realtime=False, heads=heads, condition=condition, seed=seed) as belt:
        w, h = belt.size
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), belt.fps, (w, h))
        assert writer.isOpened(), "OpenCV cannot write mp4v here"
        for index in range(belt.pass_frames):
            image, truth = belt.render(index)
            writer.write(image)
        assert truth == []
        for _ in range(int(TAIL_S * belt.fps)):
            writer.write(image)
        writer.release()
        return belt.pass_labels, belt.pass_frames


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in values.items())
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_for_tail(server: Server, tail: int, timeout: float) -> int:
    """Until the video plays its empty tail (from frame `tail`) after a pass; the
    frame index seen then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, data = server.get_json("/api/predictions")
        if status == 200 and data["frame"] >= tail + 5:
            return data["frame"]
        time.sleep(0.05)
    raise AssertionError(f"the video's tail did not come within {timeout} s:\n{server.log()}")


def per_class(labels: list[str]) -> dict[str, int]:
    return {name: labels.count(name) for name in CLASSES}


@needs_mosquitto
@pytest.mark.parametrize("light", DEMO_CONDITIONS)
def test_one_event_per_head_over_a_pass(tmp_path: Path, broker: Broker, light: str) -> None:
    """A conveyor pass in each light: per class within +-1 of the truth, exactly one
    MQTT event per counted head."""
    labels, tail = write_conveyor_video(tmp_path / "belt.mp4", condition=light)
    truth = [CLASSES[v] for v in labels]
    config = write_config(
        tmp_path / "line.toml", mqtt={"url": broker.url, "device": "belt1", "topic": "plant"}
    )
    sub = Subscriber(broker.port, "plant/#")
    try:
        with Server("--config", str(config), "--source", str(tmp_path / "belt.mp4")) as server:
            server.start(tmp_path / "serve.log")
            at_frame = wait_for_tail(server, tail, timeout=60)
            _, counts = server.get_json("/api/counts")
            assert wait_until(lambda: len(sub.on("plant/belt1/events")) >= counts["total"], 10)
            events = sub.events("plant/belt1/events")
            _, health = server.get_json("/healthz")
    finally:
        sub.close()
    labels = [e["label"] for e in events]
    got, want = per_class(labels), per_class(truth)
    detail = f"got {got}, truth {want}, at frame {at_frame}, events {events}, health {health}"
    assert all(abs(got[c] - want[c]) <= 1 for c in CLASSES), detail
    assert len(events) == counts["total"], detail  # every counted head has its event
    assert len({e["track"] for e in events}) == len(events)  # once per head
    first = events[0]
    assert first["event"] == "counted" and first["frames"] >= 5 and 0 < first["confidence"] <= 1
    assert first["time"].endswith("Z")
    assert health["mqtt"]["state"] == "connected" and health["mqtt"]["device"] == "belt1"
    assert json.loads(sub.on("plant/belt1/counts")[-1])["total"] >= counts["total"]
    assert sub.on("plant/belt1/status")[0] == b"online"


@needs_mosquitto
def test_broker_restart_loses_no_event(tmp_path: Path, broker: Broker) -> None:
    config = write_config(
        tmp_path / "line.toml",
        mqtt={
            "url": broker.url,
            "device": "restart",
            # the test's subscriber (0.1 s) is back before the service (1.5 s)
            "reconnect_min_s": 1.5,
            "reconnect_max_s": 2.0,
        },
    )
    topic = "screwcam/restart/events"
    sub = Subscriber(broker.port, "screwcam/restart/#")
    try:
        with Server("--config", str(config), "--source", "conveyor:even") as server:
            server.start(tmp_path / "serve.log")
            assert wait_until(lambda: len(sub.on(topic)) >= 2, 30), server.log()
            broker.stop()
            assert wait_until(
                lambda: server.get_json("/healthz")[1]["mqtt"]["state"] != "connected", 10
            )
            # heads go on being counted while the broker is away: they queue up
            assert wait_until(lambda: server.get_json("/healthz")[1]["mqtt"]["queued"] >= 2, 15)
            metrics = server.request("GET", "/metrics")[1].decode()
            assert "screwcam_mqtt_connected 0.0" in metrics
            broker.start()
            assert wait_until(lambda: sub.connected.is_set(), 10)
            assert wait_until(
                lambda: server.get_json("/healthz")[1]["mqtt"]["state"] == "connected", 20
            )
            _, counts = server.get_json("/api/counts")
            total = counts["total"]
            assert wait_until(lambda: len({e["track"] for e in sub.events(topic)}) >= total, 15)
            _, health = server.get_json("/healthz")
    finally:
        sub.close()
    events = sub.events(topic)
    tracks = [e["track"] for e in events]
    assert len(set(tracks)) >= total  # every counted head arrived
    assert len(tracks) - len(set(tracks)) <= 1  # QoS 1: a resend after a lost ack at most
    assert health["mqtt"]["connects"] >= 2 and health["mqtt"]["dropped"] == 0


@needs_mosquitto
def test_two_devices_publish_side_by_side(tmp_path: Path, broker: Broker) -> None:
    servers = []
    sub = Subscriber(broker.port, "screwcam/#")
    try:
        for name in ("line-a", "line-b"):
            config = write_config(
                tmp_path / f"{name}.toml",
                mqtt={"url": broker.url, "device": name, "keepalive_s": 5},
            )
            server = Server("--config", str(config), "--source", "conveyor:even")
            servers.append(server.start(tmp_path / f"{name}.log"))
        for name in ("line-a", "line-b"):
            assert wait_until(lambda n=name: len(sub.on(f"screwcam/{n}/events")) >= 2, 30)
            assert sub.on(f"screwcam/{name}/status")[0] == b"online"
        # b dies without a word: the broker publishes its last will
        servers[1].proc.kill()
        servers[1].proc.wait(5)
        assert wait_until(lambda: sub.on("screwcam/line-b/status")[-1:] == [b"offline"], 20)
        # a stops properly: it says offline itself (retained)
        code, _ = servers[0].terminate()
        assert code == 0
        assert sub.on("screwcam/line-a/status")[-1] == b"offline"
    finally:
        for server in servers:
            server.stop()
        sub.close()
    late = Subscriber(broker.port, "screwcam/+/status")  # retained: what a newcomer sees
    try:
        assert wait_until(lambda: len(late.messages) >= 2, 5)
        assert {(t, p, r) for t, p, r in late.messages} == {
            ("screwcam/line-a/status", b"offline", True),
            ("screwcam/line-b/status", b"offline", True),
        }
    finally:
        late.close()
    a_tracks = {e["track"] for e in sub.events("screwcam/line-a/events")}
    assert a_tracks and len(sub.events("screwcam/line-a/events")) == len(a_tracks)


def test_counts_and_token_guarded_reset(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", server={"access_token": "s3cret"})
    with Server("--config", str(config), "--source", "conveyor:dim") as server:
        server.start(tmp_path / "serve.log")
        assert wait_until(lambda: server.get_json("/api/counts")[1]["total"] >= 2, 30)
        status, counts = server.get_json("/api/counts")
        assert status == 200 and set(counts["counts"]) == set(CLASSES)
        assert counts["total"] == sum(counts["counts"].values())
        assert server.request("POST", "/api/counts/reset")[0] == 401
        status, body, _ = server.request(
            "POST", "/api/counts/reset", headers={"Authorization": "Bearer s3cret"}
        )
        after = json.loads(body)
        assert status == 200 and after["since"] > counts["since"]
        assert after["total"] <= 1  # zero, or one head counted right after
        _, pred = server.get_json("/api/predictions")
        tracked = [h for h in pred["heads"] if h["track"]]
        assert tracked and {"id", "label", "confidence", "frames", "counted"} <= set(
            tracked[0]["track"]
        )
        page = server.request("GET", "/")[1].decode()
        assert 'id="tallies"' in page


class _StreamWatcher(threading.Thread):
    """Reads an MJPEG stream; records when each part arrived."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.conn, self.resp = open_stream(server)
        self.times: list[float] = []
        self.ended = False
        self.stop = threading.Event()

    def run(self) -> None:
        from _service_helpers import mjpeg_frames

        for _ in mjpeg_frames(self.resp):
            self.times.append(time.monotonic())
            if self.stop.is_set():
                return
        self.ended = True


def test_model_swap_keeps_the_stream_and_refuses_a_bad_bundle(tmp_path: Path) -> None:
    other = tmp_path / "other-model"
    shutil.copytree(model_dir(), other)
    bad = tmp_path / "bad-model"
    shutil.copytree(model_dir(), bad)
    (bad / "model.tflite").write_bytes(b"this is not a flatbuffer" * 10)
    config = write_config(tmp_path / "c.toml", server={"access_token": "tok"})
    auth = {"Authorization": "Bearer tok", "Content-Type": "application/json"}
    with Server("--config", str(config), "--source", "demo") as server:
        server.start(tmp_path / "serve.log")
        watcher = _StreamWatcher(server)
        watcher.start()
        assert wait_until(lambda: len(watcher.times) >= 10, 20)

        def post(body: bytes, headers: dict[str, str] = auth) -> tuple[int, Any]:
            status, data, _ = server.request("POST", "/api/model", body=body, headers=headers)
            return status, json.loads(data)

        assert post(b"", {})[0] == 401
        status, info = post(b"")  # reload the current bundle
        assert status == 200 and info["name"], info
        status, info = post(json.dumps({"path": str(other)}).encode())
        assert status == 200 and info["path"] == str(other), info
        assert server.get_json("/healthz")[1]["model"]["path"] == str(other)
        status, err = post(json.dumps({"path": str(bad)}).encode())
        assert status == 422 and "not a valid TFLite model" in err["message"], err
        assert "running model stays" in err["message"]
        assert server.get_json("/healthz")[1]["model"]["path"] == str(other)
        loaded = server.get_json("/api/model")[1]["loaded"]
        time.sleep(1.1)
        server.proc.send_signal(signal.SIGHUP)  # reload, as after replacing the files
        assert wait_until(lambda: server.get_json("/api/model")[1]["loaded"] != loaded, 10)
        n = len(watcher.times)
        assert wait_until(lambda: len(watcher.times) >= n + 10, 10)  # still streaming
        metrics = server.request("GET", "/metrics")[1].decode()
        assert not watcher.ended and watcher.is_alive()  # the same stream all along
        times = list(watcher.times)
        watcher.stop.set()
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) < 1.0, max(gaps)
    assert 'screwcam_model_swaps_total{result="ok"} 3.0' in metrics
    assert 'screwcam_model_swaps_total{result="refused"} 1.0' in metrics
    assert "screwcam_clients_dropped_total 0.0" in metrics
