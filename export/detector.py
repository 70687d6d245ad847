"""`screwcam export-detector DETECTOR_DIR --into BUNDLE`: add a trained head detector to a
model bundle as its `detector` part (detector.tflite, detector.json, the part's entry in
meta.json, and a "Head detector" section in MODEL_CARD.md).

Re-runnable: it replaces only the detector part, so a bundle whose classifier was
retrained (new model.tflite, meta.json and model card) gets its detector back with one
command; a bundle folder is itself a DETECTOR_DIR (`export-detector models/default --into
models/default`). Needs no TensorFlow: the detector is checked on the device's runtime.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from screwcam.bundle import add_part, part_files, read_bundle, resolve_bundle_path
from screwcam.detector import DETECTOR_FILE, DETECTOR_PART, Detector
from screwcam.training.detector import PART_META, read_entry
from screwcam.training.model_card import with_section

CARD = "MODEL_CARD.md"
CARD_HEADING = "## Head detector"


def _table(by_family: dict[str, dict]) -> list[str]:
    lines = ["| test family | frames | heads | recall | precision | false boxes |"]
    lines.append("|---|---:|---:|---:|---:|---:|")
    for family, m in by_family.items():
        lines.append(
            f"| {family} | {m['frames']} | {m['heads']} | {m['recall']:.3f} | "
            f"{m['precision']:.3f} | {m['false_boxes']} |"
        )
    return lines


def _stages(t: dict[str, Any]) -> str:
    prior = t.get("continued_from")
    if not prior:
        return ""
    return (
        f"{_stages(prior)}First {prior.get('scenes', '?')} scenes x {prior.get('epochs', '?')} "
        f"epochs (seed {prior.get('seed', '?')}, {prior.get('seconds', {}).get('train', '?')} s), "
        "then continued: "
    )


def card_section(entry: dict[str, Any]) -> str:
    """The model card's "Head detector" section, from the part's meta."""
    t = entry.get("training", {})
    m = entry.get("metrics", {})
    lines = [
        CARD_HEADING,
        "",
        f"`{entry.get('file', DETECTOR_FILE)}` ({entry.get('size_bytes', '?')} bytes, int8, "
        f"{entry.get('parameters', '?')} parameters): a fully convolutional network on the "
        f"gray frame letterboxed to {entry['input']['width']}x{entry['input']['height']}; "
        f"a head-centre heat map and box (sub-cell offset, log size) on a stride-"
        f"{entry.get('stride')} grid; a head = a heat peak, its box snapped to the head's "
        "own outline where the classical outline finder confirms it (the score is then "
        f"doubled); score >= {entry.get('threshold')} (chosen by F1 on validation scenes). "
        f"{_stages(t)}Trained on {t.get('scenes', '?')} scenes of the families "
        f"{', '.join(t.get('families', []))} for {t.get('epochs', '?')} epochs "
        f"(seed {t.get('seed', '?')}; data {t.get('seconds', {}).get('data', '?')} s, "
        f"training {t.get('seconds', {}).get('train', '?')} s).",
        "",
        "Recall and precision at IoU >= 0.5 of the int8 model on LiteRT (heads >= 16 px "
        "across in a 640x480 frame; `demo` = the demo camera's ground truth), on test "
        "scenes no training run used"
        + (
            f" of the families it was trained on ({', '.join(t['families'])}); the "
            "leave-one-family-out table below estimates a kind of image it never saw:"
            if m.get("leave_one_family_out") and t.get("families")
            else ":"
        ),
        "",
        *_table(m.get("by_family", {})),
    ]
    verifier = entry.get("verifier")
    if verifier:
        lines += ["", *_verifier_lines(verifier)]
    regressor = entry.get("regressor")
    if regressor:
        lines += ["", *_regressor_lines(regressor)]
    lofo = m.get("leave_one_family_out", [])
    if lofo:
        lines += [
            "",
            "Leave one family out (a detector trained without the family, tested on it):",
            "",
            "| trained on | test family | recall | precision | false boxes |",
            "|---|---|---:|---:|---:|",
        ]
        for run in lofo:
            for family, r in run["by_family"].items():
                if not _held_out(family, run):
                    continue
                lines.append(
                    f"| {', '.join(run['trained_on'])} | {family} | {r['recall']:.3f} | "
                    f"{r['precision']:.3f} | {r['false_boxes']} |"
                )
        verified = [run for run in lofo if run.get("verifier")]
        if verified:
            thresholds = {tuple(run.get("verifier_thresholds", ())) for run in verified}
            only = thresholds.pop() if len(thresholds) == 1 else ()
            at = f"; kept at heat >= {only[0]}, P(head) >= {only[1]}" if only else ""
            lines += [
                "",
                "Leave one family out with the second stage (the detector and its verifier "
                f"both trained without the family; heads >= 24 px in 640x480 scenes{at}):",
                "",
                "| trained on | test family | alone: recall | precision | with verifier: "
                "recall | precision | F1 alone -> with |",
                "|---|---|---:|---:|---:|---:|---|",
            ]
            for run in verified:
                for family, r in run["verifier"].items():
                    if _held_out(family, run):
                        lines.append(f"| {', '.join(run['trained_on'])} | {family} | {_pair(r)} |")
        regressed = [run for run in lofo if run.get("regressor")]
        if regressed:
            lines += [
                "",
                "Leave one family out with the box regressor (detector, verifier and "
                "regressor all trained without the family; heads >= 24 px in 640x480 scenes):",
                "",
                "| trained on | test family | without: recall | precision | with regressor: "
                "recall | precision | F1 without -> with |",
                "|---|---|---:|---:|---:|---:|---|",
            ]
            for run in regressed:
                for family, r in run["regressor"].items():
                    if _held_out(family, run):
                        cells = _pair(r, "without", "with")
                        lines.append(f"| {', '.join(run['trained_on'])} | {family} | {cells} |")
    return "\n".join(lines) + "\n"


def _held_out(family: str, run: dict[str, Any]) -> bool:
    """Whether a leave-one-family-out run never saw `family` (demo frames come from the
    "render" family's renderer)."""
    trained = run["trained_on"]
    return family not in trained and not (family == "demo" and "render" in trained)


def _f1(m: dict[str, Any]) -> float:
    r, p = m["recall"], m["precision"]
    return 0.0 if r + p == 0 else 2 * r * p / (r + p)


def _pair(r: dict[str, dict], before: str = "detector_alone", after: str = "with_verifier") -> str:
    """Table cells: the detector alone and with its verifier (or without and with another
    stage: `before`, `after`), on the same scenes."""
    a, b = r[before], r[after]
    return (
        f"{a['recall']:.3f} | {a['precision']:.3f} | {b['recall']:.3f} | {b['precision']:.3f} | "
        f"{_f1(a):.3f} -> {_f1(b):.3f}"
    )


def _chosen_by(v: dict[str, Any]) -> str:
    """How the verifier's two thresholds were set (`train-verifier --thresholds`)."""
    if v.get("thresholds_chosen_by") == "fixed":
        return "both thresholds fixed by the recipe, not chosen on validation scenes"
    return "both thresholds chosen together by F1 on validation scenes"


def _verifier_lines(v: dict[str, Any]) -> list[str]:
    t = v.get("training", {})
    lines = [
        "**Second stage (verifier).** "
        f"`{v.get('file')}` ({v.get('size_bytes', '?')} bytes, int8, "
        f"{v.get('parameters', '?')} parameters) looks again at every box the heat map "
        f"proposes with heat >= {v['detector_threshold']}, at the frame's full resolution "
        "(in the classifier's own 28x28 crop, so the live pipeline cuts each head once), "
        f"and keeps it if P(head) >= {v['threshold']} ({_chosen_by(v)}). It was trained "
        "on the boxes this "
        f"detector proposes in {t.get('scenes_per_family', '?')} scenes per family of "
        f"{', '.join(t.get('families', []))} ({t.get('boxes', '?')} boxes, "
        f"{t.get('heads', '?')} of them heads; {t.get('epochs', '?')} epochs, seed "
        f"{t.get('seed', '?')}); while training it also names each head's drive type, each "
        "type weighing the same, so that the plain hex head (no recess) is learned as a "
        "head. The heat map sees the frame at half size, where a recess is a few pixels; "
        "the verifier tells a head from a plain disc, washer or coin.",
        "",
        "The detector alone and with the verifier, on the same test scenes (heads >= 24 px "
        "in 640x480 scenes, IoU >= 0.5; these families were in its training):",
        "",
        "| test family | alone: recall | precision | with verifier: recall | precision | "
        "F1 alone -> with |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for family, r in v.get("metrics", {}).get("by_family", {}).items():
        lines.append(f"| {family} | {_pair(r)} |")
    return lines


def _regressor_lines(r: dict[str, Any]) -> list[str]:
    t = r.get("training", {})
    m = r.get("metrics", {})
    trained = t.get("families", [])
    stage = "with its verifier" if m.get("verifier") else "alone"
    lines = [
        "**Box regressor.** "
        f"`{r.get('file')}` ({r.get('size_bytes', '?')} bytes, int8, "
        f"{r.get('parameters', '?')} parameters) looks at every proposed box's surroundings "
        f"(the box plus {r.get('margin', '?')} of its side on every side, as a 28x28 crop) "
        "and moves and resizes the box onto the whole head before the verifier looks: the "
        "heat map sometimes boxes only the recess of a head whose face has the surface's "
        "own tone. It was trained on the boxes this detector proposes on heads in "
        f"{t.get('scenes_per_family', '?')} scenes per family of {', '.join(trained)} "
        f"({t.get('boxes', '?')} boxes; {t.get('epochs', '?')} epochs, seed "
        f"{t.get('seed', '?')}).",
        "",
        f"The detector {stage} without and with the regressor, on the same test scenes "
        "(heads >= 24 px in 640x480 scenes, IoU >= 0.5; families marked held out were in "
        "no part's training):",
        "",
        "| test family | without: recall | precision | with regressor: recall | precision | "
        "F1 without -> with |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for family, v in m.get("by_family", {}).items():
        seen = family in trained or (family == "demo" and "render" in trained)
        lines.append(f"| {family}{'' if seen else ' (held out)'} | {_pair(v, 'without', 'with')} |")
    return lines


def export_detector(
    detector_dir: Path, bundle_dir: Path, held_out: list[Path] | None = None
) -> dict:
    """Copy detector_dir's detector into the bundle at bundle_dir (atomically); the
    detectors in `held_out` (trained without some family) add their leave-one-family-out
    numbers to the part's metrics. Returns the part's meta entry as written."""
    detector_dir = Path(detector_dir)
    entry = read_entry(detector_dir)
    model_path = detector_dir / DETECTOR_FILE
    Detector(model_path, entry, num_threads=1)  # refuses a broken or foreign model
    if held_out:
        runs = []
        for folder in held_out:
            other = read_entry(Path(folder))
            run = {
                "trained_on": other["metrics"]["trained_on"],
                "scenes": other["training"]["scenes"],
                "epochs": other["training"]["epochs"],
                "by_family": other["metrics"]["by_family"],
            }
            if other.get("verifier"):  # its own verifier, trained without the family too
                run["verifier"] = other["verifier"]["metrics"]["by_family"]
                run["verifier_thresholds"] = [
                    other["verifier"]["detector_threshold"],
                    other["verifier"]["threshold"],
                ]
            if other.get("regressor"):  # its own box regressor, trained without it too
                run["regressor"] = other["regressor"]["metrics"]["by_family"]
            runs.append(run)
        entry["metrics"] = {**entry.get("metrics", {}), "leave_one_family_out": runs}
    bundle = read_bundle(bundle_dir)
    entry = {**entry, "file": DETECTOR_FILE}
    files: dict[str, bytes | str] = {
        DETECTOR_FILE: model_path.read_bytes(),
        # a verifier trained for this detector goes with it (`train-verifier`)
        **{name: (detector_dir / name).read_bytes() for name in part_files(entry)[1:]},
        # the part's meta beside it: the bundle folder is itself a DETECTOR_DIR, so
        # `export-detector BUNDLE --into BUNDLE` restores the part after the classifier's
        # recipe rewrote meta.json
        PART_META: json.dumps(entry, indent=2) + "\n",
    }
    card = bundle.path / CARD
    if card.is_file():
        files[CARD] = with_section(
            card.read_text(encoding="utf-8"), CARD_HEADING, card_section(entry)
        )
    before = bundle.meta.parts.get(DETECTOR_PART)
    add_part(bundle.path, DETECTOR_PART, entry, files)
    # a verifier of the detector replaced, which the new one does not have, goes too
    for stale in set(part_files(before) if before else []) - set(files):
        (bundle.path / stale).unlink(missing_ok=True)
    read_bundle(bundle.path)  # the result must validate
    return entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("detector_dir", type=Path, help="folder made by `screwcam train-detector`")
    parser.add_argument(
        "--into", required=True, help="the model bundle to add it to (e.g. models/default)"
    )
    parser.add_argument(
        "--held-out",
        type=Path,
        nargs="*",
        default=[],
        metavar="DIR",
        help="detectors trained with a family left out: their numbers go into the model card",
    )


def run(args: argparse.Namespace) -> int:
    bundle_dir = resolve_bundle_path(args.into)
    entry = export_detector(args.detector_dir, bundle_dir, args.held_out)
    by_family = entry.get("metrics", {}).get("by_family", {})
    print(f"detector added to {bundle_dir} ({entry.get('size_bytes', '?')} bytes)")
    for family, m in by_family.items():
        print(f"  {family:8s} recall {m['recall']:.3f} precision {m['precision']:.3f}")
    return 0
