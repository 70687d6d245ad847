"""[tracking] and [mqtt] config, and the per-service metrics registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from screwcam.edge_service.config import Config, config_from_dict, format_config
from screwcam.edge_service.metrics import Metrics
from screwcam.errors import ConfigError


def test_mqtt_defaults_off_and_a_good_url() -> None:
    assert Config().mqtt.url == "" and Config().tracking.enabled
    config = config_from_dict({"mqtt": {"url": "mqtts://broker.lan", "device": "line3"}})
    assert config.mqtt.broker() == ("mqtts", "broker.lan", 8883)
    assert config.mqtt.device_name() == "line3"
    assert config_from_dict({"mqtt": {"url": "mqtt://10.0.0.2"}}).mqtt.broker()[2] == 1883
    assert Config().mqtt.device_name()  # the host name


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"url": "http://broker"}, 'is not "mqtt://HOST'),
        ({"url": "mqtt://"}, 'is not "mqtt://HOST'),
        ({"url": "mqtt://me:pw@broker"}, "carries a user or password"),
        ({"url": "mqtt://broker:99999"}, "bad port"),
        ({"url": "mqtt://broker/x"}, "has a path"),
        ({"topic": "a/#"}, "may not contain"),
        ({"topic": ""}, "topic is empty"),
        ({"device": "a/b"}, "may not contain /"),
        ({"password": "x", "password_file": "/f"}, "either password or password_file"),
        ({"queue_size": 1}, "out of range"),
        ({"qos": 2}, "unknown key"),
    ],
)
def test_bad_mqtt_config_names_the_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=r"\[mqtt\]") as info:
        config_from_dict({"mqtt": section}, origin="c.toml")
    assert message in str(info.value) and str(info.value).startswith("c.toml: ")


def test_bad_tracking_config() -> None:
    with pytest.raises(ConfigError, match=r"\[tracking\] confirm_frames = 0 is out of range"):
        config_from_dict({"tracking": {"confirm_frames": 0}})
    with pytest.raises(ConfigError, match=r"\[tracking\] enabled = 1 must be true or false"):
        config_from_dict({"tracking": {"enabled": 1}})


def test_mqtt_password_from_file_and_credential_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mqtt-password").write_text("from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert Config().mqtt.secret() == "from-credential"
    (tmp_path / "pw").write_text("from-file\n")
    config = config_from_dict({"mqtt": {"password_file": str(tmp_path / "pw")}})
    assert config.mqtt.secret() == "from-file"
    config = config_from_dict({"mqtt": {"password": "hunter2"}})
    assert config.mqtt.secret() == "hunter2"
    assert "hunter2" not in format_config(config)
    with pytest.raises(ConfigError, match="cannot be read"):
        config_from_dict({"mqtt": {"password_file": str(tmp_path / "nope")}}).mqtt.secret()


def test_each_service_has_its_own_metrics_registry() -> None:
    a, b = Metrics(), Metrics()
    a.head_counted("torx")
    a.frame_dropped(3)
    text_a, text_b = a.render(), b.render()
    assert 'screwcam_heads_counted_total{label="torx"} 1.0' in text_a
    assert 'screwcam_heads_counted_total{label="torx"} 0.0' in text_b
    assert "screwcam_frames_dropped_total 3.0" in text_a
    assert "screwcam_frames_dropped_total 0.0" in text_b
