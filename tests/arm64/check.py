"""The device check on emulated Raspberry Pi CPUs (run by tests/arm64/run.sh).

    python tests/arm64/check.py --rootfs ROOTFS --venv VENV CPU...

Runs with the x86 development venv's python. Every step runs twice: here on x86, and
in VENV (the README's Pi install, made by run.sh: Debian's arm64 python3.11 from
ROOTFS, --system-site-packages, our wheel installed by Bookworm's pip) under
`qemu-aarch64-static` with QEMU_CPU=CPU; cwd is a scratch folder, so `models/default`
is the bundle inside the wheel. What must agree, and how exactly (docs/notes/arm64.md
has the measurements):

- The venv uses apt's NumPy 1.24 from the system site packages, and a Debian module
  built against it (python3-pywt, standing in for picamera2's python3-simplejpeg)
  imports next to cv2 and ai_edge_litert.

- `screwcam serve --config systemd/config.example.toml --check-config` (the README's
  step 4): the config validates and the bundle in the wheel loads.
- The bundled model's raw int8 outputs on the same inputs: with TFLite's reference
  kernels bit-identical to x86 (so the emulated core computes exactly); with XNNPACK,
  which the service runs, within 2 output steps of x86 and the same class for every
  crop (XNNPACK's Arm and x86 kernels round differently; each is itself within 2
  steps of the reference kernels).
- `screwcam batch-test --json` on crops rendered here: the same JSON (counts and
  labels exactly, confidences within 2 output steps).
- `screwcam detect --json` on frames rendered here, when this checkout has `detect`.
- `screwcam serve` from a lossless (FFV1) video written here by OpenCV: /healthz 200;
  for every frame of the file it analysed, the same heads as x86 (boxes and labels
  exactly, confidence within 2 steps); SIGTERM -> exit 0.
- `screwcam record` from a video file and `screwcam slice` of that recording run on
  arm64, and the recording decodes on x86 with every frame its sidecar counts.
- An mp4v video (what `screwcam record` writes) decodes on arm64 to the same frames
  within a few grey levels (MPEG-4 part 2 decoders need not be bit-exact, and
  FFmpeg's Arm and x86 ones are not: that is why serve is compared on FFV1).
- Once, shown the host's x86 /proc/cpuinfo: a clear error naming it, not a crash.

/proc/cpuinfo: QEMU 7.2 user mode (Debian Bookworm's) shows the emulated program the
host's x86 /proc/cpuinfo. LiteRT >= 2.2's CPU detection (pytorch/cpuinfo) crashes on
it (SIGSEGV); no Pi ever shows it that file. QEMU looks every path up under its -L
prefix first, so ROOTFS/proc/cpuinfo, written here as a Pi 4 (Cortex-A72) or Pi 5
(Cortex-A76) kernel prints it, is what the emulated program reads. Instructions come
from QEMU's model of that core (QEMU_CPU; never QEMU's default `max`, which is no Pi).

Nothing here is timed: emulated speed means nothing for a Pi.
Prints one PASS/FAIL line per check and "N passed, N failed"; exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _capture_helpers import demo_frames  # noqa: E402
from _service_helpers import demo_jpeg, free_port  # noqa: E402

QEMU = "qemu-aarch64-static"
X86_SCREWCAM = str(Path(sys.executable).with_name("screwcam"))
STEPS = 2  # tolerance for XNNPACK outputs across architectures, in int8 output steps
MAX_MP4_LEVELS = 8  # mp4v decode difference allowed (measured: 3 grey levels)

# MIDR fields and hwcaps as the Raspberry Pi kernels print them in /proc/cpuinfo.
PI_CPUS: dict[str, dict[str, str]] = {
    "cortex-a72": {  # Raspberry Pi 4 (BCM2711, Cortex-A72 r0p3)
        "features": "fp asimd evtstrm crc32 cpuid",
        "variant": "0x0",
        "part": "0xd08",
        "revision": "3",
        "board": "Revision\t: c03111\nSerial\t\t: 10000000deadbeef\n"
        "Model\t\t: Raspberry Pi 4 Model B Rev 1.1\n",
    },
    "cortex-a76": {  # Raspberry Pi 5 (BCM2712, Cortex-A76 r4p1)
        "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
        "asimdrdm lrcpc dcpop asimddp",
        "variant": "0x4",
        "part": "0xd0b",
        "revision": "1",
        "board": "Revision\t: d04170\nSerial\t\t: deadbeefdeadbeef\n"
        "Model\t\t: Raspberry Pi 5 Model B Rev 1.0\n",
    },
}

DECODE = """
import sys, cv2, numpy as np
cap, frames = cv2.VideoCapture(sys.argv[1]), []
while True:
    ok, frame = cap.read()
    if not ok:
        break
    frames.append(frame)
