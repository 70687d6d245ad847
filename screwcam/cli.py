"""The `screwcam` command line.

Thin by design: each subcommand lives in its own module, which provides
`add_arguments(parser)` and `run(args) -> int`. Only the chosen subcommand's
module is imported, so `screwcam serve` never pays for TensorFlow and
`screwcam --help` starts instantly. Our own errors (ScrewcamError) are printed
as one line, without a traceback, and give a non-zero exit.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Iterator
from typing import TextIO

from screwcam import __version__
from screwcam.errors import ScrewcamError

#: commands that need the [train] extra (TensorFlow); they quiet its native start-up
#: noise (CUDA probing, oneDNN notices) unless -v is given
NEEDS_TENSORFLOW = frozenset({"train", "export", "train-verifier", "train-regressor"})

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "record": ("screwcam.capture.record", "record a training video of one screw type"),
    "slice": ("screwcam.capture.slice", "turn recorded videos into a 28x28 dataset"),
    "synth": ("screwcam.capture.synth_dataset", "render a synthetic dataset of screw heads"),
    "train": ("screwcam.training.train", "train a model (needs the [train] extra)"),
    "export": ("screwcam.export.export", "export a trained model to the device bundle"),
    "train-detector": (
        "screwcam.training.detector",
        "train the head detector (needs the [train] extra)",
    ),
    "train-verifier": (
        "screwcam.training.verifier",
        "train the head detector's second stage (needs the [train] extra)",
    ),
    "train-regressor": (
        "screwcam.training.regressor",
        "train the head detector's box regressor (needs the [train] extra)",
    ),
    "export-detector": ("screwcam.export.detector", "add a trained head detector to a bundle"),
    "detect": ("screwcam.edge_service.detect", "box and name every screw head in photos"),
    "adapt": ("screwcam.adapt", "adapt a model bundle to your screws from a few examples"),
    "batch-test": ("screwcam.training.evaluate", "test a model bundle on folders of images"),
    "holdout": (
        "screwcam.training.holdout",
        "leave-one-family-out accuracy of a model preset (needs the [train] extra)",
    ),
    "serve": ("screwcam.edge_service.serve", "run the live web service"),
    "bench": ("screwcam.bench.bench", "measure speed, latency and footprint"),
    "scene-test": (
        "screwcam.bench.scene_test",
        "find and name the heads in scenes with known heads (the whole pipeline)",
    ),
}


class _StderrHandler(logging.StreamHandler):
    """Logs to whatever sys.stderr is when a record is written, not when logging was
    configured: `_quiet_native_stderr` swaps sys.stderr while a command runs."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """TensorFlow's C++ side writes straight to file descriptor 2 (CUDA probing on a CPU
    machine, oneDNN notices) and ignores TF_CPP_MIN_LOG_LEVEL for some of it. While the
    command runs, fd 2 points at /dev/null and Python's sys.stderr at the real stderr, so
    our own progress and errors still show; both are restored afterwards. -v keeps all."""
    try:
        python_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        python_fd = None  # sys.stderr is not a file (e.g. captured by a test)
    try:
        saved = os.dup(2)
    except OSError:
        yield  # no stderr to quiet
        return
    original = sys.stderr
    if python_fd == 2:
        sys.stderr.flush()
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        if sys.stderr is not original:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="screwcam",
        description="Recognize the drive type of every screw head a camera sees.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging (and TensorFlow's own)"
    )
    parser.add_argument("--version", action="version", version=f"screwcam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # First pass without -h/--help, so `screwcam serve --help` lists serve's own options.
    first = [a for a in argv if a not in ("-h", "--help")]
    known, _ = parser.parse_known_args(first or argv)
    if known.command in NEEDS_TENSORFLOW or known.command == "bench":
        quiet = not known.verbose
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if quiet else "0")
    if known.command in NEEDS_TENSORFLOW:
        if importlib.util.find_spec("tensorflow") is None:
            print(
                f"screwcam {known.command}: error: needs TensorFlow, which the device set "
                "does not install; on a workstation: pip install 'screwcam[train]'",
                file=sys.stderr,
            )
            return 2
    module = importlib.import_module(COMMANDS[known.command][0])
    # Re-parse with the chosen subcommand's own arguments added.
    sub_action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    module.add_arguments(sub_action.choices[known.command])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[_StderrHandler()],
    )
    if not args.verbose:  # other libraries' chatter (font caches, absl) only with -v
        for name in ("matplotlib", "absl", "tensorflow", "h5py"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # SIGTERM ends a command like Ctrl-C: its cleanup runs (staged files removed,
    # worker processes stopped). `serve` installs its own handler.
    signal.signal(signal.SIGTERM, _terminate)
    native_stderr = (
        _quiet_native_stderr()
        if args.command in NEEDS_TENSORFLOW and not args.verbose
        else contextlib.nullcontext()
    )
    try:
        with native_stderr:
            return int(module.run(args) or 0)
    except ScrewcamError as exc:
        print(f"screwcam {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"screwcam {args.command}: interrupted", file=sys.stderr)
        return 130


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
