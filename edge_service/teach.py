"""Teach the device your screws from its page: collect examples, review what it was
unsure of, adapt the model on the device and switch the live pipeline to it.

`Teacher` holds the state and does the work (a worker thread beside the pipeline);
`blueprint(teacher)` is the web side under /api/teach/ (plus /api/snapshot.jpg). The
app's token check applies to every route here (state-changing ones always).

On disk, under the teach folder (`[teach] dir`):

    examples/<class>/<stamp>_<n>.png   28x28 model inputs of taught heads (any folder
                                       tree of this shape is what `screwcam adapt` reads)
    review/<stamp>_<best>_<pct>.png    heads shown "unknown" or below the review
                                       threshold, waiting for a label (bounded, oldest
                                       dropped first)
    recordings/<class>_<stamp>.mp4     training videos + JSON sidecars (`screwcam record`)
    models/adapted-<stamp>/            adapted bundles (the newest few are kept)
    live.json                          the adapted bundle that is live (survives restart)

Every crop is cut by the one preprocessing (`screwcam.preprocess`) from the raw frame
the pipeline analysed, with the box the pipeline found.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from screwcam.classes import CLASSES, ENGLISH
from screwcam.errors import ScrewcamError
from screwcam.frames import Frame, Source
from screwcam.preprocess import preprocess

from .pipeline import Pipeline
from .results import UNKNOWN

log = logging.getLogger(__name__)

KEEP_MODELS = 3
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class TeachSettings:
    dir: Path
    record_seconds: float = 10.0
    example_every_s: float = 0.2  # at most 5 examples a second while recording
    review_threshold: float = 0.6
    review_every_s: float = 2.0
    review_max: int = 200
    snapshot_every_s: float = 0.2


class TeachError(ScrewcamError):
    """A teach request that cannot be done; the message says why (HTTP 400/409)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _stamp() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode {path.name}")
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, path)


def _label(text: Any) -> str:
    if not isinstance(text, str) or text not in CLASSES:
        raise TeachError(f"label {text!r} is not a class; choose one of {', '.join(CLASSES)}")
    return text


