"""Publishing the line to an MQTT broker (paho-mqtt).

Topics, under `<topic>/<device>/` ([mqtt] topic and device):

    status   "online" / "offline"  retained; "offline" is also the last will
    events   one JSON per counted head: {"event": "counted", "track", "label", ...}  QoS 1
    counts   the tallies {"counts": {...}, "total", "since"}                 retained, QoS 1

and, with [mqtt] home_assistant, Home Assistant discovery (a sensor per class).

The pipeline never waits for the broker: `counted()` appends to a bounded queue and
returns. This publisher's own thread hands queued events to paho only while
connected, at most `MAX_INFLIGHT` unacknowledged at a time; an event leaves the
queue's count only when the broker has acknowledged it (paho resends unacknowledged
QoS 1 messages after a reconnect). paho's network thread (`loop_start`) reconnects
with backoff. While the broker is away events wait in the queue (at most
[mqtt] queue_size; beyond that the oldest are dropped and counted), so a short
outage loses nothing.
"""

from __future__ import annotations

import collections
import json
import logging
import ssl
import threading
import time
from typing import Any

from screwcam.classes import CLASSES, ENGLISH

from .config import MqttConfig
from .tracking import CountEvent

log = logging.getLogger(__name__)

#: events handed to paho and not yet acknowledged by the broker, at most
MAX_INFLIGHT = 20


