"""Composition root for ``smartstore edge``: the device adapters for some of a store's devices.

An edge node sits beside the devices, on the store's broker: it turns raw
load-cell samples into settled shelf events (``ShelfAdapter``) and RFID
readers' own JSON into gate passages (``RfidAdapter``). A big store spreads
its devices over several edge nodes, each given its own ``--devices``; the
node subscribes to those devices' raw topics only (``DeviceScope``), so two
nodes never settle the same shelf twice and a node's load is what its
devices send.

The adapters need event time, not the wall clock: the node's clock is the
newest time stamped on its shelf controllers' sample batches, and the RFID
adapter is ticked with it (a node with readers only closes a pass at the
reader's next read). Cameras are not run here yet: the ceiling cameras' floor
fusion needs every ceiling camera of a store in one process, so they run
where ``smartstore demo`` and ``eval`` wire ``vision`` today (see
docs/reliability.md, "Scale-out").
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from iot.bus import SerialTransport, Transport
from iot.mqtt import MqttTransport
from iot.rfid_adapter import RfidAdapter
from iot.shelf import ShelfAdapter
from iot.store import Store, load_store
from iot.topics import TOPICS
from smartstore.partitions import check_id
from smartstore.signals import stop_on_signals

__all__ = ["DeviceScope", "EdgeNode", "run_edge_node", "split_devices"]

log = logging.getLogger(__name__)

_RawCallback = Callable[[str, bytes], None]
_EVENT_TIME = re.compile(rb'"event_time_s":\s*(-?[0-9][0-9.eE+-]*)')
_TICK_EVERY_S = 0.5  # wall seconds between two RFID ticks


def split_devices(store: Store, device_ids: Sequence[str]) -> dict[str, list[str]]:
    """``{"shelf": [...], "rfid": [...]}`` for the ids an edge node is given; errors say why.

    >>> from pathlib import Path
    >>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
    >>> split_devices(store, ["shelf-g01", "shelf-g02"])
    {'shelf': ['shelf-g01', 'shelf-g02'], 'rfid': []}
    """
    shelves = {c.id for c in store.devices.shelf_controllers}
    readers = {r.id for r in store.devices.rfid_readers}
    cameras = {c.id for c in store.devices.cameras}
    out: dict[str, list[str]] = {"shelf": [], "rfid": []}
    if not device_ids:
        raise ValueError("--devices names no device; give shelf controller or RFID reader ids")
    for d in device_ids:
        if d in shelves:
            out["shelf"].append(d)
        elif d in readers:
            out["rfid"].append(d)
        elif d in cameras:
            raise ValueError(
                f"device {d!r} is a camera; `smartstore edge` runs shelf controllers and RFID "
                "readers (cameras: see docs/reliability.md, Scale-out)"
            )
        else:
            known = ", ".join(sorted(shelves | readers))
            raise ValueError(
                f"device {d!r} is not a shelf controller or RFID reader of store "
                f"{store.store_id!r}; known: {known}"
            )
    if len(set(device_ids)) != len(device_ids):
        raise ValueError("--devices names a device twice")
    return out


class DeviceScope:
    """A transport that narrows ``+`` device subscriptions of some kinds to given devices.

    An adapter subscribes to every device of its kind with one wildcard; on
    an edge node that serves some of them this subscribes to each served
    device's topic instead. ``heard(event_time_s)`` is told the time stamped
    on each message delivered through a narrowed subscription.
    """

    def __init__(
        self,
        inner: Transport,
        devices: Mapping[str, Sequence[str]],
        heard: Callable[[float], None] | None = None,
    ) -> None:
        self.inner = inner
        self.devices = {kind: list(ids) for kind, ids in devices.items()}
        self.heard = heard

    def publish(self, topic: str, data: bytes, qos: int = 0, retain: bool = False) -> None:
        self.inner.publish(topic, data, qos, retain)

    def subscribe(self, topic_filter: str, callback: _RawCallback, qos: int = 0) -> None:
        parts = topic_filter.split("/")
        if len(parts) != 5 or parts[3] != "+" or parts[2] not in self.devices:
            self.inner.subscribe(topic_filter, callback, qos)
            return
        wrapped = self._timed(callback)
        for device_id in self.devices[parts[2]]:
            self.inner.subscribe("/".join([*parts[:3], device_id, parts[4]]), wrapped, qos)

    def _timed(self, callback: _RawCallback) -> _RawCallback:
        heard = self.heard
        if heard is None:
            return callback

        def timed(topic: str, data: bytes) -> None:
            found = _EVENT_TIME.search(data, 0, 256)
            # not a number: no time heard; the adapter's own checks refuse the message
            with contextlib.suppress(ValueError):
                if found is not None:
                    heard(float(found.group(1)))
            callback(topic, data)

        return timed

    def close(self) -> None:
        self.inner.close()


class EdgeNode:
    """The adapters of some devices of one store, on their own connection and thread."""

    def __init__(
        self,
        broker_url: str,
        store: Store,
        device_ids: Sequence[str],
        *,
        edge_id: str,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.store = store
        self.edge_id = check_id("edge id", edge_id)
        self.devices = split_devices(store, device_ids)
        self.clock_s = -math.inf  # newest event time heard from this node's devices
        sid = store.store_id
        self.mqtt = MqttTransport(
            broker_url,
            f"{sid}-{self.edge_id}",
            now=self.now,
            status_topic=TOPICS["status"].topic(sid, self.edge_id, "shelf"),
            connect_timeout_s=connect_timeout_s,
        )
        self.serial = SerialTransport(self.mqtt, f"edge-{self.edge_id}")
        scope = DeviceScope(self.serial, self.devices, heard=self._heard)
        self.shelf = (
            ShelfAdapter(store, scope, service_id=self.edge_id, now=self.now)
            if self.devices["shelf"]
            else None
        )
        self.rfid = (
            RfidAdapter(store, scope, service_id=self.edge_id, now=self.now)
            if self.devices["rfid"]
            else None
        )

    def now(self) -> float:
        """Event time as this node's devices say it (for stamps; before any: the epoch floor)."""
        return self.clock_s if math.isfinite(self.clock_s) else 946_684_800.0

    def _heard(self, event_time_s: float) -> None:
        if math.isfinite(event_time_s):
            self.clock_s = max(self.clock_s, event_time_s)

    def start(self) -> None:
        """Subscribe the adapters (on the node's thread) and wait until they are."""
        if self.shelf is not None:
            self.serial.submit(self.shelf.start)
        if self.rfid is not None:
            self.serial.submit(self.rfid.start)
        self.serial.drain()

    def tick(self) -> None:
        """Close RFID passes quiet at the node's event time."""
        if self.rfid is not None and math.isfinite(self.clock_s):
            self.serial.submit(self.rfid.tick, self.clock_s)

    def stats(self) -> dict[str, object]:
        box: dict[str, object] = {"edge_id": self.edge_id, "devices": self.devices}
        done = threading.Event()

        def read() -> None:
            if self.shelf is not None:
                box["shelf_events"] = self.shelf.published
                box["shelf_refused"] = dict(self.shelf.inbox.rejected)
            if self.rfid is not None:
                box["rfid"] = self.rfid.stats()
            done.set()

        self.serial.submit(read)
        done.wait(10.0)
        return box

    def close(self) -> None:
        self.serial.drain()
        self.serial.close()


def run_edge_node(
    broker_url: str,
    store_file: str | Path,
    device_ids: Sequence[str],
    *,
    edge_id: str | None = None,
    seconds: float | None = None,
    out: TextIO | None = None,
) -> dict[str, object]:
    """Run an edge node until SIGTERM/SIGINT (or ``seconds``); returns its counters."""
    store = load_store(store_file)
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "host"
    node = EdgeNode(broker_url, store, device_ids, edge_id=edge_id or f"edge-{host}-{os.getpid()}")
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        node.start()
        if out is not None:
            print(
                f"edge {node.edge_id} serves {node.devices} of store {store.store_id!r}",
                file=out,
                flush=True,
            )
        deadline = time.monotonic() + seconds if seconds is not None else math.inf
        while not stop.wait(_TICK_EVERY_S) and time.monotonic() < deadline:
            node.tick()
        stats = node.stats()
    finally:
        node.close()
        restore()
    if out is not None:
        print(f"edge {node.edge_id} stopped: {stats}", file=out, flush=True)
    return stats
