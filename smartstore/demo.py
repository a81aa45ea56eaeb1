"""Composition root for ``smartstore demo``: a whole store, live, on one machine.

Start order: broker (embedded unless a URL is given) → ledger → store brain →
shelf adapter (edge) → HTTP API → the twin's devices. Stop is the reverse,
on one stop event (``--seconds`` elapsed, the scenario ended, or Ctrl-C).
Each service has its own MQTT connection and runs on its own worker thread
(``SerialTransport``), exactly as separate processes would.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from checkout.api import create_app
from checkout.auth import AccountBook
from checkout.brain import BrainSettings, StoreBrain
from checkout.database import beside, files_beside, reset_database
from checkout.device_alerts import DeviceAlerts
from checkout.devices import DeviceHealth
from checkout.ledger import Ledger
from checkout.live import LiveHub
from checkout.pricebook import PriceBook
from iot.broker import EmbeddedBroker
from iot.bus import SerialTransport, publish
from iot.mqtt import MqttTransport
from iot.payloads import Receipt
from iot.shelf import ShelfAdapter
from iot.store import Store, load_store
from iot.topics import TOPICS
from sim.scenario import load_scenario
from sim.scoring import TrueVisit, format_table, score
from sim.twin import Twin
from smartstore.demo_accounts import seed_demo_accounts
from smartstore.operations import StoreOperations
from vision.snapshots import EvidenceSnapshotter

__all__ = ["DemoResult", "run_demo"]


def run_demo(
    scenario_path: str | Path,
    *,
    broker_url: str | None = None,
    seconds: float | None = None,
    speed: float = 1.0,
    port: int = 8000,
    db_path: str | Path = "smartstore-demo.sqlite",
    out: TextIO = sys.stdout,
    positioning: str = "cameras",
    interactions: str = "cameras",
    accounts_out: str | Path | None = None,
) -> DemoResult:
    """Run the store until ``seconds`` of wall time pass or the scenario ends.

    ``positioning``/``interactions`` as for ``smartstore eval``: by default the
    twin's rendered ceiling and shelf cameras go through the edge vision
    pipelines. Those cost CPU: when this machine cannot render and detect at
    ``speed``, event time slows down to what it can (the summary lines say the
    speed reached), rather than letting positions fall behind the shelves.
    The demo's accounts and gate keys go to ``accounts_out`` (default: beside
    the ledger, ``*.accounts.json``, readable by its owner only).
    """
    scenario = load_scenario(scenario_path)
    store = load_store(scenario.store)
    twin = Twin(store, scenario, positioning_feed=positioning == "simulated")
    stop = threading.Event()
    with ExitStack() as stack:
        stack.callback(_stop_on_signals(stop))
        if broker_url is None:
            broker = stack.enter_context(EmbeddedBroker())
            broker_url = broker.url
            print(f"embedded MQTT broker at {broker_url}", file=out)
        clock = _WallMappedClock(twin.start_s, speed)
        paced = positioning == "cameras" or interactions == "cameras"
        # The twin replays the same visits every run, so each demo starts a fresh ledger.
        # (SQLite: the files; PostgreSQL: the schema named by ?schema=, which it requires.)
        for suffix in ("", ".ops.sqlite", ".accounts.sqlite", ".prices.sqlite"):
            reset_database(beside(db_path, suffix) if suffix else db_path)
        ledger = Ledger(db_path)
        truth_path = files_beside(db_path, ".truth.json")
        twin.truth.write_json(truth_path)
        print(f"ledger at {ledger.path}, the twin's ground truth at {truth_path}", file=out)
        stack.callback(ledger.close)
        prices = PriceBook(store, beside(db_path, ".prices.sqlite"))
        stack.callback(prices.close)
        brain, brain_tx = _start_brain(
            stack, store, broker_url, clock, ledger=ledger, prices=prices
        )
        edge_tx = _service_transport(
            stack, store, broker_url, clock, kind="shelf", service_id="shelf-adapter"
        )
        adapter = ShelfAdapter(store, edge_tx, now=clock)
        edge_tx.submit(adapter.start)
        ops, ops_tx = _start_operations(stack, twin, broker_url, clock, str(db_path))
        health, health_tx = _start_device_health(stack, store, broker_url, clock)
        for tx in (brain_tx, edge_tx, ops_tx, health_tx):
            tx.drain()
        accounts = _demo_accounts(stack, twin, str(db_path), accounts_out, out)
        api_tx = _service_transport(stack, store, broker_url, clock, kind="api", service_id="api")
        hub = _live_hub(api_tx, store, clock)
        _start_api(
            stack,
            create_app(
                ledger,
                store,
                accounts,
                inventory=ops.inventory,
                cases=ops.cases,
                footfall=(ops.footfall, ops.heat),
                now=clock,
                publish_entry=lambda entry: publish(api_tx, store.store_id, entry),
                devices=health,
                prices=prices,
                live=hub,
                evidence_dir=files_beside(db_path, ".evidence"),
            ),
            port,
            out,
        )
        stack.callback(hub.close)  # end the event streams first, or the server waits on them
        devices_tx = MqttTransport(
            broker_url,
            f"{store.store_id}-twin",
            now=clock,
            status_topic=TOPICS["status"].topic(store.store_id, "twin", "sim"),
        )
        stack.callback(devices_tx.close)
        print(
            f"store {store.store_id!r}: {len(twin.truth.visits)} visits planned, "
            f"speed x{speed:g}; Ctrl-C stops",
            file=out,
        )
        # case evidence: frames kept briefly at the edge, written only blurred
        snapshots = EvidenceSnapshotter(
            twin.store, devices_tx, files_beside(db_path, ".evidence"), now=clock
        )
        snapshots.start()
        vision = _vision_parts(twin, devices_tx, (positioning, interactions), snapshots, out)
        live = _Live(
            twin, devices_tx, (brain_tx, ops_tx), brain, ops, adapter, clock, vision, paced
        )
        now = live.run(seconds, stop, out)
        brain_tx.drain()
        stats = live.brain_stats()
        receipts = list(brain.receipts)
    # Score the visits that had time to finish: exited at least the receipt grace ago.
    done = [v for v in twin.truth.visits if v.exited_s <= now - 2.0]
    metrics = score([TrueVisit(v.token, v.exited_s, v.basket) for v in done], receipts)
    print("\nreceipt accuracy for the visits that finished:", file=out)
    print(format_table(metrics), file=out)
    return DemoResult(metrics, stats, receipts)


@dataclass(frozen=True)
class DemoResult:
    """What a demo run ends with: scores of the finished visits, counters, receipts."""

    metrics: dict[str, float | int]
    brain_stats: dict[str, int]
    receipts: list[Receipt]


class _WallMappedClock:
    """Maps wall time onto the scenario's event time (live demo only).

    ``hold(t)``: event time has only reached ``t`` (the cameras are behind);
    the mapping restarts there, so time never runs ahead of the cameras.
    """

    def __init__(self, start_s: float, speed: float) -> None:
        self.start_s, self.speed = start_s, speed
        self.wall0 = time.monotonic()

    def __call__(self) -> float:
        return self.start_s + (time.monotonic() - self.wall0) * self.speed

    def hold(self, event_time_s: float) -> None:
        if self() > event_time_s + _PACED_STEP_S:
            self.start_s, self.wall0 = event_time_s, time.monotonic()


_PACED_STEP_S = 0.1  # event time a paced demo step covers (the shelf cameras' frame period)


def _vision_parts(
    twin: Twin,
    transport: MqttTransport,
    modes: tuple[str, str],
    snapshots: Any,
    out: TextIO,
) -> list[Any]:
    """The camera paths the demo runs (they publish over the devices' connection)."""
    from smartstore.cameras import CameraPositioning, ShelfCameras

    positioning, interactions = modes
    parts: list[Any] = []
    if positioning == "cameras":
        parts.append(CameraPositioning(twin, transport, snapshots=snapshots))
        print("ceiling cameras: rendered, tracked by the edge pipeline", file=out)
    if interactions == "cameras":
        parts.append(ShelfCameras(twin, transport, snapshots=snapshots))
        print("shelf cameras: rendered, hands and products read by the edge pipeline", file=out)
    return parts


def _start_operations(
    stack: ExitStack, twin: Twin, url: str, clock: _WallMappedClock, db_path: str
) -> tuple[StoreOperations, SerialTransport]:
    """Inventory, RFID gates, footfall and shrink cases on their own connection."""
    store = twin.store
    ops_tx = _service_transport(stack, store, url, clock, kind="ops", service_id="ops")
    ops = StoreOperations(
        store,
        ops_tx,
        beside(db_path, ".ops.sqlite"),
        now=clock,
        evidence_dir=files_beside(db_path, ".evidence"),  # retention deletes snapshots there
    )
    ops_tx.submit(ops.start)
    ops_tx.submit(ops.count_shelves, store.planogram, twin.start_s)  # the morning count
    stack.callback(ops_tx.submit, ops.close)
    return ops, ops_tx


def _start_brain(
    stack: ExitStack,
    store: Store,
    url: str,
    clock: _WallMappedClock,
    *,
    ledger: Ledger,
    prices: PriceBook,
) -> tuple[StoreBrain, SerialTransport]:
    """The store brain on its own connection; receipts priced by the manager's price book."""
    tx = _service_transport(stack, store, url, clock, kind="brain", service_id="brain")
    brain = StoreBrain(store, tx, ledger, settings=BrainSettings(), prices=prices)
    # Start and stop each service on its own worker thread, like its messages.
    tx.submit(brain.start)
    stack.callback(tx.submit, brain.close)
    return brain, tx


def _start_device_health(
    stack: ExitStack, store: Store, url: str, clock: _WallMappedClock
) -> tuple[DeviceHealth, SerialTransport]:
    """Device health on its own connection: it reads every shelf batch, so keep it off ops'."""
    tx = _service_transport(stack, store, url, clock, kind="ops", service_id="devices")
    services = {"brain": "brain", "shelf-adapter": "shelf", "ops": "ops", "devices": "ops"}
    health = DeviceHealth(store, tx, now=clock, services=services | {"twin": "sim", "api": "api"})
    alerts = DeviceAlerts(store, tx, health)  # device_health alerts on the bus
    tx.submit(alerts.start)
    stack.callback(tx.submit, health.close)
    stopped = threading.Event()

    def tick() -> None:  # silence is judged on the store's clock: tick it once a second
        while not stopped.wait(1.0):
            tx.submit(alerts.tick, clock())

    threading.Thread(target=tick, name="device-alerts", daemon=True).start()
    stack.callback(stopped.set)
    return health, tx


def _demo_accounts(
    stack: ExitStack, twin: Twin, db_path: str, out_path: str | Path | None, out: TextIO
) -> AccountBook:
    """The account book, with the demo's people and gate keys (see smartstore.demo_accounts)."""
    book = AccountBook(beside(db_path, ".accounts.sqlite"))
    stack.callback(book.close)
    path = Path(out_path) if out_path is not None else files_beside(db_path, ".accounts.json")
    made = seed_demo_accounts(book, twin.store, list(twin.truth.visits), path)
    names = ", ".join(
        [made[r]["username"] for r in ("admin", "manager", "loss_prevention")]
        + [s["username"] for s in made["shoppers"]]
    )
    print(f"accounts {names}: passwords and gate keys in {path}", file=out)
    return book


def _live_hub(api_tx: SerialTransport, store: Store, clock: _WallMappedClock) -> LiveHub:
    """The web pages' live updates (server-sent events), heard on the API's connection."""
    hub = LiveHub()
    hub.attach(api_tx, store.store_id, now=clock)
    return hub


def _service_transport(
    stack: ExitStack,
    store: Store,
    url: str,
    clock: _WallMappedClock,
    *,
    kind: str,
    service_id: str,
) -> SerialTransport:
    """One service's own MQTT connection (with its status and Last Will), serialised."""
    inner = MqttTransport(
        url,
        f"{store.store_id}-{service_id}",
        now=clock,
        status_topic=TOPICS["status"].topic(store.store_id, service_id, kind),
    )
    serial = SerialTransport(inner, service_id)
    stack.callback(serial.close)
    return serial


def _start_api(stack: ExitStack, app: Any, port: int, out: TextIO) -> None:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError(
            f"the HTTP API could not start on 127.0.0.1:{port}; is the port taken? "
            "pick another with --port"
        )
    if port == 0:  # the system chose one: say which
        port = int(server.servers[0].sockets[0].getsockname()[1])
    print(f"web app and API at http://127.0.0.1:{port}/ (OpenAPI at /docs)", file=out)

    def stop_api() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    stack.callback(stop_api)


@dataclass
class _Live:
    """The running parts the demo loop drives and reports on."""

    twin: Twin
    devices_tx: MqttTransport
    service_txs: tuple[SerialTransport, SerialTransport]  # the brain's, store operations'
    brain: StoreBrain
    ops: StoreOperations
    adapter: ShelfAdapter
    clock: _WallMappedClock
    vision: list[Any]
    paced: bool

    def run(self, seconds: float | None, stop: threading.Event, out: TextIO) -> float:
        """Publish the twin's devices in real time and tick the brain; returns the last time."""
        wall0 = time.monotonic()
        wall_end = wall0 + seconds if seconds is not None else float("inf")
        next_summary = time.monotonic() + 5.0
        now = self.twin.start_s
        while not stop.is_set() and time.monotonic() < wall_end and now < self.twin.end_s:
            target = min(self.clock(), self.twin.end_s)
            # Paced (cameras on): at most one camera step at a time, so the tracks and
            # sightings keep up with the shelves even when the CPU cannot keep the speed.
            now = min(target, now + _PACED_STEP_S) if self.paced else target
            self.twin.advance(self.devices_tx, now)
            for part in self.vision:
                part.advance(now)
            self.brain_tx.submit(self.brain.tick, now)
            self.service_txs[1].submit(self.ops.tick, now)
            if self.paced:
                self.clock.hold(now)
            if time.monotonic() >= next_summary:
                next_summary += 5.0
                reached = (now - self.twin.start_s) / max(time.monotonic() - wall0, 1e-9)
                print(f"{self.summary(now)}  speed x{reached:.1f}", file=out, flush=True)
            if now >= target:
                stop.wait(0.05)
        return now

    def summary(self, now: float) -> str:
        p = self.twin.progress(now)
        s = self.brain_stats()
        refused = s.get("dead_letters", 0) + sum(self.adapter.inbox.rejected.values())
        return (
            f"[{now - self.twin.start_s:7.1f} s] in store {p['in_store']:3d}  "
            f"exited {p['exited']:3d}/{p['visits']}  receipts {s.get('receipts', 0)}  "
            f"flagged {s.get('receipts_needing_review', 0)}  "
            f"shelf events {self.adapter.published}  dead letters {refused}"
        )

    @property
    def brain_tx(self) -> SerialTransport:
        return self.service_txs[0]

    def brain_stats(self) -> dict[str, int]:
        """Read the brain's counters on its own thread, so they are consistent."""
        box: dict[str, int] = {}
        self.brain_tx.submit(lambda: box.update(self.brain.stats()))
        self.brain_tx.drain(timeout_s=5)
        return box


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Ctrl-C / SIGTERM set the stop event; returns what restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
