"""The frame pipeline itself (threads, mailbox, results) with the real demo
source, the real head finder and the real model bundle on LiteRT."""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest
from _service_helpers import decode_jpeg, model_dir

from screwcam.classes import CLASSES
from screwcam.classifier import Classifier, LazyClassifier, load_bundle
from screwcam.edge_service.analyzer import Analyzer, FinderOnFirstUse
from screwcam.edge_service.metrics import Metrics
from screwcam.edge_service.pipeline import Pipeline
from screwcam.errors import CameraError
from screwcam.render import DemoSource
from screwcam.sources import Frame, Source

# Share of the demo's heads the model must name correctly through the whole live
# path (find_heads box -> preprocess -> model), over every lighting condition.
# models/default scores 99.5 % on its held-out synthetic batch test, and named all
# 360 heads of this test right with seeds 1, 2 and 3; 0.95 leaves room for
# frame-to-frame variation (which frames get dropped) without letting a model that
# confuses one class in ten pass.
MIN_LIVE_ACCURACY = 0.95
# The head finder must find every head (IoU >= 0.5 with a predicted box), and nearly
# all of them tightly: its own evaluation reports 97.9-99.2 % of demo heads with
# IoU >= 0.8 (docs/readme/synthetic.md); the misses are boxes at IoU 0.78-0.80 on
# half-shadowed heads. 0.95 of heads at IoU >= 0.8 keeps the bar close to that.
FOUND_IOU = 0.5
MIN_IOU = 0.8
MIN_TIGHT = 0.95


class TruthRecorder(Source):
    """The real DemoSource, remembering the ground truth of every frame it hands
    out, so published results can be checked against it."""

    def __init__(self, inner: DemoSource, truths: dict[int, list]) -> None:
        self.inner, self.truths, self.name = inner, truths, "demo"

    fps = property(lambda self: self.inner.fps)
    size = property(lambda self: self.inner.size)

    def open(self) -> None:
        self.inner.open()

    def read(self) -> Frame:
        frame = self.inner.read()
        self.truths[frame.index] = frame.truth
        return frame

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(load_bundle(model_dir()), num_threads=2)


def _collect(pipeline: Pipeline, n: int, timeout: float = 60.0) -> list:
    results, previous = [], 0
    deadline = time.monotonic() + timeout
    while len(results) < n and time.monotonic() < deadline:
        result = pipeline.wait_for_result(previous, timeout=1.0)
        if result is not None:
            assert result.seq > previous, "the same result was handed out twice"
            previous = result.seq
            results.append(result)
    assert len(results) == n, f"only {len(results)} results in {timeout} s"
    return results


