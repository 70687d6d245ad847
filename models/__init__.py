"""The model bundles screwcam ships (package data): `models/default` is the bundle
`serve`, `batch-test`, `detect` and `bench` use when no `--model` is given.
See `screwcam.bundle` for the format."""

from pathlib import Path

#: the folder holding the shipped bundles, wherever screwcam is installed
SHIPPED = Path(__file__).resolve().parent
