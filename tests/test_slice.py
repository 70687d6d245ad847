"""`screwcam slice` on real video files written by OpenCV from the demo camera."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from _capture_helpers import SIZE, write_demo_video, write_sidecar, write_video

from screwcam.capture.slice import slice_frame, slice_recordings
from screwcam.classes import CLASSES
from screwcam.cli import main as cli_main
from screwcam.dataset import load_dataset
from screwcam.errors import DatasetError
from screwcam.sources import VideoFileSource

PHILIPS, TORX, SECHSKANT = 1, 4, 3


def _manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# The demo picks its surface from the seed: 0 wood, 1 light, 2 noise, 3 metal, 4 dark.
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_slicer_crop_finds_the_demo_head(tmp_path, seed):
    video = tmp_path / "one_head.mp4"
    boxes = write_demo_video(video, 20, heads=1, seed=seed)
    ious = []
    with VideoFileSource(video, loop=False, realtime=False) as source:
        for index in range(20):
            frame = source.read()  # decoded from the real file, compression and all
            assert frame.index == index
            sliced = slice_frame(frame.image)
            ious.append(sliced[1].iou(boxes[index][0]) if sliced else 0.0)
            if sliced:
                assert sliced[0].shape == (28, 28) and sliced[0].dtype == np.uint8
    good = np.mean(np.asarray(ious) >= 0.8)
    assert good >= 0.9, f"IoU per frame: {np.round(ious, 2).tolist()}"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """torx: three recordings with sidecars; philips: one recording labelled by its
    folder; sechskant: two; plus a corrupt video and an unfinished recording."""
    root = tmp_path_factory.mktemp("recordings")
    for name, seed in (("torx_a", 0), ("torx_b", 2), ("torx_c", 3)):
        video = root / f"{name}.mp4"
        write_demo_video(video, 24, heads=1, seed=seed)
        write_sidecar(video, TORX)
    (root / "philips").mkdir()
    write_demo_video(root / "philips" / "long.mp4", 60, heads=1, seed=4)
    (root / "sechskant").mkdir()
    write_demo_video(root / "sechskant" / "s1.mp4", 18, heads=1, seed=7)
    write_demo_video(root / "sechskant" / "s2.mp4", 18, heads=1, seed=5, start=200)
    (root / "torx" / "broken.mp4").parent.mkdir()
    (root / "torx" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(3000))
    write_demo_video(root / ".torx_x.part.mp4", 5, heads=1, seed=9)  # still being recorded
    return root


@pytest.fixture(scope="module")
def sliced(recordings, tmp_path_factory):
    out = tmp_path_factory.mktemp("sliced") / "dataset"
    report = slice_recordings([recordings], out, every=1, test_fraction=0.3, progress=None)
    return recordings, out, report


def test_corrupt_video_is_skipped_and_the_others_sliced(sliced):
    _, _, report = sliced
    assert [p.name for p, _ in report.failed] == ["broken.mp4"]
    assert "broken.mp4" in report.failed[0][1]
    names = sorted(v.name for v in report.videos)
    assert names == [
        "philips/long.mp4",
        "sechskant/s1.mp4",
        "sechskant/s2.mp4",
        "torx_a.mp4",
        "torx_b.mp4",
        "torx_c.mp4",
    ]  # the hidden .part recording is ignored
    for video in report.videos:
        assert video.kept + video.no_head + video.duplicates == video.frames_looked_at
        assert video.kept > 0


def test_labels_come_from_sidecar_else_folder(sliced):
    _, out, report = sliced
    labels = {v.name: v.label for v in report.videos}
    assert labels["torx_a.mp4"] == TORX and labels["philips/long.mp4"] == PHILIPS
    assert labels["sechskant/s1.mp4"] == SECHSKANT
    rows = _manifest(out)
    assert {r["label"] for r in rows if r["source"] == "torx_b.mp4"} == {"torx"}


def test_no_recording_on_both_sides_of_the_split(sliced):
    _, out, _ = sliced
    rows = _manifest(out)
    sides: dict[str, set[str]] = {}
    for row in rows:
        sides.setdefault(row["source"], set()).add(row["split"])
    for source, splits in sides.items():
        if source != "philips/long.mp4":  # the single-recording class, see below
            assert len(splits) == 1, source
    for label in ("torx", "sechskant"):
        splits = {r["split"] for r in rows if r["label"] == label}
        assert splits == {"train", "test"}, label


def test_single_recording_class_is_split_by_time_block(sliced):
    _, out, report = sliced
    rows = [r for r in _manifest(out) if r["source"] == "philips/long.mp4"]
    train = sorted(int(r["frame_index"]) for r in rows if r["split"] == "train")
    test = sorted(int(r["frame_index"]) for r in rows if r["split"] == "test")
    assert train and test
    assert max(train) < min(test)  # one contiguous block each, test is the end
    kept = next(v.kept for v in report.videos if v.name == "philips/long.mp4")
    assert len(test) <= 0.35 * kept
    assert len(train) + len(test) + report.boundary_dropped >= kept


def test_sliced_dataset_loads(sliced):
    _, out, report = sliced
    train, test = load_dataset(out)
    assert len(train) + len(test) == report.total
    assert len(train) > len(test) > 0
    assert set(train.y.tolist()) == {PHILIPS, SECHSKANT, TORX}


def test_duplicates_and_headless_frames_are_skipped(tmp_path):
    (tmp_path / "torx").mkdir()
    still = write_demo_video(tmp_path / "torx" / "still.mp4", 1, heads=1, seed=0)
    assert still
    frame = VideoFileSource(tmp_path / "torx" / "still.mp4", realtime=False)
    with frame:
        image = frame.read().image
    write_video(tmp_path / "torx" / "still.mp4", [image] * 12)  # the same picture 12 times
    blank = np.full((SIZE[1], SIZE[0], 3), 120, np.uint8)
    write_video(tmp_path / "torx" / "empty.mp4", [blank] * 6)  # nothing to find
    report = slice_recordings([tmp_path], tmp_path / "out", every=2, progress=None)
    by_name = {v.name: v for v in report.videos}
    still_v, empty_v = by_name["torx/still.mp4"], by_name["torx/empty.mp4"]
    assert still_v.frames_looked_at == 6
    assert (still_v.kept, still_v.duplicates) == (1, 5)
    assert (empty_v.kept, empty_v.no_head) == (0, 3)


def test_nothing_to_slice_is_an_error_and_a_non_zero_exit(tmp_path, capsys):
    (tmp_path / "torx").mkdir()
    (tmp_path / "torx" / "broken.mp4").write_bytes(b"junk" * 100)
    with pytest.raises(DatasetError, match="no samples"):
        slice_recordings([tmp_path], tmp_path / "out", progress=None)
    code = cli_main(["slice", str(tmp_path), "--out", str(tmp_path / "out2")])
    assert code != 0
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "no samples" in err
    assert not (tmp_path / "out2" / "manifest.csv").exists()


def test_unlabelled_video_is_reported(tmp_path):
    (tmp_path / "misc").mkdir()
    write_demo_video(tmp_path / "misc" / "what.mp4", 6, heads=1, seed=0)
    write_demo_video(tmp_path / "ok.mp4", 6, heads=1, seed=2)
    write_sidecar(tmp_path / "ok.mp4", TORX)
    report = slice_recordings([tmp_path], tmp_path / "out", every=1, progress=None)
    assert len(report.failed) == 1 and "what.mp4" in report.failed[0][1]
    assert "not a class name" in report.failed[0][1]
    assert report.counts["train"][TORX] > 0


def test_cli_refuses_a_non_empty_out_and_reports_counts(sliced, capsys):
    recordings, out, _ = sliced
    assert cli_main(["slice", str(recordings / "sechskant"), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    new = out.parent / "again"
    assert (
        cli_main(["slice", str(recordings / "sechskant"), "--out", str(new), "--every", "2"]) == 0
    )
    err = capsys.readouterr().err
    assert "s1.mp4" in err and "kept" in err and "no head" in err and "duplicates" in err
    assert "overall:" in err
    assert {r["label"] for r in _manifest(new)} == {CLASSES[SECHSKANT]}
