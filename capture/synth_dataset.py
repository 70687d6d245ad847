"""`screwcam synth`: render a synthetic dataset of screw heads.

Every sample is one head drawn by `screwcam.render.render_sample`, found again
by the same head finder the live service uses (`find_main_head`), and turned
into the model's 28x28 input by the one `screwcam.preprocess.preprocess`. So a
model trained on it sees crops made exactly like the live ones. If the finder
misses a head, the renderer's own box is used and the miss is counted.

Two layouts:
- default: the dataset format of `screwcam.dataset.DatasetWriter` (train/ and test/
  PNG trees, X_/y_ .npy arrays, manifest.csv with each sample's condition);
- `--by-condition`: an image-folder tree DIR/<condition>/<class>/<n>.png, for
  batch-testing a model per lighting condition.

Conditions are balanced: sample i of every class has condition CONDITIONS[i % 6].
Sample i of class c is drawn from its own random stream (seed, c, i), so a seed
always gives the same images, in any number of processes.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from screwcam.classes import CLASSES, NUM_CLASSES
from screwcam.errors import DatasetError
from screwcam.heads import find_main_head
from screwcam.preprocess import preprocess
from screwcam.render import CONDITIONS, render_sample

RENDER_SIZE = 112
_CHUNK = 64  # samples per task handed to a worker process


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output folder (must be empty)")
    parser.add_argument(
        "--per-class", type=_positive_int, required=True, metavar="N", help="samples per class"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--test-fraction",
        type=_fraction,
        default=0.3,
        metavar="F",
        help="share of each class and condition put in the test split (default 0.3)",
    )
    parser.add_argument(
        "--by-condition",
        action="store_true",
        help="write DIR/<condition>/<class>/<n>.png (28x28 model inputs) for batch testing "
        "instead of a train/test dataset",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="J",
        help="worker processes (default 0 = one per CPU core)",
    )
    parser.add_argument("--force", action="store_true", help="write into a non-empty --out")
    parser.add_argument(
        "--sheet",
        type=Path,
        metavar="PNG",
        help="also write a contact sheet: per condition and class a rendered sample with "
        "its box and its 28x28 model input",
    )


@dataclass(frozen=True, slots=True)
class SynthSample:
    label: int
    index: int  # index within its class
    condition: str
    image: np.ndarray  # (28, 28) uint8 model input
    found: bool  # False: the head finder missed and the renderer's box was used


def condition_of(index: int) -> str:
    """The lighting condition of sample `index` of a class (balanced round robin)."""
    return CONDITIONS[index % len(CONDITIONS)]


def is_test(index: int, fraction: float) -> bool:
    """Whether sample `index` of a class goes to the test split. Within each condition
    the test samples are spread evenly, so both splits have every condition."""
    j = index // len(CONDITIONS)
    return int((j + 1) * fraction + 0.5) > int(j * fraction + 0.5)


def _render_and_find(seed: int, label: int, index: int, condition: str):
    """(rendered image, the box the crop uses, whether the head finder found it)."""
    rng = np.random.default_rng([seed, label, index])
    image, truth = render_sample(rng, label, condition, size=RENDER_SIZE)
    box = find_main_head(image)
    found = box is not None and box.iou(truth) >= 0.5
    return image, (box if found else truth), found


def make_sample(seed: int, label: int, index: int) -> SynthSample:
    """Render, find and preprocess one sample; deterministic for (seed, label, index)."""
    condition = condition_of(index)
    image, box, found = _render_and_find(seed, label, index, condition)
    return SynthSample(label, index, condition, preprocess(image, box.as_list()), found)


def contact_sheet(seed: int, tile: int = 64) -> np.ndarray:
    """A BGR picture with one row per condition and, per class, the rendered image
    (box drawn: green = head finder, red = renderer's fallback) next to its 28x28
    model input. Same images as sample 0..5 of each class for that seed."""
    rows = []
    for index, condition in enumerate(CONDITIONS):
        row = []
        for label in range(NUM_CLASSES):
            image, box, found = _render_and_find(seed, label, index, condition)
            drawn = image.copy()
            colour = (0, 200, 0) if found else (0, 0, 255)
            cv2.rectangle(drawn, (box.x, box.y), (box.x + box.w - 1, box.y + box.h - 1), colour, 1)
            drawn = cv2.resize(drawn, (tile, tile), interpolation=cv2.INTER_AREA)
            model_input = preprocess(image, box.as_list())
            model_input = cv2.resize(model_input, (tile, tile), interpolation=cv2.INTER_NEAREST)
            row += [drawn, cv2.cvtColor(model_input, cv2.COLOR_GRAY2BGR), _gap(tile, 4)]
        rows.append(np.hstack(row[:-1]))
    header = np.full((18, rows[0].shape[1], 3), 255, np.uint8)
    for label in range(NUM_CLASSES):
        x = label * (2 * tile + 4) + 4
        cv2.putText(header, CLASSES[label], (x, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1)
    labels = np.full((18 + tile * len(CONDITIONS), 84, 3), 255, np.uint8)
    for k, condition in enumerate(CONDITIONS):
        y = 18 + k * tile + tile // 2 + 5
        cv2.putText(labels, condition, (3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1)
    return np.hstack([labels, np.vstack([header, *rows])])


def _gap(tile: int, width: int) -> np.ndarray:
    return np.full((tile, width, 3), 255, np.uint8)


def _make_chunk(args: tuple[int, list[tuple[int, int]]]) -> list[SynthSample]:
    seed, items = args
    return [make_sample(seed, label, index) for label, index in items]


def _init_worker() -> None:
    cv2.setNumThreads(1)  # the processes already use every core
    # Ctrl-C reaches the whole process group: the parent stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def generate(seed: int, per_class: int, jobs: int = 1) -> Iterator[SynthSample]:
    """All samples, class by class, in a fixed order (independent of `jobs`)."""
    items = [(label, i) for label in range(NUM_CLASSES) for i in range(per_class)]
    chunks = [(seed, items[k : k + _CHUNK]) for k in range(0, len(items), _CHUNK)]
    if jobs <= 1:
        for chunk in chunks:
            yield from _make_chunk(chunk)
        return
    # A multiprocessing Pool, not a ProcessPoolExecutor: leaving this block for any
    # reason (Ctrl-C, SIGTERM, an error, the generator closed) terminates the workers
    # at once instead of letting them render the remaining chunks.
    pool = multiprocessing.get_context().Pool(jobs, initializer=_init_worker)
    try:
        for result in pool.imap(_make_chunk, chunks):
            yield from result
        pool.close()
    finally:
        pool.terminate()
        pool.join()


class _Progress:
    """Progress on stderr, at most about twice a second."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self._last < 0.5:
            return
        self._last = now
        rate = done / max(now - self.start, 1e-6)
        print(
            f"\rsynth: {done}/{self.total} samples ({rate:.0f}/s)",
            end="" if done < self.total else "\n",
            file=sys.stderr,
            flush=True,
        )


def _write_png_atomic(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise DatasetError(f"could not encode {path} as PNG")
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(encoded.tobytes())
    os.replace(tmp, path)


def write_by_condition(out: Path, samples: Iterator[SynthSample], progress: _Progress) -> int:
    """Write DIR/<condition>/<class>/<index>.png; returns the number of finder misses."""
    missed = 0
    for done, sample in enumerate(samples, 1):
        folder = out / sample.condition / CLASSES[sample.label]
        folder.mkdir(parents=True, exist_ok=True)
        _write_png_atomic(folder / f"{sample.index:06d}.png", sample.image)
        missed += not sample.found
        progress.update(done)
    return missed


def write_dataset(
    out: Path,
    samples: Iterator[SynthSample],
    fraction: float,
    seed: int,
    force: bool,
    progress: _Progress,
) -> tuple[int, dict[str, list[int]]]:
    """Write the train/test dataset; returns (finder misses, counts per split)."""
    from screwcam.dataset import DatasetWriter  # the writer checks and replaces the folder

    missed = 0
    with DatasetWriter(out, force=force) as writer:
        for done, sample in enumerate(samples, 1):
            writer.add(
                sample.image,
                label=sample.label,
                split="test" if is_test(sample.index, fraction) else "train",
                source=f"synth_seed{seed}_{sample.condition}",
                frame_index=sample.index,
                condition=sample.condition,
            )
            missed += not sample.found
            progress.update(done)
        counts = writer.counts()
    return missed, counts


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} exists and is not a folder; choose another --out")
    if args.by_condition and out.is_dir() and any(out.iterdir()) and not args.force:
        raise DatasetError(
            f"output folder {out} is not empty; choose another --out or pass --force to "
            "write into it"
        )
    jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
    total = args.per_class * NUM_CLASSES
    print(
        f"synth: rendering {args.per_class} per class x {NUM_CLASSES} classes, "
        f"conditions {', '.join(CONDITIONS)}, seed {args.seed}, {jobs} process(es)",
        file=sys.stderr,
    )
    progress = _Progress(total)
    with contextlib.closing(generate(args.seed, args.per_class, jobs)) as samples:
        return _write(args, out, samples, progress, total)


def _write(
    args: argparse.Namespace,
    out: Path,
    samples: Iterator[SynthSample],
    progress: _Progress,
    total: int,
) -> int:
    if args.by_condition:
        out.mkdir(parents=True, exist_ok=True)
        missed = write_by_condition(out, samples, progress)
        layout = f"{out}/<condition>/<class>/<n>.png"
    else:
        missed, counts = write_dataset(
            out, samples, args.test_fraction, args.seed, args.force, progress
        )
        layout = f"{out} (train {sum(counts['train'])}, test {sum(counts['test'])})"
    seconds = time.monotonic() - progress.start
    if args.sheet is not None:
        sheet = contact_sheet(args.seed)
        ok, encoded = cv2.imencode(".png", sheet)
        if not ok:
            raise DatasetError(f"could not encode the contact sheet {args.sheet}")
        tmp = args.sheet.with_name(f".{args.sheet.name}.part")
        tmp.write_bytes(encoded.tobytes())
        os.replace(tmp, args.sheet)
        print(f"synth: contact sheet written to {args.sheet}", file=sys.stderr)
    print(
        f"synth: wrote {total} samples to {layout} in {seconds:.1f} s "
        f"({total / max(seconds, 1e-6):.0f}/s); the head finder missed {missed} "
        f"({100.0 * missed / total:.1f} %), their crops use the renderer's box",
        file=sys.stderr,
    )
    return 0
