"""Trackers measured on our videos: ours (`GreedyTracker`) against norfair and
ByteTrack (roboflow `trackers`, where supervision's ByteTrack moved), when installed.

    python -m screwcam.bench.tracking [--frames 600] [--stride 1] [--json FILE]

Every video is analysed ONCE with the live service's analyzer (finder + bundled
model); each tracker then sees the same boxes, so only the association differs.
Videos: the demo camera (heads drifting, five lighting conditions; at 640x480 and
at 256x192) and one conveyor pass per lighting condition (heads enter, cross and
leave; 15 heads at 640x480, and 20 small ones in three lanes at 256x192, where the
per-frame classifier errs now and then). Ground truth carries a track id per head.

Per tracker and video:
- id_switches: a truth head's matched track id changes from one frame to the next
  (IoU >= 0.5 between truth box and found box);
- extra_ids: distinct track ids per truth head, minus one, summed;
- counted / count_error: heads counted by `HeadTracker` on this tracker against the
  truth (sum over classes of |counted - truth|), conveyor only;
- frame_acc / track_acc: accuracy of the per-frame label and of the track's voted
  label over matched heads;
- update_ms: mean time of one tracker update.
Start cost (import + first tracker) and memory are measured in fresh processes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from screwcam.classes import CLASSES
from screwcam.frames import Box

# ---------------------------------------------------------------------------------------------
# Adapters: every tracker behind the `Associator` interface
# ---------------------------------------------------------------------------------------------


class NorfairAssociator:
    """norfair's Tracker on box corners with IoU distance (detections get an id at once)."""

    def __init__(self) -> None:
        import norfair

        self._norfair = norfair
        self.reset()

    def reset(self) -> None:
        self._tracker = self._norfair.Tracker(
            distance_function="iou",
            distance_threshold=0.9,
            hit_counter_max=15,
            initialization_delay=0,
        )
        self._fresh = -1

    def update(self, boxes: Sequence[Box], t: float) -> list[int]:
        dets = [
            self._norfair.Detection(
                np.array([[b.x, b.y], [b.x + b.w, b.y + b.h]], dtype=float), data=i
            )
            for i, b in enumerate(boxes)
        ]
        objects = self._tracker.update(detections=dets)
        ids = [0] * len(boxes)
        mine = {id(d): d.data for d in dets}
        for obj in objects:
            det = obj.last_detection
            if det is not None and id(det) in mine and obj.id is not None:
                ids[mine[id(det)]] = int(obj.id)
        for i, v in enumerate(ids):
            if v == 0:  # not (yet) a track: a one-frame id of its own
                ids[i], self._fresh = self._fresh, self._fresh - 1
        return ids


class ByteTrackAssociator:
    """ByteTrack from roboflow `trackers` (supervision's ByteTrack moved there)."""

    def __init__(self) -> None:
        import supervision as sv
        import trackers

        self._sv = sv
        self._trackers = trackers
        self.reset()

    def reset(self) -> None:
        self._tracker = self._trackers.ByteTrackTracker(
            lost_track_buffer=30, minimum_consecutive_frames=1, track_activation_threshold=0.5
        )
        self._fresh = -1

    def update(self, boxes: Sequence[Box], t: float) -> list[int]:
        n = len(boxes)
        xyxy = np.array([[b.x, b.y, b.x + b.w, b.y + b.h] for b in boxes], dtype=float)
        dets = self._sv.Detections(
            xyxy=xyxy.reshape(n, 4),
            confidence=np.full(n, 0.9),
            class_id=np.zeros(n, dtype=int),
            data={"i": np.arange(n)},
        )
        out = self._tracker.update(dets)
        ids = [0] * n
        if len(out) and out.tracker_id is not None:
            for i, tid in zip(out.data["i"], out.tracker_id, strict=True):
                if tid is not None and int(tid) >= 0:
                    ids[int(i)] = int(tid) + 1
        for i, v in enumerate(ids):
            if v == 0:
                ids[i], self._fresh = self._fresh, self._fresh - 1
        return ids


def make_associator(name: str) -> Any:
    from screwcam.edge_service.tracking import GreedyTracker

    return {"ours": GreedyTracker, "norfair": NorfairAssociator, "bytetrack": ByteTrackAssociator}[
        name
    ]()


# ---------------------------------------------------------------------------------------------
# Videos, analysed once
# ---------------------------------------------------------------------------------------------


def analysed(source: Any, frames: int, stride: int, analyzer: Any) -> list[dict[str, Any]]:
    """[{t, size, heads, truth}] for every `stride`th frame."""
    out = []
    with source:
        for index in range(frames):
            image, truth = source.render(index)
            if index % stride:
                continue
            heads, _ = analyzer.analyze(image)
            out.append(
                {
                    "t": index / source.fps,
                    "size": (image.shape[1], image.shape[0]),
                    "heads": heads,
                    "truth": truth,
                }
            )
    return out


