"""Tracking, voting and counting on the conveyor's and the demo's ground truth, with
the real finder and the real LiteRT model (the processing thread's own steps)."""

from __future__ import annotations

import dataclasses

import pytest
from _service_helpers import model_dir

from screwcam.classes import CLASSES
from screwcam.edge_service.analyzer import Analyzer
from screwcam.edge_service.pipeline import Pipeline
from screwcam.edge_service.results import Head
from screwcam.edge_service.tracking import GreedyTracker, HeadTracker, Tally
from screwcam.frames import Box, Frame
from screwcam.render import DEMO_CONDITIONS, ConveyorSource, DemoSource


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    from screwcam.classifier import Classifier, load_bundle

    return Analyzer(Classifier(load_bundle(model_dir()), num_threads=1), 0.5)


def _pipeline(analyzer: Analyzer, tracker: HeadTracker | None) -> Pipeline:
    def no_camera():  # the frames are fed to analyze() directly
        raise AssertionError("not started")

    return Pipeline(no_camera, analyzer, tracker=tracker)


def test_conveyor_truth_has_one_id_per_head_and_every_head_crosses() -> None:
    with ConveyorSource(realtime=False, heads=6, seed=3) as belt:
        seen: dict[int, list[int]] = {}
        for index in range(belt.pass_frames):
            _, truth = belt.render(index)
            for t in truth:
                seen.setdefault(t.track, []).append(t.box.x)
        last = belt.render(belt.pass_frames - 1)[1]
        labels = belt.pass_labels
    assert sorted(seen) == list(range(6))
    assert last == []  # the belt is empty at the end of a pass
    assert sorted(labels) == sorted([0, 1, 2, 3, 4, 0][: len(labels)])
    for xs in seen.values():
        assert xs[0] == 0 and xs[-1] > 500  # enters at the left border, leaves on the right
        assert all(b >= a for a, b in zip(xs, xs[1:], strict=False))  # rides one way


def test_greedy_tracker_keeps_ids_through_misses() -> None:
    """Truth boxes as detections, every head missing in 3 frames out of 10: no switch."""
    tracker = GreedyTracker(max_age_s=0.5)
    owner: dict[int, int] = {}
    with ConveyorSource(realtime=False, heads=10, seed=4) as belt:
        for index in range(belt.pass_frames):
            _, truth = belt.render(index)
            shown = [t for t in truth if (index + 7 * t.track) % 10 >= 3]
            ids = tracker.update([t.box for t in shown], index / belt.fps)
            for t, tid in zip(shown, ids, strict=True):
                assert owner.setdefault(tid, t.track) == t.track, "an id jumped to another head"
    assert len(owner) == 10  # one id per head


@pytest.mark.parametrize("condition", DEMO_CONDITIONS)
def test_conveyor_counts_within_one_of_truth(analyzer: Analyzer, condition: str) -> None:
    """One pass in each light: every class within +-1 of the truth, one count per head,
    and the counted label of most heads right."""
    tracker = HeadTracker()
    events = []
    tracker.listeners.append(lambda event, _counts: events.append(event))
    pipeline = _pipeline(analyzer, tracker)
    with ConveyorSource(realtime=False, condition=condition, seed=5) as belt:
        for index in range(belt.pass_frames):
            image, truth = belt.render(index)
            result = pipeline.analyze(Frame(image, index, index / belt.fps, truth))
            assert all(h.track is not None for h in result.heads)
        labels = belt.pass_labels
    counts = tracker.tally.snapshot()["counts"]
    truth_counts = {name: sum(CLASSES[v] == name for v in labels) for name in CLASSES}
    errors = {k: counts[k] - truth_counts[k] for k in CLASSES}
    assert max(abs(v) for v in errors.values()) <= 1, (counts, truth_counts)
    assert len(events) == len({e.track for e in events})  # no track counted twice
    assert abs(len(events) - len(labels)) <= 1
    assert all(e.frames >= tracker.confirm_frames for e in events)


