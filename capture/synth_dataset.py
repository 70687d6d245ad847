"""`screwcam synth`: render a synthetic dataset of screw heads.

Every sample is one head drawn by a generator (`--generator`: the classic
`screwcam.render.render_sample`, render2d, render3d or a mix), boxed (`--boxes`: found
again by the classical finder `find_main_head`, the renderer's true box, or the true
box jittered the way a detector's boxes are; the live service runs the learned
detector of its bundle), and turned into the model's 28x28 input by the one
`screwcam.preprocess.preprocess`. If the finder misses a head, the renderer's own
box is used and the miss is counted.

Two layouts:
- default: the dataset format of `screwcam.dataset.DatasetWriter` (train/ and test/
  PNG trees, X_/y_ .npy arrays, manifest.csv with each sample's condition);
- `--by-condition`: an image-folder tree DIR/<condition>/<class>/<n>.png, for
  batch-testing a model per lighting condition.

Generators (`--generator`, see `screwcam.render.families`): `classic` (the demo
camera's look, the default), `render2d` (the same 2-D renderer with everything but
the drive type randomized), `render3d` (the independently built 3-D generator),
`sdf` (a third independent generator: ray-marched signed distance fields), `pbr` (a
fourth: meshes path-traced by Mitsuba 3, the [train] extra), `mix`
(render2d and render3d alternately), `all` (classic, render2d, render3d) or any
comma-separated list of generators, taken in turn (e.g. `classic,render2d,render3d,sdf`).
With the classic generator conditions are balanced: sample i of every class has
condition CONDITIONS[i % 6]; the others record every family in the condition
(``gen=render2d/style=pan/finish=rusty/light=dim/...``) and `--only` /
`--exclude KEY=VALUE` keep whole families in or out.

Boxes (`--boxes`): `finder` (the classical head finder, the classic default),
`truth` (the renderer's own box) or `jitter` (the renderer's box shifted and scaled
like an imperfect detector's; the default for the other generators).

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
from screwcam.render import CONDITIONS
from screwcam.render.families import GENERATORS, FamilyFilter, jitter_box, render_one

RENDER_SIZE = 112
_CHUNK = 64  # samples per task handed to a worker process


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


MIXES = {"mix": ("render2d", "render3d"), "all": ("classic", "render2d", "render3d")}


def generators_of(spec: str) -> tuple[str, ...]:
    """The generators a `--generator` value draws from, in turn: 'all' -> (classic,
    render2d, render3d), 'classic,sdf' -> (classic, sdf), 'sdf' -> (sdf,). Raises
    ValueError naming the unknown or repeated name."""
    if spec in MIXES:
        return MIXES[spec]
    names = tuple(part.strip() for part in spec.split(","))
    for name in names:
        if name not in GENERATORS:
            raise ValueError(
                f"unknown generator {name!r} in {spec!r}; choose from "
                f"{', '.join(GENERATORS)}, a mix ({', '.join(MIXES)}) or a comma-separated list"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"generator named twice in {spec!r}")
    return names


def _generator_spec(text: str) -> str:
    try:
        names = generators_of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text if text in MIXES else ",".join(names)  # 'classic, sdf' -> 'classic,sdf'


BOX_MODES = ("finder", "truth", "jitter")


@dataclass(frozen=True)
class Recipe:
    """What `screwcam synth` renders: generator (one name, a mix name or a comma-separated
    list, see `generators_of`), how crops are boxed, and which families are kept in or out."""

    generator: str = "classic"
    boxes: str = ""  # "" = finder for classic, jitter for the others
    families: FamilyFilter = FamilyFilter()

    @property
    def box_mode(self) -> str:
        return self.boxes or ("finder" if self.generator == "classic" else "jitter")

    @property
    def generators(self) -> tuple[str, ...]:
        return generators_of(self.generator)

    @property
    def in_turn(self) -> tuple[str, ...]:
        """The generators samples are drawn from in turn: those the families allow."""
        mix = self.generators
        return mix if len(mix) == 1 else self.families.allowed("gen", mix) or mix

    def generator_of(self, index: int) -> str:
        gens = self.in_turn
        return gens[index % len(gens)]


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
        help="share of each class and condition put in the test split (default 0.3; "
        "1 = a test-only set for batch-test)",
    )
    parser.add_argument(
        "--generator",
        type=_generator_spec,
        default="classic",
        metavar="GEN",
        help="classic (the demo camera's look, default), render2d (2-D, everything but the "
        "drive randomized), render3d (the independent 3-D generator), sdf (a third, "
        "independent generator: ray-marched signed distance fields), pbr (a fourth: meshes "
        "path-traced by Mitsuba 3 under photo environment maps), mix (render2d and "
        "render3d alternately), all (classic, render2d and render3d alternately) or a "
        "comma-separated list taken in turn, e.g. classic,render2d,render3d,sdf",
    )
    parser.add_argument(
        "--boxes",
        choices=BOX_MODES,
        default="",
        help="crop boxes: finder (the classical head finder; classic's default), truth "
        "(the renderer's box) or jitter (the renderer's box shifted/scaled like a detector's; "
        "default for the other generators)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="KEY=VALUE",
        help="keep only this family value (repeatable), e.g. --only finish=rusty; "
        "families: gen, style, finish, light, bg, view",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        metavar="KEY=VALUE",
        help="leave this family value out (repeatable), e.g. --exclude style=countersunk",
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


def _render_and_find(seed: int, label: int, index: int, recipe: Recipe = Recipe()):
    """(rendered image, the box the crop uses, whether the head finder found it, the
    sample's condition), or None when the recipe's families leave nothing to draw."""
    rng = np.random.default_rng([seed, label, index])
    generator = recipe.generator_of(index)
    # the classic samples of a mix go round the lighting conditions one by one
    light = condition_of(index // len(recipe.in_turn)) if generator == "classic" else None
    named = recipe.generator != "classic"
    drawn = render_one(generator, rng, label, RENDER_SIZE, recipe.families, light, named)
    if drawn is None:
        return None
    image, truth, condition = drawn
    mode = recipe.box_mode
    if mode == "truth":
        return image, truth, True, condition
    if mode == "jitter":
        height, width = image.shape[:2]
        return image, jitter_box(rng, truth, width, height), True, condition
    box = find_main_head(image)
    found = box is not None and box.iou(truth) >= 0.5
    return image, (box if found else truth), found, condition


def make_sample(seed: int, label: int, index: int, recipe: Recipe = Recipe()) -> SynthSample | None:
    """Render, box and preprocess one sample; deterministic for (seed, label, index).
    None when the recipe's family filter leaves nothing to draw for this label."""
    drawn = _render_and_find(seed, label, index, recipe)
    if drawn is None:
        return None
    image, box, found, condition = drawn
    return SynthSample(label, index, condition, preprocess(image, box.as_list()), found)


def contact_sheet(seed: int, tile: int = 64, recipe: Recipe = Recipe()) -> np.ndarray:
    """A BGR picture with one row per condition (classic) or sample and, per class,
    the rendered image (box drawn: green = head finder or the recipe's box, red =
    renderer's fallback) next to its 28x28 model input. Same images as sample 0..5
    of each class for that seed."""
    rows = []
    names = CONDITIONS if recipe.generator == "classic" else [f"#{i}" for i in range(6)]
    for index, _ in enumerate(names):
        row = []
        for label in range(NUM_CLASSES):
            drawn = _render_and_find(seed, label, index, recipe)
            if drawn is None:
                row += [_gap(tile, tile), _gap(tile, tile), _gap(tile, 4)]
                continue
            image, box, found, _ = drawn
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
    labels = np.full((18 + tile * len(names), 84, 3), 255, np.uint8)
    for k, condition in enumerate(names):
        y = 18 + k * tile + tile // 2 + 5
        cv2.putText(labels, condition, (3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1)
    return np.hstack([labels, np.vstack([header, *rows])])


def _gap(tile: int, width: int) -> np.ndarray:
    return np.full((tile, width, 3), 255, np.uint8)


def _make_chunk(args: tuple[int, list[tuple[int, int]], Recipe]) -> list[SynthSample]:
    seed, items, recipe = args
    out = (make_sample(seed, label, index, recipe) for label, index in items)
    return [s for s in out if s is not None]


def _init_worker() -> None:
    cv2.setNumThreads(1)  # the processes already use every core
    # Ctrl-C reaches the whole process group: the parent stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def generate(
    seed: int, per_class: int, jobs: int = 1, recipe: Recipe = Recipe()
) -> Iterator[SynthSample]:
    """All samples, class by class, in a fixed order (independent of `jobs`). Samples
    the recipe's family filter rules out for a class are skipped."""
    items = [(label, i) for label in range(NUM_CLASSES) for i in range(per_class)]
    chunks = [(seed, items[k : k + _CHUNK], recipe) for k in range(0, len(items), _CHUNK)]
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
        # every chunk is done: the workers exit on their own before terminate() below
        # (terminate() straight after close() raced their exit: a finished
        # 10,000-sample run once hung for good)
        pool.close()
        pool.join()
    finally:
        pool.terminate()
        pool.join()


class _Progress:
    """Progress on stderr, at most about twice a second."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = time.monotonic()
        self._last = 0.0
        self.done = 0

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        self.done = done
        if done < self.total and now - self._last < 0.5 and not final:
            return
        self._last = now
        rate = done / max(now - self.start, 1e-6)
        print(
            f"\rsynth: {done}/{self.total} samples ({rate:.0f}/s)",
            end="" if done < self.total and not final else "\n",
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
    if progress.done < progress.total:
        progress.update(progress.done, final=True)
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
                source=f"synth_seed{seed}_{sample.condition.split('/')[0]}",
                frame_index=sample.index,
                condition=sample.condition,
            )
            missed += not sample.found
            progress.update(done)
        counts = writer.counts()
    if progress.done < progress.total:
        progress.update(progress.done, final=True)
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
    try:
        families = FamilyFilter.parse(args.only, args.exclude)
    except ValueError as exc:
        raise DatasetError(f"{exc}; see screwcam synth --help") from exc
    recipe = Recipe(getattr(args, "generator", "classic"), getattr(args, "boxes", ""), families)
    if "render3d" in recipe.generators:
        try:
            from screwcam.render.families import family_values

            family_values("render3d", 0)
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
    if "sdf" in recipe.generators and families.allowed("bg", ("photo",)):
        from screwcam import photos

        photos.available()  # the photo backgrounds need scikit-image: say so up front
    if "pbr" in recipe.generators:
        from screwcam import photos, render_pbr

        render_pbr.mitsuba()  # Mitsuba missing: say so up front, naming the fix
        photos.available()  # its environment maps are scikit-image's photos
    total = args.per_class * NUM_CLASSES
    what = (
        f"conditions {', '.join(CONDITIONS)}"
        if recipe.generator == "classic"
        else f"generator {recipe.generator}, {families.describe()}"
    )
    print(
        f"synth: rendering {args.per_class} per class x {NUM_CLASSES} classes, "
        f"{what}, boxes {recipe.box_mode}, seed {args.seed}, {jobs} process(es)",
        file=sys.stderr,
    )
    progress = _Progress(total)
    with contextlib.closing(generate(args.seed, args.per_class, jobs, recipe)) as samples:
        return _write(args, out, samples, progress, total, recipe)


def _write(
    args: argparse.Namespace,
    out: Path,
    samples: Iterator[SynthSample],
    progress: _Progress,
    total: int,
    recipe: Recipe,
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
        sheet = contact_sheet(args.seed, recipe=recipe)
        ok, encoded = cv2.imencode(".png", sheet)
        if not ok:
            raise DatasetError(f"could not encode the contact sheet {args.sheet}")
        tmp = args.sheet.with_name(f".{args.sheet.name}.part")
        tmp.write_bytes(encoded.tobytes())
        os.replace(tmp, args.sheet)
        print(f"synth: contact sheet written to {args.sheet}", file=sys.stderr)
    written = progress.done
    if written == 0:
        raise DatasetError(
            f"the family filter ({recipe.families.describe()}) leaves nothing to render for "
            f"generator {recipe.generator}; check --only/--exclude"
        )
    skipped = f", {total - written} ruled out by the family filter" if written < total else ""
    boxes = (
        f"the head finder missed {missed} ({100.0 * missed / written:.1f} %), their crops "
        "use the renderer's box"
        if recipe.box_mode == "finder"
        else f"crops cut around the renderer's boxes ({recipe.box_mode})"
    )
    print(
        f"synth: wrote {written} samples to {layout} in {seconds:.1f} s "
        f"({written / max(seconds, 1e-6):.0f}/s){skipped}; {boxes}",
        file=sys.stderr,
    )
    return 0
