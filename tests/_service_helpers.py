"""Helpers for the live-service tests: a REAL `screwcam serve` process on a
loopback port, real demo video files, and small HTTP stream readers."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def model_dir() -> Path:
    """The bundle shipped with screwcam (SCREWCAM_TEST_MODEL may point elsewhere); the
    `model_dir` fixture of conftest.py is this."""
    from screwcam.bundle import shipped_bundle

    return Path(os.environ.get("SCREWCAM_TEST_MODEL") or shipped_bundle("default"))


def copy_bundle(src: Path, tmp_path: Path) -> Path:
    """A copy of the bundle in `src` to change in a test: tmp_path/bundle."""
    import shutil

    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_jpeg(seed: int = 3, index: int = 0) -> tuple[bytes, Any]:
    """A rendered demo frame as JPEG bytes, and the frame (with .truth)."""
    from screwcam.render import DemoSource

    with DemoSource(realtime=False, seed=seed) as source:
        frame = source.read()
        for _ in range(index):
            frame = source.read()
    ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes(), frame


class Server:
    """`python -m screwcam.cli serve ...` on 127.0.0.1:<free port>."""

    def __init__(
        self,
        *args: str,
        model: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.args = [
            PYTHON,
            "-P",
            "-m",
            "screwcam.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *(["--model", str(model or model_dir())] if "--model" not in args else []),
            *args,
        ]
        # the Teach panel's folder goes to a per-test temp dir, not the user's home
        state = tempfile.mkdtemp(prefix="screwcam-state-")
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "XDG_STATE_HOME": state,
            **(env or {}),
        }
        # not the checkout: a subprocess there would import ./screwcam, not the install
        self.cwd = cwd or Path(tempfile.gettempdir())
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_path: Path, wait_healthy: bool = True, timeout: float = 30.0) -> Server:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status, _ = self.get_json("/healthz")
                if status == 200 or (not wait_healthy and status == 503):
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not healthy within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def conn(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers with lower-case names)."""
        conn = self.conn()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, body, _ = self.request("GET", path, headers=headers)
        return status, json.loads(body)

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds until exit)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - t0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def mjpeg_frames(resp: http.client.HTTPResponse) -> Iterator[bytes]:
    """JPEG payloads of a multipart/x-mixed-replace response, parsed by the
    part headers' Content-Length."""
    ctype = resp.getheader("Content-Type", "")
    assert ctype.startswith("multipart/x-mixed-replace"), ctype
    boundary = ctype.split("boundary=")[1].strip().encode()
    while True:
        line = resp.readline()
        if not line:
            return
        if line.strip() != b"--" + boundary:
            continue
        headers = {}
        while True:
            h = resp.readline().strip()
            if not h:
                break
            k, _, v = h.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        assert headers.get("content-type") == "image/jpeg", headers
        yield resp.read(int(headers["content-length"]))


def open_stream(
    server: Server, path: str = "/stream.mjpg", timeout: float = 10.0
) -> tuple[http.client.HTTPConnection, Any]:
    conn = server.conn(timeout)
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    return conn, resp


def sse_events(resp: http.client.HTTPResponse) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) of a text/event-stream response."""
    event, data = "message", []
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode().rstrip("\r\n")
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "a stream part is not a decodable JPEG"
    return image


def multipart(
    field: str, filename: str, data: bytes, ctype: str = "image/jpeg"
) -> tuple[bytes, dict[str, str]]:
    boundary = "screwcamtestboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def wait_until(predicate: Any, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
