"""Killed `synth` runs: the workers go with the parent, and the next run (with or
without --force) is not blocked by the stage folder a killed run left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _default_sigint() -> None:
    # a test runner started as a background job inherits SIGINT ignored, and Python
    # then leaves it ignored: the child would never see the Ctrl-C under test
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _synth(out: Path, per_class: int, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "screwcam.cli", "synth", "--out", str(out)]
        + ["--per-class", str(per_class), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_default_sigint,
    )


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for_workers(proc: subprocess.Popen[bytes], n: int, timeout: float = 60.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _children(proc.pid)
        if len(kids) >= n:
            time.sleep(1.0)  # let them start rendering
            return kids
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        time.sleep(0.1)
    raise AssertionError("synth did not start its worker processes")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_killing_synth_stops_its_workers_and_cleans_up(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "ds"
    proc = _synth(out, 4000, "--jobs", "2")
    try:
        workers = _wait_for_workers(proc, 2)
        proc.send_signal(sig)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    left = [p for p in workers if _alive(p)]
    for p in left:  # do not leave them running on a failed test
        os.kill(p, signal.SIGKILL)
    assert not left, f"synth workers still running after {signal.Signals(sig).name}: {left}"
    assert not list(out.glob(".partial-*")), "the stage folder was left behind"


def test_a_stage_folder_of_a_killed_run_does_not_block_the_next(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    proc = _synth(out, 4000, "--jobs", "1")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(out.glob(".partial-*")):
            time.sleep(0.1)
        assert list(out.glob(".partial-*")), "synth did not start staging"
        proc.kill()  # SIGKILL: no cleanup can run
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stale = list(out.glob(".partial-*"))
    assert stale, "a SIGKILLed run leaves its stage folder (the case under test)"
    done = _synth(out, 2, "--jobs", "1")
    output = done.communicate(timeout=120)[0].decode()
    assert done.returncode == 0, output
    assert (out / "manifest.csv").is_file()
    assert not list(out.glob(".partial-*")), "the old stage folder is still there"

    # --force over a dataset that also holds a killed run's stage folder
    (out / ".partial-999999999").mkdir()
    forced = _synth(out, 2, "--jobs", "1", "--force")
    output = forced.communicate(timeout=120)[0].decode()
    assert forced.returncode == 0, output
    assert not list(out.glob(".partial-*")), "--force left the old stage folder behind"


def test_a_finished_synth_run_exits_and_leaves_no_worker(tmp_path: Path) -> None:
    # A finished 10,000-sample run once hung for good in Pool.terminate(), which raced
    # the workers' own exit. Finished runs now close the pool and let the workers
    # exit; three runs in a row.
    for run in range(3):
        proc = _synth(tmp_path / f"ds{run}", 60, "--jobs", "2")
        workers: set[int] = set()
        try:
            deadline = time.monotonic() + 180
            while proc.poll() is None and time.monotonic() < deadline:
                workers |= _children(proc.pid)
                time.sleep(0.05)
            assert proc.poll() is not None, f"run {run}: synth did not exit within 180 s"
        finally:
            if proc.poll() is None:
                proc.kill()
            output = proc.communicate()[0].decode()
        assert proc.returncode == 0, output
        assert (tmp_path / f"ds{run}" / "manifest.csv").is_file()
        assert not [p for p in workers if _alive(p)], f"run {run}: workers left running"
