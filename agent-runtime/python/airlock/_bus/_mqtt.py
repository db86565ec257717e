"""MQTT (paho-mqtt): a connected client from MQTT_URL, MQTT 5, with the client id the run's identity
is bound to (MQTT_CLIENT_ID), its network loop running in a thread."""
from __future__ import annotations

import os
import threading
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from ..errors import BusConnectionError, require_env

if TYPE_CHECKING:
    import paho.mqtt.client as paho


def mqtt_url() -> str:
    return require_env("MQTT_URL", "mqtt", "mqtt://localhost:1883")


def connect_mqtt(name: str = "agent") -> "paho.Client":
    import paho.mqtt.client as paho

    u = urlparse(mqtt_url())
    endpoint = f"{u.hostname}:{u.port or 1883}"
    client_id = os.environ.get("MQTT_CLIENT_ID") or f"{name}-{uuid.uuid4().hex[:8]}"
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if u.username:
        client.username_pw_set(unquote(u.username), unquote(u.password or ""))
    connected = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        outcome["reason"] = reason
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(u.hostname or "localhost", u.port or 1883, keepalive=30)
    except OSError as err:
        raise BusConnectionError("mqtt", [endpoint], err) from err
    client.loop_start()
    if not connected.wait(5) or outcome["reason"].is_failure:
        client.loop_stop()
        raise BusConnectionError("mqtt", [endpoint], ConnectionRefusedError(str(outcome.get("reason", "no CONNACK within 5 s"))))
    client.on_connect = None
    return client
