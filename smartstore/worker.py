"""Composition root for ``smartstore worker``: one checkout worker of a pool, many stores.

A chain runs the store brains on a pool of workers beside a central broker.
Each worker is given every store file of the pool and runs a ``StoreBrain``
for the stores it **owns**. Ownership (docs/reliability.md, "Scale-out"):

- **membership**: each worker connects (MQTT 5) as ``<pool>-<id>`` with a
  retained status on ``smartstore/<pool>/worker/<id>/status``: ``online`` on
  connect, ``offline`` from its Last Will when it dies, and on a clean stop;
- **assignment**: every worker computes the same balanced, stable plan from
  the live workers it hears (``smartstore.partitions.assign``), or a pinned
  share with ``--partition I/N``;
- **claims**: a brain's own retained status on
  ``smartstore/<store>/brain/<worker>/status`` says which worker holds the
  store. A worker starts a store's brain only once no other *live* worker
  holds it: a worker giving a store up unsubscribes, lets the messages
  already queued finish, then publishes ``offline``; a dead worker's claims
  are void the moment its Last Will says so;
- **consumption**: the owner subscribes to the store's channels through
  MQTT 5 shared subscriptions, one group per store
  (``$share/<pool>.<store>/smartstore/<store>/...``), so even while two
  workers briefly both hold a store (a handover, views of the pool that
  disagree for a moment) the broker hands each message to one of them only.
  Retained camera statuses are read without a group (a shared subscription
  never gets retained messages).

All brains of a worker, and every ownership change, run on one thread
(``SerialTransport``): one store's messages are handled in the order the
broker delivered them. The brains are ticked with event time from each
store's positioning heartbeat (its track batches), never the wall clock.

Crash safety (docs/reliability.md, "Crash safety"): every message for a
brain is written to its store's **journal** (in the store's ledger) on the
network thread, and acknowledged to the broker only after that; a store's
new brain (after a ``kill -9``, or on the worker that takes the store over)
replays the journal, the last ``track_retention_s`` and a margin of it, and
so gets back its track history, its undecided shelf events and exits, and
its window of seen event ids. What a brain decides and publishes is kept in
the store's **outbox** until the broker acknowledges it; the next brain
sends again what is still there (consumers drop the repeats by id). With
``session_expiry_s`` the worker's MQTT session outlives a crash: the broker
queues what the store's devices send meanwhile and delivers it to the worker
that comes back with the same id.
Such a session subscribes without shared groups (Mosquitto 2.0 neither
keeps a shared subscription through its own restart nor stops handing a
dead member its share); claims keep a store on one worker.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from checkout.brain import BrainSettings, StoreBrain
from checkout.database import parse_address
from checkout.ledger import Ledger
from iot.bus import MAX_PAYLOAD_BYTES, SerialTransport, publish
from iot.mqtt import MqttTransport
from iot.mqtt_url import redact_url
from iot.payloads import DeviceStatus
from iot.store import Store, load_store
from iot.topics import TOPICS
from smartstore.partitions import StaticSlot, assign, check_id
from smartstore.signals import stop_on_signals
from smartstore.store_view import StoreView, brain_input_store, brain_inputs, event_time_of

__all__ = [
    "DEFAULT_DB",
    "Worker",
    "claim_topic",
    "ledger_opener",
    "member_topic",
    "run_worker",
    "share_group",
]

log = logging.getLogger(__name__)

_StoreView = StoreView  # its name here before it moved to smartstore.store_view

DEFAULT_DB = "smartstore-{store}.sqlite"
_EPOCH_FLOOR_S = 946_684_800.0
_STATS_EVERY_S = 1.0  # wall seconds between two writes of --stats-out
_TICK_EVERY_S = 0.5  # event time between two ticks from a store's positioning heartbeat
_RawCallback = Callable[[str, bytes], None]
_DRAIN_OUTBOX_S = 5.0  # wall time a hand-over waits for the broker to acknowledge decisions
_PRUNE_EVERY_S = 10.0  # event time between two prunes of a store's journal
_JOURNAL_MARGIN_S = 15.0  # kept beyond track_retention_s: attribution and sighting waits, pruning


def member_topic(pool: str, worker_id: str = "+") -> str:
    """A worker's retained pool status (its Last Will says ``offline``)."""
    return TOPICS["status"].topic(pool, worker_id, "worker")


