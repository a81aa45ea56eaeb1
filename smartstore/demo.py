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
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import uvicorn

from checkout.api import create_app
from checkout.brain import BrainSettings, StoreBrain
from checkout.ledger import Ledger
from iot.broker import EmbeddedBroker
from iot.mqtt import MqttTransport
from iot.bus import SerialTransport
from iot.shelf import ShelfAdapter
from iot.store import Store, load_store
from iot.topics import TOPICS
from sim.scenario import load_scenario
from sim.scoring import TrueVisit, format_table, score
from sim.twin import Twin

__all__ = ["run_demo"]


def run_demo(
    scenario_path: str | Path,
    *,
    broker_url: str | None = None,
    seconds: float | None = None,
    speed: float = 1.0,
    port: int = 8000,
    db_path: str | Path = "smartstore-demo.sqlite",
    out: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Run the store until ``seconds`` of wall time pass or the scenario ends."""
    scenario = load_scenario(scenario_path)
    store = load_store(scenario.store)
    twin = Twin(store, scenario)
    stop = threading.Event()
    _stop_on_signals(stop)
    with ExitStack() as stack:
        if broker_url is None:
            broker = stack.enter_context(EmbeddedBroker())
            broker_url = broker.url
            print(f"embedded MQTT broker at {broker_url}", file=out)
        clock = _WallMappedClock(twin.start_s, speed)
        ledger = Ledger(str(db_path))
        stack.callback(ledger.close)
        brain_tx = _service_transport(stack, store, broker_url, "brain", "brain", clock)
        brain = StoreBrain(store, brain_tx, ledger, settings=BrainSettings())
        brain.start()
        stack.callback(brain_tx.submit, brain.close)
        edge_tx = _service_transport(stack, store, broker_url, "shelf", "shelf-adapter", clock)
        ShelfAdapter(store, edge_tx, now=clock).start()
        _start_api(stack, create_app(ledger, store), port, out)
        devices_tx = MqttTransport(broker_url, f"{store.store_id}-twin", now=clock,
                                   status_topic=TOPICS["status"].topic(store.store_id, "twin", "sim"))
        stack.callback(devices_tx.close)
        print(f"store {store.store_id!r}: {len(twin.truth.visits)} visits planned, "
              f"speed x{speed:g}; Ctrl-C stops", file=out)
        now = _run_loop(twin, devices_tx, brain_tx, brain, clock, seconds, stop, out)
        brain_tx.drain()
        stats = _snapshot(brain_tx, brain)
        receipts = list(brain.receipts)
    # Score the visits that had time to finish: exited at least the receipt grace ago.
    done = [v for v in twin.truth.visits if v.exited_s <= now - 2.0]
    metrics = score([TrueVisit(v.token, v.exited_s, v.basket) for v in done], receipts)
    print("\nreceipt accuracy for the visits that finished:", file=out)
    print(format_table(metrics), file=out)
    return {"metrics": metrics, "brain": stats}


class _WallMappedClock:
    """Maps wall time onto the scenario's event time (live demo only)."""

    def __init__(self, start_s: float, speed: float) -> None:
        self.start_s, self.speed = start_s, speed
        self.wall0 = time.monotonic()

    def __call__(self) -> float:
        return self.start_s + (time.monotonic() - self.wall0) * self.speed


def _service_transport(stack: ExitStack, store: Store, url: str, kind: str, service_id: str,
                       clock: _WallMappedClock) -> SerialTransport:
    inner = MqttTransport(url, f"{store.store_id}-{service_id}", now=clock,
                          status_topic=TOPICS["status"].topic(store.store_id, service_id, kind))
    serial = SerialTransport(inner, service_id)
    stack.callback(serial.close)
    return serial


def _start_api(stack: ExitStack, app: Any, port: int, out: TextIO) -> None:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError(f"the HTTP API could not start on 127.0.0.1:{port}; is the port taken? "
                           "pick another with --port")
    print(f"HTTP API at http://127.0.0.1:{port} (try /sessions, /receipts)", file=out)

    def stop_api() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    stack.callback(stop_api)


def _run_loop(twin: Twin, devices_tx: MqttTransport, brain_tx: SerialTransport, brain: StoreBrain,
              clock: _WallMappedClock, seconds: float | None, stop: threading.Event,
              out: TextIO) -> float:
    wall_end = time.monotonic() + seconds if seconds is not None else float("inf")
    next_summary = time.monotonic() + 5.0
    now = twin.start_s
    while not stop.is_set() and time.monotonic() < wall_end and now < twin.end_s:
        now = min(clock(), twin.end_s)
        twin.advance(devices_tx, now)
        brain_tx.submit(brain.tick, now)
        if time.monotonic() >= next_summary:
            next_summary += 5.0
            _print_summary(twin, brain_tx, brain, now, out)
        stop.wait(0.05)
    return now


def _print_summary(twin: Twin, brain_tx: SerialTransport, brain: StoreBrain, now: float,
                   out: TextIO) -> None:
    p = twin.progress(now)
    s = _snapshot(brain_tx, brain)
    print(f"[{now - twin.start_s:7.1f} s] in store {p['in_store']:3d}  exited {p['exited']:3d}/"
          f"{p['visits']}  receipts {s.get('receipts', 0)}  flagged {s.get('review_flags', 0)}  "
          f"dead letters {sum(s.get('dead_letters', {}).values()) if isinstance(s.get('dead_letters'), dict) else 0}",
          file=out, flush=True)


def _snapshot(brain_tx: SerialTransport, brain: StoreBrain) -> dict[str, Any]:
    """Read the brain's counters on its own thread, so they are consistent."""
    box: dict[str, Any] = {}
    brain_tx.submit(lambda: box.update(brain.stats()))
    brain_tx.drain(timeout_s=5)
    return box


def _stop_on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
