"""`screwcam slice`: recorded videos -> a 28x28 dataset (written by DatasetWriter).

For every Nth frame the main head is found (the default bundle's head detector,
`screwcam.detector.default_main_head`) and cut out
with the one preprocessing (screwcam.preprocess.preprocess). Frames without a head and
frames whose 28x28 input barely differs from the last kept one of the same video are
skipped. The label comes from the video's JSON sidecar (written by `screwcam record`),
else from the name of the folder the video sits in.

Train/test split, never frame by frame (neighbouring frames are near-copies, so that
would leak test images into training):
- a class with several recordings: whole recordings go to one side, chosen so the test
  side gets about --test-fraction of the class's samples;
- a class with one recording: its last --test-fraction (in time) goes to test, and a
  short stretch at the boundary (up to 1 s) is dropped so no near-copies straddle it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from screwcam.classes import CLASSES, NUM_CLASSES, display_name, label_id
from screwcam.dataset import DatasetWriter, folder_label
from screwcam.detector import default_main_head
from screwcam.errors import CameraError, DatasetError
from screwcam.frames import Box
from screwcam.preprocess import preprocess
from screwcam.sources import SourceEnded, VideoFileSource

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg"})
DEFAULT_EVERY = 3
DEFAULT_MIN_CHANGE = 3.0  # mean abs difference (0..255) below which a frame is a duplicate
_BOUNDARY_GAP_S = 1.0
_BOUNDARY_GAP_MAX_FRACTION = 0.05


@dataclass
class SlicedVideo:
    path: Path
    name: str  # as written to the manifest's source column
    label: int
    condition: str
    fps: float
    frame_indices: list[int] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    frames_looked_at: int = 0
    no_head: int = 0
    duplicates: int = 0

    @property
    def kept(self) -> int:
        return len(self.images)


@dataclass
class SliceReport:
    videos: list[SlicedVideo]
    failed: list[tuple[Path, str]]
    counts: dict[str, list[int]]  # split -> samples per label
    boundary_dropped: int
    out_dir: Path

    @property
    def total(self) -> int:
        return sum(sum(c) for c in self.counts.values())


def find_videos(paths: Iterable[Path | str]) -> list[tuple[Path, str]]:
    """(video, manifest name) for every video file given or found below a given folder.
    Hidden files (like a recording still in progress, .x.part.mp4) are skipped."""
    found: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for video in sorted(path.rglob("*")):
                rel = video.relative_to(path)
                if (
                    video.suffix.lower() in VIDEO_SUFFIXES
                    and video.is_file()
                    and not any(part.startswith(".") for part in rel.parts)
                ):
                    found.append((video, rel.as_posix()))
        elif path.exists():
            found.append((path, path.name))
        else:
            raise DatasetError(f"recording {path} does not exist")
    seen: set[Path] = set()
    unique = []
    for video, name in found:
        if video.resolve() not in seen:
            seen.add(video.resolve())
            unique.append((video, name))
    return unique


def video_label(video: Path) -> tuple[int, str]:
    """(label, condition) of a recording: from its sidecar <name>.json, else the label
    from the name of the folder it sits in."""
    sidecar = video.with_suffix(".json")
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            label = meta["label"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"sidecar {sidecar} is unreadable or has no 'label': {exc}") from exc
        try:
            return label_id(label), str(meta.get("condition", "") or "")
        except DatasetError as exc:
            raise DatasetError(f"sidecar {sidecar}: {exc}") from exc
    label = folder_label(video.parent.name)
    if label is None:
        raise DatasetError(
            f"cannot tell the screw type of {video}: there is no sidecar {sidecar.name} and "
            f"its folder {video.parent.name!r} is not a class name ({', '.join(CLASSES)})"
        )
    return label, ""


def slice_frame(image: np.ndarray) -> tuple[np.ndarray, Box] | None:
    """The model input for the main head of one frame and its box, or None."""
    box = default_main_head(image)
    if box is None:
        return None
    return preprocess(image, box.as_list()), box


class _Progress:
    """Progress on stderr: an updating line on a terminal; in a log only the finished
    lines (end="\n")."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.live = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def line(self, text: str, end: str = "") -> None:
        if self.stream is None or (not end and not self.live):
            return
        self.stream.write(f"\r{text}\x1b[K{end}" if self.live else f"{text}{end}")
        self.stream.flush()


