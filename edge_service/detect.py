"""`screwcam detect [--model M] [--json OUT] [--draw DIR] IMAGE_OR_FOLDER...`: every screw head in
each photo, boxed by the bundle's head detector and named by its classifier.

Printed per file; with --json, written as

    {"images": [{"file": ..., "width": ..., "height": ...,
                 "heads": [{"box": [x, y, w, h], "label": ..., "label_en": ...,
                            "confidence": ...}]}]}

the same head JSON as /api/predictions, made by the same Analyzer as the live service and
uploads (the bundle's detector, the one preprocessing, the classifier, the threshold).
Like uploads, and unlike the live stream (1 view, for its frame-rate budget), each head's
crop is classified over 8 turned and mirrored views (`--views`): a photo can spare the
few milliseconds, and it is 2-4 points better on a look the classifier never saw.
Also like uploads, a photo larger than the detector's frame is searched in overlapping
windows down to half its training scale (`--tile-scale`, `screwcam.detector.Detector`):
seen whole, a phone photo is shrunk about 12 times and a head under ~90 px across
vanishes. `--whole` looks once at the whole image, as the live stream does. `--draw DIR` also
writes each photo with its heads drawn on it, as the live page draws them.
Boxes are in the image's own pixels as a viewer shows it: the EXIF orientation (JPEG,
PNG eXIf, WebP, TIFF) is applied when decoding.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from screwcam.bundle import DEFAULT_BUNDLE, resolve_bundle_path
from screwcam.classifier import PHOTO_VIEWS, VIEW_CHOICES
from screwcam.dataset import IMAGE_SUFFIXES
from screwcam.detector import PHOTO_TILE_SCALE, tile_scale_arg
from screwcam.errors import DatasetError, ScrewcamError
from screwcam.files import write_atomic
from screwcam.images import read_image

from .draw import annotate, encode_jpeg
from .results import Head


def image_files(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """(file, its name) of the image files named or found (recursively, hidden ones
    skipped) in `inputs`; the name of a file found in a folder is its path inside it."""
    files: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(
                p
                for p in item.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(item).parts)
            )
            if not found:
                raise DatasetError(f"folder {item} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend((p, p.relative_to(item)) for p in found)
        elif item.is_file():
            files.append((item, Path(item.name)))
        else:
            raise DatasetError(f"{item} does not exist; pass image files or folders of images")
    return files


def drawn_paths(files: list[tuple[Path, Path]], folder: Path, force: bool) -> list[Path]:
    """Where --draw writes each file's annotated copy: its name under `folder`, as .jpg.
    Refuses two inputs that would land on one file, and (unless `force`) files that exist,
    before anything is analysed."""
    targets = [folder / name.with_suffix(".jpg") for _, name in files]
    first: dict[Path, Path] = {}
    for (path, _), target in zip(files, targets, strict=True):
        if target in first:
            raise ScrewcamError(
                f"{first[target]} and {path} would both be drawn to {target}; "
                "rename one or pass them in separate runs"
            )
        first[target] = path
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ScrewcamError(f"{existing[0]} exists{more}; pass --force to replace it")
    return targets


def iter_detect(
    files: list[Path],
    model: str | Path = DEFAULT_BUNDLE,
    threshold: float | None = None,
    views: int = PHOTO_VIEWS,
    tile_scale: float | None = PHOTO_TILE_SCALE,
) -> Iterator[tuple[Path, np.ndarray, list[Head]]]:
    """(file, its image upright, its heads) for each file as it is done; each head
    classified over `views` views of its crop, images larger than the detector's frame
    searched in windows down to `tile_scale` (None: seen whole)."""
    from screwcam.classifier import Classifier, load_bundle

    from .analyzer import Analyzer

    bundle = load_bundle(resolve_bundle_path(model))
    threshold = 0.5 if threshold is None else threshold
    classifier = Classifier(bundle, num_threads=2, views=views)
    analyzer = Analyzer(classifier, threshold, find_threads=2, tile_scale=tile_scale)
    for path in files:
        image = read_image(path, cv2.IMREAD_COLOR, "remove it or pass only image files")
        heads, _ = analyzer.analyze(image)
        yield path, image, heads


def image_entry(path: Path, image: np.ndarray, heads: list[Head]) -> dict[str, Any]:
    """One file's {"file", "width", "height", "heads"} (see the module doc)."""
    h, w = image.shape[:2]
    return {"file": str(path), "width": w, "height": h, "heads": [x.to_json() for x in heads]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER")
    parser.add_argument(
        "--model", default=DEFAULT_BUNDLE, help=f"model bundle (default {DEFAULT_BUNDLE})"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="confidence below which a head is labelled 'unknown' (0.5)",
    )
    parser.add_argument(
        "--views",
        type=int,
        choices=VIEW_CHOICES,
        default=PHOTO_VIEWS,
        help=f"average the classifier over this many turned/mirrored views of each head "
        f"(default {PHOTO_VIEWS}; the live stream uses 1)",
    )
    look = parser.add_mutually_exclusive_group()
    look.add_argument(
        "--tile-scale",
        type=tile_scale_arg,
        default=PHOTO_TILE_SCALE,
        metavar="S",
        help="search an image larger than the detector's frame in overlapping windows down "
        f"to S detector pixels per image pixel (default {PHOTO_TILE_SCALE}, the scale it "
        "trained at; smaller is faster and misses small heads)",
    )
    look.add_argument(
        "--whole",
        action="store_true",
        help="look once at each whole image, shrunk to the detector's frame, as the live "
        "stream does (fast; misses heads small against a large photo)",
    )
    parser.add_argument(
        "--draw",
        type=Path,
        metavar="DIR",
        help="also write each photo with its boxes, names and confidences drawn on it to DIR "
        "(as .jpg, under its name; a folder's photos under their paths inside it)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an existing --json file or drawn photo"
    )


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.threshold <= 1.0:
        raise ScrewcamError(f"--threshold must be in 0..1, got {args.threshold}")
    if args.json is not None and args.json.exists() and not args.force:
        raise ScrewcamError(f"{args.json} exists; pass --force to replace it")
    files = image_files(args.inputs)
    drawn = None if args.draw is None else drawn_paths(files, args.draw, args.force)
    tile_scale = None if args.whole else args.tile_scale
    paths = [path for path, _ in files]
    results = []
    found = iter_detect(paths, args.model, args.threshold, args.views, tile_scale)
    for k, (path, image, heads) in enumerate(found):
        entry = image_entry(path, image, heads)
        results.append(entry)
        print(f"{entry['file']}: {len(heads)} head{'' if len(heads) == 1 else 's'}")
        for head in entry["heads"]:
            x, y, w, h = head["box"]
            print(f"  {head['label']:15s} {head['confidence']:.2f}  box {x},{y} {w}x{h}")
        if drawn is not None:
            write_atomic(drawn[k], encode_jpeg(annotate(image, heads), 90))
            print(f"  drawn to {drawn[k]}")
        sys.stdout.flush()
    if args.json is not None:
        write_atomic(args.json, json.dumps({"images": results}, indent=2) + "\n")
    return 0
