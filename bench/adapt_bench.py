"""Measure on-device adaptation (`screwcam.adapt`): accuracy on styles the base model
never saw, per method and number of examples, and the time to adapt.

    python -m screwcam.bench.adapt_bench [--model models/default] [--styles motion render3d]
        [--shots 5 10 20] [--repeats 5] [--test-per-class 100] [--json out.json]

For each style: render a pool of examples and a separate test set (other seeds) of
that style; for each number of examples per class and each repeat, draw that many
examples per class from the pool, adapt, and score the test set. Also: the adapted
model's accuracy on the base model's own style (the default renderer, all
conditions) - does teaching new screws cost the old ones? - and a partial teach
(only the two classes the base model gets most wrong), scored on all classes.
A benchmark prints numbers; it never fails for being slow.

Styles:
- motion: the project's renderer (`screwcam.render.render_sample`, lit conditions)
  seen through a horizontal motion blur of 9-17 px at 112 px (a camera on a moving
  belt); the default model was trained without motion blur.
- render3d: the independent 3-D generator (`screwcam.render3d`), which shares no
  drawing code with the renderer the default model was trained on (skipped when it
  is not installed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from screwcam.adapt import (
    METHODS,
    VIEWS,
    adapt_bundle,
    cross_validate,
    embed_views,
    fit_adapter,
    read_base_head,
    with_views,
)
from screwcam.bundle import DEFAULT_BUNDLE, resolve_bundle_path
from screwcam.classes import NUM_CLASSES
from screwcam.classifier import Classifier, load_bundle
from screwcam.errors import ScrewcamError
from screwcam.files import write_atomic
from screwcam.preprocess import preprocess
from screwcam.timing import median_seconds

LIT = ("even", "shadow", "dim", "overexposed", "side")


def _motion(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    length = int(rng.integers(9, 18))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    return cv2.filter2D(img, -1, kernel)


#: render3d "user set-ups": one finish, light and background, one head style per class
#: (a user's own box of screws under their own lamp), top view
SETUPS = (
    ("zinc", "area", "plain_light", ("cap", "pan", "pan", "hex", "pan")),
    ("black_oxide", "side", "metal", ("button", "cheese", "countersunk", "washer_hex", "cap")),
    ("brass", "point", "texture", ("countersunk", "flange", "cheese", "hex", "button")),
)


def style_crop(rng: np.random.Generator, label: int, style: str) -> np.ndarray:
    """One 28x28 model input of drive type `label` in `style`."""
    if style.startswith("render3d"):
        from screwcam import render3d  # type: ignore[attr-defined]

        overrides: dict[str, Any] = {}
        if style != "render3d":  # render3d-setupN
            finish, light, background, styles = SETUPS[int(style[-1])]
            overrides = {
                "finish": finish,
                "light": light,
                "background": background,
                "style": styles[label],
                "tilt": float(rng.uniform(0, 10)),
            }
        img, box, _info = render3d.render_head(rng, label, size=96, **overrides)
        return preprocess(img, box.as_list() if hasattr(box, "as_list") else list(box))
    from screwcam.render import render_sample

    if style == "base":
        img, box = render_sample(rng, label)
        return preprocess(img, box.as_list())
    img, box = render_sample(rng, label, LIT[int(rng.integers(len(LIT)))])
    if style == "motion":
        img = _motion(rng, img)
    else:
        raise ValueError(f"unknown style {style!r}")
    return preprocess(img, box.as_list())


def styled_set(style: str, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x (N, 28, 28) uint8, y) with `per_class` crops of every class in `style`."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(NUM_CLASSES), per_class)
    x = np.stack([style_crop(rng, int(label), style) for label in y])
    return x, y


def style_available(style: str) -> bool:
    if not style.startswith("render3d"):
        return True
    try:
        from screwcam import render3d  # type: ignore[attr-defined]  # noqa: F401
    except ImportError:
        return False
    return True


VIEWS_USED = {"n": VIEWS}


def _embed(classifier: Classifier, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(base probabilities, embeddings averaged over the views adapters use)."""
    return embed_views(classifier, x, VIEWS_USED["n"])


def _draw(y: np.ndarray, shots: int, rng: np.random.Generator, classes=None) -> np.ndarray:
    classes = range(NUM_CLASSES) if classes is None else classes
    return np.concatenate(
        [rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in classes]
    )


