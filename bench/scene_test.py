"""`screwcam scene-test`: the whole pipeline on whole frames with known heads.

    screwcam scene-test [--model M] [--family F ...] [--scenes N] [--seed S]
                        [--min-side PX] [--detector DIR | --classical]
                        [--size WxH] [--tile-scale S] [--json OUT]

`batch-test` grades the classifier on crops cut around true boxes; `bench` times the
detector. Neither says what a user sees: how many of the heads in a frame get a box and
the right name. This renders 640x480 scenes whose every head's box and drive type is
known (or `--size`, e.g. 2016x1512, where heads are small against the frame as in a
photo) and runs them through the same `Analyzer` as the live service, uploads and
`screwcam detect` (the bundle's detector -> 28x28 crops -> classifier -> confidence
threshold; `--tile-scale` searches a large frame in windows as `detect` does).
Per family of scenes it reports, at IoU >= 0.5:

- heads found (recall) and boxes on a head (precision), false boxes;
- labels right: heads found AND named right, of all heads ("unknown" counts as wrong);
- label accuracy of the found heads (the classifier's share of the errors);
- F1 with labels: a true positive is a head boxed and named right; every other box is a
  false positive, every other head a miss (2 right / (boxes + heads));
- Pozidriv named Phillips, of the Pozidriv heads found.

Heads smaller than --min-side (shorter side, in the frame's pixels; default 24 px, the
size from which our goals count heads) are neither misses nor false boxes when boxed.

Families: `render` (our 2-D renderer's heads on synthetic surfaces), `photo` (the same
heads on real photographs shipped inside scikit-image, with clutter), `gen2` (the
independently written 3-D generator, `screwcam.render3d`), `sdf` (render_sdf's
ray-marched heads laid onto synthetic or photo surfaces with their shadows), `pbr`
(render_pbr's path-traced heads laid onto the same surfaces: a held-out test family no
recipe trains on; Mitsuba, ~1 s a scene), `demo` (the demo camera); on request `varied`
(render2d's heads).
Which of them a bundle's detector and classifier were trained on is in its model card:
report a family as held out only when neither part saw it (`--detector` takes the
detector from another folder, e.g. one trained without that family).
Needs the [train] extra for `photo`, `gen2`, `sdf` and `pbr` (scikit-image, Mitsuba); no
TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from screwcam.bundle import DEFAULT_BUNDLE, resolve_bundle_path
from screwcam.classes import CLASSES
from screwcam.classifier import VIEW_CHOICES
from screwcam.detector import PHOTO_TILE_SCALE, tile_scale_arg
from screwcam.errors import ScrewcamError
from screwcam.files import write_atomic
from screwcam.frames import Box
from screwcam.training.model_card import with_section

FAMILIES = ("render", "photo", "gen2", "sdf", "pbr", "demo")
# on request: varied (render2d's heads); pbr (render_pbr's) is a held-out test family
CHOICES = (*FAMILIES, "varied")
CARD_HEADING = "## The whole pipeline on scenes"
FRAME = (640, 480)
IOU = 0.5
POZIDRIV, PHILLIPS = CLASSES.index("pozidriv"), CLASSES.index("philips")


#: the classifier's training generator (`synth --generator`) whose heads a family shows,
#: and the detector's training family whose scenes it is
HEAD_GENERATOR = {
    "render": "classic",
    "photo": "classic",
    "demo": "classic",
    "gen2": "render3d",
    "sdf": "sdf",
    "pbr": "pbr",
    "varied": "render2d",
}
DETECTOR_FAMILY = {"demo": "render"}


def seen_in_training(
    family: str, detector_families: list[str] | None, generators: list[str] | None
) -> dict[str, bool | None]:
    """Did the detector / the classifier see this scene family's kind of image in
    training? None = not known (a classical finder; a bundle that does not say)."""
    det = None
    if detector_families is not None:
        det = DETECTOR_FAMILY.get(family, family) in detector_families
    cls = None
    if generators is not None:
        cls = HEAD_GENERATOR.get(family) in generators
    return {"detector": det, "classifier": cls}


def _generators(bundle) -> list[str] | None:
    """The generators of the classifier's training pool, from the bundle's meta."""
    data = (bundle.meta.training or {}).get("data") or {}
    gens = ((data.get("train") or {}).get("per_family") or {}).get("gen")
    return sorted(gens) if gens else None


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Tally:
    """Counts over the scenes of one family."""

    scenes: int = 0
    heads: int = 0  # heads >= min side
    boxes: int = 0  # boxes not on a smaller head
    found: int = 0  # heads boxed (IoU >= 0.5)
    on_nothing: int = 0  # boxes that touch no head at all (IoU < 0.1 with every head)
    right: int = 0  # heads boxed and named right
    pozidriv_found: int = 0
    pozidriv_as_phillips: int = 0
    confusion: list[list[int]] = field(
        default_factory=lambda: [[0] * (len(CLASSES) + 1) for _ in CLASSES]
    )  # true class x (named class, or "unknown" last) of the heads found

    def add(
        self,
        heads: list[tuple[Box, str]],
        truth: list[tuple[Box, int]],
        min_side: int,
    ) -> None:
        """One scene: `heads` (box, label name or "unknown") against `truth` (box, class)."""
        self.scenes += 1
        big = [(b, c) for b, c in truth if min(b.w, b.h) >= min_side]
        small = [b for b, c in truth if min(b.w, b.h) < min_side]
        heads = [(b, n) for b, n in heads if not any(b.iou(s) >= IOU for s in small)]
        self.heads += len(big)
        self.boxes += len(heads)
        every = [b for b, _ in truth]
        self.on_nothing += sum(1 for b, _ in heads if not any(b.iou(t) >= 0.1 for t in every))
        used: set[int] = set()
        for box, name in heads:  # the Analyzer gives the strongest heads first
            best, best_iou = None, IOU
            for k, (t, _) in enumerate(big):
                v = box.iou(t)
                if k not in used and v >= best_iou:
                    best, best_iou = k, v
            if best is None:
                continue
            used.add(best)
            true = big[best][1]
            named = CLASSES.index(name) if name in CLASSES else len(CLASSES)
            self.found += 1
            self.right += int(named == true)
            self.confusion[true][named] += 1
            if true == POZIDRIV:
                self.pozidriv_found += 1
                self.pozidriv_as_phillips += int(named == PHILLIPS)

    def result(self) -> dict[str, Any]:
        def ratio(a: int, b: int) -> float:
            return round(a / b, 4) if b else 0.0

        return {
            "scenes": self.scenes,
            "heads": self.heads,
            "boxes": self.boxes,
            "recall": ratio(self.found, self.heads),
            "precision": ratio(self.found, self.boxes),
            "false_boxes": self.boxes - self.found,
            "boxes_on_nothing": self.on_nothing,
            "labels_right": ratio(self.right, self.heads),
            "label_accuracy_found": ratio(self.right, self.found),
            "f1_labelled": ratio(2 * self.right, self.boxes + self.heads),
            "pozidriv_as_phillips": [self.pozidriv_as_phillips, self.pozidriv_found],
            "confusion": self.confusion,
        }


def scenes(family: str, n: int, seed: int, workers: int = 2, size: tuple[int, int] = FRAME):
    """n scenes of `family` at `size`: (gray or BGR image, [(box, class)]) pairs (the
    demo camera's frames are always 640x480)."""
    if family == "demo":
        yield from _demo_scenes(n, seed)
        return
    from screwcam.training.verifier import render_scenes

    yield from render_scenes(family, n, seed, workers, size=size)


def _demo_scenes(n: int, seed: int):
    """Frames of the demo camera, 3 frames apart, across its lighting conditions."""
    from screwcam.render import DemoSource

    src = DemoSource(realtime=False, seed=seed)
    src.open()
    try:
        for i in range(0, 3 * n, 3):
            image, truth = src.render(i)
            yield image, [(t.box, int(t.label)) for t in truth]
    finally:
        src.close()


def scene_test(
    model: Path,
    families: tuple[str, ...],
    n: int,
    seed: int,
    min_side: int = 24,
    detector: Path | None = None,
    classical: bool = False,
    threshold: float = 0.5,
    progress: bool = True,
    views: int = 1,
    verify: bool = True,
    size: tuple[int, int] = FRAME,
    tile_scale: float | None = None,
) -> dict[str, Any]:
    """{"model", "finder", "min_side", "iou", "seed", "families": {family: result}}.
    `verify=False` runs the detector without its verifier (the heat map alone);
    `tile_scale` searches frames larger than the detector's in windows, as `detect`
    and uploads do (`Detector.tile_scale`)."""
    from screwcam.classifier import Classifier, load_bundle
    from screwcam.detector import DETECTOR_FILE, DETECTOR_PART, Detector, load_detector
    from screwcam.edge_service.analyzer import Analyzer
    from screwcam.training.detector import read_entry

    bundle = load_bundle(model)
    find: Callable[[np.ndarray], list[Box]] | None = None
    det: Detector | None = None
    det_families: list[str] | None = None
    if classical:
        from screwcam.heads import find_heads

        find, finder = find_heads, "the classical finder (screwcam.heads)"
    elif detector is not None:
        # a folder written by `screwcam train-detector` (detector.json + detector.tflite)
        entry = read_entry(Path(detector))
        det = Detector(Path(detector) / DETECTOR_FILE, entry, 2, tile_scale)
        finder = f"the detector in {detector}"
        det_families = (entry.get("training") or {}).get("families")
    else:
        det = load_detector(bundle, num_threads=2, tile_scale=tile_scale)
        finder = "the bundle's detector"
        part = bundle.meta.parts.get(DETECTOR_PART) or {}
        det_families = (part.get("training") or {}).get("families")
        if det is None:
            finder = "the classical finder (the bundle has no detector)"
    if det is not None:
        if det.regressor is not None:
            finder += " with its box regressor"
        if det.verifier is not None and not verify:
            det.verifier = None  # as find_heads_fn(verify=False)
            finder += ", its verifier off"
        elif det.verifier is not None:
            finder += " and its verifier"
        if tile_scale is not None:
            finder += f", larger frames also in windows down to scale {tile_scale:g}"
        find = det
    generators = _generators(bundle)  # the classifier's training generators
    classifier = Classifier(bundle, num_threads=2, views=views)
    analyzer = Analyzer(classifier, threshold, find=find, find_threads=2)
    out: dict[str, Any] = {
        "model": str(bundle.path),
        "finder": finder,
        "frame": list(size),
        "tile_scale": tile_scale,
        "min_side": min_side,
        "iou": IOU,
        "confidence_threshold": threshold,
        "views": views,
        "seed": seed,
        "families": {},
        # whether the detector / classifier trained on each family's kind of image
        "seen": {f: seen_in_training(f, det_families, generators) for f in families},
    }
    for family in families:
        tally = Tally()
        for image, truth in scenes(family, n, seed, size=size):
            heads, _ = analyzer.analyze(image)
            tally.add([(h.box, h.label) for h in heads], truth, min_side)
            if progress and (tally.scenes % 50 == 0 or tally.scenes == n):
                log(f"{family}: {tally.scenes}/{n} scenes")
        out["families"][family] = tally.result()
    return out


def format_table(result: dict[str, Any]) -> str:
    """The result as a Markdown table, one row per family."""
    lines = [
        "| scenes | heads | found (recall) | precision | false boxes (on nothing) | labels right "
        "| label accuracy of found heads | F1 with labels | Pozidriv named Phillips |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for family, r in result["families"].items():
        poz, poz_n = r["pozidriv_as_phillips"]
        lines.append(
            f"| {family} ({r['scenes']}) | {r['heads']} | {r['recall']:.3f} | "
            f"{r['precision']:.3f} | {r['false_boxes']} ({r['boxes_on_nothing']}) | "
            f"{r['labels_right'] * 100:.1f} % | "
            f"{r['label_accuracy_found'] * 100:.1f} % | **{r['f1_labelled']:.3f}** | "
            f"{poz}/{poz_n} |"
        )
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=DEFAULT_BUNDLE, help=f"model bundle (default {DEFAULT_BUNDLE})"
    )
    parser.add_argument(
        "--family",
        action="append",
        choices=CHOICES,
        help="scene family (repeatable; default all: " + ", ".join(FAMILIES) + ")",
    )
    parser.add_argument("--scenes", type=int, default=150, help="scenes per family (150)")
    parser.add_argument("--seed", type=int, default=7919, help="scene seed (7919)")
    parser.add_argument(
        "--min-side",
        type=int,
        default=24,
        help="count heads whose shorter side is at least this many pixels (24)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="confidence below which a head is labelled 'unknown' (0.5, as `serve`)",
    )
    parser.add_argument(
        "--views",
        type=int,
        choices=VIEW_CHOICES,
        default=1,
        help="classifier views per head (default 1, as the live stream; `detect` uses 8)",
    )
    finder = parser.add_mutually_exclusive_group()
    finder.add_argument(
        "--detector",
        type=Path,
        metavar="DIR",
        help="use the detector trained into DIR instead of the bundle's",
    )
    finder.add_argument("--classical", action="store_true", help="use the classical finder instead")
    parser.add_argument(
        "--no-verifier",
        action="store_true",
        help="run the detector without its second stage (the heat map alone), to compare",
    )
    parser.add_argument(
        "--size",
        type=_size,
        default=FRAME,
        metavar="WxH",
        help="frame size of the rendered scenes (640x480; head sizes run from 7 px to 0.4 "
        "of the height, so a larger frame holds heads small against it, as a photo does)",
    )
    parser.add_argument(
        "--tile-scale",
        type=tile_scale_arg,
        metavar="S",
        help="search frames larger than the detector's in windows down to S input pixels "
        f"per frame pixel, as `detect` and uploads do ({PHOTO_TILE_SCALE:g}); default: "
        "each frame seen whole, as the live stream does",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results here")
    parser.add_argument(
        "--update-card",
        action="store_true",
        help=f"write the table into the bundle's MODEL_CARD.md (section {CARD_HEADING!r})",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --json file")


def _size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H), for --size."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 2016x1512") from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be 64..8192 px")
    return w, h


def run(args: argparse.Namespace) -> int:
    if args.scenes < 1:
        raise ScrewcamError(f"--scenes must be at least 1, got {args.scenes}")
    if not 0.0 <= args.threshold <= 1.0:
        raise ScrewcamError(f"--threshold must be in 0..1, got {args.threshold}")
    if args.json is not None and args.json.exists() and not args.force:
        raise ScrewcamError(f"{args.json} exists; pass --force to replace it")
    families = tuple(dict.fromkeys(args.family or FAMILIES))
    if tuple(args.size) != FRAME and "demo" in families:
        raise ScrewcamError(
            f"the demo camera's frames are always {FRAME[0]}x{FRAME[1]}: leave --size out "
            "or pick other --family values"
        )
    result = scene_test(
        resolve_bundle_path(args.model),
        families,
        args.scenes,
        args.seed,
        min_side=args.min_side,
        detector=args.detector,
        classical=args.classical,
        threshold=args.threshold,
        views=args.views,
        verify=not args.no_verifier,
        size=args.size,
        tile_scale=args.tile_scale,
    )
    print(
        f"{result['model']} with {result['finder']}: heads >= {args.min_side} px in "
        f"{args.size[0]}x{args.size[1]} scenes, IoU >= {IOU}, seed {args.seed}"
    )
    print(format_table(result), end="")
    if args.json is not None:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")
    if args.update_card:
        card = Path(result["model"]) / "MODEL_CARD.md"
        if not card.is_file():
            raise ScrewcamError(f"{card} does not exist; --update-card needs a bundle with a card")
        text = with_section(card.read_text(encoding="utf-8"), CARD_HEADING, card_section(result))
        write_atomic(card, text)
        print(f"updated {card}")
    return 0


def card_section(result: dict[str, Any]) -> str:
    families = ", ".join(result["families"])
    n = max((r["scenes"] for r in result["families"].values()), default=0)
    return (
        f"{CARD_HEADING}\n\n"
        f"`screwcam scene-test --scenes {n} --seed {result['seed']} --min-side "
        f"{result['min_side']}`: {families} scenes ({result['frame'][0]}x{result['frame'][1]}) "
        "whose every head's box and drive type is known, run through the live service's "
        f"pipeline ({result['finder']}, 28x28 crops, the classifier, confidence >= "
        f'{result["confidence_threshold"]} or "unknown"). Heads >= {result["min_side"]} px '
        f'across count; IoU >= {result["iou"]}; "labels right" = boxed and named right, of '
        "all heads; F1 with labels counts a box as right only if its name is. "
        + seen_sentence(result)
        + " A pipeline whose detector and classifier both never saw a family is graded in "
        'the README ("The whole pipeline on scenes").\n\n' + format_table(result)
    )


def seen_sentence(result: dict[str, Any]) -> str:
    """Which part of the pipeline trained on which family, as one sentence."""
    groups: dict[str, list[str]] = {}
    for family, seen in (result.get("seen") or {}).items():
        det, cls = seen["detector"], seen["classifier"]
        if det is None or cls is None:
            key = "not known which part trained on"
        elif det and cls:
            key = "the detector and the classifier both trained on (not held-out numbers)"
        elif det:
            key = "only the detector trained on"
        elif cls:
            key = "only the classifier trained on (the detector never saw such scenes)"
        else:
            key = "**neither part trained on (held out)**"
        groups.setdefault(key, []).append(family)
    if not groups:
        return ""
    parts = [f"{', '.join(fams)}: {key}" for key, fams in groups.items()]
    return "Training: " + "; ".join(parts) + "."
