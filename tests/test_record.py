"""`screwcam record`: real videos from the demo camera, in-process and as a real
`python -m screwcam.cli record` subprocess that is stopped with SIGTERM or killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from _capture_helpers import write_demo_video
from _service_helpers import model_dir

import screwcam.recording as record_module
from screwcam.cli import main as cli_main
from screwcam.errors import CameraError
from screwcam.recording import part_name, record, reserve_name
from screwcam.render import DemoSource
from screwcam.sources import Frame, Source, VideoFileSource

TORX = 4


def _frame_count(video: Path) -> int:
    count = 0
    with VideoFileSource(video, loop=False, realtime=False) as source:
        try:
            while True:
                source.read()
                count += 1
        except CameraError:
            pass
    return count


def _final_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_record_writes_video_and_sidecar(tmp_path):
    stop = threading.Event()
    with DemoSource(size=(320, 240), fps=30, heads=2, realtime=True) as source:
        timer = threading.Timer(0.6, stop.set)
        timer.start()
        result = record(source, "Torx", tmp_path, stop=stop, source_spec="demo")
        timer.join()
    assert result.video.parent == tmp_path and result.video.suffix == ".mp4"
    assert result.video.name.startswith("torx_") and result.sidecar == result.video.with_suffix(
        ".json"
    )
    assert _final_files(tmp_path) == sorted([result.video.name, result.sidecar.name])
    assert not list(tmp_path.glob(".*"))  # no temporary files left
    meta = json.loads(result.sidecar.read_text())
    assert meta["label"] == "torx" and meta["label_id"] == TORX
    assert meta["source"] == "demo" and meta["video"] == result.video.name
    assert (meta["width"], meta["height"], meta["fps"]) == (320, 240, 30.0)
    started = datetime.fromisoformat(meta["start_time"].replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - started).total_seconds()) < 60
    assert meta["frames"] == result.frames == _frame_count(result.video) > 0
    cap = cv2.VideoCapture(str(result.video))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (320, 240)
    cap.release()


def test_record_stops_after_seconds_and_at_the_end_of_a_file(tmp_path):
    clip = tmp_path / "clip.mp4"
    write_demo_video(clip, 9, heads=1, seed=1, fps=30)
    out = tmp_path / "out"
    with VideoFileSource(clip, loop=False, realtime=False) as source:
        result = record(source, 2, out, seconds=30)  # the file ends long before
    assert result.frames == 9 == _frame_count(result.video)
    with VideoFileSource(clip, loop=True, realtime=True) as source:
        result = record(source, 2, out, seconds=0.3)
    assert 0 < result.frames < 100
    assert json.loads(result.sidecar.read_text())["label"] == "pozidriv"


def test_record_never_overwrites(tmp_path, monkeypatch):
    fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed

    monkeypatch.setattr(record_module, "datetime", FrozenClock)
    taken = tmp_path / "torx_20260102T030405Z.mp4"
    taken.write_bytes(b"somebody's recording")
    clip = tmp_path / "clip.mp4"
    write_demo_video(clip, 4, heads=1, seed=0)
    names = []
    for _ in range(2):
        with VideoFileSource(clip, loop=False, realtime=False) as source:
            names.append(record(source, TORX, tmp_path).video.name)
    assert names == ["torx_20260102T030405Z_2.mp4", "torx_20260102T030405Z_3.mp4"]
    assert taken.read_bytes() == b"somebody's recording"
    # a name whose temporary file exists (another recorder) is not handed out either
    part = part_name(tmp_path / "torx_20260102T030405Z_4.mp4")
    part.write_bytes(b"")
    assert reserve_name(tmp_path, TORX, fixed).name == "torx_20260102T030405Z_5.mp4"


class _FailingCamera(Source):
    """A fake camera that is unplugged after a few frames."""

    name = "fake camera"

    def __init__(self, frames: int) -> None:
        self.left = frames

    fps = 30.0  # type: ignore[assignment]
    size = (160, 120)  # type: ignore[assignment]

    def open(self) -> None:
        pass

    def read(self) -> Frame:
        if self.left == 0:
            raise CameraError("camera device 0 stopped delivering frames")
        self.left -= 1
        image = np.full((120, 160, 3), 30 * self.left, np.uint8)
        return Frame(image=image, index=5 - self.left, time=time.time())

    def close(self) -> None:
        pass


def test_camera_failure_keeps_what_was_recorded(tmp_path):
    with pytest.raises(CameraError, match="5 frames recorded before were saved"):
        record(_FailingCamera(5), TORX, tmp_path)
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1 and _frame_count(videos[0]) == 5
    with pytest.raises(CameraError, match="stopped delivering"):
        record(_FailingCamera(0), TORX, tmp_path / "empty")
    assert _final_files(tmp_path / "empty") == []


def test_unknown_label_lists_the_valid_ones(tmp_path, capsys):
    code = cli_main(["record", "--label", "nut", "--source", "demo", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "nut" in err and "torx" in err and "hex socket" in err
    assert list(tmp_path.iterdir()) == []


def _start_recorder(out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "screwcam.cli", "record", "--label", "philips",
         "--source", "demo", "--out", str(out), *extra],
        cwd=out.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_frames(out: Path, proc: subprocess.Popen, timeout: float = 30.0) -> Path:
    """Wait until the recorder has written video data to its temporary file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = list(out.glob(".*.part.mp4")) if out.exists() else []
        if parts and parts[0].stat().st_size > 0:
            return parts[0]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    _, err = proc.communicate(timeout=10)
    pytest.fail(f"the recorder wrote no video data; stderr:\n{err}")