def claim_topic(store_id: str, worker_id: str = "+") -> str:
    """A brain's retained status in a store: ``online`` while that worker holds the store."""
    return TOPICS["status"].topic(store_id, worker_id, "brain")


def share_group(pool: str, store_id: str) -> str:
    """The shared-subscription group of one store's brain channels."""
    return f"{pool}.{store_id}"


def ledger_opener(template: str, store_ids: Sequence[str]) -> Callable[[str], Ledger]:
    """``--db``: a ledger address with ``{store}`` in it → ``open(store_id) -> Ledger``.

    One ledger per store (the ledger's tables hold one store): an SQLite file
    (``ledgers/{store}.sqlite``) or a PostgreSQL schema
    (``postgresql://USER@HOST/DB?schema=ledger_{store}``). Workers that may take
    over each other's stores must reach the same ledgers: the same files on
    one machine, or one PostgreSQL server.
    """
    if "{store}" not in template and len(store_ids) > 1:
        raise ValueError(
            f"--db {redact_url(template)!r} names one ledger for {len(store_ids)} stores; put "
            "{store} in it (ledgers/{store}.sqlite, or ...?schema=ledger_{store}): each store "
            "keeps its own ledger"
        )
    parse_address(template)  # a bad address is refused now, not at the first takeover

    def open_ledger(store_id: str) -> Ledger:
        address = template.replace("{store}", store_id)
        dialect, target = parse_address(address)
        if dialect == "sqlite" and target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        return Ledger(address)

    return open_ledger


@dataclass
class _Owned:
    """A store this worker runs now."""

    store: Store
    view: StoreView
    brain: StoreBrain
    ledger: Ledger
    last_tick_s: float = -1.0
    last_prune_s: float = -1.0
    replayed: int = 0  # what its inbox took in from the journal (not counted as handled)


@dataclass
class _Counts:
    events: Counter[str] = field(default_factory=Counter)  # store -> messages its brains got
    acquired: int = 0
    released: int = 0
    replayed: int = 0  # journaled messages fed back to a brain that took a store
    resent: int = 0  # outbox messages a brain that took a store published again
    bad_status: int = 0


