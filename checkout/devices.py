"""Device health for the manager's dashboard: who is online, who went quiet, who never spoke.

``DeviceHealth`` listens to the retained ``status`` channel of every kind and
to every channel a device publishes on (load-cell samples, shelf events,
camera interactions and snapshots, gate passages, shopper tracks, RFID reads
and passages: the registry channels of ``DEVICE_KINDS``). Per device it keeps
the kind, whether the store file declares it, the last status, the event time
it was last heard, how many messages it sent and how many this service
refused. From those, judged at the store's clock (``now`` and ``tick``, never
the wall clock), each device has one health:

- ``ok``: online, or heard recently enough for its kind;
- ``stale``: a kind that sends continuously (shelf controllers, the shopper
  tracker) has been silent longer than its silence limit in event time;
  gates, RFID readers, cameras and services send only when something happens,
  so they are judged by their status alone and never go stale;
- ``offline``: its last word was an ``offline`` status (its Last Will, or a
  clean close), with nothing heard from it since;
- ``unknown``: declared, never heard;
- ``undeclared``: a device kind publishing under an id the store file does
  not list (an impostor, a typo in a device's config, a forgotten store file).

Services (the brain, store operations, the shelf adapter, the twin) publish a
status too; those named in ``services``, and any publishing under a kind no
device has, are listed with role ``service`` and judged by their status.
Memory is bounded: declared devices and services, plus at most
``max_undeclared`` others; messages of any further id are counted and dropped.
Bad input is dead-lettered by the ``Inbox`` and counted against the device.

>>> from pathlib import Path
>>> from iot.bus import LocalTransport, publish
>>> from iot.payloads import DeviceStatus
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> bus = LocalTransport()
>>> health = DeviceHealth(store, bus, now=lambda: 1.8e9)
>>> health.start()
>>> status = DeviceStatus(id="s1", event_time_s=1.8e9, device_id="gate-in", state="offline")
>>> _ = publish(bus, "demo", status, kind="gate")
>>> health.device("gate-in").health, health.device("shelf-g01").health
('offline', 'unknown')
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from iot.bus import MAX_PAYLOAD_BYTES, Inbox, Message, RawCallback, Transport
from iot.payloads import DeviceStatus
from iot.rfid import parse_reader_message
from iot.store import Store
from iot.topics import ANY, TOPICS, match_topic

__all__ = [
    "DEVICE_KINDS",
    "HEALTHS",
    "DeviceHealth",
    "DeviceHealthSettings",
    "DeviceRecord",
    "Health",
    "Role",
]

log = logging.getLogger(__name__)

Health = Literal["ok", "stale", "offline", "unknown", "undeclared"]
HEALTHS: tuple[Health, ...] = ("ok", "stale", "offline", "unknown", "undeclared")
Status = Literal["online", "offline", "unknown"]
Role = Literal["device", "service"]

# Topic kinds devices publish under; every other kind (brain, ops, ...) is a service's.
DEVICE_KINDS = frozenset({"shelf", "camera", "gate", "tracker", "rfid"})
_EPOCH_FLOOR_S = 946_684_800.0  # the payloads' lowest valid event time
_ID = re.compile(r"^[A-Za-z0-9._:@/-]{1,128}$")  # iot.payloads.Id
_NOT_THE_DEVICES_FAULT = frozenset({"duplicate id"})  # a retained status heard again
_UNREADABLE = frozenset({"malformed JSON", "message too large"})  # iot.rfid ReadError reasons


class DeviceHealthSettings(BaseModel):
    """How long each kind may stay silent, and how much the service remembers."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    silence_limits_s: dict[str, float] = Field(
        default_factory=lambda: {"shelf": 5.0, "tracker": 5.0},
        description="Device kind -> event-time seconds without a message after which the "
        "device is stale. Only kinds that send continuously belong here: a shelf controller "
        "sends load-cell samples every batch period, the tracker a batch every frame. Kinds "
        "left out are judged by their status alone.",
    )
    max_undeclared: int = Field(
        default=200,
        ge=0,
        le=100_000,
        description="Ids not in the store file (or in services) tracked at most; messages of "
        "further ids are counted and dropped.",
    )
    max_future_s: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="A message stamped more than this past the store's clock is counted as "
        "heard at the store's clock (the device's clock runs ahead), s.",
    )
    dedupe_window: int = Field(
        default=20_000,
        ge=100,
        le=1_000_000,
        description="Event ids remembered to ignore re-deliveries.",
    )

    @field_validator("silence_limits_s")
    @classmethod
    def _device_kinds_only(cls, limits: dict[str, float]) -> dict[str, float]:
        for kind, limit_s in limits.items():
            if kind not in DEVICE_KINDS:
                raise ValueError(
                    f"silence limit for kind {kind!r}: not a device kind; use one of "
                    f"{sorted(DEVICE_KINDS)} (services are judged by their status)"
                )
            if not (math.isfinite(limit_s) and limit_s > 0):
                raise ValueError(f"silence limit for {kind!r} is {limit_s}; give seconds > 0")
        return limits


