"""Camera sources: real video files written by OpenCV from the demo camera, a real
HTTP server on a loopback port for the stream source, and a stand-in picamera2
module (there is no Pi camera here)."""

from __future__ import annotations

import functools
import http.server
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
from _capture_helpers import write_demo_video

from screwcam.errors import CameraError
from screwcam.render import DemoSource
from screwcam.sources import (
    DeviceSource,
    Picamera2Source,
    SourceEnded,
    StreamSource,
    VideoFileSource,
    default_source_spec,
    open_source,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """12 frames of the demo camera at 20 fps, as a real .mp4."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_demo_video(path, 12, heads=2, seed=3, fps=20.0)
    return path


def test_file_source_reports_fps_size_and_indexes_in_file(clip):
    with VideoFileSource(clip, loop=False, realtime=False) as source:
        assert source.fps == pytest.approx(20.0)
        assert source.size == (320, 240)
        frames = []
        with pytest.raises(SourceEnded, match="ended"):
            while True:
                frames.append(source.read())
    assert [f.index for f in frames] == list(range(12))
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    # consecutive demo frames differ: the file was really decoded frame by frame
    assert np.abs(frames[0].image.astype(int) - frames[11].image.astype(int)).mean() > 0.5


def test_file_source_without_loop_ends_with_camera_error(clip):
    with VideoFileSource(clip, loop=False, realtime=False) as source:
        for _ in range(12):
            source.read()
        with pytest.raises(CameraError, match=r"clip\.mp4 ended"):
            source.read()


def test_file_source_loops_and_restarts_index(clip):
    with VideoFileSource(clip, realtime=False) as source:
        frames = [source.read() for _ in range(30)]
    assert [f.index for f in frames] == list(range(12)) + list(range(12)) + list(range(6))
    # the second pass decodes the same pictures again
    assert np.array_equal(frames[0].image, frames[12].image)
    assert np.array_equal(frames[5].image, frames[29].image)


def test_file_source_paces_at_the_files_frame_rate(clip):
    # a lower bound only: a paced source can never deliver faster than its fps
    with VideoFileSource(clip, realtime=True) as source:
        source.read()
        start = time.monotonic()
        for _ in range(10):
            source.read()
        elapsed = time.monotonic() - start
    assert elapsed >= 10 / 20.0 * 0.9
    with VideoFileSource(clip, realtime=False) as source:
        source.read()
        start = time.monotonic()
        for _ in range(10):
            source.read()
        unpaced = time.monotonic() - start
    assert unpaced < elapsed


def test_missing_file_is_a_camera_error_naming_it(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(CameraError, match="nope.mp4"):
        VideoFileSource(missing).open()
    with pytest.raises(CameraError, match="nope.mp4"):
        open_source(str(missing))


def test_undecodable_file_is_a_camera_error_naming_it(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not really a video" * 50)
    with pytest.raises(CameraError, match="broken.mp4"):
        VideoFileSource(bad).open()


def test_file_vanishing_before_the_loop_is_reported(tmp_path, clip):
    copy = tmp_path / "vanishing.mp4"
    copy.write_bytes(clip.read_bytes())
    with VideoFileSource(copy, realtime=False) as source:
        for _ in range(12):
            source.read()
        copy.unlink()
        with pytest.raises(CameraError, match="vanishing.mp4"):
            source.read()


def test_open_source_picks_the_right_source(clip):
    assert isinstance(open_source("demo", realtime=False), DemoSource)
    assert isinstance(open_source("picamera2"), Picamera2Source)
    device = open_source("2")
    assert isinstance(device, DeviceSource) and device.index == 2
    assert isinstance(open_source("rtsp://192.0.2.1/stream"), StreamSource)
    assert isinstance(open_source("http://192.0.2.1/video.mjpg"), StreamSource)
    file_source = open_source(str(clip), loop=False, realtime=False)
    assert isinstance(file_source, VideoFileSource)
    assert (file_source.loop, file_source.realtime) == (False, False)


def test_absent_device_says_what_to_check():
    index = next(i for i in range(60, 64) if not Path(f"/dev/video{i}").exists())
    with pytest.raises(CameraError) as info:
        DeviceSource(index).open()
    message = str(info.value)
    assert f"device {index}" in message
    assert "plugged in" in message and "video" in message


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def http_server(clip):
    handler = functools.partial(_QuietHandler, directory=str(clip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_stream_source_reads_a_real_http_stream(http_server, clip):
    with StreamSource(f"{http_server}/{clip.name}") as source:
        assert source.size == (320, 240)
        frames = []
        with pytest.raises(CameraError, match="stopped delivering"):
            for _ in range(50):
                frames.append(source.read())
    # the first frame was used to check the stream in open(); the rest arrive in order
    assert [f.index for f in frames] == list(range(11))


def test_stream_source_refused_connection_is_a_camera_error():
    with pytest.raises(CameraError, match="cannot open stream"):
        StreamSource("rtsp://user:secret@127.0.0.1:9/none").open()
    try:
        StreamSource("rtsp://user:secret@127.0.0.1:9/none").open()
    except CameraError as exc:
        assert "secret" not in str(exc)  # passwords stay out of messages


class _StandInPicamera2:
    """Only the documented picamera2 calls this source uses: create_video_configuration,
    configure, start, capture_array, stop, close (and global_camera_info)."""

    cameras: list[dict] = [{"Model": "imx708"}]

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        type(self).last = self

    @classmethod
    def global_camera_info(cls) -> list[dict]:
        return cls.cameras

    def create_video_configuration(self, main=None, controls=None, **_: object) -> dict:
        self.calls.append(("create_video_configuration", main, controls))
        return {"main": dict(main or {}), "controls": dict(controls or {})}

    def configure(self, config: dict) -> None:
        self.calls.append(("configure", config))
        self.size = config["main"]["size"]

    def start(self) -> None:
        self.calls.append(("start",))

    def capture_array(self, name: str = "main") -> np.ndarray:
        self.calls.append(("capture_array", name))
        width, height = self.size
        # libcamera "RGB888" is stored B, G, R: channel 0 is blue.
        array = np.zeros((height, width, 3), np.uint8)
        array[..., 0], array[..., 1], array[..., 2] = 200, 100, 10
        return array

    def stop(self) -> None:
        self.calls.append(("stop",))

    def close(self) -> None:
        self.calls.append(("close",))


@pytest.fixture()
def stand_in_picamera2(monkeypatch):
    """A stand-in `picamera2` module injected through sys.modules: there is no Pi
    camera (nor libcamera) on the test machine, so this only checks that the source
    calls picamera2's documented API correctly and keeps the BGR channel order."""
    module = types.ModuleType("picamera2")
    module.Picamera2 = _StandInPicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    monkeypatch.setattr(_StandInPicamera2, "cameras", [{"Model": "imx708"}])
    return _StandInPicamera2


def test_picamera2_source_uses_the_documented_api(stand_in_picamera2):
    with Picamera2Source(size=(320, 240), fps=15) as source:
        frame = source.read()
        camera = stand_in_picamera2.last
        assert camera.calls[0] == (
            "create_video_configuration",
            {"size": (320, 240), "format": "RGB888"},
            {"FrameRate": 15.0},
        )
        assert [c[0] for c in camera.calls[1:4]] == ["configure", "start", "capture_array"]
    assert [c[0] for c in camera.calls[-2:]] == ["stop", "close"]
    assert frame.image.shape == (240, 320, 3) and frame.index == 0
    # "RGB888" arrays are already BGR in memory: passed on unchanged, blue first
    assert frame.image[0, 0].tolist() == [200, 100, 10]


def test_picamera2_missing_explains_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes the import fail
    with pytest.raises(CameraError) as info:
        Picamera2Source().open()
    assert "sudo apt install python3-picamera2" in str(info.value)
    assert "--system-site-packages" in str(info.value)


def test_default_source_prefers_the_pi_camera(stand_in_picamera2, monkeypatch):
    assert default_source_spec() == "picamera2"
    monkeypatch.setattr(stand_in_picamera2, "cameras", [])
    if Path("/dev/video0").exists():  # then the answer depends on that device
        assert default_source_spec() in ("0", "demo")
    else:
        assert default_source_spec() == "demo"