def videos(frames: int, stride: int, analyzer: Any) -> dict[str, tuple[list, list[int] | None]]:
    from screwcam.render import DEMO_CONDITIONS, ConveyorSource, DemoSource

    out: dict[str, tuple[list, list[int] | None]] = {}
    for name, size in (("demo", (640, 480)), ("demo-small", (256, 192))):
        demo = DemoSource(size=size, realtime=False, seed=0)
        out[name] = (analysed(demo, frames, stride, analyzer), None)
    # 640x480, 2 lanes, 15 heads; and small heads (256x192, 3 lanes, 20 heads), where
    # the per-frame classifier makes mistakes
    belts = (("conveyor", {}), ("small-conveyor", {"size": (256, 192), "lanes": 3, "heads": 20}))
    for name, kwargs in belts:
        for condition in DEMO_CONDITIONS:
            belt = ConveyorSource(realtime=False, condition=condition, seed=2, **kwargs)
            with belt:
                n = belt.pass_frames
                labels = belt.pass_labels
            out[f"{name}:{condition}"] = (analysed(belt, n, stride, analyzer), labels)
    return out


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def score(name: str, frames: list[dict[str, Any]], truth_labels: list[int] | None) -> dict:
    from screwcam.edge_service.tracking import HeadTracker

    line = HeadTracker(associator=make_associator(name))
    last_track: dict[int, int] = {}
    ids_per_truth: dict[int, set[int]] = defaultdict(set)
    switches = frame_ok = track_ok = matched = 0
    update_s = 0.0
    for item in frames:
        t0 = time.perf_counter()
        heads, _ = line.update(item["heads"], item["t"], item["size"])
        update_s += time.perf_counter() - t0
        for truth in item["truth"]:
            best, best_iou = None, 0.5
            for head in heads:
                iou = truth.box.iou(head.box)
                if iou >= best_iou:
                    best, best_iou = head, iou
            if best is None or best.track is None or best.track.id < 0:
                continue  # not found, or a library's not-yet-confirmed detection
            matched += 1
            tid = best.track.id
            if truth.track in last_track and last_track[truth.track] != tid:
                switches += 1
            last_track[truth.track] = tid
            ids_per_truth[truth.track].add(tid)
            name_true = CLASSES[truth.label]
            frame_ok += best.best == name_true
            track_ok += best.track.label == name_true
    out: dict[str, Any] = {
        "id_switches": switches,
        "extra_ids": sum(len(v) - 1 for v in ids_per_truth.values()),
        "frame_acc": round(frame_ok / max(1, matched), 4),
        "track_acc": round(track_ok / max(1, matched), 4),
        "matched": matched,
        "update_ms": round(update_s / max(1, len(frames)) * 1000, 3),
    }
    if truth_labels is not None:
        counted = line.tally.snapshot()["counts"]
        truth = {c: sum(1 for v in truth_labels if CLASSES[v] == c) for c in CLASSES}
        out["counted"] = sum(counted.values())
        out["truth"] = len(truth_labels)
        out["count_error"] = sum(abs(counted[c] - truth[c]) for c in CLASSES)
        out["worst_class_error"] = max(abs(counted[c] - truth[c]) for c in CLASSES)
    return out


_COST = """
import sys, time
def rss():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024
import numpy
base = rss()
t1 = time.perf_counter()
from screwcam.bench.tracking import make_associator
from screwcam.frames import Box
a = make_associator(sys.argv[1])
a.update([Box(10, 10, 50, 50)], 0.0)
a.update([Box(14, 10, 50, 50)], 0.033)
t2 = time.perf_counter()
print(f"{(t2 - t1) * 1000:.1f} {rss() - base:.1f} {rss():.1f}")
"""


def start_cost(name: str) -> dict[str, float]:
    """Import + first two updates in a fresh process: ms, MB of RSS added to a process
    that has imported numpy, and that process's RSS (best of three)."""
    runs = []
    for _ in range(3):
        text = subprocess.run(
            [sys.executable, "-c", _COST, name], capture_output=True, text=True, check=True
        ).stdout.split()
        runs.append((float(text[0]), float(text[1]), float(text[2])))
    return {
        "start_ms": min(r[0] for r in runs),
        "rss_mb": min(r[1] for r in runs),
        "process_rss_mb": min(r[2] for r in runs),
    }


def available(names: Sequence[str]) -> list[str]:
    out = []
    for name in names:
        try:
            make_associator(name)
        except ImportError:
            print(f"# {name}: not installed, skipped", file=sys.stderr)
            continue
        out.append(name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=600, help="demo frames (default 600)")
    parser.add_argument("--stride", type=int, default=1, help="use every Nth frame (drops)")
    parser.add_argument("--trackers", default="ours,norfair,bytetrack")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = parser.parse_args(argv)

    from screwcam.bundle import shipped_bundle
    from screwcam.classifier import Classifier, load_bundle
    from screwcam.edge_service.analyzer import Analyzer

    names = available(args.trackers.split(","))
    bundle = load_bundle(shipped_bundle())
    analyzer = Analyzer(Classifier(bundle, num_threads=1), 0.5)
    print(f"# analysing the videos (stride {args.stride}) ...", file=sys.stderr)
    vids = videos(args.frames, args.stride, analyzer)
    report: dict[str, Any] = {"stride": args.stride, "trackers": {}}
    for name in names:
        cost = start_cost(name)
        per_video = {v: score(name, frames, labels) for v, (frames, labels) in vids.items()}
        report["trackers"][name] = {**cost, "videos": per_video}
        print(
            f"\n{name}: start {cost['start_ms']:.0f} ms, +{cost['rss_mb']:.1f} MB RSS "
            f"(process {cost['process_rss_mb']:.0f} MB)"
        )
        print(
            f"  {'video':26} {'idsw':>5} {'extra':>5} {'frame':>6} {'voted':>6} "
            f"{'count':>7} {'err':>4} {'ms':>6}"
        )
        for video, r in per_video.items():
            count = f"{r['counted']}/{r['truth']}" if "counted" in r else "-"
            err = r.get("worst_class_error", "-")
            print(
                f"  {video:26} {r['id_switches']:5d} {r['extra_ids']:5d} {r['frame_acc']:6.3f} "
                f"{r['track_acc']:6.3f} {count:>7} {err!s:>4} {r['update_ms']:6.3f}"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