def test_live_heads_match_the_demo_ground_truth(classifier: Classifier) -> None:
    truths: dict[int, list] = {}
    metrics = Metrics()
    # At a nominal 2 fps every lighting condition lasts 6 frames, so 72 frames cover
    # each of the demo's conditions twice (and the heads move further per frame).
    demo = DemoSource(realtime=False, seed=1, fps=2.0)
    pipeline = Pipeline(
        lambda: TruthRecorder(demo, truths),
        Analyzer(classifier, confidence_threshold=0.0),
        metrics=metrics,
    )
    with pipeline:
        results = _collect(pipeline, 72)
        # The render thread draws and encodes the results for the video viewers.
        video = pipeline.wait_for_video(results[-1].seq - 5, timeout=10)
    assert video is not None and video.seq > results[-1].seq - 5
    assert decode_jpeg(video.jpeg).shape == (video.height, video.width, 3) == (480, 640, 3)
    found, tight, correct, total, predicted = 0, 0, 0, 0, 0
    worst = 1.0
    confusion: Counter[tuple[str, str]] = Counter()
    per_condition: dict[str, list[int]] = {}
    for result in results:
        truth = truths[result.frame_index]
        counts = per_condition.setdefault(demo.condition_at(result.frame_index), [0, 0])
        assert (result.height, result.width) == (480, 640)
        predicted += len(result.heads)
        for t in truth:
            total += 1
            best = max(result.heads, key=lambda h: t.box.iou(h.box), default=None)
            iou = 0.0 if best is None else t.box.iou(best.box)
            worst = min(worst, iou)
            if iou < FOUND_IOU:
                continue
            found += 1
            tight += iou >= MIN_IOU
            right = best.label == CLASSES[t.label]
            correct += right
            counts[0] += right
            counts[1] += 1
            confusion[(CLASSES[t.label], best.label)] += 1
    print(
        f"{len(results)} frames, {total} heads, {predicted} boxes: {found} found, "
        f"{tight} ({tight / total:.1%}) with IoU >= {MIN_IOU} (worst {worst:.3f}); "
        f"{correct} labelled right ({correct / max(1, found):.1%}); "
        f"dropped {metrics.frames_dropped} of {metrics.frames_captured} captured"
    )
    print("confusions:", {k: v for k, v in confusion.items() if k[0] != k[1]})
    print("right per condition:", {k: f"{r}/{n}" for k, (r, n) in per_condition.items()})
    assert len(per_condition) >= 5, per_condition
    assert found == total, f"{total - found} of {total} heads not found (IoU < {FOUND_IOU})"
    assert predicted - found <= 0.02 * total, f"{predicted - found} boxes where no head is"
    assert tight / total >= MIN_TIGHT, f"only {tight / total:.1%} with IoU >= {MIN_IOU}"
    assert correct / found >= MIN_LIVE_ACCURACY
    # Every captured frame was either processed or counted as dropped (never queued).
    assert metrics.frames_captured - metrics.frames_processed - metrics.frames_dropped in (0, 1)


def test_threshold_turns_unsure_heads_into_unknown(classifier: Classifier) -> None:
    with DemoSource(realtime=False, seed=2) as source:
        image = source.read().image
    heads, _ = Analyzer(classifier, confidence_threshold=1.0).analyze(image)
    assert heads and all(h.label == "unknown" and h.label_en == "unknown" for h in heads)
    heads, _ = Analyzer(classifier, confidence_threshold=0.0).analyze(image)
    assert heads and all(h.label in CLASSES for h in heads)


def test_a_lazy_analyzer_builds_its_interpreters_on_its_first_frame(
    classifier: Classifier,
) -> None:
    """The service's upload analyzer: no classifier and no detector interpreter until
    the first upload, then the same heads as an analyzer built at once."""
    with DemoSource(realtime=False, seed=2) as source:
        image = source.read().image
    lazy = LazyClassifier(classifier.bundle, num_threads=1)
    analyzer = Analyzer(lazy, 0.5, find_threads=1, lazy=True)
    assert not lazy.built
    assert "detector" in classifier.bundle.meta.parts  # a finder that is an interpreter
    assert isinstance(analyzer.find, FinderOnFirstUse) and not analyzer.find.built
    heads, _ = analyzer.analyze(image)
    assert lazy.built and analyzer.find.built
    eager, _ = Analyzer(Classifier(classifier.bundle, num_threads=1), 0.5).analyze(image)
    assert heads and [(h.box, h.label) for h in heads] == [(h.box, h.label) for h in eager]


class FlakySource(Source):
    """A fake camera that can be unplugged (a fake camera is fine; the model is real)."""

    name = "flaky"

    def __init__(self, opens: list[int], state: dict[str, bool]) -> None:
        self.opens, self.state, self.n = opens, state, 0
        self.image = np.full((120, 160, 3), 90, np.uint8)

    fps = property(lambda self: 30.0)
    size = property(lambda self: (160, 120))

    def open(self) -> None:
        self.opens.append(1)
        if self.state["unplugged"]:
            raise CameraError("camera unplugged")

    def read(self) -> Frame:
        if self.state["unplugged"]:
            raise CameraError("camera stopped delivering frames")
        time.sleep(0.01)
        self.n += 1
        return Frame(self.image, self.n - 1, time.time())

    def close(self) -> None:
        pass


