"""The ledger on a real store: WAL on SQLite, persistence, concurrent readers, brain restart.

The restart and reader cases run on an SQLite file and on PostgreSQL (see
tests/conftest.py for ``durable_db``).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from checkout.brain import StoreBrain
from checkout.ledger import Ledger, SessionRecord
from checkout.sessions import session_id_for
from iot.bus import LocalTransport, publish
from iot.payloads import CartEvent, GateEntry, GateExit, ShelfEvent, TrackBatch, TrackPoint
from iot.store import Store, load_store

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "stores" / "demo.yaml"
T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def store() -> Store:
    return load_store(DEMO)


def line(eid: str, sid: str = "s-a", delta: int = 1) -> CartEvent:
    return CartEvent(
        id=eid,
        event_time_s=T0,
        device_id="brain",
        session_id=sid,
        sku="SKU001",
        quantity_delta=delta,
        confidence=0.9,
        source_event_id="e",
    )


def test_file_ledger_is_wal_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.append(line("c1"))
    ledger.save_session(
        SessionRecord(
            session_id="s-a", token="a", state="open", entered_s=T0, entry_event_id="in-a"
        )
    )
    ledger.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = Ledger(path)
    assert again.cart("s-a") == {"SKU001": 1}
    assert not again.append(line("c1"))
    assert [s.session_id for s in again.open_sessions()] == ["s-a"]
    again.close()


def test_readers_in_other_threads_see_committed_lines(durable_db: str) -> None:
    ledger = Ledger(durable_db)
    errors: list[BaseException] = []
    totals: list[int] = []

    def read() -> None:
        try:
            for _ in range(50):
                totals.append(sum(ledger.cart("s-a").values()))
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for r in readers:
        r.start()
    for i in range(200):
        ledger.append(line(f"c{i}"))
    for r in readers:
        r.join()
    assert errors == []
    assert totals and all(0 <= n <= 200 for n in totals)
    assert ledger.cart("s-a") == {"SKU001": 200}
    ledger.close()


def _tracks(t: float, xy: tuple[float, float], rng: np.random.Generator, n: int) -> TrackBatch:
    x, y = np.asarray(xy) + rng.normal(0, 0.1, 2)
    return TrackBatch(
        id=f"tb-{n}",
        event_time_s=t,
        device_id="positioning",
        tracks=[TrackPoint(track_id="trk-a", x_m=float(x), y_m=float(y))],
    )


def _drive(brain: StoreBrain, bus: LocalTransport, rng, *, span, xy, events) -> None:
    """Publish 5 Hz positions at ``xy`` and the given (time, event) pairs, ticking the brain."""
    t0, t1 = span
    t, n = t0, int(t0 * 10)
    pending = sorted(events, key=lambda e: e[0])
    while t <= t1 + 1e-6:
        while pending and pending[0][0] <= t + 1e-6:
            publish(bus, "demo", pending.pop(0)[1])
        publish(bus, "demo", _tracks(T0 + t, xy(t), rng, n))
        brain.tick(T0 + t)
        t, n = round(t + 0.2, 6), n + 1


@pytest.mark.parametrize("stop", ["closed", "abandoned"])
def test_a_restart_mid_visit_loses_nothing_and_issues_one_receipt(
    durable_db: str, store, stop: str
) -> None:
    """The first brain stops cleanly, or is dropped unclosed mid-visit (as kill -9 leaves it)."""
    path = durable_db
    rng = np.random.default_rng(11)
    stand = (3.0, 3.0)  # in front of g01-s1-p1 (SKU001)

    def at_stand(t: float) -> tuple[float, float]:
        return (1.8, 0.6) if t < 2 else stand

    pick = ShelfEvent(
        id="pick-1",
        event_time_s=T0 + 6,
        device_id="shelf-g01",
        plate_id="g01-s1-p1",
        action="pick",
        delta_g=-1045.0,
        started_s=T0 + 5,
        sku="SKU001",
        quantity=2,
        confidence=0.9,
        noise_g=2.0,
    )
    entry = GateEntry(id="in-a", event_time_s=T0 + 1, device_id="gate-in", token="a")

    bus1, ledger1 = LocalTransport(), Ledger(path)
    brain1 = StoreBrain(store, bus1, ledger1)
    brain1.start()
    _drive(brain1, bus1, rng, span=(0.0, 8.0), xy=at_stand, events=[(1.0, entry), (6.0, pick)])
    sid = session_id_for("a")
    assert ledger1.cart(sid) == {"SKU001": 2}
    if stop == "closed":
        brain1.close()
        ledger1.close()
    # abandoned: nothing is closed; its connections stay open while the next brain runs

    bus2, ledger2 = LocalTransport(), Ledger(path)
    brain2 = StoreBrain(store, bus2, ledger2)
    brain2.start()
    assert brain2.book.get(sid) is not None and brain2.book.get(sid).track_id == "trk-a"
    assert brain2.clock_s >= T0 + 6
    put = ShelfEvent(
        id="put-1",
        event_time_s=T0 + 10,
        device_id="shelf-g01",
        plate_id="g01-s1-p1",
        action="put",
        delta_g=523.0,
        started_s=T0 + 9,
        sku="SKU001",
        quantity=1,
        confidence=0.9,
        noise_g=2.0,
    )
    exit_ = GateExit(id="out-1", event_time_s=T0 + 14, device_id="gate-out")

    def to_exit(t: float) -> tuple[float, float]:
        return stand if t < 12 else (14.2, 0.6)

    # the broker redelivers the pick after the restart: it must change nothing
    _drive(
        brain2,
        bus2,
        rng,
        span=(8.2, 20.0),
        xy=to_exit,
        events=[(8.4, pick), (10.0, put), (14.0, exit_)],
    )
    assert ledger2.cart(sid) == {"SKU001": 1}
    [receipt] = brain2.receipts
    assert [(x.sku, x.quantity) for x in receipt.lines] == [("SKU001", 1)]
    assert brain2.stats()["dead_letter.already decided"] == 1
    brain2.close()

    # a third start finds the visit receipted: nothing to redo
    bus3 = LocalTransport()
    brain3 = StoreBrain(store, bus3, ledger2)
    brain3.start()
    brain3.tick(T0 + 100)
    assert brain3.receipts == [] and len(ledger2.receipts()) == 1
    assert ledger2.receipt(receipt.id) == receipt
    brain3.close()
    ledger2.close()
    ledger1.close()  # idempotent where it was closed already