def test_sigkill_leaves_no_file_under_a_final_name(tmp_path):
    out = tmp_path / "rec"
    proc = _start_recorder(out)
    part = _wait_for_frames(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert part.exists()  # killed mid-recording: only the temporary file is left
    assert _final_files(out) == []


def test_sigterm_finishes_the_recording(tmp_path):
    out = tmp_path / "rec"
    proc = _start_recorder(out, "--seconds", "60")
    _wait_for_frames(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    names = _final_files(out)
    assert len(names) == 2 and names[0].endswith(".json") and names[1].endswith(".mp4")
    meta = json.loads((out / names[0]).read_text())
    assert meta["label"] == "philips" and meta["source"] == "demo"
    assert meta["frames"] == _frame_count(out / names[1]) > 0
    assert "frames" in err and "fps" in err  # the status line on stderr
    assert not list(out.glob(".*"))


def test_demo_recording_is_a_training_video_of_its_label(tmp_path):
    """`record --label torx --source demo` must show one Torx head, as a real
    training video does; sliced, every crop is a Torx to the bundled model (the
    five-head demo scene would slice into crops of whichever head is largest)."""
    from screwcam.classifier import Classifier
    from screwcam.dataset import load_dataset
    from screwcam.heads import find_heads

    rec, ds = tmp_path / "rec", tmp_path / "ds"
    assert (
        cli_main(
            # 2 s: a busy machine records fewer frames of the paced demo in real time
            ["record", "--label", "torx", "--source", "demo", "--seconds", "2", "--out", str(rec)]
        )
        == 0
    )
    video = next(rec.glob("torx_*.mp4"))
    cap = cv2.VideoCapture(str(video))
    counts = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        counts.append(len(find_heads(frame)))
    cap.release()
    assert counts and all(n == 1 for n in counts), counts

    assert cli_main(["slice", str(rec), "--out", str(ds), "--every", "1"]) == 0
    train, test = load_dataset(ds)
    x = np.concatenate([train.x, test.x])
    assert len(x) >= 10 and set(np.concatenate([train.y, test.y]).tolist()) == {4}
    predicted = Classifier(model_dir()).classify(x).argmax(axis=1)
    assert (predicted == 4).mean() >= 0.9, predicted
