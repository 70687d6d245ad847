"""The `screwcam` command line.

Thin by design: each subcommand lives in its own module, which provides
`add_arguments(parser)` and `run(args) -> int`. Only the chosen subcommand's
module is imported, so `screwcam serve` never pays for TensorFlow and
`screwcam --help` starts instantly. Our own errors (ScrewcamError) are printed
as one line, without a traceback, and give a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from screwcam.errors import ScrewcamError

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
    "export-detector": ("screwcam.export.detector", "add a trained head detector to a bundle"),
    "detect": ("screwcam.detect", "box and name every screw head in photos"),
    "batch-test": ("screwcam.training.evaluate", "test a model bundle on folders of images"),
    "serve": ("screwcam.edge_service.serve", "run the live web service"),
    "bench": ("screwcam.bench.bench", "measure speed, latency and footprint"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="screwcam",
        description="Recognize the drive type of every screw head a camera sees.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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
    module = importlib.import_module(COMMANDS[known.command][0])
    # Re-parse with the chosen subcommand's own arguments added.
    sub_action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    module.add_arguments(sub_action.choices[known.command])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(module.run(args) or 0)
    except ScrewcamError as exc:
        print(f"screwcam {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"screwcam {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
