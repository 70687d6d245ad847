"""Tracking, voting and counting: one decision per screw head, counted once.

    heads of a frame ──> Associator (which track is each box?) ──> HeadTracker
        votes each track's label over its frames (confidence-weighted),
        counts a track once, when it is confirmed (seen whole in `confirm_frames`
        frames), with its voted label at that moment -> CountEvent -> listeners

`Associator` is the small interface a tracker implements; `GreedyTracker` is ours:
constant-velocity prediction, then greedy matching of predictions and boxes by
centre distance (relative to the head's size) and overlap. NumPy and the standard
library only: it imports in no time and holds a few numbers per track. Measured
against norfair and supervision's ByteTrack in `screwcam.bench.tracking` (the
numbers are in the README).

Everything here runs in the pipeline's processing thread, except `Tally.reset()`
and the reads, which the web threads call: the tally has its own lock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from screwcam.classes import CLASSES, ENGLISH
from screwcam.frames import Box

from .results import UNKNOWN, Head, TrackLabel


class Associator(Protocol):
    """Gives every box of a frame a track id: the same id for the same head from
    frame to frame, a new id for a head not seen before."""

    def update(self, boxes: Sequence[Box], t: float) -> list[int]: ...

    def reset(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# Our tracker
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Track:
    id: int
    cx: float
    cy: float
    size: float  # mean of width and height, px
    box: Box
    t: float  # time last seen
    vx: float = 0.0  # px per second
    vy: float = 0.0
    hits: int = 1
    misses: int = 0  # frames since last seen in which it was looked for and not found
    # the last few (t, cx, cy): velocity over this baseline, not frame to frame,
    # so a box that jitters by a few px does not fling the prediction after a miss
    trail: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=8))


class GreedyTracker:
    """Constant-velocity prediction + greedy matching (fine for the <= 20 heads of a
    frame; no SciPy needed).

    A box may join a track when its centre lies within `gate` head sizes of the
    track's predicted centre (up to 1.5x that for a track not seen for a while);
    pairs are taken cheapest first, the cost being the relative centre distance
    plus (1 - IoU with the predicted box). The velocity is measured over the
    track's last 8 sightings. A track that is not seen keeps moving at its
    velocity and is dropped `max_age_s` after it was last seen, so a head missed
    for a few frames (a shadow, a glare) keeps its id."""

    #: a track ends only after it was looked for in this many frames without being found
    MIN_MISSES = 3

    def __init__(self, *, gate: float = 0.8, max_age_s: float = 1.0):
        self.gate = float(gate)
        self.max_age_s = float(max_age_s)
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        self._tracks = []

    @property
    def active(self) -> int:
        return len(self._tracks)

    def update(self, boxes: Sequence[Box], t: float) -> list[int]:
        # A track ends when it was not seen for max_age_s AND was looked for in a few
        # frames meanwhile: a stalled pipeline (no frames at all) loses no track.
        self._tracks = [
            tr for tr in self._tracks if t - tr.t <= self.max_age_s or tr.misses < self.MIN_MISSES
        ]
        ids = [0] * len(boxes)
        taken_box: set[int] = set()
        taken_track: set[int] = set()
        # first by the predicted positions, then what is left by the last seen ones
        # (a velocity thrown off by an uneven frame rate)
        for moving in (True, False):
            if len(taken_track) == len(self._tracks) or len(taken_box) == len(boxes):
                break
            for _, ti, bi in self._pairs(boxes, t, moving):
                if ti in taken_track or bi in taken_box:
                    continue
                taken_track.add(ti)
                taken_box.add(bi)
                ids[bi] = self._follow(self._tracks[ti], boxes[bi], t)
        for ti, track in enumerate(self._tracks):
            if ti not in taken_track:
                track.misses += 1
        for bi, box in enumerate(boxes):
            if bi not in taken_box:
                cx, cy = box.center
                track = _Track(self._next_id, cx, cy, (box.w + box.h) / 2.0, box, t)
                track.trail.append((t, cx, cy))
                self._next_id += 1
                self._tracks.append(track)
                ids[bi] = track.id
        return ids

    def _pairs(
        self, boxes: Sequence[Box], t: float, moving: bool = True
    ) -> list[tuple[float, int, int]]:
        """(cost, track index, box index) of every pair inside the gate, cheapest first;
        `moving=False`: from where each track was last seen."""
        tracks = self._tracks
        dt_s = np.array([t - tr.t for tr in tracks]) * (1.0 if moving else 0.0)
        px = np.array([tr.cx + tr.vx * d for tr, d in zip(tracks, dt_s, strict=True)])
        py = np.array([tr.cy + tr.vy * d for tr, d in zip(tracks, dt_s, strict=True)])
        tsize = np.array([tr.size for tr in tracks])
        centres = np.array([b.center for b in boxes])
        bsize = np.array([(b.w + b.h) / 2.0 for b in boxes])
        dist = np.hypot(px[:, None] - centres[None, :, 0], py[:, None] - centres[None, :, 1])
        rel = dist / np.maximum(tsize[:, None], bsize[None, :])
        # the longer a track was not seen, the less sure its prediction: up to 1.5x gate
        unseen = np.array([t - tr.t for tr in tracks])
        gate = self.gate * (1.0 + 0.5 * np.minimum(1.0, unseen / self.max_age_s))
        pairs = []
        for ti, bi in zip(*np.nonzero(rel < gate[:, None]), strict=True):
            tr, box = tracks[ti], boxes[bi]
            shift_x, shift_y = round(px[ti] - tr.cx), round(py[ti] - tr.cy)
            moved = Box(tr.box.x + shift_x, tr.box.y + shift_y, tr.box.w, tr.box.h)
            pairs.append((float(rel[ti, bi]) + 1.0 - moved.iou(box), int(ti), int(bi)))
        pairs.sort()
        return pairs

    def _follow(self, track: _Track, box: Box, t: float) -> int:
        cx, cy = box.center
        track.trail.append((t, cx, cy))
        t0, x0, y0 = track.trail[0]
        if t - t0 > 1e-6:
            track.vx, track.vy = (cx - x0) / (t - t0), (cy - y0) / (t - t0)
        track.cx, track.cy, track.box, track.t = cx, cy, box, t
        track.size = 0.7 * track.size + 0.3 * (box.w + box.h) / 2.0
        track.hits += 1
        track.misses = 0
        return track.id


# ---------------------------------------------------------------------------------------------
# Votes, counts, events
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CountEvent:
    """A head counted once: its track, voted label and how it was decided."""

    track: int
    label: str  # thesis class name
    label_en: str
    confidence: float  # mean over the track's views of the confidence voted for `label`
    time: float  # time.time() of the frame that confirmed the track
    frames: int  # whole views the vote was taken over

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "counted",
            "track": self.track,
            "label": self.label,
            "label_en": self.label_en,
            "confidence": round(self.confidence, 4),
            "time": _iso(self.time),
            "frames": self.frames,
        }


class Tally:
    """Heads counted per class since `since` (thread-safe). Every one of `labels` is
    reported, also at 0; another label is added when first counted."""

    def __init__(self, labels: Sequence[str] = CLASSES) -> None:
        self._lock = threading.Lock()
        self._labels = tuple(labels)
        self._counts = dict.fromkeys(self._labels, 0)
        self._since = time.time()

    def add(self, label: str) -> dict[str, Any]:
        with self._lock:
            self._counts[label] = self._counts.get(label, 0) + 1
            return self._snapshot()

    def reset(self) -> dict[str, Any]:
        with self._lock:
            self._counts = dict.fromkeys(self._labels, 0)
            self._since = time.time()
            return self._snapshot()

    def snapshot(self) -> dict[str, Any]:
        """{"counts": {class: n}, "total": n, "since": ISO time}"""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        counts = dict(self._counts)
        return {"counts": counts, "total": sum(counts.values()), "since": _iso(self._since)}


@dataclass(slots=True)
class _Votes:
    votes: dict[str, float]  # confidence summed per class over the views
    first_t: float
    last_t: float
    last_frame: int = 0  # the update() call it was last seen in
    weight: float = 0.0  # views voted, partial ones counting `partial_weight`
    frames: int = 0  # whole views (not touching the frame's border)
    seen: int = 0  # every frame it was found in
    counted: bool = False


@dataclass
class HeadTracker:
    """Gives heads a track and a voted label, and counts each track once.

    Only *whole* views vote and confirm: a box at the frame's border is a head
    entering or leaving, seen in part, and its class is often wrong. "At the border"
    is within `border_px`, or within `border_fraction` of the box's own size: the
    detector boxes the visible part of a cut head, and that box may stop a few pixels
    short of the edge (measured on the conveyor in dim light: up to 6 px for 47 px
    boxes, which were then counted as whole views and misnamed). A track
    is counted when it has `confirm_frames` whole views, with the label voted at
    that moment; listeners get a `CountEvent` (in the processing thread: they
    must not block)."""

    associator: Associator = field(default_factory=GreedyTracker)
    confirm_frames: int = 5
    border_px: int = 2
    border_fraction: float = 0.25
    partial_weight: float = 0.1
    forget_s: float = 2.0
    tally: Tally = field(default_factory=Tally)
    listeners: list[Callable[[CountEvent, dict[str, Any]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tracks: dict[int, _Votes] = {}
        self._frame_no = 0
        self.tracks_started = 0

    @property
    def active(self) -> int:
        """Tracks seen recently."""
        return len(self._tracks)

    def update(
        self, heads: Sequence[Head], t: float, size: tuple[int, int]
    ) -> tuple[list[Head], list[CountEvent]]:
        """The heads with their `track`, and the heads counted in this frame."""
        self._frame_no += 1
        ids = self.associator.update([h.box for h in heads], t)
        width, height = size
        out, events = [], []
        for head, track_id in zip(heads, ids, strict=True):
            state = self._tracks.get(track_id)
            if state is None:
                state = self._tracks[track_id] = _Votes({}, t, t)
                self.tracks_started += 1
            state.seen += 1
            state.last_t, state.last_frame = t, self._frame_no
            b = head.box
            m = max(float(self.border_px), self.border_fraction * max(b.w, b.h))
            whole = b.x > m and b.y > m and b.x + b.w < width - m and b.y + b.h < height - m
            if head.best and head.best != UNKNOWN:
                # a partial view votes a little (the label is known before the head
                # is whole), but only whole views confirm the track
                weight = 1.0 if whole else self.partial_weight
                state.votes[head.best] = state.votes.get(head.best, 0.0) + head.confidence * weight
                state.weight += weight
                state.frames += whole
            label = self._label(track_id, state)
            if not state.counted and state.frames >= self.confirm_frames:
                state.counted = True
                label = dataclasses.replace(label, counted=True)
                event = CountEvent(
                    track_id, label.label, label.label_en, label.confidence, t, state.frames
                )
                events.append(event)
                counts = self.tally.add(event.label)
                for listener in self.listeners:
                    listener(event, counts)
            out.append(dataclasses.replace(head, track=label))
        # forgotten like the tracker's own tracks: after forget_s AND a few frames (a
        # forgotten track that the tracker still follows would be counted again)
        gone = [
            k
            for k, v in self._tracks.items()
            if t - v.last_t > self.forget_s and self._frame_no - v.last_frame > 10
        ]
        for track_id in gone:
            del self._tracks[track_id]
        return out, events

    def _label(self, track_id: int, state: _Votes) -> TrackLabel:
        if state.weight <= 0.0:
            return TrackLabel(track_id, UNKNOWN, UNKNOWN, 0.0, 0, state.counted)
        name = max(state.votes, key=state.votes.__getitem__)
        confidence = state.votes[name] / state.weight
        return TrackLabel(
            track_id, name, ENGLISH.get(name, name), confidence, state.frames, state.counted
        )

    def reset(self) -> None:
        """Forget every track (not the tally)."""
        self.associator.reset()
        self._tracks.clear()


def _iso(t: float) -> str:
    stamp = dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