class DeviceRecord(BaseModel):
    """One device's (or service's) health as the dashboard shows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: str
    kind: str = Field(description="shelf, camera, gate, tracker, rfid; a service's own kind.")
    role: Role
    declared: bool = Field(description="Listed in the store file (or among the services).")
    detail: str = Field(description="What the store file says it is, e.g. 'entry gate'.")
    health: Health
    status: Status = Field(description="Its last retained status; unknown if none heard.")
    status_s: float | None = Field(description="Event time of that status, Unix s.")
    last_heard_s: float | None = Field(description="Event time of its newest message, Unix s.")
    silent_s: float | None = Field(description="Store clock minus last_heard_s, s.")
    silence_limit_s: float | None = Field(description="Stale beyond this; None: status only.")
    messages: int = Field(description="Valid messages received from it.")
    channels: dict[str, int] = Field(description="Those messages by channel.")
    dead_letters: int = Field(description="Its messages this service refused (bad input).")
    clock_ahead: int = Field(description="Its messages stamped too far past the store's clock.")


@dataclass
class _Device:
    kind: str
    role: Role
    declared: bool
    detail: str
    status: Status = "unknown"
    status_s: float | None = None
    status_seq: int = 0  # arrival order of the last status
    data_seq: int = 0  # arrival order of the last other message
    last_heard_s: float | None = None
    messages: int = 0
    channels: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    clock_ahead: int = 0
    reported: Health | None = "unknown"  # the health on_change last announced (None: news)


class DeviceHealth:
    """Folds status and device traffic into per-device health; see the module docstring.

    ``now``: the store's event-time clock (the composition root's). ``services``:
    service id -> the kind it publishes its status under (e.g. ``{"brain":
    "brain", "shelf-adapter": "shelf"}``), so they are expected and never
    mistaken for undeclared devices. ``on_change(record)`` hears each change of
    a device's health found on a message or a ``tick``, on the service's thread.
    """

    def __init__(
        self,
        store: Store,
        transport: Transport,
        *,
        now: Callable[[], float],
        settings: DeviceHealthSettings | None = None,
        services: Mapping[str, str] | None = None,
        on_change: Callable[[DeviceRecord], None] | None = None,
        service_id: str = "devices",
    ) -> None:
        self.store = store
        self.transport = transport
        self.now = now
        self.settings = settings or DeviceHealthSettings()
        self.service_id = service_id
        self.on_change = on_change
        self.counts: Counter[str] = Counter()
        self.inbox: Inbox | None = None
        self._lock = threading.RLock()  # bus handlers, tick and HTTP threads take turns
        self._tick_s = -math.inf
        self._seq = 0
        self._closed = False
        self._devices: dict[str, _Device] = _declared(store)
        for sid, kind in (services or {}).items():
            self._devices.setdefault(sid, _Device(kind, "service", True, f"{kind} service"))
        self._undeclared = 0

    # --- life cycle ---

    def start(self) -> None:
        """Subscribe to the status of every kind and to every device channel of the store."""
        with self._lock:
            admitted = _Admitting(self.transport, self._admit)
            self.inbox = inbox = _RefusalCounting(
                admitted,
                self.store.store_id,
                service_id=self.service_id,
                now=lambda: max(self.clock_s(), _EPOCH_FLOOR_S),
                dedupe_window=self.settings.dedupe_window,
                on_refused=self._refused,
            )
            inbox.on(TOPICS["status"], self._on_message, kind=ANY)
            for channel in TOPICS.values():
                if channel.kind in DEVICE_KINDS and channel.model is not None:
                    inbox.on(channel, self._on_message)
            raw = TOPICS["rfid_raw"]  # vendor JSON: no payload model, the adapter parses it
            admitted.subscribe(raw.filter(self.store.store_id), self._on_raw, raw.qos)

    def tick(self, now_s: float) -> None:
        """The store's clock reached ``now_s``: announce devices that went stale meanwhile."""
        with self._lock:
            self._tick_s = max(self._tick_s, now_s)
            if self.on_change is not None:
                for device_id in list(self._devices):
                    self._announce(device_id)

    def close(self) -> None:
        """Stop folding messages; the transport belongs to the caller."""
        with self._lock:
            self._closed = True

    # --- reading ---

    def clock_s(self) -> float:
        """The store's clock: the latest of ``now()`` and the last tick."""
        return max(self.now(), self._tick_s)

    def device(self, device_id: str) -> DeviceRecord | None:
        with self._lock:
            d = self._devices.get(device_id)
            return None if d is None else self._record(device_id, d, self.clock_s())

    def devices(
        self, *, kind: str | None = None, health: Health | None = None, role: Role | None = None
    ) -> list[DeviceRecord]:
        """Every device, then every service, by kind and id; filters combine (AND)."""
        with self._lock:
            clock_s = self.clock_s()
            records = [self._record(i, d, clock_s) for i, d in self._devices.items()]
        return sorted(
            (
                r
                for r in records
                if (kind is None or r.kind == kind)
                and (health is None or r.health == health)
                and (role is None or r.role == role)
            ),
            key=lambda r: (r.role, r.kind, r.device_id),
        )

    def health_counts(self, role: Role = "device") -> dict[Health, int]:
        """How many devices (or services) are in each health, every health named."""
        out: dict[Health, int] = dict.fromkeys(HEALTHS, 0)
        for r in self.devices(role=role):
            out[r.health] += 1
        return out

    def stats(self) -> dict[str, int]:
        with self._lock:
            out = dict(self.counts)
            rejected = self.inbox.rejected if self.inbox else Counter()
            out["dead_letters"] = sum(rejected.values())
            out.update({f"dead_letter.{reason}": n for reason, n in rejected.items()})
            out["devices_tracked"] = len(self._devices)
            out["undeclared"] = self._undeclared
            return out

    # --- the fold ---

    def _admit(self, topic: str) -> bool:
        """Whether a message's device is (or may now be) tracked; memory stays bounded."""
        with self._lock:
            if self._closed:
                return False
            found = match_topic(topic)
            if found is None:
                return True  # the inbox dead-letters it as an unknown topic
            channel, _, device_id = found
            if device_id in self._devices:
                return True
            kind = topic.split("/")[2]
            if _ID.fullmatch(device_id) and self._undeclared < self.settings.max_undeclared:
                self._undeclared += 1
                role: Role = "device" if kind in DEVICE_KINDS else "service"
                detail = "not in the store file" if role == "device" else f"{kind} service"
                self._devices[device_id] = _Device(kind, role, False, detail, reported=None)
                log.warning(
                    "%s: %s %r publishes on %s but is neither in the store file nor among the "
                    "services; listed as %s",
                    self.service_id,
                    kind,
                    device_id,
                    channel.name,
                    "undeclared" if role == "device" else "an undeclared service",
                )
                return True
            self.counts["untracked_messages"] += 1
            if self.counts["untracked_messages"] in (1, 10) or (
                self.counts["untracked_messages"] % 1000 == 0
            ):
                log.warning(
                    "%s: dropped a message on %s: its id is not a valid device id or %d "
                    "undeclared ids are tracked already (raise max_undeclared to track more); "
                    "seen %d such messages",
                    self.service_id,
                    topic[:200],
                    self._undeclared,
                    self.counts["untracked_messages"],
                )
            return False

    def _on_message(self, msg: Message) -> None:
        with self._lock:
            d = self._devices.get(msg.device_id)
            if d is None or self._closed:
                return
            heard_s = self._heard_at(d, msg.payload.event_time_s)
            self._seq += 1
            if isinstance(msg.payload, DeviceStatus):
                d.status, d.status_s, d.status_seq = msg.payload.state, heard_s, self._seq
            else:
                d.data_seq = self._seq
            d.last_heard_s = heard_s if d.last_heard_s is None else max(d.last_heard_s, heard_s)
            d.messages += 1
            d.channels[msg.channel.name] += 1
            self._announce(msg.device_id)

    def _on_raw(self, topic: str, data: bytes) -> None:
        """An RFID reader's own JSON: heard at the store's clock (the adapter reads its times)."""
        with self._lock:
            found = match_topic(topic)
            if found is None or self._closed or self.inbox is None:
                return
            if len(data) > MAX_PAYLOAD_BYTES:
                detail = f"{len(data)} bytes, at most {MAX_PAYLOAD_BYTES} accepted"
                self.inbox.reject(topic, data, "payload too large", detail)
                return
            if not self._holds_json(found[2], data):
                self.inbox.reject(topic, data, "malformed JSON")
                return
            d = self._devices.get(found[2])
            if d is None:
                return
            self._seq += 1
            d.data_seq = self._seq
            now_s = self.clock_s()
            if math.isfinite(now_s):
                d.last_heard_s = now_s if d.last_heard_s is None else max(d.last_heard_s, now_s)
            d.messages += 1
            d.channels[found[0].name] += 1
            self._announce(found[2])

    def _holds_json(self, reader_id: str, data: bytes) -> bool:
        """Whether a reader's message holds a JSON object, read as its adapter reads it.

        Readers send one object, an array, newline-delimited objects (Impinj) or
        objects back to back (Zebra): one ``json.loads`` would refuse the last two.
        """
        reader = next((r for r in self.store.devices.rfid_readers if r.id == reader_id), None)
        parsed = parse_reader_message(reader.format if reader else "impinj", data, reader_id)
        readable = [e for e in parsed.errors if e.reason not in _UNREADABLE]
        return bool(parsed.reads or parsed.skipped or readable)

    def _heard_at(self, d: _Device, event_time_s: float) -> float:
        """The message's event time, or the store's clock when the device's clock runs ahead."""
        clock_s = self.clock_s()
        if math.isfinite(clock_s) and event_time_s > clock_s + self.settings.max_future_s:
            d.clock_ahead += 1
            self.counts["clock_ahead"] += 1
            return clock_s
        return event_time_s

    def _refused(self, topic: str, reason: str) -> None:
        found = match_topic(topic)
        with self._lock:
            d = self._devices.get(found[2]) if found else None
            if d is not None and reason not in _NOT_THE_DEVICES_FAULT:
                d.dead_letters += 1

    def _judge(self, d: _Device, clock_s: float) -> tuple[Health, float | None]:
        """The health of ``d`` at ``clock_s``, and how long it has been silent."""
        silent_s = None
        if d.last_heard_s is not None and math.isfinite(clock_s):
            silent_s = max(0.0, clock_s - d.last_heard_s)
        if d.role == "device" and not d.declared:
            return "undeclared", silent_s
        if d.status == "offline" and d.status_seq > d.data_seq:
            return "offline", silent_s
        if d.last_heard_s is None:
            return "unknown", silent_s
        limit_s = self._limit_s(d)
        if limit_s is not None and silent_s is not None and silent_s > limit_s:
            return "stale", silent_s
        return "ok", silent_s

    def _limit_s(self, d: _Device) -> float | None:
        return self.settings.silence_limits_s.get(d.kind) if d.role == "device" else None

    def _record(self, device_id: str, d: _Device, clock_s: float) -> DeviceRecord:
        health, silent_s = self._judge(d, clock_s)
        return DeviceRecord(
            device_id=device_id,
            kind=d.kind,
            role=d.role,
            declared=d.declared,
            detail=d.detail,
            health=health,
            status=d.status,
            status_s=d.status_s,
            last_heard_s=d.last_heard_s,
            silent_s=silent_s,
            silence_limit_s=self._limit_s(d),
            messages=d.messages,
            channels=dict(d.channels),
            dead_letters=d.dead_letters,
            clock_ahead=d.clock_ahead,
        )

    def _announce(self, device_id: str) -> None:
        if self.on_change is None:
            return
        d = self._devices[device_id]
        clock_s = self.clock_s()
        health, _ = self._judge(d, clock_s)
        if health == d.reported:
            return
        d.reported = health
        try:
            self.on_change(self._record(device_id, d, clock_s))
        except Exception:  # a listener's bug must not stop the fold; logged loudly
            log.exception("%s: on_change failed for %s", self.service_id, device_id)