def _in_background(work: Callable[[], Any]) -> Any:
    """Run `work` in a thread of lower CPU priority (nice +10, Linux: per thread), so
    the pipeline's threads keep the cores while a model is fitted; its result or its
    ScrewcamError (as TeachError) comes back here."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (OSError, AttributeError):
            pass
        try:
            box["result"] = work()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, name="teach-adapt", daemon=True)
    thread.start()
    thread.join()
    error = box.get("error")
    if isinstance(error, ScrewcamError):
        raise TeachError(str(error)) from error
    if error is not None:
        raise error
    return box["result"]


class PipelineFrames(Source):
    """The pipeline's analysed frames as a Source (for `screwcam.capture.record`):
    a video recorded from the page is what the camera delivered, without drawings."""

    name = "live pipeline"

    def __init__(self, pipeline: Pipeline, stop: threading.Event) -> None:
        status = pipeline.capture.status
        super().__init__(fps=30.0)
        self._pipeline, self._stop, self._seq = pipeline, stop, 0
        self.name = f"live:{status.source}"

    def open(self) -> None:
        pair = self._pipeline.latest_frame()
        if pair is not None:
            height, width = pair[0].image.shape[:2]
            self._size = (width, height)
        fps = self._pipeline.metrics.fps()
        if fps > 0:
            self._fps = round(fps, 1)

    def read(self) -> Frame:
        from screwcam.sources import SourceEnded

        while not self._stop.is_set() and not self._pipeline.stopping:
            result = self._pipeline.wait_for_result(self._seq, timeout=0.5)
            pair = self._pipeline.latest_frame()
            if result is None or pair is None or pair[1].seq <= self._seq:
                continue
            self._seq = pair[1].seq
            return pair[0]
        raise SourceEnded("recording stopped")

    def close(self) -> None:
        pass


class Teacher:
    """Examples, review queue, training videos and adapted models for one pipeline.

    `swap(bundle_path)` switches the live classifier (pipeline and uploads) between
    two frames; it is given by the service, so the live model swap of the service
    (POST /api/model) and this one stay the same code once both exist.
    """

    def __init__(
        self,
        settings: TeachSettings,
        pipeline: Pipeline,
        base_bundle: Path,
        swap: Callable[[Path], dict[str, Any]],
        base_info: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.base_bundle = Path(base_bundle)
        self._swap = swap
        self.root = Path(settings.dir)
        self.examples_dir = self.root / "examples"
        self.review_dir = self.root / "review"
        self.videos_dir = self.root / "recordings"
        self.models_dir = self.root / "models"
        for d in (self.examples_dir, self.review_dir, self.videos_dir, self.models_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._adapt_lock = threading.Lock()
        self._session: dict[str, Any] | None = None
        self.last_session: dict[str, Any] | None = None
        self._video: dict[str, Any] | None = None
        self._video_stop = threading.Event()
        self._last_review = 0.0
        self._last_snapshot = 0.0
        self._snapshot: bytes | None = None
        self._counter = 0
        self.live: dict[str, Any] = {
            **(base_info or {"name": self.base_bundle.name}),
            "path": str(self.base_bundle),
            "adapted": False,
        }
        self.last_adapt: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name="teach", daemon=True)

    # --- lifecycle ------------------------------------------------------------------
    def start(self) -> Teacher:
        self._restore_live()
        self._thread.start()
        return self

    def _restore_live(self) -> None:
        path = self.root / "live.json"
        try:
            saved = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return
        bundle = Path(str(saved.get("path", "")))
        if saved.get("adapted") and bundle.is_dir():
            if not self._adapted_from_base(bundle):
                log.info("teach: not restoring %s, it was adapted from another base model", bundle)
                return
            try:
                self.switch(bundle, remember=False)
                log.info("teach: the adapted model %s is live again", bundle)
            except ScrewcamError as exc:
                log.warning("teach: could not restore the adapted model %s: %s", bundle, exc)

    def _adapted_from_base(self, bundle: Path) -> bool:
        try:
            meta = json.loads((bundle / "meta.json").read_text("utf-8"))
            base = meta["parts"]["adapter"]["base"]["path"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return Path(str(base)).resolve() == self.base_bundle.resolve()

    # --- the worker: examples and review queue ------------------------------------------
    def _run(self) -> None:
        previous = 0
        stop = self.pipeline.stop_event
        while not stop.is_set():
            result = self.pipeline.wait_for_result(previous, timeout=0.5)
            pair = self.pipeline.latest_frame()
            if result is None or pair is None or pair[1].seq <= previous:
                continue
            frame, result = pair
            previous = result.seq
            try:
                self._observe(frame, result)
            except Exception:
                log.exception("teach: handling frame %d failed", frame.index)

    def _observe(self, frame: Frame, result: Any) -> None:
        now = time.monotonic()
        with self._lock:
            session = self._session
            if session is not None and now >= session["until"]:
                session["active"] = False
                self._session = None
                session = None
        if session is not None:
            heads = result.heads
            if not heads:
                session["no_head"] += 1
            elif len(heads) > 1:
                session["several"] += 1
            elif now - session["last"] >= self.settings.example_every_s:
                session["last"] = now
                name = self._save_crop(frame, heads[0].box, self.examples_dir / session["label"])
                session["saved"] += 1
                session["thumbs"] = [*session["thumbs"][-11:], f"{session['label']}/{name}"]
            return  # no review while teaching: those heads are being labelled right now
        unsure = [
            h
            for h in result.heads
            if h.label == UNKNOWN or h.confidence < self.settings.review_threshold
        ]
        if unsure and now - self._last_review >= self.settings.review_every_s:
            self._last_review = now
            head = min(unsure, key=lambda h: h.confidence)
            self._save_crop(
                frame,
                head.box,
                self.review_dir,
                suffix=f"_{head.best}_{int(head.confidence * 100):02d}",
            )
            self._prune_review()

    def _save_crop(self, frame: Frame, box: Any, folder: Path, suffix: str = "") -> str:
        folder.mkdir(parents=True, exist_ok=True)
        crop = preprocess(frame.image, box.as_list())
        self._counter += 1
        name = f"{_stamp()}_{self._counter}{suffix}.png"
        _write_png(folder / name, crop)
        return name

    def _review_files(self) -> list[Path]:
        return sorted(p for p in self.review_dir.glob("*.png") if not p.name.startswith("."))

    def _prune_review(self) -> None:
        files = self._review_files()
        for old in files[: max(0, len(files) - self.settings.review_max)]:
            old.unlink(missing_ok=True)

    # --- teaching sessions ------------------------------------------------------------
    def start_session(self, label: str, seconds: float | None) -> dict[str, Any]:
        label = _label(label)
        seconds = float(seconds or self.settings.record_seconds)
        if not 1 <= seconds <= 120:
            raise TeachError("seconds must be between 1 and 120")
        with self._lock:
            if self._session is not None:
                raise TeachError("already recording examples; wait or stop it", 409)
            self._session = {
                "active": True,
                "label": label,
                "seconds": seconds,
                "until": time.monotonic() + seconds,
                "last": 0.0,
                "saved": 0,
                "no_head": 0,
                "several": 0,
                "thumbs": [],
            }
            self.last_session = self._session
        return self.session_json()

    def stop_session(self) -> dict[str, Any]:
        with self._lock:
            if self._session is not None:
                self._session["active"] = False
                self._session = None
        return self.session_json()

    def session_json(self) -> dict[str, Any] | None:
        s = self.last_session
        if s is None:
            return None
        left = max(0.0, s["until"] - time.monotonic()) if s["active"] else 0.0
        keys = ("active", "label", "seconds", "saved", "no_head", "several", "thumbs")
        return {**{k: s[k] for k in keys}, "seconds_left": round(left, 1)}

    def example_counts(self) -> dict[str, int]:
        return {
            name: sum(1 for p in (self.examples_dir / name).glob("*.png") if p.name[0] != ".")
            if (self.examples_dir / name).is_dir()
            else 0
            for name in CLASSES
        }

    def clear_examples(self, label: str) -> dict[str, int]:
        folder = self.examples_dir / _label(label)
        if folder.is_dir():
            shutil.rmtree(folder)
        return self.example_counts()

    # --- review queue -------------------------------------------------------------------
    def review_json(self, limit: int = 24) -> list[dict[str, Any]]:
        out = []
        for p in reversed(self._review_files()[-limit:]):
            parts = p.stem.split("_")
            best = parts[-2] if len(parts) >= 4 else "?"
            pct = parts[-1] if len(parts) >= 4 else "?"
            out.append({"id": p.name, "best": best, "confidence": pct})
        return out

    def label_review(self, item: str, label: str | None) -> dict[str, Any]:
        if not _NAME.match(item or ""):
            raise TeachError(f"no review item {item!r}")
        path = self.review_dir / item
        if not path.is_file():
            raise TeachError(f"review item {item} is gone (labelled, discarded or dropped)", 404)
        if label is None:
            path.unlink(missing_ok=True)
        else:
            folder = self.examples_dir / _label(label)
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(path, folder / item)
        return {"examples": self.example_counts(), "review": self.review_json()}

    # --- training videos ----------------------------------------------------------------
    def start_video(self, label: str, seconds: float | None) -> dict[str, Any]:
        from screwcam.recording import record

        label = _label(label)
        seconds = float(seconds or self.settings.record_seconds)
        if not 1 <= seconds <= 600:
            raise TeachError("seconds must be between 1 and 600")
        with self._lock:
            if self._video is not None and self._video.get("active"):
                raise TeachError("a video is being recorded already", 409)
            self._video_stop = threading.Event()
            state: dict[str, Any] = {"active": True, "label": label, "seconds": seconds}
            self._video = state
        stop = self._video_stop

        def work() -> None:
            try:
                source = PipelineFrames(self.pipeline, stop)
                source.open()
                rec = record(
                    source, CLASSES.index(label), self.videos_dir, seconds=seconds, stop=stop
                )
                state.update(file=rec.video.name, frames=rec.frames)
            except ScrewcamError as exc:
                state["error"] = str(exc)
            except Exception as exc:  # keep the service up; say what happened
                log.exception("teach: recording a video failed")
                state["error"] = f"recording failed: {type(exc).__name__}"
            finally:
                state["active"] = False

        threading.Thread(target=work, name="teach-video", daemon=True).start()
        return dict(state)

    def stop_video(self) -> dict[str, Any] | None:
        self._video_stop.set()
        return None if self._video is None else dict(self._video)

    def videos_json(self) -> list[dict[str, Any]]:
        files = sorted(
            (p for p in self.videos_dir.glob("*.mp4") if not p.name.startswith(".")),
            key=lambda p: p.name,
            reverse=True,
        )
        return [{"name": p.name, "bytes": p.stat().st_size} for p in files[:20]]

    # --- adapting and switching ---------------------------------------------------------
    def adapt(self, method: str | None = None) -> dict[str, Any]:
        """Adapt the base model to every example so far, write the bundle, make it live."""
        from screwcam.adapt import DEFAULT_METHOD, adapt_bundle
        from screwcam.dataset import load_samples

        if not self._adapt_lock.acquire(blocking=False):
            raise TeachError("an adaptation is running already", 409)
        try:
            t0 = time.perf_counter()
            counts = self.example_counts()
            if not any(counts.values()):
                raise TeachError("no examples yet: record some heads of a class first")
            try:
                samples = load_samples([self.examples_dir])
            except ScrewcamError as exc:
                raise TeachError(f"{exc}; delete it (Clear) or fix it, then adapt again") from exc
            out = self.models_dir / f"adapted-{_stamp()[:15]}Z"
            n = 1
            while out.exists():
                n += 1
                out = out.with_name(f"{out.name.split('~')[0]}~{n}")
            name = f"{self.base_bundle.name}+{sum(counts.values())} examples"
            result = _in_background(
                lambda: adapt_bundle(
                    self.base_bundle,
                    samples.x,
                    samples.y,
                    out,
                    method=method or DEFAULT_METHOD,
                    name=name,
                )
            )
            live = self.switch(out)
            self._prune_models(keep=out)
            self.last_adapt = {
                **result.metrics,
                "total_seconds": round(time.perf_counter() - t0, 3),
            }
            return {"live": live, "metrics": self.last_adapt}
        finally:
            self._adapt_lock.release()

    def switch(self, bundle: Path, remember: bool = True) -> dict[str, Any]:
        info = self._swap(Path(bundle))
        adapted = Path(bundle).resolve() != self.base_bundle.resolve()
        self.live = {**info, "path": str(bundle), "adapted": adapted}
        if remember:
            tmp = self.root / ".live.json.part"
            tmp.write_text(json.dumps({"path": str(bundle), "adapted": adapted}) + "\n")
            os.replace(tmp, self.root / "live.json")
        return self.live

    def revert(self) -> dict[str, Any]:
        return self.switch(self.base_bundle)

    def _prune_models(self, keep: Path) -> None:
        bundles = sorted(p for p in self.models_dir.glob("adapted-*") if p.is_dir())
        for old in bundles[: max(0, len(bundles) - KEEP_MODELS)]:
            if old.resolve() != keep.resolve() and str(old) != self.live.get("path"):
                shutil.rmtree(old, ignore_errors=True)

    # --- snapshot -------------------------------------------------------------------------
    def snapshot(self) -> bytes | None:
        """The newest frame as captured (no drawings), JPEG; encoded at most every
        `snapshot_every_s`, otherwise the last one is handed out again."""
        with self._lock:
            now = time.monotonic()
            if (
                self._snapshot is not None
                and now - self._last_snapshot < self.settings.snapshot_every_s
            ):
                return self._snapshot
            pair = self.pipeline.latest_frame()
            if pair is None:
                return None
            ok, data = cv2.imencode(".jpg", pair[0].image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                return None
            self._snapshot, self._last_snapshot = data.tobytes(), now
            return self._snapshot

    # --- status -----------------------------------------------------------------------
    def status_json(self) -> dict[str, Any]:
        video = None if self._video is None else dict(self._video)
        return {
            "classes": [{"name": c, "en": ENGLISH[c]} for c in CLASSES],
            "live": self.live,
            "base": str(self.base_bundle),
            "dir": str(self.root),
            "examples": self.example_counts(),
            "session": self.session_json(),
            "review": self.review_json(),
            "review_total": len(self._review_files()),
            "video": video,
            "videos": self.videos_json(),
            "last_adapt": self.last_adapt,
            "record_seconds": self.settings.record_seconds,
        }


def blueprint(teacher: Teacher) -> Any:
    """The web side of `teacher`: JSON under /api/teach/, /api/snapshot.jpg."""
    from flask import Blueprint, Response, jsonify, request, send_from_directory

    bp = Blueprint("teach", __name__)

    def error(exc: TeachError) -> Response:
        response = jsonify({"error": "teach", "message": str(exc)})
        response.status_code = exc.status
        return response

    bp.register_error_handler(TeachError, error)

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    @bp.get("/api/teach/status")
    def status() -> Response:
        return jsonify(teacher.status_json())

    @bp.post("/api/teach/record")
    def record() -> Response:
        data = body()
        return jsonify(teacher.start_session(data.get("label"), data.get("seconds")))

    @bp.post("/api/teach/stop")
    def stop() -> Response:
        return jsonify(teacher.stop_session())

    @bp.post("/api/teach/clear")
    def clear() -> Response:
        return jsonify({"examples": teacher.clear_examples(body().get("label"))})

    @bp.post("/api/teach/review/<item>")
    def review(item: str) -> Response:
        data = body()
        label = None if data.get("discard") else data.get("label")
        if label is None and not data.get("discard"):
            raise TeachError('send {"label": CLASS} or {"discard": true}')
        return jsonify(teacher.label_review(item, label))

    @bp.get("/api/teach/crop/<kind>/<path:name>")
    def crop(kind: str, name: str) -> Response:
        folder = {"examples": teacher.examples_dir, "review": teacher.review_dir}.get(kind)
        if folder is None:
            raise TeachError(f"no such crop kind {kind!r}", 404)
        return send_from_directory(folder, name, mimetype="image/png", max_age=3600)

    @bp.post("/api/teach/video")
    def video() -> Response:
        data = body()
        return jsonify(teacher.start_video(data.get("label"), data.get("seconds")))

    @bp.post("/api/teach/video/stop")
    def video_stop() -> Response:
        return jsonify(teacher.stop_video())

    @bp.get("/api/teach/videos/<name>")
    def video_file(name: str) -> Response:
        if not _NAME.match(name) or name.startswith("."):
            raise TeachError(f"no video {name!r}", 404)
        return send_from_directory(teacher.videos_dir, name, as_attachment=True)

    @bp.post("/api/teach/adapt")
    def adapt() -> Response:
        return jsonify(teacher.adapt(body().get("method")))

    @bp.post("/api/teach/revert")
    def revert() -> Response:
        return jsonify({"live": teacher.revert()})

    @bp.get("/api/snapshot.jpg")
    def snapshot() -> Response:
        data = teacher.snapshot()
        if data is None:
            raise TeachError("no frame has been captured yet; try again", 503)
        return Response(data, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})

    return bp
