"""`screwcam serve`: the live service — camera -> heads -> classes -> web page.

    screwcam serve [--config FILE] [--source demo|picamera2|0|PATH|URL]
                   [--model models/NAME] [--host H] [--port P] [--check-config]

Flags override the config file; the file overrides the built-in defaults.
`--check-config` validates everything (config, model bundle, token), prints the
effective configuration and exits (0 = fine, 2 = a problem, named).

Runs under waitress. SIGTERM / SIGINT stop the pipeline and the server within
about two seconds; SIGHUP reloads the model bundle (as POST /api/model does)
without stopping the stream; under systemd (Type=notify) it reports READY, feeds the
watchdog from the processing loop and reports STOPPING.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from screwcam.errors import ConfigError, ScrewcamError
from screwcam.sources import SOURCE_HELP

from .config import Config, format_config, load_config, resolve_model_path, with_overrides

log = logging.getLogger("screwcam.serve")

#: per-connection output buffered for a slow client before its thread waits
OUTBUF_HIGH_WATERMARK = 256 * 1024
#: open connections waitress serves at once (streams are not counted: the stream
#: hub owns those); beyond, new connections wait in the listen backlog
CONNECTION_LIMIT = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (see systemd/config.example.toml); default: built-in defaults",
    )
    parser.add_argument(
        "--source",
        help=SOURCE_HELP,
    )
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="model bundle folder (default: models/default of this installation)",
    )
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="TCP port (default 8080)")
    parser.add_argument(
        "--threads", type=int, help="web server threads for requests other than streams (default 8)"
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the config and model, print the effective config, exit",
    )


def build_config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    return with_overrides(
        config,
        {
            "camera": {"source": args.source},
            "model": {"path": args.model},
            "server": {"host": args.host, "port": args.port, "threads": args.threads},
        },
    )


def resolve_source_spec(spec: str) -> str:
    """ "auto" -> the camera that is there (checked once, at start)."""
    if spec.strip() == "auto":
        from screwcam.sources import default_source_spec

        return default_source_spec()
    return spec.strip()


def source_factory(spec: str, config: Config) -> Callable[[], Any]:
    """A function making a fresh (unopened) source each time the camera is (re)opened;
    cameras get the configured size and rate."""
    from screwcam.sources import open_source

    size = (config.camera.width, config.camera.height)
    return lambda: open_source(spec, size=size, fps=config.camera.fps)


def _head_finder(entry: dict | None, verify: bool) -> str:
    """ "classical", or "detector" with the stages the live stream runs: "+regressor",
    "+verifier"."""
    if entry is None:
        return "classical"
    stages = ["detector"]
    if entry.get("regressor"):
        stages.append("regressor")
    if entry.get("verifier") and verify:
        stages.append("verifier")
    return "+".join(stages)


def _load_model(config: Config, path: Path | None = None) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(bundle, pipeline classifier, upload classifier, model info) of the configured
    bundle, or of `path`. The pipeline's classifier is tried on a blank crop, so a
    model that loads but cannot run is refused here, not in the pipeline. The upload
    classifier (the same model in its own interpreter) is built on the first upload:
    most services never get one, and an interpreter costs about 1 MB."""
    import numpy as np

    from screwcam.classifier import Classifier, LazyClassifier, load_bundle
    from screwcam.errors import ModelError

    bundle = load_bundle(path or config.model_path())
    threads = config.model.num_threads
    info = {
        "name": bundle.meta.name or Path(bundle.path).name,
        "path": str(bundle.path),
        "created": bundle.meta.created,
        "quantization": bundle.meta.quantization,
        # the learned detector (with its second stage) when the bundle has one, else
        # the classical fallback
        "head_finder": _head_finder(bundle.meta.parts.get("detector"), config.model.verifier),
        "views": config.model.views,
        "upload_views": config.model.upload_views,
    }
    classifier = Classifier(bundle, num_threads=threads, views=config.model.views)
    blank = np.full((1, 28, 28), 128, dtype=np.uint8)
    try:
        probs = np.asarray(classifier.classify(blank))
    except Exception as exc:
        raise ModelError(f"{bundle.path}: the model fails on a test crop ({exc})") from exc
    if probs.shape != (1, len(bundle.labels)) or not np.isfinite(probs).all():
        raise ModelError(
            f"{bundle.path}: the model gives {probs.shape} outputs for one crop, "
            f"expected (1, {len(bundle.labels)}) finite probabilities"
        )
    # uploads are photos: by default their heads are classified over 8 views
    uploads = LazyClassifier(bundle, num_threads=1, views=config.model.upload_views)
    return bundle, classifier, uploads, info


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    if args.check_config:
        return check_config(config)
    return serve(config)


