"""Device-health alerts: a device that fails is an alert on the bus within seconds.

``DeviceHealth`` says, per device, whether it is ok, stale or offline;
``DeviceAlerts`` turns that, and the load-cell faults the shelf adapter finds
(``LoadCellFault``), into ``Alert`` events of kind ``device_health`` on the
``alerts`` channel (QoS 1), one episode per device (per plate for a load cell):

- **raised** the moment a device turns unhealthy: ``offline`` (its Last Will
  or its camera pipeline's health check), ``stale`` (a shelf controller or
  the tracker silent past its limit, judged on ``tick``), or a load cell
  ``stuck``, ``drifting``, ``saturated`` or ``out_of_range``. The alert
  names the device (``subject_id``), its gondola and plate, the fault, and
  ``since_s``: when the fault began (the device's last message before its
  silence, or when the cell started misreading), so a consumer can judge
  what happened *during* the fault, not only after the alert;
- **cleared** once the device has stayed healthy for ``clear_after_s``; a
  relapse within that time continues the same episode, so a flickering
  device raises one alert, not one per flicker (no flapping).

Everything is judged at the store's event-time clock (``DeviceHealth``'s:
``now`` and ``tick``); state lives in memory: after a restart the retained
statuses and the next faults rebuild it. Stock alerts have their own service
(``checkout.stock_alerts``).

>>> from pathlib import Path
>>> from iot.bus import LocalTransport, publish
>>> from iot.payloads import DeviceStatus
>>> from iot.store import load_store
>>> from checkout.devices import DeviceHealth
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> bus = LocalTransport()
>>> alerts = DeviceAlerts(store, bus, DeviceHealth(store, bus, now=lambda: 1.8e9))
>>> alerts.start()
>>> will = DeviceStatus(id="w1", event_time_s=1.8e9, device_id="rfid-exit", state="offline")
>>> _ = publish(bus, "demo", will, kind="rfid")
>>> [(a.subject_id, a.fault, a.state) for a in alerts.active()]
[('rfid-exit', 'offline', 'raised')]
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from checkout.devices import DeviceHealth, DeviceRecord
from checkout.ids import derived_id
from iot.bus import Inbox, Message, Transport, publish
from iot.payloads import Alert, DeviceFaultKind, LoadCellFault
from iot.store import Store
from iot.topics import TOPICS

__all__ = ["DeviceAlertSettings", "DeviceAlerts"]

log = logging.getLogger(__name__)

_EPOCH_FLOOR_S = 946_684_800.0
_KEPT = 1000  # alerts published, kept for the dashboard and tests


class DeviceAlertSettings(BaseModel):
    """The hysteresis of device alerts."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    clear_after_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="A device must stay healthy this long (event time) before its alert "
        "clears; a relapse before then continues the same alert, s.",
    )


@dataclass
class _Episode:
    """One device's (or one load cell's) alert, from raise to clear."""

    alert_id: str
    subject_id: str
    plate_id: str | None
    gondola_id: str | None
    fault: DeviceFaultKind
    since_s: float
    causes: dict[str, str] = field(default_factory=dict)  # fault -> what was measured
    healthy_since: float | None = None
    raised: Alert | None = None  # the alert that opened it


