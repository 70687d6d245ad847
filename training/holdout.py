"""`screwcam holdout`: leave-one-family-out accuracy, the honest test of generalization.

    screwcam holdout --train POOL --test POOL --hold gen=render3d --hold finish=rusty ...

POOL folders are datasets written by `screwcam synth` (any generator or a mix), whose
manifests name every sample's families (``gen=render2d/style=pan/finish=rusty/...``).
For each ``--hold KEY=VALUE`` a model is trained on the train pool's samples WITHOUT
that family value (both splits of the pool) and tested on the test pool's samples WITH
it, so the model has never seen that generator, style, finish, light or view. The
in-family number (test-pool samples without the held-out value) is reported next to it,
so the gap is visible. Writes holdout.json and holdout.md (a table for the model card
and README) into --out.

Keep the pools small on a shared machine (1,000-2,000 per class, a few epochs): this
trains one model per held-out family.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from screwcam.classes import CLASSES
from screwcam.errors import DatasetError, ScrewcamError

PRESETS = ("logreg", "mlp", "cnn1", "edge")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--train", type=Path, required=True, help="training pool (a `screwcam synth` dataset)"
    )
    parser.add_argument(
        "--test",
        type=Path,
        required=True,
        help="test pool (a `screwcam synth` dataset rendered with another seed)",
    )
    parser.add_argument(
        "--hold",
        action="append",
        required=True,
        metavar="KEY=VALUE",
        help="a family value to hold out (repeatable), e.g. gen=render3d, style=countersunk, "
        "finish=rusty, light=dim",
    )
    parser.add_argument("--preset", choices=PRESETS, default="edge", help="model (default edge)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per model (default 8)")
    parser.add_argument(
        "--max-per-class",
        type=int,
        default=0,
        metavar="N",
        help="train each model on at most N samples per class (default 0 = all), to keep "
        "the runs small",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="folder for holdout.json/.md")
    parser.add_argument("--force", action="store_true", help="overwrite holdout.json/.md")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _has(conditions: np.ndarray, key: str, value: str) -> np.ndarray:
    """Boolean mask: which conditions contain the part KEY=VALUE."""
    part = f"{key}={value}"
    return np.asarray([part in str(c).split("/") for c in conditions], dtype=bool)


def _subset(samples: Any, mask: np.ndarray) -> Any:
    from screwcam.dataset import Samples

    idx = np.flatnonzero(mask)
    return Samples(
        samples.x[idx],
        samples.y[idx],
        samples.conditions[idx],
        [samples.paths[i] for i in idx] if samples.paths else [],
    )


def _load_pool(path: Path) -> Any:
    from screwcam.dataset import Samples, load_dataset

    train, test = load_dataset(path)
    pool = Samples.concat([train, test])
    if not any("=" in str(c) for c in pool.conditions):
        raise DatasetError(
            f"{path} records no families in its manifest; render it with "
            "`screwcam synth --generator render2d|render3d|mix`"
        )
    return pool


def holdout(
    train_pool: Any,
    test_pool: Any,
    holds: list[str],
    preset: str = "edge",
    epochs: int = 8,
    seed: int = 0,
    max_per_class: int = 0,
    progress=log,
) -> dict[str, Any]:
    """Train one model per held-out family value and test it on that family.
    Returns {"rows": [...], ...} as written to holdout.json."""
    from screwcam.render.families import parse_family
    from screwcam.training.report import evaluate, pozidriv_as_phillips
    from screwcam.training.train import train

    rows = []
    for text in holds:
        try:
            key, value = parse_family(text)
        except ValueError as exc:
            raise ScrewcamError(f"--hold: {exc}") from exc
        keep = ~_has(train_pool.conditions, key, value)
        if max_per_class > 0:  # the first N of each class (generators alternate by index)
            for c in np.unique(train_pool.y):
                idx = np.flatnonzero(keep & (train_pool.y == c))
                keep[idx[max_per_class:]] = False
        tr = _subset(train_pool, keep)
        held = _has(test_pool.conditions, key, value)
        te, rest = _subset(test_pool, held), _subset(test_pool, ~held)
        if len(te) == 0:
            raise DatasetError(f"the test pool has no samples of {key}={value}")
        if len(rest) == 0:
            raise DatasetError(f"the test pool has only samples of {key}={value}")
        progress(
            f"holdout {key}={value}: training {preset} on {len(tr)} samples without it, "
            f"testing on {len(te)} with it"
        )
        t0 = time.perf_counter()
        model, metrics = train(
            tr,
            rest,
            preset=preset,
            epochs=epochs,
            seed=seed,
            progress=lambda m, tag=f"{key}={value}": progress(f"  {tag}: {m}"),
        )
        seconds = time.perf_counter() - t0
        probs = model.predict(te.x.astype(np.float32)[..., None], batch_size=512, verbose=0)
        result = evaluate(te.y, probs.argmax(axis=1), te.conditions)
        poz_wrong, poz_n = pozidriv_as_phillips(result)
        row = {
            "hold": f"{key}={value}",
            "family": key,
            "value": value,
            "train_n": int(len(tr)),
            "test_n": int(result["n"]),
            "accuracy": result["accuracy"],
            "in_family_accuracy": metrics["test"]["accuracy"],
            "in_family_n": metrics["test"]["n"],
            "recall": {c: result["per_class"][c]["recall"] for c in CLASSES},
            "pozidriv_as_phillips": [poz_wrong, poz_n],
            "per_family": result["per_family"],
            "confusion": result["confusion"],
            "epochs": metrics["epochs"],
            "train_seconds": round(seconds, 1),
        }
        progress(
            f"holdout {key}={value}: {row['accuracy'] * 100:.2f}% on the held-out family "
            f"(in-family {row['in_family_accuracy'] * 100:.2f}%), Pozidriv as Phillips "
            f"{poz_wrong}/{poz_n}, {seconds:.0f} s"
        )
        rows.append(row)
    return {
        "preset": preset,
        "epochs": epochs,
        "seed": seed,
        "max_per_class": max_per_class,
        "rows": rows,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def markdown(doc: dict[str, Any], train_name: str = "", test_name: str = "") -> str:
    """The leave-one-family-out table (for the model card and the README)."""
    from screwcam.training.model_card import holdout_section

    return holdout_section(doc, train_name, test_name)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out: Path = args.out
    targets = (out / "holdout.json", out / "holdout.md")
    for path in targets:
        if path.exists() and not args.force:
            raise ScrewcamError(f"{path} exists; choose another --out or pass --force")
    if args.epochs < 1:
        raise ScrewcamError("--epochs must be at least 1")
    train_pool, test_pool = _load_pool(args.train), _load_pool(args.test)
    log(f"holdout: train pool {len(train_pool)} samples, test pool {len(test_pool)} samples")
    doc = holdout(
        train_pool, test_pool, args.hold, args.preset, args.epochs, args.seed, args.max_per_class
    )
    doc["train_pool"], doc["test_pool"] = str(args.train), str(args.test)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(doc, str(args.train), str(args.test))
    _write(targets[0], json.dumps(doc, indent=2) + "\n")
    _write(targets[1], table)
    print(table)
    return 0