def check_listen_address(host: str, port: int) -> None:
    """ConfigError unless `host` is an address (or a name resolving to one)."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise ConfigError(
            f"--host / [server] host = {host!r} is not an IP address or a known host name; "
            "use 0.0.0.0 (every interface), 127.0.0.1 (this machine only) or one of this "
            "machine's addresses"
        ) from exc


def listen_error(host: str, port: int, exc: OSError) -> ScrewcamError:
    """One line saying why the server cannot listen, and what to do."""
    where = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    if exc.errno == errno.EADDRINUSE:
        return ScrewcamError(f"{where}; is another screwcam running? choose another --port")
    if exc.errno == errno.EADDRNOTAVAIL:
        return ScrewcamError(
            f"{where}; no network interface of this machine has that address: use --host "
            "0.0.0.0 (every interface) or one of its own addresses"
        )
    if exc.errno == errno.EACCES:
        return ScrewcamError(f"{where}; ports below 1024 need privileges: use --port 8080")
    return ScrewcamError(where)


def check_source(spec: str) -> str:
    """The source spec resolved and checked the way `serve` would use it, without
    taking a camera away from anyone: the text must parse, a video file must
    decode, a device must exist, picamera2 must be installed. CameraError else."""
    import importlib.util

    from screwcam.errors import CameraError
    from screwcam.sources import DeviceSource, Picamera2Source, VideoFileSource, open_source

    resolved = resolve_source_spec(spec)
    source = open_source(resolved)  # unknown text or a missing file: CameraError
    if isinstance(source, VideoFileSource):
        source.open()  # decodes the first frame
        source.close()
    elif isinstance(source, DeviceSource) and sys.platform.startswith("linux"):
        if not Path(f"/dev/video{source.index}").exists():
            raise CameraError(
                f"source {resolved!r}: there is no /dev/video{source.index}; plug the camera "
                "in (ls /dev/video*) or choose another --source"
            )
    elif isinstance(source, Picamera2Source) and importlib.util.find_spec("picamera2") is None:
        raise CameraError(
            "source 'picamera2': the picamera2 module is not installed (sudo apt install "
            "python3-picamera2, and a venv made with --system-site-packages)"
        )
    return resolved


def check_config(config: Config) -> int:
    config.token()  # a token file that cannot be read is a config error
    check_listen_address(config.server.host, config.server.port)
    source = check_source(config.camera.source)
    bundle = _load_model(config)[0]
    print(f"# source OK: {source}")
    print(f"# effective configuration ({config.origin or 'built-in defaults'})")
    print(f"# model bundle OK: {bundle.path}")
    print(format_config(config))
    return 0


class Service:
    """The pipeline plus the waitress server; `stop()` is safe from any thread."""

    def __init__(self, config: Config) -> None:
        from waitress import create_server

        from screwcam.detector import PHOTO_TILE_SCALE

        from .analyzer import Analyzer
        from .app import create_app
        from .line_api import line_blueprint
        from .memory import Trimmer, limit_arenas
        from .metrics import Metrics
        from .pipeline import Pipeline
        from .streaming import QuietHandover
        from .systemd_notify import Notifier, watchdog_interval_s
        from .tracking import GreedyTracker, HeadTracker, Tally

        limit_arenas(2)  # before the threads start (see memory.py)
        self.config = config
        self.token = config.token()
        bundle, classifier, upload_classifier, self.model_info = _load_model(config)
        self.model_info["loaded"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        threshold = config.model.confidence_threshold
        labels = bundle.labels
        self.spec = resolve_source_spec(config.camera.source)
        self.notifier = Notifier()
        self.metrics = metrics = Metrics(labels=bundle.labels)
        metrics.model_loaded(self.model_info)
        self._swap_lock = threading.RLock()  # one model swap at a time
        self.reload_requested = threading.Event()  # set by SIGHUP; served by wait()
        self.tracker: HeadTracker | None = None
        if config.tracking.enabled:
            t = config.tracking
            self.tracker = HeadTracker(
                GreedyTracker(gate=t.gate, max_age_s=t.max_age_s),
                confirm_frames=t.confirm_frames,
                forget_s=2.0 * t.max_age_s,
                tally=Tally(labels),
            )
            self.tracker.listeners.append(lambda event, _counts: metrics.head_counted(event.label))
        self.mqtt = None
        if config.mqtt.url:
            from .mqtt import MqttPublisher

            tally = self.tracker.tally.snapshot() if self.tracker else None
            self.mqtt = MqttPublisher(config.mqtt, counts=tally)
            if self.tracker is not None:
                self.tracker.listeners.append(self.mqtt.counted)
            metrics.watch_mqtt(self._mqtt_numbers)
        self.analyzer = Analyzer(
            classifier,
            threshold,
            labels,
            find_threads=config.model.num_threads,
            verify=config.model.verifier,
            tile_scale=config.model.tile_scale or None,
        )
        # built on the first upload (see _load_model); uploads are photos: one larger
        # than the detector's frame is also searched in windows (as `screwcam detect`)
        self.upload_analyzer = Analyzer(
            upload_classifier,
            threshold,
            labels,
            find_threads=1,
            lazy=True,
            tile_scale=PHOTO_TILE_SCALE,
        )
        self.pipeline = Pipeline(
            source_factory(self.spec, config),
            self.analyzer,
            source_name=self.spec,
            metrics=metrics,
            tracker=self.tracker,
            notifier=self.notifier,
            jpeg_quality=config.stream.jpeg_quality,
            backoff_min_s=config.camera.reconnect_min_s,
            backoff_max_s=config.camera.reconnect_max_s,
            hung_read_s=config.camera.hung_read_s,
            stale_after_s=config.camera.stale_after_s,
            # at least twice per WatchdogSec, and at least once a second
            watchdog_every_s=min(1.0, watchdog_interval_s() or 1.0),
        )
        self.app = create_app(
            config,
            self.pipeline,
            upload_analyzer=self.upload_analyzer,
            model_info=self.model_info,  # the live dict: swap_model updates it in place
            health_extras=self._health_extras,
        )
        self.app.register_blueprint(
            line_blueprint(
                None if self.tracker is None else self.tracker.tally,
                self.swap_model,
                lambda: dict(self.model_info),
                on_reset=None if self.mqtt is None else self.mqtt.counts_changed,
            )
        )
        host, port = config.server.host, config.server.port
        check_listen_address(host, port)
        self.teacher = self._teacher(config, bundle) if config.teach.enabled else None
        try:
            self.server = create_server(
                self.app,
                host=host,
                port=port,
                threads=config.server.threads,
                ident="screwcam",
                asyncore_use_poll=True,  # select() breaks beyond 1024 descriptors
                outbuf_high_watermark=OUTBUF_HIGH_WATERMARK,
                # Bodies a little over the limit reach Flask, which answers with a
                # JSON 413; waitress itself cuts off anything far beyond it (in JSON too).
                max_request_body_size=2 * config.server.max_upload_bytes + (1 << 20),
                connection_limit=CONNECTION_LIMIT,
            )
        except OSError as exc:
            raise listen_error(host, port, exc) from exc
        except ValueError as exc:  # waitress: "Invalid host/port specified."
            raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from exc
        use_json_errors(self.server, config.server.max_upload_bytes)
        logging.getLogger("waitress").addFilter(QuietHandover())
        self._server_thread = threading.Thread(
            target=self._run_server, name="waitress", daemon=True
        )
        self._server_failed = False
        self._trimmer = Trimmer(self.pipeline.stop_event)

    # --- the line: live model, health ------------------------------------------------------
    def swap_model(self, path: str | None = None) -> dict[str, Any]:
        """Load the bundle at `path` (None = reload the current one) and use it from
        the next frame on, for the stream and for uploads; returns its info. A bundle
        that does not load or run raises ModelError and the running model stays."""
        from screwcam.errors import ModelError

        with self._swap_lock:
            target = (
                resolve_model_path(path, self.config.origin)
                if path
                else Path(self.model_info["path"])
            )
            try:
                _, classifier, upload_classifier, info = _load_model(self.config, target)
            except ModelError as exc:
                self.metrics.model_refused()
                log.warning("model %s refused: %s", target, exc)
                raise
            return self.install_model(classifier, upload_classifier, info)

    def install_model(
        self, classifier: Any, upload_classifier: Any, info: dict[str, Any]
    ) -> dict[str, Any]:
        """Use these (checked, working) classifiers from the next frame on: one for the
        pipeline, one for uploads (LiteRT interpreters are not thread-safe). Each is
        swapped under its analyzer's lock; the stream goes on. `info` (name, path,
        ...) is what the page, /healthz and /api/model show."""
        with self._swap_lock:
            self.analyzer.set_classifier(classifier)
            self.upload_analyzer.set_classifier(upload_classifier)
            info = {**info, "loaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            self.model_info.clear()
            self.model_info.update(info)
            self.metrics.model_loaded(info, swapped=True)
        log.info("model now %s (%s)", info.get("name"), info.get("path"))
        return dict(info)

    def _mqtt_numbers(self) -> dict[str, float]:
        m = self.mqtt
        assert m is not None
        return {
            "connected": float(m.connected),
            "queued": m.queued,
            "published": m.published,
            "dropped": m.dropped,
            "connects": m.connects,
        }

    def _health_extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        if self.tracker is not None:
            extras["tracking"] = {
                "active_tracks": self.tracker.active,
                **self.tracker.tally.snapshot(),
            }
        extras["mqtt"] = {"state": "off"} if self.mqtt is None else self.mqtt.status_json()
        return extras

    def _teacher(self, config: Config, bundle: Any) -> Any:
        from .teach import Teacher, TeachSettings, blueprint

        t = config.teach
        settings = TeachSettings(
            dir=t.folder(),
            record_seconds=t.record_seconds,
            review_threshold=t.review_threshold,
            review_every_s=t.review_every_s,
            review_max=t.review_max,
        )
        try:
            teacher = Teacher(
                settings, self.pipeline, Path(bundle.path), self.swap_model, dict(self.model_info)
            )
        except OSError as exc:
            raise ScrewcamError(
                f"cannot use the teach folder {settings.dir}: {exc.strerror}; set [teach] dir "
                "to a writable folder or [teach] enabled = false"
            ) from exc
        self.app.register_blueprint(blueprint(teacher))
        return teacher

    @property
    def port(self) -> int:
        return int(self.server.effective_port)

    def _run_server(self) -> None:
        try:
            self.server.run()
        except Exception:
            if not self.pipeline.stopping:
                log.exception("web server failed")
                self._server_failed = True
                self.pipeline.stop_event.set()

    def start(self) -> None:
        if self.mqtt is not None:
            self.mqtt.start()
        self.pipeline.start()
        self._trimmer.start()
        if self.teacher is not None:
            self.teacher.start()
        self._server_thread.start()
        host = self.config.server.host
        shown = "localhost" if host in ("0.0.0.0", "::") else host
        log.info(
            "serving %s with model %s (%s head finder) on http://%s:%d/%s",
            self.spec,
            self.model_info["path"],
            self.model_info["head_finder"],
            shown,
            self.port,
            " (access token required for uploads)" if self.token else "",
        )

    def wait(self) -> None:
        """Until stopped; serves reload requests (SIGHUP) meanwhile."""
        stop = self.pipeline.stop_event
        while not stop.wait(0.2):
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                try:
                    self.swap_model(None)
                except ScrewcamError:
                    pass  # logged by swap_model; the running model stays

    def stop(self) -> None:
        """Stop accepting work and end every thread; bounded to ~1.5 s."""
        from waitress import wasyncore

        t0 = time.monotonic()
        self.notifier.stopping()
        self.pipeline.stop(timeout=1.0)  # ends the streams too: they watch its event
        self.app.extensions["screwcam.streams"].stop(timeout=0.3)
        if self.mqtt is not None:
            self.mqtt.stop(timeout=0.5)  # "offline", and what is queued if it goes quickly
        # Waitress cannot stop itself. In its loop thread, close every connection
        # (a thread blocked writing to a stalled viewer is woken by that) and the
        # listening socket; the loop ends once nothing is left to watch.
        server = self.server

        def close_everything() -> None:
            for channel in list(server.active_channels.values()):
                channel.handle_close()
            wasyncore.close_all(server._map, ignore_all=True)

        if self._server_thread.is_alive():
            server.trigger.pull_trigger(close_everything)
            self._server_thread.join(0.5)
        if self._server_thread.is_alive() or server._map:
            wasyncore.close_all(server._map, ignore_all=True)
        server.task_dispatcher.shutdown(timeout=max(0.1, 1.5 - (time.monotonic() - t0)))
        self.notifier.close()
        log.info("stopped in %.2f s", time.monotonic() - t0)


def use_json_errors(server: Any, max_upload_bytes: int) -> None:
    """Make waitress's own error answers (400 bad request, 413 body too large,
    431 headers too large, ...) JSON like every other error of the service."""
    specific = {
        413: f"upload too large: at most {max_upload_bytes} bytes are accepted "
        "([server] max_upload_bytes)",
        431: "the request's headers are too large (a cookie or header gone wild?)",
    }
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            error = self.request.error
            detail = " ".join(str(error.body).split())
            message = specific.get(error.code) or detail or error.reason
            body = json.dumps(
                {"error": error.reason.lower().replace(" ", "_"), "message": message}
            ).encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    server.channel_class = JsonErrorChannel


def serve(config: Config) -> int:
    service = Service(config)
    stop = service.pipeline.stop_event

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C while stopping: give up at once
            raise KeyboardInterrupt
        log.info("%s received, stopping", signal.Signals(signum).name)
        stop.set()

    def on_hup(_signum: int, _frame: object) -> None:
        log.info("SIGHUP received, reloading the model")
        service.reload_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)
    try:
        service.start()
        service.wait()
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if service._server_failed:
        print("screwcam serve: the web server failed; see the log above", file=sys.stderr)
        return 1
    return 0
