"""Real brokers for the integration tests: the embedded one and Mosquitto.

Mosquitto at 127.0.0.1:1883 runs on the developers' and CI machines. Without
it, its cases skip with a message, except under ``CI=true``: there a missing
broker is a failure, so CI can never pass without testing against it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from brokers import mosquitto_url

from iot.broker import EmbeddedBroker
from iot.mqtt import MqttTransport


@pytest.fixture(scope="session")
def embedded() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(params=["embedded", "mosquitto"])
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "embedded":
        broker: EmbeddedBroker = request.getfixturevalue("embedded")
        return broker.url
    return mosquitto_url()


@pytest.fixture
def sid() -> str:
    """A store id of this test alone, so runs on the shared Mosquitto never meet."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clients(broker_url: str, sid: str) -> Iterator[Callable[..., MqttTransport]]:
    """``clients(name, **options)``: a transport on ``broker_url``, closed after the test."""
    made: list[MqttTransport] = []

    def make(name: str, **options: Any) -> MqttTransport:
        # The id carries the store id: a broker drops a client when another connects as it.
        made.append(MqttTransport(broker_url, f"{sid}-{name}", connect_timeout_s=5, **options))
        return made[-1]

    yield make
    for t in reversed(made):
        t.close()
