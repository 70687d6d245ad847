"""Typed configuration of the live service (`screwcam serve`).

One dataclass per TOML section; every field has a default, a description and,
where it makes sense, bounds. `load_config(path)` reads a TOML file and refuses
anything it does not know or cannot accept with a ConfigError that names the
file, section and key, e.g.

    config.toml: [pipeline] confidence_threshold = 1.5 is out of range 0.0..1.0

There is no "safe mode": a bad file stops the service at start. Command-line
flags override the file through `with_overrides`. `format_config` prints the
effective configuration as TOML (`screwcam serve --check-config`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from screwcam.bundle import DEFAULT_BUNDLE, resolve_bundle_path
from screwcam.classifier import PHOTO_VIEWS, VIEW_CHOICES
from screwcam.errors import ConfigError
from screwcam.sources import SOURCE_HELP

#: paths are looked up here, so the service works from any working directory.
DEFAULT_MODEL = DEFAULT_BUNDLE
#: systemd's LoadCredential= puts the token here ($CREDENTIALS_DIRECTORY/<name>).
CREDENTIAL_NAME = "screwcam-token"
#: ... and the MQTT password here
MQTT_CREDENTIAL_NAME = "mqtt-password"


def _field(
    default: Any,
    description: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    return field(
        default=default,
        metadata={"description": description, "lo": lo, "hi": hi, "choices": choices},
    )


@dataclass(frozen=True)
class CameraConfig:
    source: str = _field(
        "auto",
        "where frames come from: " + SOURCE_HELP,
    )
    width: int = _field(640, "requested frame width in pixels (cameras only)", lo=64, hi=4096)
    height: int = _field(480, "requested frame height in pixels (cameras only)", lo=48, hi=4096)
    fps: float = _field(30.0, "requested frames per second (cameras only)", lo=1.0, hi=120.0)
    reconnect_min_s: float = _field(
        0.5, "first wait before reopening a failed camera, in seconds", lo=0.05, hi=60.0
    )
    reconnect_max_s: float = _field(
        10.0,
        "longest wait between reopen attempts (the wait doubles up to this)",
        lo=0.1,
        hi=600.0,
    )
    stale_after_s: float = _field(
        5.0, "/healthz reports 503 when no frame was processed for this long", lo=0.5, hi=3600.0
    )
    hung_read_s: float = _field(
        30.0,
        "the systemd watchdog is no longer fed when a camera read has hung this long, "
        "so systemd restarts the service",
        lo=1.0,
        hi=3600.0,
    )


@dataclass(frozen=True)
class ModelConfig:
    path: str = _field(
        DEFAULT_MODEL,
        "model bundle folder (model.tflite + labels.txt + meta.json); relative paths are "
        "looked up next to the config file, then in the working directory; "
        "models/default is the bundle shipped with screwcam",
    )
    num_threads: int = _field(2, "CPU threads for the LiteRT interpreter", lo=1, hi=16)
    confidence_threshold: float = _field(
        0.5,
        'heads whose best class has a lower probability are shown as "unknown"',
        lo=0.0,
        hi=1.0,
    )
    views: int = _field(
        1,
        "views of each head's crop whose probabilities the live stream averages (1 = the "
        "crop as it is, 4 = its quarter turns, 8 = mirrored too): more views are a few "
        "points better on unfamiliar screws and cost up to 8x the classifier's time",
        choices=VIEW_CHOICES,
    )
    upload_views: int = _field(
        PHOTO_VIEWS,
        "the same for uploaded photos, where a few milliseconds do not matter",
        choices=VIEW_CHOICES,
    )
    verifier: bool = _field(
        True,
        "let the detector's second stage (its verifier) check every box of the live stream: "
        "far fewer boxes on things that are not screw heads, for about 0.7 ms a frame on "
        "this 2-core x86 machine; false = without it (the heat map and its box regressor), "
        "for a device short of time (uploads always use it)",
    )
    tile_scale: float = _field(
        0.0,
        "for a camera or video larger than the detector's 320x256 frame: also search each "
        "frame in overlapping windows down to this many detector pixels per frame pixel, so "
        "that small heads are not lost when the frame is shrunk to fit (0.5 = as `detect` "
        "and uploads do; a 1280x720 frame then costs 7 detector runs instead of 1); "
        "0 = each frame seen whole (640x480 needs no more; with larger frames the service "
        "logs what it may miss and /healthz shows it as `advice`)",
        lo=0.0,
        hi=2.0,
    )


@dataclass(frozen=True)
class ServerConfig:
    host: str = _field("0.0.0.0", "address to listen on (0.0.0.0 = every interface)")
    port: int = _field(8080, "TCP port", lo=1, hi=65535)
    threads: int = _field(
        8,
        "web server threads for the page, the API, uploads and /healthz (video and event "
        "streams do not hold one: one sender thread writes every stream)",
        lo=2,
        hi=512,
    )
    access_token: str = _field(
        "", "token required for changing requests (POST /api/classify); empty = none"
    )
    token_file: str = _field(
        "",
        "read the token from this file instead (e.g. a systemd credential); when empty and "
        f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME} exists, that file is used",
    )
    protect_read_only: bool = _field(
        False, "also require the token for the page, the streams and the read-only API"
    )
    max_upload_bytes: int = _field(
        8 * 1024 * 1024,
        "largest accepted upload for /api/classify, in bytes",
        lo=1024,
        hi=256 * 1024 * 1024,
    )
    max_upload_pixels: int = _field(
        20_000_000,
        "largest accepted upload, in pixels (width x height), checked "
        "from the file header before decoding",
        lo=64 * 64,
        hi=200_000_000,
    )
    max_decode_pixels: int = _field(
        4_000_000,
        "most pixels an upload is decoded to: a bigger JPEG is decoded at 1/2, 1/4 or 1/8 "
        "of its size (boxes are still reported in its own pixels); a bigger PNG is refused",
        lo=64 * 64,
        hi=50_000_000,
    )
    max_concurrent_uploads: int = _field(
        2,
        "uploads decoded at the same time; one more gets 503 with Retry-After at once",
        lo=1,
        hi=64,
    )


@dataclass(frozen=True)
class StreamConfig:
    jpeg_quality: int = _field(80, "JPEG quality of the annotated video", lo=10, hi=100)
    max_fps: float = _field(
        15.0,
        "most frames per second sent to one viewer (0 = as fast as processed)",
        lo=0.0,
        hi=120.0,
    )
    viewer_timeout_s: float = _field(
        10.0,
        "a video or event viewer that accepts no data for this long while data waits for "
        "it is disconnected",
        lo=1.0,
        hi=3600.0,
    )
    max_viewers: int = _field(
        64,
        "open video and event streams at most (a page viewer holds two); one more gets "
        "503 with Retry-After",
        lo=1,
        hi=10_000,
    )


@dataclass(frozen=True)
class TeachConfig:
    enabled: bool = _field(True, "offer the Teach panel (examples, review queue, adapt)")
    dir: str = _field(
        "",
        "folder for examples, the review queue, training videos and adapted models; "
        "empty = $STATE_DIRECTORY/teach under systemd, else "
        "$XDG_STATE_HOME/screwcam/teach (~/.local/state/screwcam/teach)",
    )
    record_seconds: float = _field(
        10.0, "default length of a teaching recording, seconds", lo=1.0, hi=120.0
    )
    review_threshold: float = _field(
        0.6,
        'heads shown "unknown" or below this confidence go to the review queue',
        lo=0.0,
        hi=1.0,
    )
    review_every_s: float = _field(
        2.0, "at most one head per this many seconds goes to the review queue", lo=0.1, hi=3600.0
    )
    review_max: int = _field(
        200, "most crops kept in the review queue (oldest dropped first)", lo=1, hi=100_000
    )

    def folder(self) -> Path:
        if self.dir:
            return Path(self.dir).expanduser()
        state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        if state:
            return Path(state) / "teach"
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(xdg) / "screwcam" / "teach"


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool = _field(
        True, "give every head a track, vote its label over its frames and count it once"
    )
    confirm_frames: int = _field(
        5,
        "a track is counted once it was seen whole (not cut by the frame's border) in "
        "this many frames",
        lo=1,
        hi=100,
    )
    max_age_s: float = _field(
        1.0,
        "a head not found for this long loses its track (a new id when it is back)",
        lo=0.05,
        hi=30.0,
    )
    gate: float = _field(
        0.8,
        "farthest a head may be from where its track was expected, in head sizes",
        lo=0.1,
        hi=5.0,
    )


@dataclass(frozen=True)
class MqttConfig:
    url: str = _field(
        "",
        'broker, e.g. "mqtt://192.168.1.10:1883" or "mqtts://broker.example:8883"; '
        "empty = MQTT off",
    )
    username: str = _field("", "user name at the broker (empty = none)")
    password: str = _field("", "password (prefer password_file or the systemd credential)")
    password_file: str = _field(
        "",
        "read the password from this file; when empty and "
        f"$CREDENTIALS_DIRECTORY/{MQTT_CREDENTIAL_NAME} exists, that file is used",
    )
    topic: str = _field("screwcam", "topic prefix: <topic>/<device>/status|events|counts")
    device: str = _field("", "this device's name in the topics (empty = the host name)")
    queue_size: int = _field(
        10000,
        "events kept while the broker is away (the oldest are dropped beyond this)",
        lo=10,
        hi=1_000_000,
    )
    keepalive_s: int = _field(30, "MQTT keep-alive in seconds", lo=5, hi=3600)
    reconnect_min_s: float = _field(0.5, "first wait before reconnecting", lo=0.1, hi=60.0)
    reconnect_max_s: float = _field(
        30.0, "longest wait between reconnect attempts (doubling up to this)", lo=1.0, hi=3600.0
    )
    tls_ca_file: str = _field(
        "", "CA certificate file for mqtts:// (empty = the system's certificates)"
    )
    home_assistant: bool = _field(
        False, "publish Home Assistant MQTT discovery, so the counts appear as sensors"
    )
    discovery_prefix: str = _field("homeassistant", "Home Assistant's discovery topic prefix")

    def broker(self) -> tuple[str, str, int]:
        """(scheme, host, port) of the url (checked at load)."""
        parts = urlsplit(self.url)
        default = 8883 if parts.scheme == "mqtts" else 1883
        return parts.scheme, parts.hostname or "", parts.port or default

    def device_name(self) -> str:
        return self.device or socket.gethostname().split(".")[0] or "screwcam"

    def secret(self) -> str:
        """The password in effect ("" = none): password, else password_file, else the
        systemd credential, if present. Never logged."""
        if self.password:
            return self.password
        path = self.password_file
        if not path:
            cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
            candidate = Path(cred_dir) / MQTT_CREDENTIAL_NAME if cred_dir else None
            if candidate is None or not candidate.is_file():
                return ""
            path = str(candidate)
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"[mqtt] password_file = {path!r} cannot be read ({exc.strerror}); "
                "fix the path or its permissions"
            ) from exc


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = field(default_factory=CameraConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    teach: TeachConfig = field(default_factory=TeachConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    #: the file this was read from (None = built-in defaults); not a TOML key
    origin: str | None = field(default=None, compare=False)

    def token(self) -> str:
        """The access token in effect ("" = none): access_token, else token_file,
        else the systemd credential, if present."""
        if self.server.access_token:
            return self.server.access_token
        path = self.server.token_file
        if not path:
            cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
            candidate = Path(cred_dir) / CREDENTIAL_NAME if cred_dir else None
            if candidate is None or not candidate.is_file():
                return ""
            path = str(candidate)
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"[server] token_file = {path!r} cannot be read ({exc.strerror}); "
                "fix the path or its permissions"
            ) from exc
        if not token:
            raise ConfigError(f"[server] token_file = {path!r} is empty; put the token in it")
        return token

    def model_path(self) -> Path:
        return resolve_model_path(self.model.path, self.origin)


SECTIONS: dict[str, type] = {
    "camera": CameraConfig,
    "model": ModelConfig,
    "server": ServerConfig,
    "stream": StreamConfig,
    "teach": TeachConfig,
    "tracking": TrackingConfig,
    "mqtt": MqttConfig,
}


def resolve_model_path(path: str, config_file: str | None = None) -> Path:
    """An absolute path as it is; a relative one next to the config file or in the
    working directory if it exists there, else a bundle shipped with screwcam
    (`models/default`); as typed when none exists, so the error names it."""
    base = Path(config_file).resolve().parent if config_file else None
    return resolve_bundle_path(path, base)


def _where(origin: str | None) -> str:
    return f"{origin}: " if origin else ""


def _check_value(origin: str | None, section: str, f: dataclasses.Field, value: Any) -> Any:
    """Type- and bounds-check one value; returns it converted (int -> float)."""
    where = f"{_where(origin)}[{section}] {f.name} = {value!r}"
    default = f.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number")
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string (in quotes)")
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise ConfigError(f"{where} is out of range {lo}..{hi}")
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where} must be one of: {', '.join(str(c) for c in choices)}")
    return value


def _build_section(origin: str | None, section: str, cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{_where(origin)}[{section}] must be a table (a [{section}] section)")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(
                f"{_where(origin)}[{section}] {key}: unknown key; known keys are "
                f"{', '.join(fields)}"
            )
        values[key] = _check_value(origin, section, fields[key], value)
    obj = cls(**values)
    _check_section(origin, section, obj)
    return obj


def _check_section(origin: str | None, section: str, obj: Any) -> None:
    if isinstance(obj, CameraConfig) and obj.reconnect_min_s > obj.reconnect_max_s:
        raise ConfigError(
            f"{_where(origin)}[camera] reconnect_min_s = {obj.reconnect_min_s} is larger than "
            f"reconnect_max_s = {obj.reconnect_max_s}"
        )
    if isinstance(obj, ServerConfig) and obj.token_file and obj.access_token:
        raise ConfigError(
            f"{_where(origin)}[server] set either access_token or token_file, not both"
        )
    if isinstance(obj, MqttConfig):
        _check_mqtt(origin, obj)
    if isinstance(obj, CameraConfig) and not obj.source.strip():
        raise ConfigError(f'{_where(origin)}[camera] source is empty; use "auto" or a source')


def _check_mqtt(origin: str | None, obj: MqttConfig) -> None:
    where = f"{_where(origin)}[mqtt]"
    if obj.url:
        parts = urlsplit(obj.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(
                f'{where} url = {obj.url!r} is not "mqtt://HOST[:PORT]" or "mqtts://HOST[:PORT]"'
            )
        if parts.username is not None or parts.password is not None:
            raise ConfigError(
                f"{where} url carries a user or password; put them in username and "
                "password_file (the url is printed, secrets are not)"
            )
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ConfigError(f"{where} url = {obj.url!r}: bad port ({exc})") from exc
        if parts.path not in ("", "/"):
            raise ConfigError(f"{where} url = {obj.url!r} has a path; set the topic instead")
    if obj.password and obj.password_file:
        raise ConfigError(f"{where} set either password or password_file, not both")
    for key in ("topic", "device", "discovery_prefix"):
        value = getattr(obj, key)
        if any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/"):
            raise ConfigError(
                f"{where} {key} = {value!r} may not contain + # or NUL, nor start or end with /"
            )
    if not obj.topic:
        raise ConfigError(f'{where} topic is empty; use e.g. "screwcam"')
    if "/" in obj.device:
        raise ConfigError(f"{where} device = {obj.device!r} may not contain /")
    if obj.reconnect_min_s > obj.reconnect_max_s:
        raise ConfigError(f"{where} reconnect_min_s is larger than reconnect_max_s")


def config_from_dict(data: dict[str, Any], origin: str | None = None) -> Config:
    """Build a validated Config from parsed TOML."""
    sections = {}
    for name, value in data.items():
        if name not in SECTIONS:
            raise ConfigError(
                f"{_where(origin)}[{name}]: unknown section; known sections are "
                f"{', '.join(f'[{s}]' for s in SECTIONS)}"
            )
        sections[name] = _build_section(origin, name, SECTIONS[name], value)
    return Config(**sections, origin=origin)


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Read and validate a TOML config file; None -> the built-in defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"config file {p} does not exist; copy systemd/config.example.toml there "
            "or leave out --config to use the defaults"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"config file {p} cannot be read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    return config_from_dict(data, origin=str(p))


def with_overrides(config: Config, overrides: dict[str, dict[str, Any]]) -> Config:
    """Apply command-line values ({section: {key: value}}, None = not given),
    validated like the file's."""
    sections = {}
    for name, cls in SECTIONS.items():
        current = getattr(config, name)
        given = {k: v for k, v in overrides.get(name, {}).items() if v is not None}
        if given:
            fields = {f.name: f for f in dataclasses.fields(cls)}
            checked = {
                k: _check_value("command line", name, fields[k], v) for k, v in given.items()
            }
            current = dataclasses.replace(current, **checked)
            _check_section("command line", name, current)
        sections[name] = current
    return Config(**sections, origin=config.origin)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def format_config(config: Config, *, hide_secrets: bool = True, comments: bool = True) -> str:
    """The configuration as TOML, each key with its description as a comment."""
    lines = []
    for name in SECTIONS:
        section = getattr(config, name)
        lines.append(f"[{name}]")
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if hide_secrets and f.name in ("access_token", "password") and value:
                value = "<set>"
            if comments:
                desc = f.metadata["description"]
                lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
                if lo is not None:
                    desc += f" ({lo}..{hi})"
                lines.append(f"# {desc}")
            lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)
