"""A REAL Mosquitto broker (Debian's `mosquitto`) on a free loopback port, and a
paho-mqtt subscriber that records what arrives."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from _service_helpers import free_port

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


class Broker:
    """`mosquitto -c <generated config>`: listener on 127.0.0.1:<port>, anonymous,
    no persistence. `stop()` and `start()` again = a broker restart, same port."""

    def __init__(self, workdir: Path) -> None:
        assert MOSQUITTO, "mosquitto is not installed (./dev test installs it)"
        self.port = free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Broker:
        self._log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=self._log, stderr=subprocess.STDOUT
        )
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen within {timeout} s: {self.log()}")

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log:
            self._log.close()
            self._log = None


class Subscriber:
    """Subscribes to `topic` (QoS 1) and keeps every message; reconnects quickly
    and subscribes again after a broker restart."""

    def __init__(self, port: int, topic: str = "#") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.topic = topic
        self.connected = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.reconnect_delay_set(min_delay=0.1, max_delay=0.2)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *a: self.connected.clear()
        client.on_message = self._on_message
        client.connect_async("127.0.0.1", port, keepalive=10)
        client.loop_start()
        self.client = client
        assert self.connected.wait(10), "the test subscriber could not connect"

    def _on_connect(self, client: Any, *_: Any) -> None:
        client.subscribe(self.topic, qos=1)
        time.sleep(0.05)  # let SUBACK arrive before anyone relies on it
        self.connected.set()

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def events(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.on(topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
