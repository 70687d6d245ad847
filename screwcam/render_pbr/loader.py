"""Mitsuba, loaded on the first render (never by importing the package: the device
service never loads it), and the checked choice of a family value."""

from __future__ import annotations

import functools

import numpy as np

from ..errors import DatasetError

_INSTALL = "install the training extra: pip install 'screwcam[train]' (it brings mitsuba>=3.9)"


@functools.lru_cache(maxsize=1)
def mitsuba():
    """Mitsuba 3 in its scalar CPU variant, on one thread; DatasetError naming the fix if it
    is missing. In a process that also uses TensorFlow, import Mitsuba first: loaded after
    TensorFlow, the interpreter aborts at exit ("free(): invalid pointer"). `screwcam
    synth` never loads TensorFlow."""
    try:
        import drjit as dr
        import mitsuba as mi
    except ImportError as exc:
        raise DatasetError(
            f"the pbr generator needs Mitsuba 3, which is not installed ({exc}); {_INSTALL}"
        ) from exc
    try:
        mi.set_variant("scalar_rgb")
    except Exception as exc:  # a build without the scalar variant
        raise DatasetError(
            f"Mitsuba has no 'scalar_rgb' variant ({exc}); reinstall it: {_INSTALL}"
        ) from exc
    dr.set_thread_count(1)  # one core per process; synth --jobs runs processes
    mi.set_log_level(mi.LogLevel.Warn)
    return mi


def pick(rng: np.random.Generator, key: str, value: str | None, choices: tuple[str, ...]) -> str:
    """`value` checked against `choices` (ValueError naming them), or one drawn from rng."""
    if value is None:
        return choices[int(rng.integers(len(choices)))]
    if value not in choices:
        raise ValueError(f"unknown {key} {value!r}; choose one of {', '.join(choices)}")
    return value
