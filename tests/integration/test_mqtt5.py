"""MqttTransport's MQTT 5 side on Mosquitto: shared subscriptions, unsubscribe, late subscribers.

The embedded broker (amqtt) speaks MQTT 3.1.1 only, so these run on Mosquitto.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from brokers import mosquitto_url
from waiting import wait_for

from iot.mqtt import MqttTransport

pytestmark = pytest.mark.integration


@pytest.fixture
def made(sid: str) -> Iterator[list[MqttTransport]]:
    transports: list[MqttTransport] = []
    yield transports
    for t in reversed(transports):
        t.close()


def _client(made: list[MqttTransport], sid: str, name: str, protocol: int = 5) -> MqttTransport:
    made.append(
        MqttTransport(mosquitto_url(), f"{sid}-{name}", protocol=protocol, connect_timeout_s=5)
    )
    return made[-1]


def test_a_shared_group_hands_each_message_to_exactly_one_member(
    made: list[MqttTransport], sid: str
) -> None:
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    for name in got:
        member = _client(made, sid, name)
        member.subscribe(f"$share/g/{sid}/x/+", lambda t, d, n=name: got[n].append(d), 1)
    sender = _client(made, sid, "sender", protocol=4)
    sent = [str(k).encode() for k in range(40)]
    for data in sent:
        sender.publish(f"{sid}/x/1", data, 1)
    assert wait_for(lambda: len(got["a"]) + len(got["b"]) == 40, 5)
    assert sorted(got["a"] + got["b"], key=int) == sent  # nothing twice, nothing lost
    assert got["a"] and got["b"]  # both members had a share


def test_unsubscribe_stops_delivery_and_a_later_subscriber_is_routed(
    made: list[MqttTransport], sid: str
) -> None:
    listener = _client(made, sid, "listener")
    first: list[bytes] = []
    second: list[bytes] = []
    listener.subscribe(f"{sid}/y/#", lambda t, d: first.append(d), 1)
    sender = _client(made, sid, "sender", protocol=4)
    sender.publish(f"{sid}/y/1", b"1", 1)
    assert wait_for(lambda: first == [b"1"], 5)
    # a second callback on a topic already routed: the route table must learn it
    listener.subscribe(f"{sid}/y/+", lambda t, d: second.append(d), 1)
    sender.publish(f"{sid}/y/1", b"2", 1)
    assert wait_for(lambda: b"2" in second, 5)
    listener.unsubscribe(f"{sid}/y/#")
    listener.unsubscribe(f"{sid}/y/+")
    sender.publish(f"{sid}/y/1", b"3", 1)
    marker = _client(made, sid, "marker")
    seen: list[bytes] = []
    marker.subscribe(f"{sid}/y/#", lambda t, d: seen.append(d), 1)
    sender.publish(f"{sid}/y/1", b"4", 1)
    assert wait_for(lambda: b"4" in seen, 5)  # the broker has passed "3" by now
    assert b"3" not in first and b"3" not in second and b"4" not in first


def test_an_unknown_protocol_is_refused_before_connecting() -> None:
    with pytest.raises(ValueError, match="protocol=3"):
        MqttTransport("mqtt://127.0.0.1:1", "nobody", protocol=3)
