"""The systemd unit: `systemd-analyze verify`, its security exposure score, and
the whole service running under MemoryDenyWriteExecute's kernel equivalent."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _service_helpers import ROOT, Server, demo_jpeg, mjpeg_frames, open_stream

UNIT = ROOT / "systemd" / "screwcam.service"
EXEC = "/opt/screwcam/.venv/bin/screwcam"
MAX_EXPOSURE = 2.5  # systemd-analyze security: 0 = locked down .. 10 = fully exposed

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (apt install systemd)"
)


def _unit_copy(tmp_path: Path) -> Path:
    """The unit with only ExecStart's binary pointing at one that exists here
    (verify checks that it is executable); every other line unchanged."""
    text = UNIT.read_text()
    assert f"ExecStart={EXEC} serve --config /etc/screwcam/config.toml" in text
    path = tmp_path / "screwcam.service"
    path.write_text(text.replace(EXEC, sys.executable))
    return path


def _directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_verifies(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(_unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "screwcam.service" not in proc.stderr, proc.stderr  # no warnings about the unit


def test_unit_has_the_required_settings() -> None:
    d = _directives()
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "Restart": "on-failure",
        "User": "screwcam",
        "SupplementaryGroups": "video",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "PrivateDevices": "no",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
    }
    for key, value in expected.items():
        assert d.get(key) == [value], (key, d.get(key))
    assert d["WatchdogSec"] and d["LoadCredential"][0].startswith("-screwcam-token:")
    assert {"char-video4linux rw", "char-media rw", "char-dma_heap rw"} <= set(d["DeviceAllow"])


def test_security_exposure_is_low(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(_unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    score = float(match.group(1))
    print(f"systemd-analyze security --offline=true: exposure {score}")
    assert score <= MAX_EXPOSURE


MDWE_RUNNER = """
import ctypes, runpy, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
sys.argv = ["screwcam"] + sys.argv[1:]
runpy.run_module("screwcam.cli", run_name="__main__")
"""


def test_service_runs_without_writable_executable_memory(tmp_path: Path) -> None:
    """MemoryDenyWriteExecute=yes must not break LiteRT/XNNPACK, NumPy or OpenCV:
    run the real service under the kernel's equivalent (Linux >= 6.3)."""
    server = Server("--source", "demo")
    server.args[1:4] = ["-P", "-c", MDWE_RUNNER]  # instead of "-P -m screwcam.cli"
    try:
        server.start(tmp_path / "serve.log")
    except AssertionError:
        if server.proc is not None and server.proc.returncode == 77:
            pytest.skip("kernel has no PR_SET_MDWE (Linux < 6.3)")
        raise
    try:
        conn, resp = open_stream(server)
        assert next(mjpeg_frames(resp))
        conn.close()
        jpeg, _ = demo_jpeg()
        status, body, _ = server.request(
            "POST", "/api/classify", jpeg, {"Content-Type": "image/jpeg"}
        )
        assert status == 200, body
        code, _ = server.terminate()
        assert code == 0, server.log()
    finally:
        server.stop()