def measure_style(
    classifier: Classifier,
    head: Any,
    style: str,
    shots_list: list[int],
    repeats: int,
    test_per_class: int,
    base_set: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    log: Any,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    pool_x, pool_y = styled_set(style, max(shots_list) + 10, seed=101)
    test_x, test_y = styled_set(style, test_per_class, seed=202)
    log(
        f"{style}: rendered {len(pool_y)} pool + {len(test_y)} test crops in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    pool_p, pool_e = _embed(classifier, pool_x)
    test_p, test_e = _embed(classifier, test_x)
    bx, bx_p, bx_e, by = base_set
    base_acc = float((test_p.argmax(1) == test_y).mean())
    per_class = [float((test_p.argmax(1)[test_y == c] == c).mean()) for c in range(NUM_CLASSES)]
    worst = [int(c) for c in np.argsort(per_class)[:2]]
    out: dict[str, Any] = {
        "base_accuracy": round(base_acc, 4),
        "base_per_class": [round(v, 3) for v in per_class],
        "test_n": int(len(test_y)),
        "methods": {},
    }
    n = NUM_CLASSES
    for method in METHODS:
        if method == "finetune" and head is None:
            continue
        rows = {}
        for shots in shots_list:
            accs, base_style, partial, cv = [], [], [], []
            for r in range(repeats):
                rng = np.random.default_rng(1000 * shots + r)
                idx = _draw(pool_y, shots, rng)
                adapter = fit_adapter(
                    pool_e[idx], pool_y[idx], n, method, head, pool_x[idx], views=VIEWS_USED["n"]
                )
                pred = adapter.apply(test_e, test_p, test_x).argmax(1)
                accs.append(float((pred == test_y).mean()))
                base_pred = adapter.apply(bx_e, bx_p, bx).argmax(1)
                base_style.append(float((base_pred == by).mean()))
                cv.append(
                    cross_validate(
                        pool_e[idx],
                        pool_p[idx],
                        pool_y[idx],
                        n,
                        method,
                        head,
                        pool_x[idx],
                        VIEWS_USED["n"],
                    )["heldout_accuracy"]
                )
                pidx = _draw(pool_y, shots, rng, worst)
                padapter = fit_adapter(
                    pool_e[pidx], pool_y[pidx], n, method, head, pool_x[pidx], views=VIEWS_USED["n"]
                )
                ppred = padapter.apply(test_e, test_p, test_x).argmax(1)
                partial.append(float((ppred == test_y).mean()))
            rows[str(shots)] = {
                "accuracy_mean": round(statistics.mean(accs), 4),
                "accuracy_min": round(min(accs), 4),
                "base_style_accuracy_mean": round(statistics.mean(base_style), 4),
                "partial_two_classes_accuracy_mean": round(statistics.mean(partial), 4),
                "cross_validated_mean": round(statistics.mean(cv), 4),
            }
            log(
                f"{style:9s} {method:9s} {shots:2d}/class: {statistics.mean(accs) * 100:5.1f} % "
                f"(min {min(accs) * 100:5.1f}, base {base_acc * 100:5.1f}); base style "
                f"{statistics.mean(base_style) * 100:5.1f} %; teach 2 worst only "
                f"{statistics.mean(partial) * 100:5.1f} %; CV estimate "
                f"{statistics.mean(cv) * 100:5.1f} %"
            )
        out["methods"][method] = rows
    return out


def measure_speed(model: Path, examples: int = 200, repeats: int = 3) -> dict[str, Any]:
    """Wall time of `adapt_bundle` for `examples` examples (embedding, cross-validation,
    fit and the bundle write), median of `repeats` runs."""
    x, y = styled_set("motion", examples // NUM_CLASSES, seed=303)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            t0 = time.perf_counter()
            adapt_bundle(model, x, y, Path(tmp) / f"adapted{i}", views=VIEWS_USED["n"])
            times.append(time.perf_counter() - t0)
        # what an adapter costs the live pipeline: classify() of a 5-head frame
        crops = x[:5]
        base_clf = Classifier(model, num_threads=2)
        adapted_clf = Classifier(Path(tmp) / "adapted0", num_threads=2)
        base_ms = median_seconds(lambda: base_clf.classify(crops), 300, warmup=20) * 1e3
        adapted_ms = median_seconds(lambda: adapted_clf.classify(crops), 300, warmup=20) * 1e3
    return {
        "classify_5_heads_ms": {"base": round(base_ms, 3), "adapted": round(adapted_ms, 3)},
        "examples": int(len(y)),
        "median_s": round(statistics.median(times), 3),
        "runs": [round(t, 3) for t in times],
        "what": "screwcam.adapt.adapt_bundle: embed, 5-fold cross-validation, fit, write bundle",
    }


def measure_switch(model: Path, seconds: float = 4.0) -> dict[str, Any]:
    """The live pipeline's result rate around an adapt + live switch: `screwcam serve`
    on a looping one-head video (the demo renderer, written by OpenCV), examples of two
    classes recorded from the page API, then POST /api/teach/adapt; results are timed
    from the event stream."""
    import http.client
    import json as _json
    import os
    import socket
    import subprocess
    import threading

    from screwcam.render import DemoSource

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        video = tmp / "one-head.mp4"
        with DemoSource(realtime=False, seed=1, heads=1, labels=[4]) as source:
            first = source.read()
            h, w = first.image.shape[:2]
            writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
            writer.write(first.image)
            for _ in range(89):
                writer.write(source.read().image)
            writer.release()
        (tmp / "c.toml").write_text(f'[teach]\ndir = "{tmp / "teach"}"\n')
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [
            sys.executable,
            "-P",  # the installed screwcam, not a checkout's folder in the working directory
            "-m",
            "screwcam.cli",
            "serve",
            "--config",
            str(tmp / "c.toml"),
            "--source",
            str(video),
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        log = open(tmp / "serve.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )

        def request(method: str, path: str, body: dict | None = None) -> Any:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            data = None if body is None else _json.dumps(body).encode()
            conn.request(method, path, data, {"Content-Type": "application/json"})
            out = _json.loads(conn.getresponse().read() or b"{}")
            conn.close()
            return out

        stamps: list[float] = []
        stop = threading.Event()
        try:
            up = False
            for _ in range(150):
                try:
                    request("GET", "/api/teach/status")
                    up = True
                    break
                except OSError:
                    if proc.poll() is not None:  # it exited: no use waiting
                        break
                    time.sleep(0.2)
            if not up:
                log.flush()
                tail = (tmp / "serve.log").read_text(errors="replace").strip().splitlines()[-5:]
                raise ScrewcamError(
                    "the live switch needs `screwcam serve`, which did not answer within 30 s; "
                    "its log ends: " + " | ".join(tail)
                )

            def watch() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/api/events")
                resp = conn.getresponse()
                while not stop.is_set():
                    line = resp.readline()
                    if not line:
                        return
                    if line.startswith(b"data:") and b'"seq"' in line:
                        stamps.append(time.monotonic())

            threading.Thread(target=watch, daemon=True).start()
            for label in ("torx", "philips"):
                request("POST", "/api/teach/record", {"label": label, "seconds": seconds})
                time.sleep(seconds + 0.5)
            time.sleep(2.0)
            t0 = time.monotonic()
            answer = request("POST", "/api/teach/adapt")
            t1 = time.monotonic()
            time.sleep(3.0)
        finally:
            stop.set()
            proc.terminate()
            proc.wait(10)
            log.close()

        def rate(a: float, b: float) -> float:
            return sum(a <= t < b for t in stamps) / (b - a)

        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if t0 - 1 <= a <= t1 + 1]
        usual = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if a < t0 - 1]
        return {
            "adapt_http_s": round(t1 - t0, 3),
            "examples": answer.get("metrics", {}).get("n"),
            "results_per_s_before": round(rate(t0 - 2.0, t0), 1),
            "results_per_s_after": round(rate(t1, t1 + 3.0), 1),
            "longest_gap_ms_around_switch": round(max(gaps) * 1000, 1) if gaps else None,
            "median_gap_ms_before": round(statistics.median(usual) * 1000, 1) if usual else None,
            "what": "screwcam serve on a 30 fps one-head video; results timed from /api/events",
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_BUNDLE)
    parser.add_argument("--styles", nargs="+", default=["motion", "render3d"])
    parser.add_argument("--shots", nargs="+", type=int, default=[5, 10, 20])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--views",
        type=int,
        choices=(1, 2, 4, 8),
        default=VIEWS,
        help=f"views per crop averaged into the embedding (default {VIEWS})",
    )
    parser.add_argument(
        "--only-speed", action="store_true", help="only the adapt time and the live switch"
    )
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    model = resolve_bundle_path(args.model)
    bundle = load_bundle(model)
    classifier = Classifier(bundle, num_threads=2)
    VIEWS_USED["n"] = args.views
    head = with_views(read_base_head(bundle), classifier, args.views)
    bx, by = styled_set("base", 60, seed=404)
    bp, be = _embed(classifier, bx)
    log(
        f"model {bundle.path}; base style accuracy {float((bp.argmax(1) == by).mean()) * 100:.1f} %"
    )
    report: dict[str, Any] = {"model": str(bundle.path), "styles": {}}
    for style in [] if args.only_speed else args.styles:
        if not style_available(style):
            log(f"{style}: not installed here, skipped")
            continue
        report["styles"][style] = measure_style(
            classifier,
            head,
            style,
            args.shots,
            args.repeats,
            args.test_per_class,
            (bx, bp, be, by),
            log,
        )
    report["speed"] = measure_speed(model)
    log(
        f"adapting on {report['speed']['examples']} examples: "
        f"{report['speed']['median_s']:.2f} s (median of 3; goal <= 5 s); classify() of 5 "
        f"heads {report['speed']['classify_5_heads_ms']['base']:.2f} ms base, "
        f"{report['speed']['classify_5_heads_ms']['adapted']:.2f} ms adapted (median of 300)"
    )
    if args.json:  # the accuracy numbers are kept even if the live switch fails below
        write_atomic(args.json, json.dumps(report, indent=2) + "\n")
    report["switch"] = sw = measure_switch(model)
    log(
        f"live switch: adapt over HTTP {sw['adapt_http_s']:.2f} s ({sw['examples']} examples); "
        f"results/s {sw['results_per_s_before']} before, {sw['results_per_s_after']} after; "
        f"longest gap around the switch {sw['longest_gap_ms_around_switch']} ms "
        f"(median gap before {sw['median_gap_ms_before']} ms)"
    )
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ScrewcamError as exc:
        print(f"adapt_bench: error: {exc}", file=sys.stderr)
        sys.exit(2)