def test_camera_failures_reconnect_with_backoff(classifier: Classifier) -> None:
    opens: list[int] = []
    state = {"unplugged": False}
    pipeline = Pipeline(
        lambda: FlakySource(opens, state),
        Analyzer(classifier, 0.5),
        backoff_min_s=0.05,
        backoff_max_s=0.2,
    )
    with pipeline:
        _collect(pipeline, 3, timeout=10)
        assert pipeline.health()[0]
        state["unplugged"] = True
        deadline = time.monotonic() + 10
        while "unplugged" not in pipeline.camera_status().message:
            assert time.monotonic() < deadline, pipeline.camera_status()
            time.sleep(0.02)
        status = pipeline.camera_status()
        assert status.state == "reconnecting"
        healthy, details = pipeline.health()
        assert not healthy and details["camera"]["state"] == "reconnecting"
        n = len(opens)
        time.sleep(1.0)
        # Exponential backoff capped at 0.2 s: a handful of attempts, not a busy loop.
        assert 2 <= len(opens) - n <= 12, len(opens) - n
        state["unplugged"] = False
        last = pipeline.latest().seq
        _collect(pipeline, 2, timeout=10)
        assert pipeline.latest().seq > last and pipeline.camera_status().state == "ok"
        assert pipeline.camera_status().reconnects >= 2
        assert pipeline.health()[0]


def test_stop_is_prompt_and_wakes_waiters(classifier: Classifier) -> None:
    pipeline = Pipeline(lambda: DemoSource(realtime=True), Analyzer(classifier, 0.5)).start()
    _collect(pipeline, 2)
    latest = pipeline.latest()
    woke = threading.Event()

    def waiter() -> None:
        pipeline.wait_for_result(latest.seq + 10**6, timeout=30)
        woke.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert pipeline.stop(timeout=2.0)
    assert woke.wait(2.0), "a waiting client was not woken by stop()"
    t.join(2)
    assert pipeline.camera_status().state == "stopped"


class _NotifyListener:
    """A real AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: str) -> None:
        import socket

        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.path = path

    def drain(self, seconds: float) -> list[str]:
        out, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                out.append(self.sock.recv(4096).decode())
            except TimeoutError:
                pass
        return out


def test_watchdog_stops_when_processing_or_camera_hangs(classifier: Classifier, tmp_path) -> None:
    from screwcam.edge_service.systemd_notify import Notifier

    listener = _NotifyListener(str(tmp_path / "notify.sock"))
    release = threading.Event()
    hang = {"find": False, "read": False}
    opens: list[int] = []

    def find(image):
        if hang["find"]:
            release.wait(30)
        return []

    class HangingSource(FlakySource):
        def read(self) -> Frame:
            if hang["read"]:
                release.wait(30)
            return super().read()

    pipeline = Pipeline(
        lambda: HangingSource(opens, {"unplugged": False}),
        Analyzer(classifier, 0.5, find=find),
        notifier=Notifier(listener.path),
        hung_read_s=0.6,
        watchdog_every_s=0.1,
    )
    try:
        with pipeline:
            messages = listener.drain(1.0)
            assert any("READY=1" in m for m in messages), messages
            assert sum("WATCHDOG=1" in m for m in messages) >= 3, messages
            hang["find"] = True  # the processing loop gets stuck
            listener.drain(0.3)
            assert not any("WATCHDOG=1" in m for m in listener.drain(1.0))
            hang["find"] = False
            release.set()
            assert any("WATCHDOG=1" in m for m in listener.drain(0.5))
            release.clear()
            hang["read"] = True  # the camera read hangs; processing itself is idle
            assert any("WATCHDOG=1" in m for m in listener.drain(0.4))  # still fed at first
            listener.drain(0.4)
            assert not any("WATCHDOG=1" in m for m in listener.drain(1.0))  # then no more
            hang["read"] = False
            release.set()
            assert any("WATCHDOG=1" in m for m in listener.drain(0.5))
    finally:
        release.set()
        listener.sock.close()
