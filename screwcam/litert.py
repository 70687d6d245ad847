"""Building a LiteRT interpreter: the one place that imports the runtime (`ai_edge_litert`,
or `tflite_runtime` as a fallback) and refuses, with what to do, where it would crash.
Used by the classifier and the head detector (`screwcam.classifier`, `screwcam.detector`).
Never imports TensorFlow."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from .bundle import REEXPORT
from .errors import ModelError

_REEXPORT = REEXPORT


def _interpreter_class() -> Any:
    """LiteRT's Interpreter, or tflite-runtime's as a fallback."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError(
                "no TFLite interpreter installed; install LiteRT with "
                "`pip install ai-edge-litert` (or tflite-runtime)"
            ) from exc
    return Interpreter


def _litert_version() -> str | None:
    try:
        return metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        return None


def check_cpu_description(
    cpuinfo: Path = Path("/proc/cpuinfo"),
    machine: str | None = None,
    litert: str | None = None,
) -> None:
    """Refuse, with what to do, where LiteRT would die in its CPU detection.

    An aarch64 process that reads an x86 /proc/cpuinfo runs under an emulator that
    passes the host's file through (QEMU user mode 7.2, Debian Bookworm's, and so
    `docker run --platform linux/arm64` on an x86 host). ai-edge-litert 2.2 and 2.3
    crash (SIGSEGV) parsing it while building the interpreter; 2.1 does not. A real
    Raspberry Pi never shows an x86 /proc/cpuinfo (docs/notes/arm64.md).
    """
    machine = platform.machine() if machine is None else machine
    if machine not in ("aarch64", "arm64"):
        return
    litert = _litert_version() if litert is None else litert
    try:
        if litert is None or tuple(int(p) for p in litert.split(".")[:2]) < (2, 2):
            return
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except (OSError, ValueError):
        return
    keys = {line.split(":", 1)[0].strip() for line in lines}
    if "vendor_id" in keys and "CPU implementer" not in keys:
        raise ModelError(
            f"{cpuinfo} describes an x86 CPU, but this is an {machine} process: an emulator "
            f"runs it and shows it the host's file, and ai-edge-litert {litert} crashes "
            "(SIGSEGV) parsing that. Run on the device itself, or give the emulated process "
            "an Arm /proc/cpuinfo (as tests/arm64/run.sh does), or install "
            "'ai-edge-litert<2.2' in the emulated environment"
        )


def make_interpreter(model_path: Path, num_threads: int = 2) -> Any:
    """A LiteRT interpreter for `model_path`, tensors not yet allocated."""
    interpreter_cls = _interpreter_class()
    check_cpu_description()
    try:
        return interpreter_cls(model_path=str(model_path), num_threads=num_threads)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{model_path} is not a valid TFLite model ({exc}); {_REEXPORT}") from exc
