"""`screwcam batch-test`: test a model bundle on folders of images or .npy sets.

    screwcam batch-test [--model models/default] DATA... [--json out.json] [--report out.html]

Runs on LiteRT through `screwcam.classifier.Classifier`, exactly like the
device, so it needs no TensorFlow (and must never import it). Prints overall
accuracy, per-class precision/recall, per-condition accuracy and the confusion
matrix; --json writes the numbers, --report one self-contained HTML page with
the confusion matrix and a thumbnail of every mistake.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from screwcam.bundle import DEFAULT_BUNDLE, resolve_bundle_path
from screwcam.classifier import VIEW_CHOICES
from screwcam.errors import DatasetError, ScrewcamError
from screwcam.files import write_atomic

CHUNK = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data",
        nargs="+",
        type=Path,
        help="image folders (class = folder name) or thesis X*.npy files/folders",
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_BUNDLE,
        help=f"model bundle folder (default: {DEFAULT_BUNDLE}, shipped with screwcam)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="write a self-contained HTML report with every mistake",
    )
    parser.add_argument(
        "--max-mistakes",
        type=int,
        default=None,
        help="show at most this many mistakes in the report (default: all)",
    )
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2)")
    parser.add_argument(
        "--views",
        type=int,
        choices=VIEW_CHOICES,
        default=1,
        help="average the classifier over this many turned/mirrored views of each crop "
        "(default 1, as the live stream; `detect` and uploads use 8)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite --json/--report files")


def log(msg: str, end: str = "\n") -> None:
    print(msg, file=sys.stderr, end=end, flush=True)


def _write_text(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise ScrewcamError(f"{path} exists; choose another name or pass --force to overwrite")
    write_atomic(path, text)


def classify_all(classifier: Any, x: np.ndarray, show_progress: bool = True) -> np.ndarray:
    """(N, 5) probabilities, CHUNK crops per interpreter call, with progress on stderr."""
    out = np.zeros((len(x), len(classifier.labels)), np.float32)
    tty = sys.stderr.isatty()
    for start in range(0, len(x), CHUNK):
        out[start : start + CHUNK] = classifier.classify(x[start : start + CHUNK])
        done = min(start + CHUNK, len(x))
        if show_progress and (tty or done == len(x) or (start // CHUNK) % 20 == 0):
            log(f"\rtested {done}/{len(x)} images", end="" if tty and done < len(x) else "\n")
    return out


def batch_test(
    model: Path,
    data: list[Path],
    threads: int = 2,
    show_progress: bool = True,
    views: int = 1,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(results dict as written by --json, list of mistakes with their images)."""
    from screwcam.classifier import Classifier, load_bundle
    from screwcam.dataset import load_samples
    from screwcam.training.report import evaluate

    bundle = load_bundle(model)
    classifier = Classifier(bundle, num_threads=threads, views=views)
    if show_progress:
        log(f"loading {', '.join(str(p) for p in data)}")
    samples = load_samples(data)
    if len(samples) == 0:
        raise DatasetError(
            f"no images found in {', '.join(str(p) for p in data)}; expected folders named "
            "after the classes (e.g. torx/), or X*.npy files"
        )
    if show_progress:
        over = f", {views} views per crop" if views > 1 else ""
        log(f"testing {len(samples)} images with {bundle.path} ({bundle.quantization}{over})")
    probs = classify_all(classifier, samples.x, show_progress)
    pred = probs.argmax(axis=1)
    conf = probs[np.arange(len(pred)), pred]
    result = evaluate(samples.y, pred, samples.conditions)
    result["model"] = str(bundle.path)
    result["model_name"] = bundle.meta.name
    result["views"] = views
    result["data"] = [str(p) for p in data]
    result["no_head"] = int(getattr(samples, "no_head", 0))
    wrong = np.flatnonzero(pred != samples.y)
    mistakes = [
        {
            "index": int(i),
            "path": samples.paths[i] if i < len(samples.paths) else "",
            "condition": str(samples.conditions[i]),
            "true": int(samples.y[i]),
            "pred": int(pred[i]),
            "confidence": float(conf[i]),
            "image": samples.x[i],
        }
        for i in wrong
    ]
    return result, mistakes


def run(args: argparse.Namespace) -> int:
    from screwcam.training.report import format_text, html_report

    for path in (args.json, args.report):
        if path is not None and path.exists() and not args.force:
            raise ScrewcamError(f"{path} exists; choose another name or pass --force")
    result, mistakes = batch_test(
        resolve_bundle_path(args.model), args.data, threads=args.threads, views=args.views
    )
    print(format_text(result, f"model {result['model']} on {', '.join(result['data'])}"))
    if result["no_head"]:
        print(f"({result['no_head']} images had no head found and were used whole)")
    if args.json is not None:
        doc = dict(result)
        doc["mistakes"] = [{k: v for k, v in m.items() if k != "image"} for m in mistakes]
        _write_text(args.json, json.dumps(doc, indent=2) + "\n", args.force)
        log(f"wrote {args.json}")
    if args.report is not None:
        page = html_report(
            result,
            mistakes,
            title=f"screwcam batch test: {result['model_name'] or result['model']}",
            subtitle=f"model {result['model']}; data {', '.join(result['data'])}",
            max_mistakes=args.max_mistakes,
        )
        _write_text(args.report, page, args.force)
        log(f"wrote {args.report}")
    return 0