def _bar(done: int, total: int, width: int = 24) -> str:
    if total <= 0:
        return f"[{'?' * width}]"
    filled = min(width, int(width * done / total))
    return f"[{'#' * filled}{'-' * (width - filled)}] {min(100, 100 * done // total):3d}%"


def slice_video(
    video: Path,
    name: str,
    label: int,
    condition: str = "",
    *,
    every: int = DEFAULT_EVERY,
    min_change: float = DEFAULT_MIN_CHANGE,
    progress: _Progress | None = None,
    prefix: str = "",
) -> SlicedVideo:
    """Slice one video. Raises CameraError if it cannot be opened or decoded."""
    source = VideoFileSource(video, loop=False, realtime=False)
    with source:
        result = SlicedVideo(video, name, label, condition, source.fps)
        total = source.frame_count
        last: np.ndarray | None = None
        while True:
            try:
                frame = source.read()
            except SourceEnded:
                break
            if frame.index % every:
                continue
            result.frames_looked_at += 1
            sliced = slice_frame(frame.image)
            if sliced is None:
                result.no_head += 1
            else:
                x = sliced[0]
                diff = np.abs(x.astype(np.int16) - last).mean() if last is not None else 1e9
                if diff < min_change:
                    result.duplicates += 1
                else:
                    last = x.astype(np.int16)
                    result.images.append(x)
                    result.frame_indices.append(frame.index)
            if progress is not None and result.frames_looked_at % 10 == 1:
                progress.line(
                    f"{prefix}{name} {_bar(frame.index + 1, total)}  kept {result.kept}  "
                    f"no head {result.no_head}  duplicates {result.duplicates}"
                )
    return result


def _choose_test(counts: Sequence[int], names: Sequence[str], fraction: float) -> set[int]:
    """Indices of the recordings that go to test: at least one on each side, test share
    as close to `fraction` as possible (ties: fewer recordings, then by name)."""
    n = len(counts)
    total = sum(counts)
    target = fraction * total
    if n <= 12:
        best: tuple[float, int, tuple[str, ...]] | None = None
        chosen: set[int] = set()
        for k in range(1, n):
            for combo in itertools.combinations(range(n), k):
                key = (
                    abs(sum(counts[i] for i in combo) - target),
                    k,
                    tuple(names[i] for i in combo),
                )
                if best is None or key < best:
                    best, chosen = key, set(combo)
        return chosen
    order = sorted(range(n), key=lambda i: (-counts[i], names[i]))
    chosen, got = set(), 0
    for i in order:
        if len(chosen) == n - 1:
            break
        if not chosen or abs(got + counts[i] - target) < abs(got - target):
            chosen.add(i)
            got += counts[i]
    return chosen


def split_samples(
    videos: Sequence[SlicedVideo], test_fraction: float
) -> tuple[list[tuple[SlicedVideo, int, str]], int]:
    """[(video, sample index, split)] and the number of samples dropped at time-block
    boundaries. See the module docstring for the rules."""
    assignments: list[tuple[SlicedVideo, int, str]] = []
    dropped = 0
    for label in range(NUM_CLASSES):
        group = [v for v in videos if v.label == label and v.kept]
        if not group:
            continue
        if test_fraction <= 0:
            assignments += [(v, i, "train") for v in group for i in range(v.kept)]
        elif len(group) == 1:
            video = group[0]
            n_train = int(round(video.kept * (1.0 - test_fraction)))
            n_train = min(max(n_train, 1), video.kept - 1) if video.kept > 1 else video.kept
            span = video.frame_indices[-1] - video.frame_indices[0]
            gap = int(min(_BOUNDARY_GAP_S * video.fps, _BOUNDARY_GAP_MAX_FRACTION * span))
            test_part = list(range(n_train, video.kept))
            if test_part:
                # Drop test samples right after the boundary: near-copies of the last
                # training frames. Keep them if nothing else would be left.
                start = video.frame_indices[n_train] + gap
                later = [i for i in test_part if video.frame_indices[i] >= start]
                if later:
                    dropped += len(test_part) - len(later)
                    test_part = later
            assignments += [(video, i, "train") for i in range(n_train)]
            assignments += [(video, i, "test") for i in test_part]
        else:
            test = _choose_test([v.kept for v in group], [v.name for v in group], test_fraction)
            for j, video in enumerate(group):
                split = "test" if j in test else "train"
                assignments += [(video, i, split) for i in range(video.kept)]
    return assignments, dropped


