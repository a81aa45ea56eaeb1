"""A store's window onto a checkout worker's MQTT connection, with its journal and outbox.

Crash safety (docs/reliability.md, "Crash safety") lives here, beside the
worker that wires it:

- ``brain_inputs`` names what a store's brain reads; the worker writes each
  such message to the store's journal (``Ledger.journal``) before the broker
  gets its acknowledgement, and a new brain replays the journal through
  ``StoreView.replay``;
- ``StoreView.publish`` keeps what the brain decides (sessions, cart lines,
  outcomes, receipts) in the store's outbox until the broker has acknowledged
  it; the next brain sends what is left again (``resend``).

>>> brain_inputs("demo")[:2]
['smartstore/demo/gate/+/entries', 'smartstore/demo/gate/+/exits']
>>> brain_input_store("smartstore/demo/tracker/positioning/tracks"), event_time_of(b'{"event_time_s": 12.5}')
('demo', 12.5)
"""  # noqa: E501

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from checkout.ledger import Ledger
from iot.bus import SerialTransport, topic_matches
from iot.mqtt import MqttTransport
from iot.topics import TOPICS, match_topic

__all__ = ["StoreView", "brain_input_store", "brain_inputs", "event_time_of"]

_RawCallback = Callable[[str, bytes], None]
_EVENT_TIME = re.compile(rb'"event_time_s":\s*(-?[0-9][0-9.eE+-]*)')
# The channels a store's brain reads (its camera statuses too: see brain_inputs).
_BRAIN_INPUTS = ("gate_entries", "gate_exits", "tracks", "shelf_events", "interactions", "alerts")
# What the brain decides and publishes: kept in the outbox until the broker has it.
_OUTBOX = frozenset({"sessions", "cart_events", "shelf_outcomes", "receipts"})


def brain_inputs(store_id: str) -> list[str]:
    """The topic filters a store's brain subscribes to (what the journal keeps)."""
    filters = [TOPICS[name].filter(store_id) for name in _BRAIN_INPUTS]
    filters.append(TOPICS["status"].filter(store_id, kind="camera"))
    return filters


def brain_input_store(topic: str) -> str | None:
    """The store a brain input on ``topic`` belongs to, else None."""
    found = match_topic(topic)
    if found is None:
        return None
    channel, store_id, _ = found
    if channel.name in _BRAIN_INPUTS or (
        channel.name == "status" and topic.split("/")[2] == "camera"
    ):
        return store_id
    return None


def event_time_of(data: bytes) -> float:
    """The ``event_time_s`` near the start of a payload (0.0 if none): no full parse."""
    found = _EVENT_TIME.search(data, 0, 256)
    if found is None:
        return 0.0
    try:
        return float(found.group(1))
    except ValueError:
        return 0.0


class StoreView:
    """One store's window onto the worker's connection: shared groups, and a clean exit.

    ``group`` None: plain subscriptions (a session that outlives a crash: see
    ``smartstore.worker``). ``replay`` feeds journaled messages to the callbacks that
    subscribed through this view, as the connection would have. ``outbox``: the
    brain's decisions (sessions, cart lines, outcomes, receipts) are kept there
    until the broker acknowledges them, and sent again by the next brain.
    """

    def __init__(
        self,
        serial: SerialTransport,
        mqtt: MqttTransport,
        group: str | None,
        outbox: Ledger | None = None,
    ) -> None:
        self.serial, self.mqtt, self.group, self.outbox = serial, mqtt, group, outbox
        self.filters: list[str] = []
        self._callbacks: list[tuple[str, _RawCallback]] = []
        self._unacked: list[tuple[Callable[[], bool], int]] = []  # (acknowledged?, outbox seq)

    def shared(self, topic_filter: str) -> str:
        if self.group is None or topic_filter.endswith("/status"):
            return topic_filter  # retained statuses: a shared subscription never gets them
        return f"$share/{self.group}/{topic_filter}"

    def publish(self, topic: str, data: bytes, qos: int = 0, retain: bool = False) -> None:
        found = match_topic(topic)
        if self.outbox is None or retain or found is None or found[0].name not in _OUTBOX:
            self.serial.publish(topic, data, qos, retain)
            return
        seq = self.outbox.outbox_add(topic, data)
        self._unacked.append((self.mqtt.publish_tracked(topic, data, qos), seq))
        self.clear_outbox()

    def resend(self) -> int:
        """Publish again what the outbox holds (a dead brain's unacknowledged decisions)."""
        if self.outbox is None:
            return 0
        rows = self.outbox.outbox_rows()
        for seq, topic, data in rows:
            self._unacked.append((self.mqtt.publish_tracked(topic, data, 1), seq))
        return len(rows)

    def clear_outbox(self) -> None:
        """Forget the outbox rows the broker has acknowledged since the last look."""
        if self.outbox is None or not self._unacked:
            return
        done = [seq for acked, seq in self._unacked if acked()]
        if done:
            gone = set(done)
            self._unacked = [(a, seq) for a, seq in self._unacked if seq not in gone]
            self.outbox.outbox_done(done)

    def drain_outbox(self, timeout_s: float) -> bool:
        """Wait (up to ``timeout_s``) until the broker has every decision: a clean hand-over
        leaves the next owner nothing to send again. False if some are still out."""
        deadline = time.monotonic() + timeout_s
        self.clear_outbox()
        while self._unacked and time.monotonic() < deadline:
            time.sleep(0.005)
            self.clear_outbox()
        return not self._unacked

    def subscribe(self, topic_filter: str, callback: _RawCallback, qos: int = 0) -> None:
        actual = self.shared(topic_filter)
        self.serial.subscribe(actual, callback, qos)
        self._callbacks.append((topic_filter, callback))
        if actual not in self.filters:
            self.filters.append(actual)

    def replay(self, rows: Sequence[tuple[int, str, bytes]]) -> None:
        """Hand each journaled ``(seq, topic, payload)`` to the callbacks it matches, in order."""
        for _, topic, data in rows:
            for topic_filter, callback in self._callbacks:
                if topic_matches(topic_filter, topic):
                    callback(topic, data)

    def close(self) -> None:
        """Unsubscribe every filter (waits for the broker's UNSUBACKs)."""
        for topic_filter in self.filters:
            self.mqtt.unsubscribe(topic_filter)
        self.filters.clear()