class DeviceAlerts:
    """Raises and clears ``device_health`` alerts; see the module docstring.

    Give it the store's ``DeviceHealth`` (not yet started or started: either
    way its ``on_change`` is chained). Call ``start`` once, and ``tick`` with
    the store's clock (at least once a second) instead of ``health.tick``.
    """

    def __init__(
        self,
        store: Store,
        transport: Transport,
        health: DeviceHealth,
        *,
        settings: DeviceAlertSettings | None = None,
        service_id: str = "devices",
    ) -> None:
        self.store = store
        self.transport = transport
        self.health = health
        self.settings = settings or DeviceAlertSettings()
        self.service_id = service_id
        self.published: deque[Alert] = deque(maxlen=_KEPT)
        self.counts = {"raised": 0, "cleared": 0, "relapses": 0}
        self.inbox: Inbox | None = None
        self._episodes: dict[tuple[str, str | None], _Episode] = {}
        self._lock = threading.RLock()  # never held while taking the health service's lock
        self._gondola = _gondolas(store)
        chained = health.on_change

        def on_change(record: DeviceRecord) -> None:
            if chained is not None:
                chained(record)
            self._on_health(record)

        health.on_change = on_change

    def start(self) -> None:
        """Start the health service (if not yet) and listen for load-cell faults."""
        if self.health.inbox is None:
            self.health.start()
        self.inbox = Inbox(
            self.transport,
            self.store.store_id,
            service_kind="ops",
            service_id=self.service_id,
            now=lambda: max(self.health.clock_s(), _EPOCH_FLOOR_S),
            known_devices=[c.id for c in self.store.devices.shelf_controllers],
        )
        self.inbox.on(TOPICS["shelf_faults"], self._on_fault)

    def tick(self, now_s: float) -> None:
        """The store's clock reached ``now_s``: stale devices raise, recovered ones clear."""
        self.health.tick(now_s)  # outside our lock: it calls back into _on_health
        with self._lock:
            self._settle(self.health.clock_s())

    def active(self) -> list[Alert]:
        """The raise of every alert not yet cleared, by device."""
        with self._lock:
            raised = [e.raised for e in self._episodes.values() if e.raised is not None]
        return sorted(raised, key=lambda a: a.alert_id)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self.counts, "active": len(self._episodes)}

    # --- what goes wrong ---

    def _on_health(self, record: DeviceRecord) -> None:
        if record.role != "device" or not record.declared:
            return  # services, and devices the store file does not know, are the health page's
        with self._lock:
            key = (record.device_id, None)
            if record.health in ("offline", "stale"):
                since = record.last_heard_s if record.last_heard_s is not None else record.status_s
                what = (
                    f"silent for {record.silent_s:.1f} s (limit {record.silence_limit_s:g} s)"
                    if record.health == "stale" and record.silent_s is not None
                    else "went offline (its Last Will, or its own health check)"
                )
                fault: DeviceFaultKind = "offline" if record.health == "offline" else "stale"
                self._bad(key, fault, f"{record.device_id} ({record.detail}) {what}", since)
            elif record.health == "ok":
                self._good(key, None)

    def _on_fault(self, msg: Message) -> None:
        fault = msg.payload
        assert isinstance(fault, LoadCellFault)
        if fault.plate_id not in self.store.controller_plates.get(fault.device_id, []):
            assert self.inbox is not None
            detail = f"plate {fault.plate_id!r} is not read by controller {fault.device_id!r}"
            self.inbox.reject(msg.topic, fault.model_dump_json().encode(), "unknown plate", detail)
            return
        with self._lock:
            key = (fault.device_id, fault.plate_id)
            at_s = max(self.health.clock_s(), fault.event_time_s)
            if fault.state == "raised":
                what = f"load cell of plate {fault.plate_id} {fault.fault}: {fault.detail}"
                self._bad(key, fault.fault, what, fault.since_s, at_s=at_s)
            else:
                self._good(key, fault.fault, at_s=at_s)

    # --- episodes ---

    def _bad(
        self,
        key: tuple[str, str | None],
        fault: DeviceFaultKind,
        what: str,
        since_s: float | None,
        *,
        at_s: float | None = None,
    ) -> None:
        now_s = self._now(at_s)
        ep = self._episodes.get(key)
        if ep is not None:
            if ep.healthy_since is not None:
                self.counts["relapses"] += 1
            ep.healthy_since = None
            ep.causes[fault] = what
            return
        subject, plate = key
        since = min(since_s, now_s) if since_s is not None and math.isfinite(since_s) else now_s
        gondola = self.store.plate(plate)[0].id if plate else self._gondola.get(subject)
        ep = _Episode(
            alert_id=derived_id("device.", f"{subject}.{plate or 'all'}.{round(since * 1000)}"),
            subject_id=subject,
            plate_id=plate,
            gondola_id=gondola,
            fault=fault,
            since_s=since,
            causes={fault: what},
        )
        self._episodes[key] = ep
        self._publish(ep, "raised", now_s, f"{what} since {_clock(since)}")
        log.warning("%s: device alert %s raised: %s", self.service_id, ep.alert_id, what)

    def _good(
        self, key: tuple[str, str | None], fault: str | None, *, at_s: float | None = None
    ) -> None:
        ep = self._episodes.get(key)
        if ep is None:
            return
        if fault is None:
            ep.causes.clear()
        else:
            ep.causes.pop(fault, None)
        if not ep.causes and ep.healthy_since is None:
            ep.healthy_since = self._now(at_s)
        self._settle(self._now(at_s))

    def _settle(self, now_s: float) -> None:
        """Clear the alerts of devices healthy for ``clear_after_s``."""
        for key, ep in list(self._episodes.items()):
            if ep.healthy_since is None or now_s - ep.healthy_since < self.settings.clear_after_s:
                continue
            del self._episodes[key]
            what = f"{ep.subject_id}{f' plate {ep.plate_id}' if ep.plate_id else ''}"
            message = (
                f"{what} healthy again since {_clock(ep.healthy_since)} "
                f"(fault {ep.fault} from {_clock(ep.since_s)})"
            )
            self._publish(ep, "cleared", now_s, message)
            log.info("%s: device alert %s cleared", self.service_id, ep.alert_id)

    def _now(self, at_s: float | None) -> float:
        clock_s = self.health.clock_s()
        now_s = clock_s if at_s is None else max(clock_s, at_s)
        return max(now_s, _EPOCH_FLOOR_S) if math.isfinite(now_s) else _EPOCH_FLOOR_S

    def _publish(self, ep: _Episode, state: str, now_s: float, message: str) -> None:
        alert = Alert(
            id=derived_id(f"{state}.", ep.alert_id),
            event_time_s=now_s,
            device_id=self.service_id,
            alert_id=ep.alert_id,
            kind="device_health",
            state="raised" if state == "raised" else "cleared",
            plate_id=ep.plate_id,
            gondola_id=ep.gondola_id,
            message=message[:500],
            subject_id=ep.subject_id,
            fault=ep.fault,
            since_s=ep.since_s,
        )
        self.counts[state] += 1
        self.published.append(alert)
        if alert.state == "raised":
            ep.raised = alert
        publish(self.transport, self.store.store_id, alert)


def _gondolas(store: Store) -> dict[str, str]:
    """Device id -> the gondola it serves (shelf controllers and shelf cameras)."""
    out = {c.id: c.gondola for c in store.devices.shelf_controllers}
    out |= {c.id: c.gondola for c in store.devices.cameras if c.gondola is not None}
    return out


def _clock(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).strftime("%H:%M:%S UTC")