def slice_recordings(
    recordings: Sequence[Path | str],
    out_dir: Path,
    *,
    every: int = DEFAULT_EVERY,
    test_fraction: float = 0.3,
    force: bool = False,
    min_change: float = DEFAULT_MIN_CHANGE,
    progress: TextIO | None = None,
) -> SliceReport:
    """Slice every recording and write the dataset. Unreadable videos are reported and
    skipped; DatasetError if nothing at all could be sliced."""
    if every < 1:
        raise DatasetError("--every must be at least 1")
    if not 0 <= test_fraction < 1:
        raise DatasetError("--test-fraction must be at least 0 and below 1")
    found = find_videos(recordings)
    if not found:
        raise DatasetError(
            f"no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) in "
            + ", ".join(map(str, recordings))
        )
    bar = _Progress(progress)
    videos: list[SlicedVideo] = []
    failed: list[tuple[Path, str]] = []
    with DatasetWriter(out_dir, force=force) as writer:  # refuses a non-empty --out now
        for k, (path, name) in enumerate(found, 1):
            prefix = f"[{k}/{len(found)}] "
            try:
                label, condition = video_label(path)
                video = slice_video(
                    path, name, label, condition, every=every, min_change=min_change,
                    progress=bar, prefix=prefix,
                )  # fmt: skip
            except (CameraError, DatasetError) as exc:
                failed.append((path, str(exc)))
                bar.line(f"{prefix}{name}: SKIPPED: {exc}", end="\n")
                continue
            videos.append(video)
            bar.line(
                f"{prefix}{name} ({display_name(label)}): kept {video.kept} of "
                f"{video.frames_looked_at} frames looked at, no head {video.no_head}, "
                f"duplicates {video.duplicates}",
                end="\n",
            )
        if not any(v.kept for v in videos):
            raise DatasetError(
                f"no samples: {len(failed)} of {len(found)} videos could not be read and the "
                "others had no head in any frame; nothing written"
            )
        assignments, dropped = split_samples(videos, test_fraction)
        for video, i, split in assignments:
            writer.add(
                video.images[i], video.label, split, video.name, video.frame_indices[i],
                video.condition,
            )  # fmt: skip
        counts = writer.counts()
    return SliceReport(videos, failed, counts, dropped, out_dir)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recordings", nargs="+", type=Path, help="video files or folders of them")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    parser.add_argument(
        "--every", type=int, default=DEFAULT_EVERY,
        help=f"use every Nth frame (default {DEFAULT_EVERY})",
    )  # fmt: skip
    parser.add_argument(
        "--test-fraction", type=float, default=0.3,
        help="share of each class's samples for the test split (default 0.3)",
    )  # fmt: skip
    parser.add_argument(
        "--min-change", type=float, default=DEFAULT_MIN_CHANGE,
        help="skip a frame whose 28x28 input differs from the last kept one by less than "
        f"this mean absolute difference, 0..255 (default {DEFAULT_MIN_CHANGE})",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace a dataset in --out")


def run(args: argparse.Namespace) -> int:
    report = slice_recordings(
        args.recordings, args.out, every=args.every, test_fraction=args.test_fraction,
        force=args.force, min_change=args.min_change, progress=sys.stderr,
    )  # fmt: skip
    out = sys.stderr
    kept = sum(v.kept for v in report.videos)
    no_head = sum(v.no_head for v in report.videos)
    dups = sum(v.duplicates for v in report.videos)
    print(
        f"overall: {len(report.videos)} videos sliced, {len(report.failed)} skipped; "
        f"kept {kept}, no head {no_head}, duplicates {dups}, "
        f"dropped at time-block boundaries {report.boundary_dropped}",
        file=out,
    )
    for split in ("train", "test"):
        per = ", ".join(f"{CLASSES[i]} {n}" for i, n in enumerate(report.counts[split]))
        print(f"{split}: {sum(report.counts[split])} ({per})", file=out)
    for path, why in report.failed:
        print(f"skipped {path}: {why}", file=out)
    missing = [CLASSES[i] for i in range(NUM_CLASSES) if not report.counts["train"][i]]
    if missing:
        print(f"warning: no training samples for {', '.join(missing)}", file=out)
    print(f"wrote {report.out_dir}", file=out)
    return 0
