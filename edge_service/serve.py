"""`screwcam serve`: the live service — camera -> heads -> classes -> web page.

    screwcam serve [--config FILE] [--source demo|picamera2|0|PATH|URL]
                   [--model models/NAME] [--host H] [--port P] [--check-config]

Flags override the config file; the file overrides the built-in defaults.
`--check-config` validates everything (config, model bundle, token), prints the
effective configuration and exits (0 = fine, 2 = a problem, named).

Runs under waitress. SIGTERM / SIGINT stop the pipeline and the server within
about two seconds; under systemd (Type=notify) it reports READY, feeds the
watchdog from the processing loop and reports STOPPING.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from screwcam.errors import ScrewcamError
from screwcam.sources import SOURCE_HELP

from .config import Config, format_config, load_config, with_overrides

log = logging.getLogger("screwcam.serve")

#: per-connection output buffered for a slow viewer before its thread waits
OUTBUF_HIGH_WATERMARK = 1 << 20


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
    parser.add_argument("--threads", type=int, help="web server threads (default 48)")
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


def _load_model(config: Config) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(bundle, pipeline classifier, upload classifier, model info)."""
    from screwcam.classifier import Classifier, load_bundle

    bundle = load_bundle(config.model_path())
    threads = config.model.num_threads
    info = {
        "name": bundle.meta.name or Path(bundle.path).name,
        "path": str(bundle.path),
        "created": bundle.meta.created,
        "quantization": bundle.meta.quantization,
        # the learned detector when the bundle has one, else the classical fallback
        "head_finder": "detector" if "detector" in bundle.meta.parts else "classical",
    }
    return bundle, Classifier(bundle, num_threads=threads), Classifier(bundle, num_threads=1), info


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    if args.check_config:
        return check_config(config)
    return serve(config)


def check_config(config: Config) -> int:
    config.token()  # a token file that cannot be read is a config error
    bundle = _load_model(config)[0]
    print(f"# effective configuration ({config.origin or 'built-in defaults'})")
    print(f"# model bundle OK: {bundle.path}")
    print(format_config(config))
    return 0


class Service:
    """The pipeline plus the waitress server; `stop()` is safe from any thread."""

    def __init__(self, config: Config) -> None:
        from waitress import create_server

        from .analyzer import Analyzer
        from .app import create_app
        from .metrics import Metrics
        from .pipeline import Pipeline
        from .systemd_notify import Notifier, watchdog_interval_s

        self.config = config
        self.token = config.token()
        bundle, classifier, upload_classifier, self.model_info = _load_model(config)
        threshold = config.model.confidence_threshold
        labels = bundle.labels
        self.spec = resolve_source_spec(config.camera.source)
        self.notifier = Notifier()
        self.pipeline = Pipeline(
            source_factory(self.spec, config),
            Analyzer(classifier, threshold, labels, find_threads=config.model.num_threads),
            source_name=self.spec,
            metrics=Metrics(labels=bundle.labels),
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
            upload_analyzer=Analyzer(upload_classifier, threshold, labels, find_threads=1),
            model_info=self.model_info,
        )
        try:
            self.server = create_server(
                self.app,
                host=config.server.host,
                port=config.server.port,
                threads=config.server.threads,
                ident="screwcam",
                asyncore_use_poll=True,  # select() breaks beyond 1024 descriptors
                outbuf_high_watermark=OUTBUF_HIGH_WATERMARK,
                # Bodies a little over the limit reach Flask, which answers with a
                # JSON 413; waitress itself cuts off anything far beyond it.
                max_request_body_size=2 * config.server.max_upload_bytes + (1 << 20),
                connection_limit=max(100, config.server.threads * 4),
            )
        except OSError as exc:
            raise ScrewcamError(
                f"cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}; "
                "is another screwcam running? choose another --port"
            ) from exc
        self._server_thread = threading.Thread(
            target=self._run_server, name="waitress", daemon=True
        )
        self._server_failed = False

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
        self.pipeline.start()
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
        stop = self.pipeline.stop_event
        while not stop.wait(0.5):
            pass

    def stop(self) -> None:
        """Stop accepting work and end every thread; bounded to ~1.5 s."""
        from waitress import wasyncore

        t0 = time.monotonic()
        self.notifier.stopping()
        self.pipeline.stop(timeout=1.0)  # ends the streams too: they watch its event
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


def serve(config: Config) -> int:
    service = Service(config)
    stop = service.pipeline.stop_event

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C while stopping: give up at once
            raise KeyboardInterrupt
        log.info("%s received, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
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
