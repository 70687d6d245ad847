"""The service's small parts on their own: typed config, sd_notify over a real
AF_UNIX socket, upload header checks, and the metrics text."""

from __future__ import annotations

import os
import socket
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from screwcam.bundle import shipped_bundle
from screwcam.edge_service.config import (
    Config,
    config_from_dict,
    format_config,
    load_config,
    resolve_model_path,
    with_overrides,
)
from screwcam.edge_service.metrics import Metrics
from screwcam.edge_service.systemd_notify import Notifier, watchdog_interval_s
from screwcam.edge_service.upload import UploadError, decode_upload, image_header
from screwcam.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "systemd" / "config.example.toml"

# --- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[model]\nconfidence_threshold = 1.5\n",
            "config.toml: [model] confidence_threshold = 1.5 is out of range 0.0..1.0",
        ),
        ("[server]\nport = 0\n", "[server] port = 0 is out of range 1..65535"),
        ("[model]\ntile_scale = 3\n", "[model] tile_scale = 3 is out of range 0.0..2.0"),
        ('[server]\nport = "80"\n', "[server] port = '80' must be a whole number"),
        ("[server]\nprotect_read_only = 1\n", "protect_read_only = 1 must be true or false"),
        ("[stream]\njpeg_quality = 80.5\n", "jpeg_quality = 80.5 must be a whole number"),
        ("[camera]\nfps = nan\n", "[camera] fps = nan must be a finite number"),
        ('[camera]\nsourse = "demo"\n', "[camera] sourse: unknown key"),
        ("[pipeline]\nx = 1\n", "[pipeline]: unknown section"),
        ("camera = 3\n", "[camera] must be a table"),
        ("[camera]\nreconnect_min_s = 5\nreconnect_max_s = 1\n", "larger than reconnect_max_s"),
        ("[model\n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_section_and_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_defaults_overrides_and_round_trip(tmp_path: Path) -> None:
    config = with_overrides(Config(), {"server": {"port": 9000, "host": None}})
    assert config.server.port == 9000 and config.server.host == "0.0.0.0"
    with pytest.raises(ConfigError, match="command line: \\[server\\] port = 70000"):
        with_overrides(Config(), {"server": {"port": 70000}})
    # The printed effective config is valid TOML that loads back to the same values.
    path = tmp_path / "effective.toml"
    path.write_text(format_config(config, hide_secrets=False))
    again = load_config(path)
    assert again.server == config.server and again.camera == config.camera
    assert again.model == config.model and again.stream == config.stream


def test_example_config_is_valid_and_documents_every_key() -> None:
    config = load_config(EXAMPLE)
    text = EXAMPLE.read_text()
    default_text = format_config(Config(), comments=False)
    for line in default_text.splitlines():
        if "=" in line:
            key = line.split("=")[0].strip()
            assert f"{key} =" in text, f"{key} is not in {EXAMPLE.name}"
    assert config.server.port == 8080


def test_token_from_file_and_systemd_credential(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "screwcam-token").write_text("from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert Config().token() == "from-credential"
    token_file = tmp_path / "tok"
    token_file.write_text("  from-file \n")
    config = config_from_dict({"server": {"token_file": str(token_file)}})
    assert config.token() == "from-file"
    assert config_from_dict({"server": {"access_token": "inline"}}).token() == "inline"
    token_file.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        config.token()
    missing = config_from_dict({"server": {"token_file": str(tmp_path / "none")}})
    with pytest.raises(ConfigError, match="cannot be read"):
        missing.token()
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    assert Config().token() == ""


def test_model_path_resolves_from_anywhere(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("models/default") == shipped_bundle("default")
    (tmp_path / "mine").mkdir()
    assert resolve_model_path("mine") == Path("mine")  # relative: reported as typed
    cfg_dir = tmp_path / "etc"
    (cfg_dir / "model").mkdir(parents=True)
    assert resolve_model_path("model", str(cfg_dir / "config.toml")) == cfg_dir / "model"
    assert resolve_model_path("/abs/path") == Path("/abs/path")


# --- sd_notify --------------------------------------------------------------------------------


@pytest.mark.parametrize("abstract", [False, True])
def test_notifier_sends_datagrams(tmp_path: Path, abstract: bool) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"screwcam-unit-{os.getpid()}-{id(sock)}"
        sock.bind(b"\0" + name.encode())
        address = "@" + name
    else:
        address = str(tmp_path / "notify.sock")
        sock.bind(address)
    sock.settimeout(5)
    try:
        notifier = Notifier(address)
        assert notifier.ready("serving demo")
        assert sock.recv(4096) == b"READY=1\nSTATUS=serving demo"
        assert notifier.watchdog() and sock.recv(4096) == b"WATCHDOG=1"
        assert notifier.stopping() and sock.recv(4096) == b"STOPPING=1"
        notifier.close()
    finally:
        sock.close()


def test_notifier_without_systemd_does_nothing(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not Notifier().enabled and not Notifier().ready()
    # A socket that vanished is logged, never fatal.
    assert not Notifier("/nonexistent/notify.sock").watchdog()


def test_watchdog_interval(monkeypatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval_s() == 5.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval_s() is None


# --- uploads --------------------------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    ok, buf = cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))
    assert ok
    return buf.tobytes()


def test_image_header_reads_sizes_without_decoding() -> None:
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    for ext, kind in ((".jpg", "jpeg"), (".png", "png")):
        data = cv2.imencode(ext, image)[1].tobytes()
        assert image_header(data) == (kind, 53, 37)
    progressive = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert image_header(progressive) == ("jpeg", 53, 37)
    assert decode_upload(_png(53, 37), max_pixels=10_000).image.shape == (37, 53, 3)


def test_huge_declared_dimensions_are_refused_before_decoding() -> None:
    ihdr = struct.pack(">IIBBBBB", 200_000, 200_000, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    )
    with pytest.raises(UploadError) as info:
        decode_upload(data, max_pixels=20_000_000)
    assert info.value.status == 413 and "200000x200000" in str(info.value)


@pytest.mark.parametrize(
    "data", [b"", b"GIF89a....", b"\xff\xd8\xff", b"\xff\xd8garbage", b"\x89PNG\r\n\x1a\n"]
)
def test_broken_uploads_are_400(data: bytes) -> None:
    with pytest.raises(UploadError) as info:
        decode_upload(data, max_pixels=1000)
    assert info.value.status == 400


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_text_format() -> None:
    metrics = Metrics()
    for i in range(5):
        metrics.frame_captured()
        metrics.frame_processed(
            inference_s=0.003 * (i + 1),
            latency_s=0.02,
            now=100.0 + i / 10,
            labels=["torx", "torx", "unknown"],
            stages={"find_heads": 0.002, "classify": 0.003 * (i + 1)},
        )
    metrics.frame_dropped()
    metrics.client_connected("mjpeg")
    text = metrics.render()
    lines = {
        k: float(v)
        for k, v in (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    }
    assert lines["screwcam_frames_processed_total"] == 5
    assert lines["screwcam_frames_dropped_total"] == 1
    assert lines['screwcam_inference_seconds_bucket{le="0.005"}'] == 1
    assert lines['screwcam_inference_seconds_bucket{le="0.01"}'] == 3
    assert lines['screwcam_inference_seconds_bucket{le="+Inf"}'] == 5
    assert lines['screwcam_heads_in_view{label="torx"}'] == 2
    assert lines['screwcam_heads_detected_total{label="unknown"}'] == 5
    assert lines['screwcam_clients_connected{kind="mjpeg"}'] == 1
    assert lines['screwcam_stage_seconds_count{stage="find_heads"}'] == 5
    assert float(lines['screwcam_stage_seconds_sum{stage="find_heads"}']) == pytest.approx(0.01)
    assert metrics.fps(now=100.4) == pytest.approx(10.0)
    assert metrics.fps(now=110.0) == 0.0  # stalled -> 0, not the last rate
    assert text.endswith("\n")