def _declared(store: Store) -> dict[str, _Device]:
    """Every device the store file lists, with its kind on the bus and what it is."""
    d = store.devices
    out: dict[str, _Device] = {}
    for ctl in d.shelf_controllers:
        out.setdefault(
            ctl.id, _Device("shelf", "device", True, f"shelf controller of {ctl.gondola}")
        )
    for cam in d.cameras:
        watches = f" watching {cam.gondola}" if cam.gondola else ""
        out.setdefault(cam.id, _Device("camera", "device", True, f"{cam.kind} camera{watches}"))
    for gate in store.floor.gates:
        out.setdefault(gate.id, _Device("gate", "device", True, f"{gate.kind} gate"))
    for reader in d.rfid_readers:
        where = f" at {reader.gate}" if reader.gate else ""
        out.setdefault(reader.id, _Device("rfid", "device", True, f"{reader.format} reader{where}"))
    for pos in d.positioning:
        out.setdefault(pos, _Device("tracker", "device", True, "shopper positions"))
    return out


class _Admitting:
    """The transport as the inbox sees it: messages of ids the service will not track are dropped.

    Keeps the inbox's per-device memory bounded while it accepts undeclared devices.
    """

    def __init__(self, inner: Transport, admit: Callable[[str], bool]) -> None:
        self.inner = inner
        self.admit = admit

    def publish(self, topic: str, data: bytes, qos: int = 0, retain: bool = False) -> None:
        self.inner.publish(topic, data, qos, retain)

    def subscribe(self, topic_filter: str, callback: RawCallback, qos: int = 0) -> None:
        def admitted(topic: str, data: bytes) -> None:
            if self.admit(topic):
                callback(topic, data)

        self.inner.subscribe(topic_filter, admitted, qos)

    def close(self) -> None:
        """The transport belongs to the composition root: nothing to close here."""


class _RefusalCounting(Inbox):
    """An inbox that also tells the service whose message it refused."""

    def __init__(
        self,
        transport: Transport,
        store_id: str,
        *,
        service_id: str,
        now: Callable[[], float],
        dedupe_window: int,
        on_refused: Callable[[str, str], None],
    ) -> None:
        super().__init__(
            transport,
            store_id,
            service_kind="ops",
            service_id=service_id,
            now=now,
            dedupe_window=dedupe_window,
        )
        self.on_refused = on_refused

    def reject(self, topic: str, data: bytes, reason: str, detail: str = "") -> None:
        super().reject(topic, data, reason, detail)
        self.on_refused(topic, reason)
