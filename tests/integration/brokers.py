"""Where the real brokers are: Mosquitto at 127.0.0.1:1883, or a skip (a failure under CI).

A module of its own, not the conftest, so tests can import it: conftest
modules of different test folders share one name and cannot be imported
reliably from a test.
"""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ["MOSQUITTO", "listening", "mosquitto_url"]

MOSQUITTO = ("127.0.0.1", 1883)


def listening(addr: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(addr, timeout=1.0):
            return True
    except OSError:
        return False


def mosquitto_url() -> str:
    """The Mosquitto URL, or skip (fail under CI) when nothing listens there."""
    if listening(MOSQUITTO):
        return "mqtt://127.0.0.1:1883"
    message = (
        "no MQTT broker listens on 127.0.0.1:1883; start mosquitto "
        "(mosquitto -d -c /etc/mosquitto/mosquitto.conf) to run these tests against a real broker"
    )
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI must test against a real broker: {message}")
    pytest.skip(message)
