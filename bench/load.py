"""`screwcam bench --load`: the service under load and under hostile input.

Every number comes from a real `screwcam serve --source demo` subprocess on
127.0.0.1; every loop is bounded in count and time. Three parts:

1. viewers: server CPU per frame (utime+stime from /proc over a window, divided
   by the frames the median viewer received) with 1, 20 and 200 MJPEG viewers
   (every frame sent: [stream] max_fps = 0), read by one selector thread here;
2. load: 60 MJPEG viewers + 3 event streams + ~100 API requests/s (predictions,
   the page, /metrics, small uploads) + /healthz every 0.5 s for 20 s: latencies,
   answers, stream start times, pipeline fps before and during, RSS idle/after;
3. bad input: a corpus of random bytes, truncations, decompression bombs, every
   image format OpenCV writes and odd requests, sent one at a time: the answers
   by status class and the peak memory above idle (VmHWM after a reset).
"""

from __future__ import annotations

import http.client
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from screwcam.errors import ScrewcamError

LOAD_SECONDS = 20.0
STREAMS = 60
EVENT_STREAMS = 3
API_RATE = 100.0  # requests per second, all API kinds together
HEALTHZ_EVERY_S = 0.5


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def _reset_peak(pid: int) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


class _Service:
    """`screwcam serve --source demo` on a free loopback port."""

    def __init__(self, model: Path, config_text: str = "") -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="screwcam-load-")
        config = Path(self.tmp.name) / "config.toml"
        config.write_text(config_text, "utf-8")
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "screwcam.cli", "serve", "--source", "demo"]
            + ["--model", str(model), "--config", str(config)]
            + ["--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ScrewcamError(f"benchmark server exited early ({self.proc.returncode})")
            if self.request("GET", "/healthz")[0] == 200:
                return
            time.sleep(0.1)
        self.close()
        raise ScrewcamError("benchmark server did not become healthy within 30 s")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 2.0,
    ) -> tuple[int, bytes]:
        """(status, body); status 0 = no answer within `timeout`."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException):
            return 0, b""
        finally:
            conn.close()

    def frames(self) -> float:
        status, body = self.request("GET", "/metrics")
        for line in body.decode(errors="replace").splitlines():
            if line.startswith("screwcam_frames_processed_total "):
                return float(line.split()[1])
        return float("nan")

    def fps(self, seconds: float) -> float:
        f0, t0 = self.frames(), time.monotonic()
        time.sleep(seconds)
        return (self.frames() - f0) / (time.monotonic() - t0)

    def rss_mb(self) -> float:
        return _proc_status_kb(self.pid, "VmRSS") / 1024

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.tmp.cleanup()

    def __enter__(self) -> _Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Viewers:
    """Stream viewers on raw sockets, all read by one selector thread: the time to
    the status line, the status, the bytes and the MJPEG parts / events received."""

    MARK = {"/stream.mjpg": b"--frame\r\n", "/api/events": b"\ndata: "}

    def __init__(self, port: int, path: str, count: int, deadline_s: float) -> None:
        self.path = path
        self.mark = self.MARK[path]
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.state: list[dict[str, Any]] = []
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            st = {
                "sock": sock,
                "t0": time.monotonic(),
                "status": None,
                "head_s": None,
                "buf": b"",
                "bytes": 0,
                "parts": 0,
                "sent": False,
            }
            self.state.append(st)
            self.sel.register(sock, selectors.EVENT_WRITE, st)
        self.deadline_s = deadline_s
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        request = f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        while not self.stop.is_set():
            for key, mask in self.sel.select(0.2):
                st = key.data
                sock = st["sock"]
                if mask & selectors.EVENT_WRITE and not st["sent"]:
                    try:
                        sock.send(request)
                    except OSError:
                        self.sel.unregister(sock)
                        continue
                    st["sent"] = True
                    self.sel.modify(sock, selectors.EVENT_READ, st)
                    continue
                try:
                    data = sock.recv(262144)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(sock)
                    continue
                st["bytes"] += len(data)
                if st["status"] is None:
                    st["buf"] += data
                    if b"\r\n\r\n" in st["buf"]:
                        head, _, rest = st["buf"].partition(b"\r\n\r\n")
                        st["status"] = int(head.split()[1])
                        st["head_s"] = time.monotonic() - st["t0"]
                        st["buf"] = rest[-16:]
                        st["parts"] += rest.count(self.mark)
                    continue
                window = st["buf"] + data
                st["parts"] += window.count(self.mark) - st["buf"].count(self.mark)
                st["buf"] = window[-16:]

    def parts(self) -> list[int]:
        return [st["parts"] for st in self.state]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(3)
        for st in self.state:
            st["sock"].close()


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --- 1. CPU per frame against the number of viewers ------------------------------------------


def bench_viewers(model: Path, counts: tuple[int, ...], seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": []}
    with _Service(model, "[stream]\nmax_fps = 0\nmax_viewers = 1000\n") as service:
        for n in counts:
            viewers = _Viewers(service.port, "/stream.mjpg", n, 5.0)
            time.sleep(2.0)  # everyone connected and streaming
            cpu0, p0, t0 = _cpu_seconds(service.pid), viewers.parts(), time.monotonic()
            time.sleep(seconds)
            cpu1, p1 = _cpu_seconds(service.pid), viewers.parts()
            wall = time.monotonic() - t0
            viewers.close()
            received = [b - a for a, b in zip(p0, p1, strict=True)]
            per_viewer = _median(received)
            cpu = cpu1 - cpu0
            run = {
                "viewers": n,
                "served": sum(1 for r in received if r > 0),
                "fps_per_viewer": per_viewer / wall,
                "cpu_cores": cpu / wall,
                "cpu_ms_per_frame": cpu / per_viewer * 1e3 if per_viewer else None,
            }
            out["runs"].append(run)
            _log(
                f"  {n:4d} viewers: {run['served']} served, {run['fps_per_viewer']:.1f} fps each, "
                f"{run['cpu_cores']:.2f} cores, {run['cpu_ms_per_frame'] or 0:.1f} ms CPU/frame"
            )
            time.sleep(1.0)
    one = out["runs"][0]["cpu_ms_per_frame"]
    for run in out["runs"]:
        run["ratio_to_one"] = (
            run["cpu_ms_per_frame"] / one if one and run["cpu_ms_per_frame"] else None
        )
    out["method"] = (
        f"server process CPU (utime+stime, /proc) over {seconds:.0f} s divided by the MJPEG parts "
        "the median viewer received; every frame sent ([stream] max_fps = 0); viewers are raw "
        "loopback sockets read by one selector thread in the benchmark process"
    )
    return out


# --- 2. the load ---------------------------------------------------------------------------


def _api_load(
    service: _Service, seconds: float, rate: float, jpeg: bytes
) -> tuple[list[tuple[str, int, float]], int]:
    """~`rate` requests/s from 8 threads for `seconds`: (kind, status, latency) each."""
    kinds: list[tuple[str, str, str, bytes | None, dict[str, str]]] = [
        ("predictions", "GET", "/api/predictions", None, {}),
        ("predictions", "GET", "/api/predictions", None, {}),
        ("predictions", "GET", "/api/predictions", None, {}),
        ("predictions", "GET", "/api/predictions", None, {}),
        ("page", "GET", "/", None, {}),
        ("metrics", "GET", "/metrics", None, {}),
        ("predictions", "GET", "/api/predictions", None, {}),
        ("predictions", "GET", "/api/predictions", None, {}),
        ("predictions", "GET", "/api/predictions", None, {}),
        ("upload", "POST", "/api/classify", jpeg, {"Content-Type": "image/jpeg"}),
    ]
    results: list[tuple[str, int, float]] = []
    lock = threading.Lock()
    workers = 8
    interval = workers / rate
    end = time.monotonic() + seconds
    limit = int(seconds * rate * 1.2)  # bounded in count as well as time

    def worker(k: int) -> None:
        i = k
        next_at = time.monotonic() + k * interval / workers
        while time.monotonic() < end and i < limit:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            name, method, path, body, headers = kinds[i % len(kinds)]
            t0 = time.monotonic()
            status, _ = service.request(method, path, body, headers, timeout=2.0)
            with lock:
                results.append((name, status, time.monotonic() - t0))
            i += workers

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 5)
    return results, workers


def bench_load(model: Path, seconds: float = LOAD_SECONDS) -> dict[str, Any]:
    from screwcam.render import DemoSource

    with DemoSource(realtime=False, seed=3) as source:
        jpeg = cv2.imencode(".jpg", source.read().image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    jpeg_bytes = jpeg.tobytes()
    with _Service(model) as service:
        # warm up every path once, then let it settle: "idle"
        for _ in range(3):
            service.request("POST", "/api/classify", jpeg_bytes, {"Content-Type": "image/jpeg"})
            service.request("GET", "/")
        warm = _Viewers(service.port, "/stream.mjpg", 2, 5.0)
        time.sleep(2.0)
        warm.close()
        time.sleep(6.0)
        idle_rss = service.rss_mb()
        fps_before = service.fps(3.0)
        _log(f"  idle: RSS {idle_rss:.0f} MB, pipeline {fps_before:.1f} fps")

        frames0, cpu0, t0 = service.frames(), _cpu_seconds(service.pid), time.monotonic()
        health: list[tuple[int, float]] = []
        stop = threading.Event()

        def poll_health() -> None:
            n = 0
            while not stop.is_set() and n < int(seconds / HEALTHZ_EVERY_S) + 10:
                n += 1
                t = time.monotonic()
                status, _ = service.request("GET", "/healthz", timeout=2.0)
                health.append((status, time.monotonic() - t))
                stop.wait(max(0.0, HEALTHZ_EVERY_S - (time.monotonic() - t)))

        poller = threading.Thread(target=poll_health, daemon=True)
        poller.start()
        streams = _Viewers(service.port, "/stream.mjpg", STREAMS, 2.0)
        events = _Viewers(service.port, "/api/events", EVENT_STREAMS, 2.0)
        api, _ = _api_load(service, seconds, API_RATE, jpeg_bytes)
        wall = time.monotonic() - t0
        frames1, cpu1 = service.frames(), _cpu_seconds(service.pid)
        peak_rss = service.rss_mb()
        stop.set()
        poller.join(3)
        streams.close()
        events.close()
        time.sleep(6.0)  # one heap trim period
        after_rss = service.rss_mb()

    stream_states = streams.state + events.state
    started = [st for st in stream_states if st["status"] is not None]
    in_time = [st for st in started if st["head_s"] <= 2.0 and st["status"] in (200, 503)]
    api_ok = [lat for _, status, lat in api if 200 <= status < 300]
    health_ok = [lat for status, lat in health if status == 200]
    by_kind: dict[str, dict[str, Any]] = {}
    for name, status, lat in api:
        k = by_kind.setdefault(name, {"sent": 0, "ok": 0, "lat": []})
        k["sent"] += 1
        k["ok"] += 1 if 200 <= status < 300 else 0
        k["lat"].append(lat)
    return {
        "seconds": round(wall, 1),
        "streams": {
            "mjpeg": STREAMS,
            "sse": EVENT_STREAMS,
            "served": sum(1 for st in started if st["status"] == 200),
            "refused_503": sum(1 for st in started if st["status"] == 503),
            "answered_within_2s": len(in_time),
            "head_p99_ms": _pct([st["head_s"] * 1e3 for st in started], 99),
            "mjpeg_parts_median": _median([float(p) for p in streams.parts()]),
            "sse_events_min": min(events.parts()) if events.state else 0,
        },
        "api": {
            "sent": len(api),
            "rate_per_s": len(api) / wall,
            "ok": len(api_ok),
            "ok_share": len(api_ok) / len(api) if api else float("nan"),
            "p50_ms": _pct([lat * 1e3 for lat in api_ok], 50),
            "p99_ms": _pct([lat * 1e3 for lat in api_ok], 99),
            "by_kind": {
                k: {
                    "sent": v["sent"],
                    "ok": v["ok"],
                    "p99_ms": _pct([x * 1e3 for x in v["lat"]], 99),
                }
                for k, v in by_kind.items()
            },
        },
        "healthz": {
            "sent": len(health),
            "ok": len(health_ok),
            "p99_ms": _pct([lat * 1e3 for lat in health_ok], 99),
            "max_ms": max(health_ok) * 1e3 if health_ok else float("nan"),
        },
        "fps_idle": fps_before,
        "fps_under_load": (frames1 - frames0) / wall,
        "cpu_cores_under_load": (cpu1 - cpu0) / wall,
        "rss_idle_mb": idle_rss,
        "rss_peak_mb": peak_rss,
        "rss_after_mb": after_rss,
        "rss_after_ratio": after_rss / idle_rss if idle_rss else float("nan"),
    }


# --- 3. bad input ----------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_declaring(width: int, height: int, idat: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", ihdr)
    if idat:
        chunks += _png_chunk(b"IDAT", idat)
    return b"\x89PNG\r\n\x1a\n" + chunks + _png_chunk(b"IEND", b"")


def corpus(seed: int = 11) -> list[tuple[str, bytes, dict[str, str]]]:
    """(name, body, headers) of hostile or odd uploads, built here (no files)."""
    from screwcam.render import DemoSource

    rng = np.random.default_rng(seed)
    with DemoSource(realtime=False, seed=seed) as source:
        image = source.read().image
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    png = cv2.imencode(".png", image)[1].tobytes()
    raw = {"Content-Type": "application/octet-stream"}
    items: list[tuple[str, bytes, dict[str, str]]] = []
    for n in (1, 10, 100, 1000, 100_000):
        items.append((f"random {n} B", rng.integers(0, 256, n, dtype=np.uint8).tobytes(), raw))
    for frac in (0.01, 0.1, 0.3, 0.5, 0.9, 0.99):
        items.append((f"jpeg cut at {frac:.0%}", jpeg[: int(len(jpeg) * frac)], raw))
        items.append((f"png cut at {frac:.0%}", png[: int(len(png) * frac)], raw))
    for k in range(5):  # flipped bytes in the body
        bad = bytearray(jpeg)
        for i in rng.integers(200, len(bad), 50):
            bad[int(i)] = int(rng.integers(0, 256))
        items.append((f"jpeg with 50 flipped bytes #{k}", bytes(bad), raw))
    # decompression bombs and lying headers
    side = 4472
    zeros = zlib.compress(b"\0" * ((side * 3 + 1) * side), 9)
    items.append(("png bomb 4472x4472 (real zeros)", _png_declaring(side, side, zeros), raw))
    items.append(("png declaring 100000x100000", _png_declaring(100_000, 100_000), raw))
    items.append(("png declaring 0x10", _png_declaring(0, 10), raw))
    big = cv2.resize(image, (side, side), interpolation=cv2.INTER_NEAREST)
    prog = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    items.append(("progressive jpeg 4472x4472", prog, raw))
    base = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 70])[1].tobytes()
    items.append(("baseline jpeg 4472x4472", base, raw))
    lying = bytearray(jpeg)
    sof = next(i for i in range(2, len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] == 0xC0)
    lying[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    items.append(("jpeg header declaring 65000x65000", bytes(lying), raw))
    small = bytearray(jpeg)
    small[sof + 5 : sof + 9] = struct.pack(">HH", 8, 8)
    items.append(("jpeg header declaring 8x8", bytes(small), raw))
    # every image format this OpenCV writes
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    for ext in (".bmp", ".tif", ".webp", ".ppm", ".pgm", ".pbm", ".ras", ".sr", ".jp2",
                ".hdr", ".exr", ".pfm", ".avif", ".pxm", ".pnm", ".gif"):  # fmt: skip
        try:
            ok, buf = cv2.imencode(ext, gray if ext in (".pgm", ".pbm") else image)
        except cv2.error:
            ok = False
        if ok:
            items.append((f"{ext[1:]} image", buf.tobytes(), raw))
    # odd requests
    items.append(("empty body", b"", raw))
    items.append(("jpeg as form data", jpeg, {"Content-Type": "application/x-www-form-urlencoded"}))
    items.append(("jpeg without content type", jpeg, {}))
    items.append(("multipart without boundary", jpeg, {"Content-Type": "multipart/form-data"}))
    items.append(
        (
            "multipart, no image field",
            b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--\r\n",
            {"Content-Type": "multipart/form-data; boundary=b"},
        )
    )
    items.append(
        (
            "multipart, broken",
            b"--b\r\nnonsense",
            {"Content-Type": "multipart/form-data; boundary=b"},
        )
    )
    items.append(
        ("jpeg as text/plain; charset=bogus", jpeg, {"Content-Type": "text/plain; charset=x"})
    )
    return items


def _raw_requests() -> list[tuple[str, bytes]]:
    """Requests http.client would not send: answered by waitress itself."""
    post = b"POST /api/classify HTTP/1.1\r\nHost: x\r\n"
    chunked = post + b"Transfer-Encoding: chunked\r\n\r\n"
    return [
        ("huge header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 300_000 + b"\r\n\r\n"),
        ("bad content-length", post + b"Content-Length: x\r\n\r\n"),
        ("body far too large", post + b"Content-Length: 99999999999\r\n\r\n"),
        ("garbage request line", b"\x00\x01\x02 nonsense\r\n\r\n"),
        ("HTTP/9.9", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("chunked upload", chunked + b"5\r\nhello\r\n0\r\n\r\n"),
        ("chunked, bad size", chunked + b"zz\r\nhello\r\n0\r\n\r\n"),
        ("unknown method", b"BREW /api/classify HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("path with NUL", b"GET /api/\x00predictions HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]


def _raw_status(port: int, data: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        except OSError:
            return 0
    try:
        return int(head.split()[1])
    except (IndexError, ValueError):
        return 0


def bench_bad_input(model: Path) -> dict[str, Any]:
    items = corpus()
    with _Service(model) as service:
        time.sleep(2.0)
        idle_kb = _proc_status_kb(service.pid, "VmRSS")
        _reset_peak(service.pid)
        answers: dict[str, int] = {}
        t0 = time.monotonic()
        for name, body, headers in items:
            answers[name] = service.request("POST", "/api/classify", body, headers, timeout=30)[0]
        for name, data in _raw_requests():
            answers[name] = _raw_status(service.port, data)
        seconds = time.monotonic() - t0
        peak_mb = (_proc_status_kb(service.pid, "VmHWM") - idle_kb) / 1024
        healthy = service.request("GET", "/healthz")[0] == 200
    classes: dict[str, int] = {}
    for status in answers.values():
        key = f"{status // 100}xx" if status else "no answer"
        classes[key] = classes.get(key, 0) + 1
    return {
        "requests": len(answers),
        "seconds": seconds,
        "by_class": classes,
        "5xx": sorted(name for name, s in answers.items() if s >= 500),
        "no_answer": sorted(name for name, s in answers.items() if s == 0),
        "answers": answers,
        "peak_mb_above_idle": peak_mb,
        "healthy_after": healthy,
    }


# --- all three --------------------------------------------------------------------------------


def run_load(model: Path, quick: bool = False) -> dict[str, Any]:
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        (
            "viewers",
            lambda: bench_viewers(model, (1, 20) if quick else (1, 20, 200), 3.0 if quick else 8.0),
        ),
        ("load", lambda: bench_load(model, 8.0 if quick else LOAD_SECONDS)),
        ("bad_input", lambda: bench_bad_input(model)),
    ]
    results: dict[str, Any] = {}
    for name, step in steps:
        _log(f"load benchmark: {name} ...")
        results[name] = step()
    return results


def markdown_load(r: dict[str, Any]) -> str:
    v, ld, b = r["viewers"], r["load"], r["bad_input"]
    lines = [
        "| viewers | served | fps each | CPU cores | CPU ms/frame | vs 1 viewer |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for run in v["runs"]:
        lines.append(
            f"| {run['viewers']} | {run['served']} | {run['fps_per_viewer']:.1f} | "
            f"{run['cpu_cores']:.2f} | {run['cpu_ms_per_frame'] or 0:.1f} | "
            f"{run['ratio_to_one'] or 0:.2f}x |"
        )
    s, a, h = ld["streams"], ld["api"], ld["healthz"]
    lines += [
        "",
        f"Load ({ld['seconds']:.0f} s): {s['mjpeg']} MJPEG + {s['sse']} SSE viewers: {s['served']} "
        f"served, {s['refused_503']} refused (503), {s['answered_within_2s']} answered within 2 s "
        f"(p99 {s['head_p99_ms']:.0f} ms); median viewer {s['mjpeg_parts_median']:.0f} frames, "
        f"fewest events on an event stream {s['sse_events_min']}.",
        f"API {a['sent']} requests ({a['rate_per_s']:.0f}/s): {a['ok_share']:.1%} answered 2xx, "
        f"p50 {a['p50_ms']:.0f} ms, p99 {a['p99_ms']:.0f} ms "
        + "("
        + ", ".join(f"{k} p99 {x['p99_ms']:.0f} ms" for k, x in a["by_kind"].items())
        + ").",
        f"/healthz: {h['ok']}/{h['sent']} answered 200, p99 {h['p99_ms']:.0f} ms, "
        f"max {h['max_ms']:.0f} ms.",
        f"Pipeline {ld['fps_idle']:.1f} fps idle, {ld['fps_under_load']:.1f} fps under load; "
        f"server {ld['cpu_cores_under_load']:.2f} cores under load.",
        f"RSS {ld['rss_idle_mb']:.0f} MB idle, {ld['rss_peak_mb']:.0f} MB at the end of the load, "
        f"{ld['rss_after_mb']:.0f} MB 6 s after ({ld['rss_after_ratio']:.2f}x idle).",
        "",
        f"Bad input: {b['requests']} requests in {b['seconds']:.0f} s -> "
        + ", ".join(f"{k}: {n}" for k, n in sorted(b["by_class"].items()))
        + f"; 5xx: {b['5xx'] or 'none'}; peak memory {b['peak_mb_above_idle']:.0f} MB above "
        f"idle; healthy after: {b['healthy_after']}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from screwcam.bundle import DEFAULT_BUNDLE, resolve_bundle_path

    res = run_load(resolve_bundle_path(DEFAULT_BUNDLE), quick="--quick" in sys.argv)
    print(markdown_load(res))
    print(json.dumps(res, indent=1, default=str)[:2000], file=sys.stderr)