class MqttPublisher:
    """One broker connection for one device; `start()`, `counted()`, `stop()`."""

    def __init__(self, config: MqttConfig, *, counts: dict[str, Any] | None = None) -> None:
        import paho.mqtt.client as mqtt

        self._mqtt = mqtt
        self.config = config
        self.device = config.device_name()
        base = f"{config.topic}/{self.device}"
        self.topics = {k: f"{base}/{k}" for k in ("status", "events", "counts")}
        self.scheme, self.host, self.port = config.broker()
        self.broker = f"{self.scheme}://{self.host}:{self.port}"
        self._cond = threading.Condition()
        self._queue: collections.deque[bytes] = collections.deque()
        self._inflight: list[Any] = []  # paho MQTTMessageInfo of sent, unacknowledged events
        self._counts: bytes | None = None if counts is None else _json(counts)
        self._counts_dirty = counts is not None
        self._stop = threading.Event()
        self.connected = False
        self.state = "connecting"
        self.last_error = ""
        self.published = 0
        self.dropped = 0
        self.connects = 0
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"screwcam-{self.device}",
            clean_session=True,
        )
        if config.username:
            client.username_pw_set(config.username, config.secret() or None)
        if self.scheme == "mqtts":
            client.tls_set(ca_certs=config.tls_ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(self.topics["status"], b"offline", qos=1, retain=True)
        client.reconnect_delay_set(  # paho doubles the wait up to the max
            min_delay=config.reconnect_min_s,  # type: ignore[arg-type]
            max_delay=config.reconnect_max_s,  # type: ignore[arg-type]
        )
        client.max_inflight_messages_set(MAX_INFLIGHT + 5)  # + status, counts, discovery
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> MqttPublisher:
        log.info("MQTT: publishing to %s as %s/%s", self.broker, self.config.topic, self.device)
        self._client.connect_async(self.host, self.port, keepalive=self.config.keepalive_s)
        self._client.loop_start()
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Say "offline" (retained), flush what can be flushed within `timeout`, and
        disconnect."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.connected and (self._queue or self._inflight):
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    break
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self.connected:
            info = self._client.publish(self.topics["status"], b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(max(0.05, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        # paho's loop_stop() joins its thread without a timeout, and that thread may be
        # waiting out a reconnect delay (up to a second per check): bound the wait
        stopper = threading.Thread(target=self._client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(max(0.1, deadline - time.monotonic()))
        self._thread.join(max(0.1, deadline - time.monotonic()))

    # --- from the pipeline (never blocks) ----------------------------------------------------
    def counted(self, event: CountEvent, counts: dict[str, Any]) -> None:
        with self._cond:
            if len(self._queue) >= self.config.queue_size:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(_json(event.to_json()))
            self._counts, self._counts_dirty = _json(counts), True
            self._cond.notify_all()

    def counts_changed(self, counts: dict[str, Any]) -> None:
        """The tallies changed without an event (a reset): publish them."""
        with self._cond:
            self._counts, self._counts_dirty = _json(counts), True
            self._cond.notify_all()

    # --- state ---------------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        """Events not yet acknowledged by the broker (waiting + in flight)."""
        with self._cond:
            return len(self._queue) + len(self._inflight)

    def status_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "broker": self.broker,
            "device": self.device,
            "topic": f"{self.config.topic}/{self.device}",
            "queued": self.queued,
            "published": self.published,
            "dropped": self.dropped,
            "connects": self.connects,
            "error": self.last_error,
        }

    # --- paho callbacks (paho's network thread) -------------------------------------------------
    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.last_error = str(reason)
            self.state = "refused"
            log.warning("MQTT: %s refused the connection: %s", self.broker, reason)
            return
        client.publish(self.topics["status"], b"online", qos=1, retain=True)
        if self.config.home_assistant:
            self._publish_discovery(client)
        with self._cond:
            self.connected, self.state, self.last_error = True, "connected", ""
            self.connects += 1
            self._counts_dirty = self._counts is not None
            self._cond.notify_all()
        log.info("MQTT: connected to %s", self.broker)

    def _on_disconnect(
        self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _p: Any
    ) -> None:
        with self._cond:
            was = self.connected
            self.connected = False
            self.state = "stopped" if self._stop.is_set() else "connecting"
            self._cond.notify_all()
        if was and not self._stop.is_set():
            self.last_error = str(reason)
            log.warning("MQTT: lost %s (%s); reconnecting with backoff", self.broker, reason)

    # --- the publishing thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._reap()
                work = self.connected and (
                    (self._queue and len(self._inflight) < MAX_INFLIGHT) or self._counts_dirty
                )
                if not work:
                    # in-flight acknowledgements are polled: paho has no callback
                    # per message that we could wait on here without its lock
                    self._cond.wait(0.05 if self._inflight else 0.5)
                    continue
                payloads = []
                while self._queue and len(self._inflight) + len(payloads) < MAX_INFLIGHT:
                    payloads.append(self._queue.popleft())
                counts = self._counts if self._counts_dirty else None
                self._counts_dirty = False
            sent = [self._client.publish(self.topics["events"], p, qos=1) for p in payloads]
            if counts is not None:
                self._client.publish(self.topics["counts"], counts, qos=1, retain=True)
            with self._cond:
                self._inflight.extend(sent)

    def _reap(self) -> None:
        """Forget acknowledged events (called with the lock held)."""
        done = [m for m in self._inflight if m.is_published()]
        if done:
            self._inflight = [m for m in self._inflight if not m.is_published()]
            self.published += len(done)
            self._cond.notify_all()

    def _publish_discovery(self, client: Any) -> None:
        prefix = self.config.discovery_prefix
        device = {
            "identifiers": [f"screwcam_{self.device}"],
            "name": f"screwcam {self.device}",
            "manufacturer": "screwcam",
        }
        sensors = [(name, ENGLISH[name], f"{{{{ value_json.counts.{name} }}}}") for name in CLASSES]
        sensors.append(("total", "all heads", "{{ value_json.total }}"))
        for key, name, template in sensors:
            config = {
                "name": f"{name} counted",
                "unique_id": f"screwcam_{self.device}_{key}",
                "state_topic": self.topics["counts"],
                "value_template": template,
                "availability_topic": self.topics["status"],
                "payload_available": "online",
                "payload_not_available": "offline",
                "state_class": "total",
                "unit_of_measurement": "heads",
                "device": device,
            }
            topic = f"{prefix}/sensor/screwcam_{self.device}/{key}/config"
            client.publish(topic, _json(config), qos=1, retain=True)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
