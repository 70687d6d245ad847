"""`screwcam export-detector DETECTOR_DIR --into BUNDLE`: add a trained head detector to a
model bundle as its `detector` part (detector.tflite + the part's meta in meta.json).

Re-runnable: it replaces only the detector part, so a bundle whose classifier was
retrained (new model.tflite and meta.json) gets its detector back with one command.
Needs no TensorFlow: it checks the detector on the device's own runtime first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from screwcam.bundle import add_part, read_bundle, resolve_bundle_path
from screwcam.detector import DETECTOR_FILE, DETECTOR_PART, Detector
from screwcam.errors import ModelError

PART_META = "detector.json"


def export_detector(detector_dir: Path, bundle_dir: Path) -> dict:
    """Copy detector_dir's detector into the bundle at bundle_dir (atomically); returns
    the part's meta entry as written."""
    detector_dir = Path(detector_dir)
    meta_path, model_path = detector_dir / PART_META, detector_dir / DETECTOR_FILE
    if not meta_path.is_file() or not model_path.is_file():
        raise ModelError(
            f"{detector_dir} holds no trained detector ({PART_META} and {DETECTOR_FILE}); "
            "train one with `screwcam train-detector DIR`"
        )
    try:
        entry = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {meta_path}: {exc}; retrain the detector") from exc
    if not isinstance(entry, dict):
        raise ModelError(f"{meta_path} is not a JSON object; retrain the detector")
    Detector(model_path, entry, num_threads=1)  # refuses a broken or foreign model
    bundle = read_bundle(bundle_dir)
    entry = {**entry, "file": DETECTOR_FILE}
    files = {
        DETECTOR_FILE: model_path.read_bytes(),
        # the part's meta beside it: the bundle folder is itself a DETECTOR_DIR, so
        # `export-detector BUNDLE --into BUNDLE` restores the part after the classifier's
        # recipe rewrote meta.json
        PART_META: json.dumps(entry, indent=2) + "\n",
    }
    add_part(bundle.path, DETECTOR_PART, entry, files)
    read_bundle(bundle.path)  # the result must validate
    return entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("detector_dir", type=Path, help="folder made by `screwcam train-detector`")
    parser.add_argument(
        "--into",
        required=True,
        help="the model bundle to add it to (e.g. models/default)",
    )


def run(args: argparse.Namespace) -> int:
    bundle_dir = resolve_bundle_path(args.into)
    entry = export_detector(args.detector_dir, bundle_dir)
    by_family = entry.get("metrics", {}).get("by_family", {})
    print(f"detector added to {bundle_dir} ({entry.get('size_bytes', '?')} bytes)")
    for family, m in by_family.items():
        print(f"  {family:8s} recall {m['recall']:.3f} precision {m['precision']:.3f}")
    return 0