class Worker:
    """One checkout worker: joins the pool, runs the brains of the stores it owns.

    ``open_ledger(store_id)``: the store's ledger (``ledger_opener``).
    ``slot``: a pinned share (``--partition I/N``); None follows the pool.
    ``settle_s``: how long to listen to the pool before claiming stores, so
    workers started together do not all claim everything first.
    ``session_expiry_s``: keep the MQTT session that long after a crash (0: a
    clean session each time, shared groups). Restart a crashed worker with the
    same ``worker_id`` within it to get what was sent meanwhile.
    """

    def __init__(
        self,
        broker_url: str,
        stores: Sequence[Store],
        open_ledger: Callable[[str], Ledger],
        *,
        worker_id: str,
        pool: str = "chain",
        slot: StaticSlot | None = None,
        settings: BrainSettings | None = None,
        settle_s: float = 1.0,
        connect_timeout_s: float = 10.0,
        session_expiry_s: int = 0,
    ) -> None:
        self.worker_id = check_id("worker id", worker_id)
        self.pool = check_id("pool", pool)
        self.stores = {s.store_id: s for s in stores}
        if len(self.stores) != len(stores):
            raise ValueError("two store files name the same store_id; give each store once")
        if self.pool in self.stores:
            raise ValueError(f"pool {pool!r} is also a store id; name the pool otherwise")
        self.open_ledger = open_ledger
        self.slot = slot
        self.settings = settings or BrainSettings()
        self.settle_s = settle_s
        self.members: dict[str, str] = {}  # worker -> online/offline
        self.claims: dict[str, dict[str, str]] = {sid: {} for sid in self.stores}
        self.owned: dict[str, _Owned] = {}
        self.counts = _Counts()
        self._settled = False
        self._closing = False
        self._leaving = False  # close() was called: take no more stores
        self._closed = False
        self._changed = threading.Event()
        self.persistent = session_expiry_s > 0
        self._ledgers: dict[str, Ledger] = {}  # opened once, by the journal or a takeover
        self._ledgers_lock = threading.Lock()
        self.journal_window_s = self.settings.track_retention_s + _JOURNAL_MARGIN_S
        self.mqtt = MqttTransport(
            broker_url,
            f"{self.pool}-{self.worker_id}",
            status_topic=member_topic(self.pool, self.worker_id),
            protocol=5,
            connect_timeout_s=connect_timeout_s,
            session_expiry_s=session_expiry_s,
            on_receive=self._journal,  # set before connecting: a kept session delivers at once
        )
        self.serial = SerialTransport(self.mqtt, f"worker-{self.worker_id}")

    # --- life cycle ---

    def start(self) -> None:
        """Listen to the pool and the claims; claim stores once ``settle_s`` has passed."""
        self.serial.subscribe(member_topic(self.pool), self._on_member, 1)
        for sid in sorted(self.stores):
            self.serial.subscribe(claim_topic(sid), self._on_claim, 1)
        timer = threading.Timer(self.settle_s, self.serial.submit, (self._settle,))
        timer.daemon = True
        timer.start()

    def close(self) -> None:
        """Leave the pool: say so, hand every store back (claims ``offline``), disconnect."""
        done = threading.Event()

        def leave() -> None:
            self._closing = True
            self._publish_member("offline")
            for sid in sorted(self.owned):
                self._release(sid)
            self.serial.submit(done.set)

        if self._closed:
            return
        self._leaving = True  # from now on no store is taken (a takeover would only replay)
        self.serial.submit(leave)
        if not done.wait(30.0):
            log.warning("worker %s: stores not handed back within 30 s", self.worker_id)
        self.serial.close()
        self._closed = True
        with self._ledgers_lock:
            for ledger in self._ledgers.values():
                ledger.close()
            self._ledgers.clear()

    def abort(self) -> None:
        """Die as a crash would: no hand-back, no DISCONNECT, so the broker sends the Last Will.

        For tests and fault drills; the worker cannot be used afterwards.
        """
        if self._closed:
            return
        self._closing = self._closed = True
        self.mqtt.abort()
        self.serial.close()  # stops the thread; the transport is already shut

    def wait_changed(self, timeout_s: float) -> bool:
        """Block until ownership changes (or ``timeout_s``); True if it did."""
        changed = self._changed.wait(timeout_s)
        self._changed.clear()
        return changed

    def stats(self) -> dict[str, object]:
        """What this worker did: events per store (handed-back stores too), CPU seconds."""
        box: dict[str, object] = {}
        if self._closed:  # no serial thread any more: nothing changes the counters
            self._read_stats(box)
            return box
        done = threading.Event()

        def read() -> None:
            self._read_stats(box)
            done.set()

        self.serial.submit(read)
        done.wait(10.0)
        return box

    def _read_stats(self, box: dict[str, object]) -> None:
        events = Counter(self.counts.events)
        for sid, owned in self.owned.items():
            events[sid] += _handled(owned.brain) - owned.replayed
        usage = resource.getrusage(resource.RUSAGE_SELF)
        box.update(
            worker_id=self.worker_id,
            pool=self.pool,
            stores_now=sorted(self.owned),
            events=sum(events.values()),
            events_by_store=dict(sorted(events.items())),
            acquired=self.counts.acquired,
            released=self.counts.released,
            replayed=self.counts.replayed,
            resent=self.counts.resent,
            bad_status=self.counts.bad_status,
            cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
        )

    # --- the pool (all on the serial thread) ---

    def _settle(self) -> None:
        self._settled = True
        self._rebalance()
        if self.persistent:
            # A session kept from before a crash still holds that run's subscriptions:
            # let go of the stores this run does not hold (another worker runs them now).
            for sid in sorted(set(self.stores) - set(self.owned)):
                for topic_filter in brain_inputs(sid):
                    self.mqtt.forget(topic_filter)

    def _on_member(self, topic: str, data: bytes) -> None:
        status = self._status(topic, data)
        if status is not None:
            self.members[status.device_id] = status.state
            self._rebalance()

    def _on_claim(self, topic: str, data: bytes) -> None:
        status = self._status(topic, data)
        if status is None:
            return
        sid = topic.split("/")[1]
        self.claims.setdefault(sid, {})[status.device_id] = status.state
        if (
            status.device_id == self.worker_id
            and status.state == "online"
            and sid not in self.owned
        ):
            # A claim of ours from before a crash: nobody runs that brain now. Void it.
            self._publish_claim(sid, "offline")
            return
        self._rebalance()

    def _status(self, topic: str, data: bytes) -> DeviceStatus | None:
        try:
            status = DeviceStatus.model_validate_json(data)
        except ValidationError as exc:
            self.counts.bad_status += 1
            log.warning("worker %s: bad status on %s: %s", self.worker_id, topic, exc)
            return None
        if topic.split("/")[3] != status.device_id:
            self.counts.bad_status += 1
            log.warning("worker %s: status on %s names %s", self.worker_id, topic, status.device_id)
            return None
        return status

    def live_workers(self) -> list[str]:
        """The workers whose pool status says online, this one always included."""
        live = {w for w, state in self.members.items() if state == "online"}
        if not self._closing:
            live.add(self.worker_id)
        else:
            live.discard(self.worker_id)
        return sorted(live)

    def target(self) -> list[str]:
        """The stores this worker should run, as it sees the pool now."""
        if self._closing:
            return []
        if self.slot is not None:
            return self.slot.stores(self.stores)
        return assign(self.stores, self.live_workers())[self.worker_id]

    def holders(self, store_id: str) -> list[str]:
        """Other live workers whose claim on ``store_id`` stands."""
        live = set(self.live_workers())
        claims = self.claims.get(store_id, {})
        return sorted(
            w
            for w, state in claims.items()
            if state == "online" and w in live and w != self.worker_id
        )

    def _rebalance(self) -> None:
        if not self._settled:
            return
        target = set(self.target())
        for sid in sorted(set(self.owned) - target):
            self._release(sid)
        for sid in sorted(target - set(self.owned)):
            if self._leaving:
                break
            held_by = self.holders(sid)
            if held_by:
                log.info("worker %s: store %s waits for %s", self.worker_id, sid, held_by)
                continue
            self._acquire(sid)

    # --- stores ---

    def _ledger(self, sid: str) -> Ledger:
        """The store's ledger, opened on first use (by either thread) and kept."""
        with self._ledgers_lock:
            ledger = self._ledgers.get(sid)
            if ledger is None:
                ledger = self._ledgers[sid] = self.open_ledger(sid)
            return ledger

    def _journal(self, topic: str, data: bytes) -> None:
        """Write a brain input ahead of its acknowledgement (network thread; see MqttTransport).

        Raises if the ledger cannot take it: the message is then not acknowledged.
        """
        sid = brain_input_store(topic)
        if sid is None or sid not in self.stores or len(data) > MAX_PAYLOAD_BYTES:
            return  # not a brain's input (the inbox refuses what is too large unread)
        self._ledger(sid).journal(topic, data, event_time_of(data))

    def _acquire(self, sid: str) -> None:
        store = self.stores[sid]
        ledger = self._ledger(sid)
        group = None if self.persistent else share_group(self.pool, sid)
        view = StoreView(self.serial, self.mqtt, group, outbox=ledger)
        resent = view.resend()  # decisions a dead brain published but the broker never got
        brain = StoreBrain(store, view, ledger, settings=self.settings, service_id=self.worker_id)
        owned = _Owned(store, view, brain, ledger)
        # Rebuilds open carts from the ledger, subscribes, claims the store. With a
        # journal to replay, the clock is left back: the replay moves it on.
        brain.start(resume_clock=ledger.journal_latest_s() is None)
        tracks = TOPICS["tracks"]
        view.subscribe(tracks.filter(sid), lambda t, d: self._heartbeat(owned, d), tracks.qos)
        self.owned[sid] = owned
        # Read only now that every callback is in place: what the journal gets from
        # here on is also delivered live (a message both ways is dropped as a repeat).
        journal = ledger.journal_rows()
        if journal:
            with brain.replaying():
                view.replay(journal)
            owned.replayed = _handled(brain)
        self.counts.acquired += 1
        self.counts.replayed += len(journal)
        self.counts.resent += resent
        log.info(
            "worker %s took store %s (%d sessions from the ledger, %d journaled messages "
            "replayed, %d decisions sent again, %d events undecided)",
            self.worker_id,
            sid,
            len(brain.book.sessions),
            len(journal),
            resent,
            brain.stats()["pending_events"],
        )
        self._changed.set()

    def _release(self, sid: str) -> None:
        owned = self.owned.pop(sid)
        owned.view.close()  # after the UNSUBACK no more of this store's messages come
        self.serial.submit(self._finish_release, sid, owned)  # after those already queued
        self._changed.set()

    def _finish_release(self, sid: str, owned: _Owned) -> None:
        self.counts.events[sid] += _handled(owned.brain) - owned.replayed
        if not owned.view.drain_outbox(_DRAIN_OUTBOX_S):
            log.warning(
                "worker %s: store %s handed back with decisions unacknowledged", self.worker_id, sid
            )
        owned.brain.close()  # publishes the claim offline: the next owner may start
        # The ledger stays open (closed with the worker): the journal may still write to it.
        self.counts.released += 1
        log.info("worker %s handed store %s back", self.worker_id, sid)
        if not self._closing:
            self._rebalance()

    def _heartbeat(self, owned: _Owned, data: bytes) -> None:
        """Tick a brain with its store's positioning time (event time, not the wall clock)."""
        t = event_time_of(data)
        if t >= owned.last_tick_s + _TICK_EVERY_S and owned.store.store_id in self.owned:
            owned.last_tick_s = t
            owned.brain.tick(t)
            owned.view.clear_outbox()
            clock = owned.brain.clock_s
            if clock >= owned.last_prune_s + _PRUNE_EVERY_S:
                owned.last_prune_s = clock
                owned.ledger.prune_journal(clock - self.journal_window_s)

    # --- publishing ---

    def _publish_member(self, state: str) -> None:
        status = DeviceStatus(
            id=f"{self.worker_id}.member.{time.time_ns()}",
            event_time_s=max(time.time(), _EPOCH_FLOOR_S),
            device_id=self.worker_id,
            state="online" if state == "online" else "offline",
        )
        publish(self.serial, self.pool, status, kind="worker")

    def _publish_claim(self, sid: str, state: str) -> None:
        status = DeviceStatus(
            id=f"{self.worker_id}.claim.{time.time_ns()}",
            event_time_s=max(time.time(), _EPOCH_FLOOR_S),
            device_id=self.worker_id,
            state="online" if state == "online" else "offline",
        )
        publish(self.serial, sid, status, kind="brain")


