"""`screwcam record`: record a training video of one screw type.

Writes <out>/<label>_<UTC time>.mp4 (codec mp4v, which OpenCV's bundled FFmpeg writes
reliably in opencv-python-headless) and a JSON sidecar <same name>.json with label,
source, resolution, fps, start time and frame count. Records until --seconds have
passed or Ctrl-C / SIGTERM. While recording the video lives under a hidden temporary
name (.<name>.part.mp4 -- it still ends in .mp4 so OpenCV picks the MP4 container);
the sidecar is put in place first and the video renamed last, so a killed recorder
never leaves a file under a final name.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from screwcam.classes import label_id
from screwcam.errors import CameraError
from screwcam.recording import SUFFIX, record
from screwcam.sources import SOURCE_HELP, default_source_spec, open_source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--label", required=True, help="screw type: thesis name, English name or 0-4"
    )
    parser.add_argument(
        "--source",
        default=None,
        help=SOURCE_HELP,
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after this long (default: Ctrl-C)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("recordings"), help="folder (default: recordings/)"
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="frame rate to record (default: the source's)"
    )


def run(args: argparse.Namespace) -> int:
    label = label_id(args.label)  # unknown label -> DatasetError listing the valid ones
    if args.seconds is not None and args.seconds <= 0:
        raise CameraError("--seconds must be positive")
    if args.fps is not None and not 0 < args.fps <= 240:
        raise CameraError("--fps must be between 0 and 240")
    spec = args.source or default_source_spec()
    leftovers = sorted(args.out.glob(f".*.part{SUFFIX}")) if args.out.is_dir() else []
    if leftovers:
        print(
            f"note: {len(leftovers)} unfinished recording(s) from interrupted runs in "
            f"{args.out} (e.g. {leftovers[0].name}); delete them if no recorder is running",
            file=sys.stderr,
        )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()  # finish the file cleanly

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with open_source(spec, loop=False, realtime=True, label=label) as source:
            result = record(
                source, label, args.out, seconds=args.seconds, fps=args.fps, stop=stop,
                source_spec=spec, progress=sys.stderr,
            )  # fmt: skip
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    print(
        f"saved {result.video} ({result.frames} frames, {result.seconds:.1f} s) "
        f"and {result.sidecar.name}",
        file=sys.stderr,
    )
    return 0