np.save(sys.argv[2], np.stack(frames))
"""


SYSTEM_NUMPY = """
import numpy, cv2, ai_edge_litert.interpreter, pywt
print(numpy.__file__, "NumPy", numpy.__version__, "pywt", pywt.__version__, "cv2", cv2.__version__)
"""


def write_video(path: Path, frames: list[np.ndarray], fourcc: str) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 30.0, (width, height))
    if not writer.isOpened():
        raise SystemExit(f"arm64: OpenCV cannot write {fourcc} to {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def pi_cpuinfo(cpu: str, processors: int) -> str:
    spec = PI_CPUS[cpu]
    block = (
        "processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\n"
        "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: {variant}\n"
        "CPU part\t: {part}\nCPU revision\t: {revision}\n\n"
    )
    return "".join(block.format(i=i, **spec) for i in range(processors)) + spec["board"]


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def record(self, where: str, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        line = f"{'PASS' if ok else 'FAIL'} [{where}] {name}"
        print(f"{line}: {detail}" if detail else line, flush=True)
        return ok


class Env:
    """Runs commands on x86 (cpu=None) or emulated (cpu='cortex-a72', ...)."""

    def __init__(self, rootfs: Path, venv: Path, work: Path) -> None:
        self.rootfs = rootfs.resolve()
        self.venv = venv.resolve()
        self.work = work
        self.python = self.venv / "bin/python"

    def python_argv(self, cpu: str | None, *args: str) -> list[str]:
        return [sys.executable, *args] if cpu is None else [QEMU, str(self.python), *args]

    def screwcam(self, cpu: str | None, *args: str) -> list[str]:
        if cpu is None:
            return [X86_SCREWCAM, *args]
        # The console script pip wrote into the venv, run by the venv's arm64 python.
        return self.python_argv(cpu, str(self.venv / "bin/screwcam"), *args)

    def env(self, cpu: str | None) -> dict[str, str]:
        base = {"PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8", "HOME": str(self.work)}
        if cpu is None:
            return {**os.environ, **base}
        return {
            **base,
            "PATH": "/usr/bin:/bin",
            "QEMU_CPU": cpu,
            "QEMU_LD_PREFIX": str(self.rootfs),
            "PYTHONNOUSERSITE": "1",
        }

    def run(self, cpu: str | None, argv: list[str], timeout: float = 600) -> Any:
        return subprocess.run(
            argv,
            cwd=self.work,
            env=self.env(cpu),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, cpu: str | None, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as fh:
            return subprocess.Popen(
                argv, cwd=self.work, env=self.env(cpu), stdout=fh, stderr=subprocess.STDOUT
            )

    def set_cpuinfo(self, text: str | None) -> None:
        path = self.rootfs / "proc/cpuinfo"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)


def tail(text: str, lines: int = 8) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def http_get(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def diff(a: Any, b: Any, tol: float, path: str = "") -> str:
    """Where two JSON values differ ('' if nowhere): ints and strings exactly, floats
    within `tol`."""
    if isinstance(a, float) or isinstance(b, float):
        ok = isinstance(a, int | float) and isinstance(b, int | float) and abs(a - b) <= tol
        return "" if ok else f"{path}: {a!r} vs {b!r}"
    if type(a) is not type(b):
        return f"{path or '/'}: {a!r} vs {b!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}/{key}: only on one side"
            found = diff(a[key], b[key], tol, f"{path}/{key}")
            if found:
                return found
        return ""
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = diff(x, y, tol, f"{path}[{i}]")
            if found:
                return found
        return ""
    return "" if a == b else f"{path}: {a!r} vs {b!r}"


class Device:
    """The steps, each run on x86 (cpu=None) or emulated."""

    def __init__(self, env: Env, checks: Checks) -> None:
        self.env = env
        self.checks = checks
        self.work = env.work
        self.model = ROOT / "models/default/model.tflite"

    def versions(self, cpu: str | None) -> str:
        code = (
            "import platform; from importlib import metadata as m; print(platform.machine(), "
            "'Python', platform.python_version(), *(f'{p} {m.version(p)}' for p in "
            "('screwcam', 'ai-edge-litert', 'numpy', 'opencv-python-headless', 'ml_dtypes')))"
        )
        res = self.env.run(cpu, self.env.python_argv(cpu, "-c", code), timeout=120)
        return res.stdout.strip() or tail(res.stderr)

    def make_data(self) -> dict[str, Path]:
        """The known inputs, made here on x86: rendered crops, two videos, photos."""
        crops = self.work / "crops"
        args = ["synth", "--by-condition", "--per-class", "30", "--seed", "7"]
        res = self.env.run(None, self.env.screwcam(None, *args, "--jobs", "1", "--out", str(crops)))
        if res.returncode != 0:
            raise SystemExit(f"arm64: screwcam synth failed: {tail(res.stderr)}")
        # 30 frames of the demo camera (640x480, 5 heads): lossless FFV1, and mp4v as
        # `screwcam record` writes it
        frames, _ = demo_frames(30, heads=5, seed=5, size=(640, 480))
        lossless = write_video(self.work / "demo.mkv", frames, "FFV1")
        mp4 = write_video(self.work / "demo.mp4", frames, "mp4v")
        one, _ = demo_frames(30, heads=1, seed=6, size=(640, 480))
        one_head = write_video(self.work / "one-head.mkv", one, "FFV1")
        photos = self.work / "photos"
        photos.mkdir()
        for index in (0, 7, 14):
            data, _ = demo_jpeg(seed=11, index=index)
            (photos / f"frame{index:02d}.jpg").write_bytes(data)
        return {
            "crops": crops,
            "lossless": lossless,
            "mp4": mp4,
            "one_head": one_head,
            "photos": photos,
        }

    def raw_outputs(self, cpu: str | None, crops: Path, kernels: str) -> Any:
        out = self.work / f"raw-{kernels}-{cpu or 'x86'}.npz"
        script = str(HERE / "raw_outputs.py")
        argv = self.env.python_argv(cpu, script, str(self.model), str(crops), str(out), kernels)
        res = self.env.run(cpu, argv)
        if res.returncode != 0:
            return f"exit {res.returncode}: {tail(res.stderr)}"
        return dict(np.load(out))

    def decode(self, cpu: str | None, video: Path) -> Any:
        out = self.work / f"decoded-{cpu or 'x86'}.npy"
        res = self.env.run(cpu, self.env.python_argv(cpu, "-c", DECODE, str(video), str(out)))
        if res.returncode != 0:
            return f"exit {res.returncode}: {tail(res.stderr)}"
        return np.load(out)

    def run_json(self, cpu: str | None, name: str, args: list[str]) -> tuple[Any, str]:
        """A screwcam command that writes --json: (parsed JSON or None, error text)."""
        out = self.work / f"{name}-{cpu or 'x86'}.json"
        out.unlink(missing_ok=True)
        res = self.env.run(cpu, self.env.screwcam(cpu, *args, "--json", str(out)))
        if res.returncode != 0 or not out.exists():
            return None, f"exit {res.returncode}: {tail(res.stderr)}"
        return json.loads(out.read_text()), ""

    def record_and_slice(self, cpu: str, video: Path) -> None:
        """`screwcam record` from a video file and `screwcam slice` of the recording, on
        arm64; the recording must decode on x86 with the frame count its sidecar says."""
        rec, dataset = self.work / f"rec-{cpu}", self.work / f"dataset-{cpu}"
        res = self.env.run(
            cpu,
            self.env.screwcam(
                cpu,
                "record",
                "--source",
                str(video),
                "--label",
                "torx",
                "--seconds",
                "2",
                "--out",
                str(rec),
            ),
        )
        sidecars = sorted(rec.glob("*.json"))
        ok = res.returncode == 0 and len(sidecars) == 1
        frames = json.loads(sidecars[0].read_text())["frames"] if ok else 0
        detail = f"{frames} frames" if ok else f"exit {res.returncode}: {tail(res.stderr)}"
        if not self.checks.record(cpu, "record from a video file: mp4 + sidecar", ok, detail):
            return
        decoded = self.decode(None, rec / json.loads(sidecars[0].read_text())["video"])
        count = -1 if isinstance(decoded, str) else len(decoded)
        self.checks.record(
            cpu,
            "the arm64 recording decodes on x86, every frame",
            count == frames >= 1,
            f"{count} of {frames} frames",
        )
        res = self.env.run(cpu, self.env.screwcam(cpu, "slice", str(rec), "--out", str(dataset)))
        samples = 0
        if res.returncode == 0:
            samples = sum(len(np.load(dataset / f"y_{split}.npy")) for split in ("train", "test"))
        self.checks.record(
            cpu,
            "slice of the recording writes a dataset",
            res.returncode == 0 and samples > 0,
            f"{samples} crops"
            if res.returncode == 0
            else f"exit {res.returncode}: {tail(res.stderr)}",
        )

    def has_detect(self) -> bool:
        res = self.env.run(None, self.env.screwcam(None, "detect", "--help"), timeout=120)
        return res.returncode == 0

    def serve(self, cpu: str | None, video: Path, want_frames: int) -> dict[int, list[Any]]:
        """`screwcam serve` on the video: heads per frame index of the file. Checks
        /healthz 200, heads in /api/predictions, and SIGTERM -> exit 0."""
        where = cpu or "x86"
        port = free_port()
        log = self.work / f"serve-{where}.log"
        argv = ["serve", "--source", str(video), "--host", "127.0.0.1", "--port", str(port)]
        proc = self.env.popen(cpu, self.env.screwcam(cpu, *argv), log)
        base = f"http://127.0.0.1:{port}"
        frames: dict[int, list[Any]] = {}
        try:
            deadline = time.monotonic() + (30 if cpu is None else 300)  # slow is fine
            status = 0
            while time.monotonic() < deadline and proc.poll() is None:
                status, _ = http_get(base + "/healthz", timeout=30)
                if status == 200:
                    break
                time.sleep(0.5)
            detail = f"status {status}"
            if status != 200:
                detail += f"; log: {tail(log.read_text())}"
            if not self.checks.record(where, "serve /healthz", status == 200, detail):
                return frames
            # Polled fast, x86 sees every frame of the looping file; the emulated
            # service analyses fewer, and each one it does is compared with x86's.
            interval, budget = (0.004, 20.0) if cpu is None else (0.25, 120.0)
            deadline = time.monotonic() + budget
            while time.monotonic() < deadline and len(frames) < want_frames:
                status, doc = http_get(base + "/api/predictions", timeout=30)
                if status == 200 and doc:
                    # a head's track (frames seen, counted) depends on how many frames
                    # the service got to, which emulation slows: compare what the
                    # frame itself gives (box, label, confidence)
                    heads = [{k: v for k, v in h.items() if k != "track"} for h in doc["heads"]]
                    frames.setdefault(int(doc["frame"]), heads)
                time.sleep(interval)
            with_heads = sum(1 for heads in frames.values() if heads)
            self.checks.record(
                where,
                "serve /api/predictions with heads",
                with_heads >= min(want_frames, 3),
                f"{len(frames)} frames of the file seen, {with_heads} with heads",
            )
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            code = proc.returncode
            detail = f"exit {code}" + ("" if code == 0 else f"; log: {tail(log.read_text())}")
            self.checks.record(where, "serve stops on SIGTERM with exit 0", code == 0, detail)
        return frames


def compare_raw(
    checks: Checks,
    cpu: str,
    ref: dict[str, Any],
    xnn: dict[str, Any],
    ref_x86: dict[str, Any],
    xnn_x86: dict[str, Any],
) -> float:
    """The raw-output checks; returns the output step (scale) for the tolerances."""
    for name, got in (("reference kernels", ref), ("XNNPACK", xnn)):
        if isinstance(got, str):
            checks.record(cpu, f"raw int8 outputs ({name})", False, got)
    if isinstance(ref, dict):
        same = np.array_equal(ref["inputs"], ref_x86["inputs"]) and np.array_equal(
            ref["outputs"], ref_x86["outputs"]
        )
        checks.record(
            cpu,
            "raw int8 outputs, reference kernels: bit-identical to x86",
            same,
            f"{len(ref['outputs'])} inputs; LiteRT {ref['litert']} (x86 {ref_x86['litert']})",
        )
    if isinstance(xnn, dict):
        a, b = xnn_x86["outputs"].astype(int), xnn["outputs"].astype(int)
        crops = int(xnn["crops"])
        delta = np.abs(a - b)
        same_class = np.array_equal(a[:crops].argmax(1), b[:crops].argmax(1))
        checks.record(
            cpu,
            f"raw int8 outputs, XNNPACK: within {STEPS} steps of x86, same class per crop",
            int(delta.max()) <= STEPS and same_class,
            f"{int((delta > 0).sum())} of {delta.size} values differ, by at most "
            f"{int(delta.max())}; {crops} crops, classes {'equal' if same_class else 'DIFFER'}",
        )
    return float(xnn_x86["scale"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rootfs", type=Path, required=True)
    parser.add_argument("--venv", type=Path, required=True)
    parser.add_argument("cpus", nargs="+", choices=sorted(PI_CPUS))
    args = parser.parse_args()
    if shutil.which(QEMU) is None:
        raise SystemExit(f"arm64: {QEMU} not found; install Debian's qemu-user-static")

    work = (args.venv.parent / "work").resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = Env(args.rootfs, args.venv, work)
    checks = Checks()
    device = Device(env, checks)
    processors = os.cpu_count() or 1  # QEMU passes the host's /sys CPU lists through

    print(f"arm64: x86 reference: {device.versions(None)}", flush=True)
    data = device.make_data()
    shipped = env.venv / "lib/python3.11/site-packages/screwcam/models/default/model.tflite"
    checks.record(
        "wheel",
        "ships models/default/model.tflite unchanged",
        shipped.is_file()
        and hashlib.sha256(shipped.read_bytes()).digest()
        == hashlib.sha256(device.model.read_bytes()).digest(),
    )

    # x86 references
    ref_x86 = device.raw_outputs(None, data["crops"], "reference")
    xnn_x86 = device.raw_outputs(None, data["crops"], "xnnpack")
    for got in (ref_x86, xnn_x86):
        if isinstance(got, str):
            raise SystemExit(f"arm64: raw outputs on x86 failed: {got}")
    tol = STEPS * float(xnn_x86["scale"]) + 1e-4  # + the 4-decimal rounding of the JSON
    batch_x86, err = device.run_json(None, "batch", ["batch-test", str(data["crops"])])
    if batch_x86 is None:
        raise SystemExit(f"arm64: batch-test on x86 failed: {err}")
    batch_x86.pop("model")  # the checkout's folder here, the wheel's on arm64
    detect = device.has_detect()
    detect_x86 = None
    if detect:
        detect_x86, err = device.run_json(None, "detect", ["detect", str(data["photos"])])
        if detect_x86 is None:
            raise SystemExit(f"arm64: detect on x86 failed: {err}")
    decoded_x86 = device.decode(None, data["mp4"])
    serve_x86 = device.serve(None, data["lossless"], want_frames=30)
    print(
        f"arm64: x86 reference ready: {batch_x86['n']} crops (accuracy "
        f"{batch_x86['accuracy']:.4f}), {len(serve_x86)} video frames; screwcam detect: "
        + (f"{len(detect_x86['images'])} photos" if detect else "not in this checkout, skipped"),
        flush=True,
    )

    env.set_cpuinfo(pi_cpuinfo(args.cpus[0], processors))
    res = env.run(args.cpus[0], env.python_argv(args.cpus[0], "-c", SYSTEM_NUMPY))
    checks.record(
        "venv",
        "apt's NumPy from the system site packages, and a Debian module built on it, "
        "import with cv2 and ai_edge_litert",
        res.returncode == 0
        and res.stdout.startswith(str(env.rootfs / "usr/lib/python3/dist-packages/numpy/")),
        (res.stdout.strip() if res.returncode == 0 else tail(res.stderr, 2)),
    )

    try:
        for cpu in args.cpus:
            env.set_cpuinfo(pi_cpuinfo(cpu, processors))
            print(f"arm64: {cpu}: {device.versions(cpu)}", flush=True)

            # step 4 of the README's Pi install, with the example config
            config = str(ROOT / "systemd/config.example.toml")
            res = env.run(cpu, env.screwcam(cpu, "serve", "--config", config, "--check-config"))
            checks.record(
                cpu,
                "serve --config config.example.toml --check-config (the wheel's bundle loads)",
                res.returncode == 0 and "model bundle OK" in res.stdout,
                f"exit {res.returncode}" + ("" if res.returncode == 0 else f": {tail(res.stderr)}"),
            )

            compare_raw(
                checks,
                cpu,
                device.raw_outputs(cpu, data["crops"], "reference"),
                device.raw_outputs(cpu, data["crops"], "xnnpack"),
                ref_x86,
                xnn_x86,
            )

            batch, err = device.run_json(cpu, "batch", ["batch-test", str(data["crops"])])
            if batch is not None:
                batch.pop("model")
            found = err or diff(batch_x86, batch, tol)
            detail = found or f"{batch['n']} crops, accuracy {batch['accuracy']:.4f}"
            checks.record(cpu, "batch-test JSON equals x86's", not found, detail)

            if detect:
                found, err = device.run_json(cpu, "detect", ["detect", str(data["photos"])])
                problem = err or diff(detect_x86, found, tol)
                checks.record(cpu, "detect JSON equals x86's", not problem, problem)

            decoded = device.decode(cpu, data["mp4"])
            if isinstance(decoded, str) or isinstance(decoded_x86, str):
                checks.record(cpu, "mp4v video decodes", False, str(decoded))
            else:
                levels = (
                    int(np.abs(decoded.astype(np.int16) - decoded_x86.astype(np.int16)).max())
                    if decoded.shape == decoded_x86.shape
                    else -1
                )
                checks.record(
                    cpu,
                    f"mp4v video decodes to x86's frames within {MAX_MP4_LEVELS} grey levels",
                    0 <= levels <= MAX_MP4_LEVELS,
                    f"{len(decoded)} frames (x86 {len(decoded_x86)}), largest difference "
                    f"{levels} levels",
                )

            device.record_and_slice(cpu, data["one_head"])

            frames = device.serve(cpu, data["lossless"], want_frames=5)
            compared = {f: h for f, h in frames.items() if f in serve_x86}
            problems = {f: diff(serve_x86[f], h, tol) for f, h in compared.items()}
            problems = {f: p for f, p in problems.items() if p}
            checks.record(
                cpu,
                "serve heads equal x86's for the same frames of the FFV1 video",
                len(compared) >= 3 and not problems,
                f"{len(compared)} frames compared, "
                f"{sum(len(h) for h in compared.values())} heads"
                + "".join(f"; frame {f}: {p}" for f, p in problems.items()),
            )

        # Shown the host's x86 /proc/cpuinfo (what QEMU 7.2 does by itself), screwcam
        # must refuse with a message naming it, not die in LiteRT's CPU detection.
        cpu = args.cpus[0]
        env.set_cpuinfo(None)
        res = env.run(cpu, env.screwcam(cpu, "serve", "--check-config"))
        checks.record(
            f"{cpu}, host's /proc/cpuinfo",
            "a clear error, not a crash",
            res.returncode == 2 and "/proc/cpuinfo" in res.stderr,
            f"exit {res.returncode}: {tail(res.stderr, 1)[:160]}",
        )
    finally:
        env.set_cpuinfo(None)

    print(f"arm64: {checks.passed} passed, {checks.failed} failed", flush=True)
    if checks.failed == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"arm64: outputs and logs kept in {work}")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