def _handled(brain: StoreBrain) -> int:
    """Messages a brain's inbox took in, used or refused."""
    if brain.inbox is None:
        return 0
    return sum(brain.inbox.accepted.values()) + sum(brain.inbox.rejected.values())


def default_worker_id() -> str:
    """``<host>-<pid>``, made safe as a topic segment."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}"


def run_worker(
    broker_url: str,
    store_files: Sequence[str | Path],
    *,
    worker_id: str | None = None,
    pool: str = "chain",
    slot: StaticSlot | None = None,
    db: str = DEFAULT_DB,
    stats_out: str | Path | None = None,
    settle_s: float = 1.0,
    seconds: float | None = None,
    out: TextIO | None = None,
    session_expiry_s: int = 0,
) -> dict[str, object]:
    """Run one worker until SIGTERM/SIGINT (or ``seconds``); returns its final stats."""
    stores = [load_store(f) for f in store_files]
    if not stores:
        raise ValueError("give at least one --stores file")
    worker = Worker(
        broker_url,
        stores,
        ledger_opener(db, [s.store_id for s in stores]),
        worker_id=worker_id or default_worker_id(),
        pool=pool,
        slot=slot,
        settle_s=settle_s,
        session_expiry_s=session_expiry_s,
    )
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        worker.start()
        _say(out, f"worker {worker.worker_id} joined pool {pool} ({len(stores)} stores known)")
        deadline = time.monotonic() + seconds if seconds is not None else None
        next_stats = 0.0
        while not stop.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            changed = worker.wait_changed(min(0.5, left) if left is not None else 0.5)
            if changed or (stats_out is not None and time.monotonic() >= next_stats):
                # read on the worker's thread, so it counts what was queued before it
                stats = worker.stats()
                next_stats = time.monotonic() + _STATS_EVERY_S
                if changed:
                    _say(out, f"worker {worker.worker_id} runs {stats.get('stores_now')}")
                if stats:
                    _write_stats(stats_out, stats)
    finally:
        worker.close()
        restore()
    final = worker.stats()
    _write_stats(stats_out, final)
    _say(out, f"worker {worker.worker_id} stopped after {final['events']} events")
    return final


def _write_stats(path: str | Path | None, stats: dict[str, object]) -> None:
    if path is None:
        return
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(stats, indent=1) + "\n")
    tmp.replace(target)


def _say(out: TextIO | None, line: str) -> None:
    if out is not None:
        print(line, file=out, flush=True)
