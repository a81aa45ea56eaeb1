"""Every bus channel, fed valid and hostile payloads through a real Inbox on LocalTransport.

Valid payloads are drawn from each model's JSON schema (``tools/fuzz/schema.py``):
the model must accept them, they must round-trip through JSON unchanged, and
an Inbox must deliver them. Hostile ones (a wrong type, a number out of range
or of thousands of digits, NaN, a field too many or too few, nesting
thousands deep, a string of 200 000 characters, a duplicate key, cut-off
text, bytes that are not UTF-8) must never raise: each is either a payload
the model accepts, delivered as exactly that, or refused with a reason that
is true of it, counted and dead-lettered (the contract is
``tools/fuzz/targets.py``'s ``bus`` target).

Bounded and repeatable: derandomized Hypothesis with a fixed number of
examples; ``SMARTSTORE_FUZZ_EXAMPLES=2000`` raises it for a longer local run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iot.bus import Inbox, LocalTransport, Message
from iot.topics import ANY, TOPICS, Channel
from tools.fuzz.schema import TOPIC_SAFE_ID, Hostile, hostile_payload, valid_payload
from tools.fuzz.targets import TARGETS

CHANNELS = [c for c in TOPICS.values() if c.model is not None]
INDEX = {c.name: i for i, c in enumerate(CHANNELS)}


def examples(default: int) -> int:
    """``default`` examples, or more when SMARTSTORE_FUZZ_EXAMPLES asks for a longer run."""
    return max(default, int(os.environ.get("SMARTSTORE_FUZZ_EXAMPLES", "0")))


def bounded(n: int) -> Any:
    return settings(
        max_examples=examples(n),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def test_every_payload_channel_is_fuzzed() -> None:
    """A new channel joins the fuzzing by being registered; a vendor channel has its target."""
    assert {c.name for c in CHANNELS} | {"rfid_raw"} == set(TOPICS)
    assert "rfid" in TARGETS


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.name)
@bounded(25)
@given(data=st.data())
def test_valid_payloads_round_trip_and_are_delivered(channel: Channel, data: st.DataObject) -> None:
    assert channel.model is not None
    payload = data.draw(valid_payload(channel.model), label="payload")
    payload["device_id"] = data.draw(TOPIC_SAFE_ID, label="device_id")
    event = channel.model.model_validate(payload)  # the model accepts what its schema allows
    text = event.model_dump_json()
    assert channel.model.model_validate_json(text) == event
    assert json.loads(text)["id"] == payload["id"]

    bus = LocalTransport()
    inbox = Inbox(bus, "demo", service_kind="test", service_id="t", now=lambda: 1.8e9)
    got: list[Message] = []
    kind = "shelf" if channel.kind == ANY else None
    inbox.on(channel, got.append, kind=kind)
    bus.publish(channel.topic("demo", event.device_id, kind), json.dumps(payload).encode())
    assert not inbox.rejected, inbox.rejected
    assert [m.payload for m in got] == [event]


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.name)
@bounded(60)
@given(data=st.data())
def test_hostile_payloads_are_delivered_valid_or_refused_with_a_true_reason(
    channel: Channel, data: st.DataObject
) -> None:
    assert channel.model is not None
    hostile: Hostile = data.draw(hostile_payload(channel.model, device_id="dev-1"))
    TARGETS["bus"].check(bytes([INDEX[channel.name]]) + hostile.data)


@bounded(300)
@given(st.sampled_from(CHANNELS), st.binary(max_size=300))
def test_arbitrary_bytes_on_any_channel_are_refused_not_raised(
    channel: Channel, body: bytes
) -> None:
    TARGETS["bus"].check(bytes([INDEX[channel.name]]) + body)
