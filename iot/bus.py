"""Transports that move bytes between topics, and the Inbox that turns bytes into events.

A *transport* only moves ``(topic, bytes)``: ``LocalTransport`` in-process
(deterministic, used by ``smartstore eval`` and unit tests) or ``MqttTransport``
(``iot.mqtt``, a real broker). Every service reads through an ``Inbox``, which
decodes and validates each message against the topic registry and refuses bad
input (malformed JSON, invalid fields, unknown devices, duplicates, messages
too far out of order) by counting it, logging it and publishing a
``DeadLetter``, so that nothing a device sends can crash a service. A message
over ``MAX_PAYLOAD_BYTES`` is refused by its length alone, before any parsing.

>>> bus = LocalTransport()
>>> seen = []
>>> inbox = Inbox(bus, "demo", service_kind="brain", service_id="b1", now=lambda: 1e9)
>>> inbox.on(TOPICS["gate_entries"], seen.append)
>>> _ = publish(bus, "demo", GateEntry(id="e1", event_time_s=1e9, device_id="gate-in", token="t"))
>>> _ = publish(bus, "demo", GateEntry(id="e1", event_time_s=1e9, device_id="gate-in", token="t"))
>>> bus.publish("smartstore/demo/gate/gate-in/entries", b"{not json", 1, False)
>>> len(seen), dict(inbox.rejected)
(1, {'duplicate id': 1, 'malformed JSON': 1})
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from iot.metrics import count_dead_letter, count_event_in
from iot.payloads import DeadLetter, Event, GateEntry
from iot.topics import ANY, TOPICS, Channel, match_topic

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Inbox",
    "LocalTransport",
    "Message",
    "SerialTransport",
    "Transport",
    "publish",
    "topic_matches",
]

log = logging.getLogger(__name__)

RawCallback = Callable[[str, bytes], None]

# One limit for every channel. The largest legitimate payloads are a long gondola's raw
# samples at the store file's top rate (60 plates x 200 Hz x 2 s, full-precision floats:
# 0.44 MB) and a hundred people's tracks with 256-d looks unrounded (0.54 MB); a megabyte
# holds both and matches the RFID readers' limit (iot.rfid.MAX_MESSAGE_BYTES). Anything
# larger is garbage or an attack, refused unread (tests/unit/test_hostile_input.py).
MAX_PAYLOAD_BYTES = 1 << 20


class Transport(Protocol):
    """Moves bytes between topics. Implementations: LocalTransport, iot.mqtt.MqttTransport."""

    def publish(self, topic: str, data: bytes, qos: int, retain: bool) -> None: ...

    def subscribe(self, topic_filter: str, callback: RawCallback, qos: int) -> None: ...

    def close(self) -> None: ...


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching with ``+`` (one level) and ``#`` (the rest)."""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, f in enumerate(f_parts):
        if f == "#":
            return True
        if i >= len(t_parts) or (f != "+" and f != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


class LocalTransport:
    """In-process transport: synchronous, ordered, deterministic.

    A message published from inside a callback is queued and delivered after
    the current one, so delivery order is always publish order.
    """

    def __init__(self) -> None:
        self._subs: list[tuple[str, RawCallback]] = []
        self._retained: dict[str, bytes] = {}
        self._queue: deque[tuple[str, bytes]] = deque()
        self._delivering = False
        self.published = 0

    def publish(self, topic: str, data: bytes, qos: int = 0, retain: bool = False) -> None:
        self.published += 1
        if retain:
            self._retained[topic] = data
        self._queue.append((topic, data))
        if self._delivering:
            return
        self._delivering = True
        try:
            while self._queue:
                t, d = self._queue.popleft()
                for topic_filter, callback in list(self._subs):
                    if topic_matches(topic_filter, t):
                        callback(t, d)
        finally:
            self._delivering = False

    def subscribe(self, topic_filter: str, callback: RawCallback, qos: int = 0) -> None:
        self._subs.append((topic_filter, callback))
        for topic, data in list(self._retained.items()):
            if topic_matches(topic_filter, topic):
                callback(topic, data)

    def close(self) -> None:
        self._subs.clear()


class SerialTransport:
    """Runs a service's callbacks, and calls submitted to it, on one worker thread.

    A real broker delivers on its network thread while the composition root
    ticks the service's clock from another; funnelling both through one queue
    keeps each service single-threaded, so its state needs no locks.
    """

    def __init__(self, inner: Transport, name: str) -> None:
        self.inner = inner
        self.name = name
        self._queue: queue.Queue[tuple[Callable[..., None], tuple[object, ...]] | None] = (
            queue.Queue()
        )
        self._worker = threading.Thread(target=self._run, name=f"{name}-worker", daemon=True)
        self._worker.start()

    def publish(self, topic: str, data: bytes, qos: int = 0, retain: bool = False) -> None:
        self.inner.publish(topic, data, qos, retain)

    def subscribe(self, topic_filter: str, callback: RawCallback, qos: int = 0) -> None:
        def enqueue(topic: str, data: bytes) -> None:
            self._queue.put((callback, (topic, data)))

        self.inner.subscribe(topic_filter, enqueue, qos)

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        """Run ``fn(*args)`` on the worker thread, after what is already queued."""
        self._queue.put((fn, args))

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far has run; False on timeout."""
        done = threading.Event()
        self._queue.put((done.set, ()))
        return done.wait(timeout_s)

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=10)
        self.inner.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, args = item
            try:
                fn(*args)
            except Exception:  # a service bug must not stop its worker; it is logged loudly
                log.exception("%s: a callback failed", self.name)


def publish(transport: Transport, store_id: str, payload: Event, *, kind: str | None = None) -> str:
    """Publish an event on the topic its type belongs to; returns the topic."""
    channel = _CHANNEL_BY_MODEL[type(payload)]
    topic = channel.topic(store_id, payload.device_id, kind)
    transport.publish(topic, payload.model_dump_json().encode(), channel.qos, channel.retain)
    return topic


_CHANNEL_BY_MODEL: dict[type[Event], Channel] = {
    c.model: c for c in TOPICS.values() if c.model is not None
}


@dataclass(frozen=True)
class Message:
    """A validated event and where it came from."""

    channel: Channel
    store_id: str
    device_id: str
    topic: str
    payload: Event


class Inbox:
    """One service's validated view of the bus.

    ``known_devices``: device ids allowed to publish (None accepts any).
    ``now``: the service's clock, only used to stamp dead letters.
    ``max_payload_bytes``: longer messages are refused before they are parsed.
    """

    def __init__(
        self,
        transport: Transport,
        store_id: str,
        *,
        service_kind: str,
        service_id: str,
        now: Callable[[], float],
        known_devices: Iterable[str] | None = None,
        dedupe_window: int = 200_000,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        self.transport = transport
        self.store_id = store_id
        self.service_kind = service_kind
        self.service_id = service_id
        self.now = now
        self.known_devices = set(known_devices) if known_devices is not None else None
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self._seen_ids: OrderedDict[str, None] = OrderedDict()
        self._dedupe_window = dedupe_window
        self.max_payload_bytes = max_payload_bytes
        self._last_time: dict[tuple[str, str], float] = {}
        self._dead_letters = 0
        # True while a service replays its journal after a restart: what it refuses then
        # was refused (and dead-lettered) the first time, so it is only counted.
        self.quiet = False

    def on(
        self,
        channel: Channel,
        handler: Callable[[Message], None],
        *,
        device_id: str = ANY,
        max_lateness_s: float = math.inf,
        kind: str | None = None,
    ) -> None:
        """Deliver valid ``channel`` events to ``handler``.

        An event older than ``max_lateness_s`` behind the newest one already
        accepted from the same device on this channel is refused as out of order.
        A channel every kind has (status) needs ``kind``: whose status to hear.
        """
        if channel.kind == ANY and kind is None:
            raise ValueError(f"channel {channel.name!r} is on every kind; pass kind=")
        if channel.model is None:
            raise ValueError(
                f"channel {channel.name!r} carries a vendor format; its adapter subscribes "
                "to the transport and parses it"
            )

        def callback(topic: str, data: bytes) -> None:
            self._receive(channel, topic, data, handler, max_lateness_s)

        topic_filter = channel.filter(self.store_id, device_id, kind)
        self.transport.subscribe(topic_filter, callback, channel.qos)

    def _receive(
        self,
        channel: Channel,
        topic: str,
        data: bytes,
        handler: Callable[[Message], None],
        max_lateness_s: float,
    ) -> None:
        found = match_topic(topic)
        if found is None or found[0] is not channel:
            self.reject(topic, data, "unknown topic")
            return
        _, store_id, device_id = found
        if len(data) > self.max_payload_bytes:
            detail = f"{len(data)} bytes, at most {self.max_payload_bytes} accepted"
            self.reject(topic, data, "payload too large", detail)
            return
        try:
            json.loads(data)
        # ValueError covers bad UTF-8, bad syntax and integers too long to convert.
        except (ValueError, RecursionError):
            self.reject(topic, data, "malformed JSON")
            return
        assert channel.model is not None  # on() refuses vendor channels
        try:
            payload = channel.model.model_validate_json(data)
        except ValidationError as exc:
            self.reject(topic, data, "invalid payload", _first_error(exc))
            return
        if payload.device_id != device_id:
            self.reject(
                topic,
                data,
                "device mismatch",
                f"topic names {device_id!r}, payload says {payload.device_id!r}",
            )
            return
        if self.known_devices is not None and device_id not in self.known_devices:
            self.reject(topic, data, "unknown device", f"{device_id!r} is not in the store file")
            return
        if payload.id in self._seen_ids:
            self.reject(topic, data, "duplicate id", payload.id)
            return
        key = (channel.name, device_id)
        last = self._last_time.get(key, -math.inf)
        if payload.event_time_s < last - max_lateness_s:
            self.reject(
                topic,
                data,
                "out of order",
                f"{last - payload.event_time_s:.3f} s older than the newest from this device",
            )
            return
        self._remember(payload.id)
        self._last_time[key] = max(last, payload.event_time_s)
        self.accepted[channel.name] += 1
        count_event_in(self.store_id, self.service_id, channel.name)
        try:
            handler(Message(channel, store_id, device_id, topic, payload))
        except Exception as exc:
            log.exception("%s failed to handle %s from %s", self.service_id, payload.id, topic)
            self.reject(topic, data, "handler error", f"{type(exc).__name__}: {exc}")

    def _remember(self, event_id: str) -> None:
        self._seen_ids[event_id] = None
        if len(self._seen_ids) > self._dedupe_window:
            self._seen_ids.popitem(last=False)

    def reject(self, topic: str, data: bytes, reason: str, detail: str = "") -> None:
        """Count, log and dead-letter a message this service will not use."""
        self.rejected[reason] += 1
        if self.quiet:
            log.debug("%s refused a replayed message on %s: %s", self.service_id, topic, reason)
            return
        count_dead_letter(self.store_id, self.service_id, reason)
        count = self.rejected[reason]
        if count <= 10 or count % 1000 == 0:
            log.warning(
                "%s refused a message on %s: %s %s (seen %d times)",
                self.service_id,
                topic,
                reason,
                detail,
                count,
            )
        self._dead_letters += 1
        letter = DeadLetter(
            id=f"{self.service_id}.dl.{self._dead_letters}",
            event_time_s=max(self.now(), 946_684_800.0),
            device_id=self.service_id,
            topic=topic[:512],
            reason=f"{reason}: {detail}"[:2000] if detail else reason,
            payload_excerpt=data[:1000].decode("utf-8", errors="replace")[:1000],
        )
        publish(self.transport, self.store_id, letter, kind=self.service_kind)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "<payload>"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


# Keep GateEntry imported for the module doctest.
_ = GateEntry