def test_votes_are_confidence_weighted_and_partial_views_do_not_confirm() -> None:
    tracker = HeadTracker(confirm_frames=3)
    size = (200, 100)

    def head(x: int, best: str, conf: float) -> Head:
        return Head(Box(x, 30, 40, 40), best, best, conf, best)

    # entering: at the left border, never confirms (also a few pixels short of it, as
    # the detector boxes the visible part of a cut head: within a quarter of its size)
    for i in range(5):
        heads, events = tracker.update([head((0, 6)[i % 2], "torx", 0.9)], i * 0.03, size)
        assert events == [] and heads[0].track is not None and not heads[0].track.counted
    track_id = heads[0].track.id
    # whole: two strong torx votes, one weak philips -> torx, counted at the 3rd view
    out = []
    for i, (best, conf) in enumerate([("torx", 0.9), ("philips", 0.55), ("torx", 0.8)]):
        heads, events = tracker.update([head(12 + 2 * i, best, conf)], 0.2 + i * 0.03, size)
        out.append((heads[0].track, events))
    assert [bool(e) for _, e in out] == [False, False, True]
    track, events = out[-1]
    assert track.id == track_id and track.label == "torx" and track.counted
    assert events[0].label == "torx" and events[0].frames == 3
    assert tracker.tally.snapshot()["counts"]["torx"] == 1
    # seen again: not counted again
    heads, events = tracker.update([head(20, "torx", 0.9)], 0.4, size)
    assert events == [] and heads[0].track.id == track_id
    assert tracker.tally.snapshot()["total"] == 1


def test_tally_reset_starts_from_zero() -> None:
    tally = Tally()
    tally.add("torx")
    before = tally.snapshot()
    assert before["total"] == 1 and before["counts"]["torx"] == 1
    after = tally.reset()
    assert after["total"] == 0 and set(after["counts"]) == set(CLASSES)
    assert after["since"] >= before["since"]


def test_voted_label_is_at_least_as_right_as_the_frame_label(analyzer: Analyzer) -> None:
    """Small heads (256x192, where the per-frame label errs now and then): over the
    matched heads, the track's voted label is right at least as often."""
    from screwcam.bench.tracking import analysed, score

    belt = ConveyorSource(
        size=(256, 192), realtime=False, condition="overexposed", seed=2, lanes=3, heads=20
    )
    with belt:
        frames, labels = belt.pass_frames, belt.pass_labels
    report = score("ours", analysed(belt, frames, 1, analyzer), labels)
    assert report["id_switches"] == 0
    assert report["track_acc"] >= report["frame_acc"]
    assert report["worst_class_error"] <= 1


def test_demo_tracks_do_not_switch(analyzer: Analyzer) -> None:
    tracker = HeadTracker()
    pipeline = _pipeline(analyzer, tracker)
    owner: dict[int, int] = {}
    switches = 0
    with DemoSource(realtime=False, seed=1) as demo:
        for index in range(300):
            image, truth = demo.render(index)
            result = pipeline.analyze(Frame(image, index, index / demo.fps, truth))
            for t in truth:
                match = max(result.heads, key=lambda h: t.box.iou(h.box), default=None)
                if match is None or t.box.iou(match.box) < 0.5:
                    continue
                previous = owner.get(t.track)
                switches += previous is not None and previous != match.track.id
                owner[t.track] = match.track.id
    assert switches == 0
    assert tracker.tally.snapshot()["total"] == 5  # five heads, each counted once


def test_head_json_carries_the_track() -> None:
    tracker = HeadTracker(confirm_frames=1)
    heads, _ = tracker.update(
        [Head(Box(10, 10, 30, 30), "torx", "Torx", 0.9, "torx")], 0.0, (100, 100)
    )
    data = heads[0].to_json()
    assert data["track"]["label"] == "torx" and data["track"]["counted"] is True
    assert dataclasses.replace(heads[0], track=None).to_json()["track"] is None
