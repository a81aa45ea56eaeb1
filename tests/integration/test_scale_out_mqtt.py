"""Scale-out on a real Mosquitto: shared stores, a takeover, edge nodes, a bridge, the bench.

Workers and edge nodes run in this process, each on its own MQTT connection
(as separate processes would), against the shared Mosquitto at
127.0.0.1:1883 with store ids and a pool name of this test alone. The bridge
test starts two Mosquittos of its own on free ports. The retained statuses a
test leaves behind (pool members, claims) are cleared at its end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from brokers import mosquitto_url
from waiting import wait_for

from iot.bus import publish
from iot.mqtt import MqttTransport
from iot.payloads import (
    GateEntry,
    PlateSamples,
    Receipt,
    SessionEvent,
    ShelfEvent,
    ShelfSamples,
)
from iot.store import Store, load_store
from smartstore.bench_bus import BusBench, run_bus_bench
from smartstore.bridge import bridge_text
from smartstore.bus_traffic import store_file_as
from smartstore.edge import EdgeNode
from smartstore.worker import Worker, claim_topic, ledger_opener, member_topic
from tests.db_backends import BACKENDS, POSTGRES_URL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STORE_FILE = ROOT / "stores" / "demo.yaml"
T0 = 1.8e9


@pytest.fixture
def url() -> str:
    return mosquitto_url()


@pytest.fixture
def retained(url: str, sid: str) -> Iterator[list[str]]:
    """Topics whose retained message is cleared after the test."""
    topics: list[str] = []
    yield topics
    cleaner = MqttTransport(url, f"{sid}-cleaner", connect_timeout_s=5)
    for topic in topics:
        cleaner.publish(topic, b"", 1, True)
    cleaner.flush(5.0)
    cleaner.close()


def _stores(tmp_path: Path, sid: str, n: int) -> list[Store]:
    return [
        load_store(store_file_as(STORE_FILE, f"{sid}-{k}", tmp_path / f"{sid}-{k}.yaml"))
        for k in range(n)
    ]


class Sessions:
    """Hears the brains' session events: per store, which worker opened what, in order."""

    def __init__(self, url: str, sid: str, stores: list[Store]) -> None:
        self.opened: dict[str, list[tuple[str, str]]] = defaultdict(list)  # store -> (worker, s)
        self.lock = threading.Lock()
        self.tx = MqttTransport(url, f"{sid}-sessions", connect_timeout_s=5)
        for store in stores:
            self.tx.subscribe(f"smartstore/{store.store_id}/brain/+/sessions", self._heard, 1)

    def _heard(self, topic: str, data: bytes) -> None:
        event = SessionEvent.model_validate_json(data)
        if event.state == "open":
            with self.lock:
                self.opened[topic.split("/")[1]].append((topic.split("/")[3], event.token))

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.opened.values())


def _pool(
    url: str, sid: str, stores: list[Store], retained: list[str], ledgers: str
) -> Callable[[str], Worker]:
    opener = ledger_opener(ledgers, [])
    retained += [member_topic(sid, w) for w in ("wa", "wb")]
    retained += [claim_topic(s.store_id, w) for s in stores for w in ("wa", "wb")]

    def make(worker_id: str) -> Worker:
        worker = Worker(
            url, stores, opener, worker_id=worker_id, pool=sid, settle_s=0.2, connect_timeout_s=5
        )
        worker.start()
        return worker

    return make


def _owned(*workers: Worker) -> list[set[str]]:
    return [set(w.stats()["stores_now"]) for w in workers]  # type: ignore[arg-type]


def test_two_workers_share_the_stores_each_store_on_one_worker_in_order(
    url: str, sid: str, tmp_path: Path, retained: list[str]
) -> None:
    stores = _stores(tmp_path, sid, 4)
    ids = {s.store_id for s in stores}
    make = _pool(url, sid, stores, retained, str(tmp_path / "ledgers" / "{store}.sqlite"))
    heard = Sessions(url, sid, stores)
    a = make("wa")
    try:
        assert wait_for(lambda: _owned(a) == [ids], 10), "one worker alone runs every store"
        b = make("wb")
        try:
            # b joins: a hands two stores over, b takes them once a's claims say offline
            assert wait_for(lambda: sorted(map(len, _owned(a, b))) == [2, 2], 10), _owned(a, b)
            mine_a, mine_b = _owned(a, b)
            assert mine_a | mine_b == ids and not mine_a & mine_b
            feed = MqttTransport(url, f"{sid}-gates", connect_timeout_s=5)
            for i in range(12):  # the stores' scan-ins interleaved, as on a real bus
                for store in stores:
                    token = f"{store.store_id}-tok-{i:02d}"
                    entry = GateEntry(
                        id=f"e{i}", event_time_s=T0 + i, device_id="gate-in", token=token
                    )
                    publish(feed, store.store_id, entry)
            assert wait_for(lambda: heard.count() == 48, 10), heard.count()
            feed.close()
            for store in stores:
                sid_k = store.store_id
                opened = heard.opened[sid_k]
                assert {w for w, _ in opened} == {"wa" if sid_k in mine_a else "wb"}
                assert [t for _, t in opened] == [f"{sid_k}-tok-{i:02d}" for i in range(12)]
            counts = [b.stats()["events_by_store"], a.stats()["events_by_store"]]
            for store in stores:
                handled_by = [c for c in counts if c.get(store.store_id, 0) > 0]  # type: ignore[union-attr]
                assert len(handled_by) == 1, store.store_id
        finally:
            b.close()
    finally:
        a.close()
        heard.tx.close()


@pytest.fixture(params=BACKENDS)
def ledgers(request: pytest.FixtureRequest, tmp_path: Path, sid: str) -> Iterator[str]:
    """Where the pool's ledgers are: SQLite files both workers open, or PostgreSQL schemas."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledgers" / "{store}.sqlite")
        return
    from psycopg import sql

    admin = request.getfixturevalue("postgres_admin")
    yield f"{POSTGRES_URL}?schema=l_{{store}}&options=-c%20synchronous_commit%3Doff"
    for k in range(4):
        schema = sql.Identifier(f"l_{sid}-{k}")
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))


def test_a_dead_workers_stores_are_taken_over_with_their_open_visits(
    url: str, sid: str, tmp_path: Path, retained: list[str], ledgers: str
) -> None:
    stores = _stores(tmp_path, sid, 4)
    ids = {s.store_id for s in stores}
    make = _pool(url, sid, stores, retained, ledgers)
    heard = Sessions(url, sid, stores)
    a, b = make("wa"), make("wb")
    try:
        assert wait_for(lambda: sorted(map(len, _owned(a, b))) == [2, 2], 10), _owned(a, b)
        victim = sorted(_owned(a)[0])[0]
        feed = MqttTransport(url, f"{sid}-gates", connect_timeout_s=5)
        entry = GateEntry(id="e1", event_time_s=T0, device_id="gate-in", token="before-crash")
        publish(feed, victim, entry)
        assert wait_for(lambda: heard.opened[victim] == [("wa", "before-crash")], 5)

        crashed = time.monotonic()
        a.abort()  # no DISCONNECT: the broker publishes a's Last Will
        assert wait_for(lambda: _owned(b) == [ids], 10), _owned(b)
        took_s = time.monotonic() - crashed
        brain = b.owned[victim].brain
        # the open visit was rebuilt from the store's ledger, not lost with the worker
        assert [s.token for s in brain.book.sessions.values()] == ["before-crash"]
        entry = GateEntry(id="e2", event_time_s=T0 + 5, device_id="gate-in", token="after-crash")
        publish(feed, victim, entry)
        assert wait_for(lambda: ("wb", "after-crash") in heard.opened[victim], 5)
        feed.close()
        assert took_s < 5.0
    finally:
        b.close()
        heard.tx.close()


# --- edge nodes ---


def _samples(store: Store, ctl: str, n: int, levels: dict[str, float], rng) -> ShelfSamples:
    plates = [
        PlateSamples(plate_id=p, weights_g=(lv + rng.normal(0, 2.0, 2)).tolist())
        for p, lv in levels.items()
    ]
    return ShelfSamples(
        id=f"{ctl}.b{n}", event_time_s=T0 + n / 10, device_id=ctl, sample_rate_hz=20, plates=plates
    )


def test_edge_nodes_each_settle_only_their_own_shelves(
    url: str, sid: str, tmp_path: Path, retained: list[str]
) -> None:
    store = _stores(tmp_path, sid, 1)[0]
    sk = store.store_id
    retained += [f"smartstore/{sk}/shelf/edge-{k}/status" for k in (1, 2)]
    events: list[ShelfEvent] = []
    watch = MqttTransport(url, f"{sk}-watch", connect_timeout_s=5)
    watch.subscribe(
        f"smartstore/{sk}/shelf/+/events",
        lambda t, d: events.append(ShelfEvent.model_validate_json(d)),
        1,
    )
    one = EdgeNode(url, store, ["shelf-g01"], edge_id="edge-1", connect_timeout_s=5)
    two = EdgeNode(url, store, ["shelf-g02"], edge_id="edge-2", connect_timeout_s=5)
    one.start()
    two.start()
    feed = MqttTransport(url, f"{sk}-shelves", connect_timeout_s=5)
    rng = np.random.default_rng(3)
    levels = {
        ctl: {
            p: 1500.0
            + sum(
                e.initial_units * store.items[e.sku].unit_weight_g for e in store.skus_on_plate(p)
            )
            for p in store.controller_plates[ctl]
        }
        for ctl in ("shelf-g01", "shelf-g02")
    }
    try:
        for n in range(60):  # 6 s; a unit leaves each controller's first plate at 2 s
            for ctl, lv in levels.items():
                if n == 20:
                    first = next(iter(lv))
                    sku = store.skus_on_plate(first)[0].sku
                    lv[first] -= store.items[sku].unit_weight_g
                publish(feed, sk, _samples(store, ctl, n, lv, rng))
        assert wait_for(lambda: len(events) >= 2, 10), events
        time.sleep(0.3)
        assert sorted(e.device_id for e in events) == ["shelf-g01", "shelf-g02"]
        assert one.stats()["shelf_events"] == 1 and two.stats()["shelf_events"] == 1
        assert one.clock_s == pytest.approx(T0 + 5.9)
    finally:
        for t in (feed, watch):
            t.close()
        one.close()
        two.close()


# --- the bridge ---


def _mosquitto_exe() -> str:
    found = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI must test the bridge: apt-get install mosquitto")
        pytest.skip("mosquitto is not installed; apt-get install mosquitto to test the bridge")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker(exe: str, conf: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    err = proc.stderr.read().decode() if proc.stderr else ""
    pytest.fail(f"mosquitto -c {conf} did not start: {err[-500:]}")


def test_the_bridge_forwards_events_to_the_centre_but_never_raw_samples(tmp_path: Path) -> None:
    exe = _mosquitto_exe()
    central_port, store_port = _free_port(), _free_port()
    central_conf = tmp_path / "central.conf"
    central_conf.write_text(f"listener {central_port} 127.0.0.1\nallow_anonymous true\n")
    store_conf = tmp_path / "store.conf"
    store = load_store(STORE_FILE)
    store_conf.write_text(
        f"listener {store_port} 127.0.0.1\nallow_anonymous true\n"
        + bridge_text(store, central_url=f"mqtt://127.0.0.1:{central_port}")
    )
    procs = [_broker(exe, central_conf, central_port), _broker(exe, store_conf, store_port)]
    made: list[MqttTransport] = []
    try:
        central = MqttTransport(f"mqtt://127.0.0.1:{central_port}", "central-watch")
        local = MqttTransport(f"mqtt://127.0.0.1:{store_port}", "store-side")
        made += [central, local]
        at_centre: list[str] = []
        central.subscribe("smartstore/#", lambda t, d: at_centre.append(t), 1)
        at_store: list[str] = []
        local.subscribe("smartstore/demo/brain/#", lambda t, d: at_store.append(t), 1)

        def event(k: int) -> ShelfEvent:
            return ShelfEvent(
                id=f"probe-{k}",
                event_time_s=T0 + k,
                device_id="shelf-g01",
                plate_id="g01-s1-p1",
                action="pick",
                delta_g=-522.0,
                started_s=T0 + k - 1,
                sku="SKU001",
                quantity=1,
                confidence=0.9,
                noise_g=2.0,
            )

        # the bridge connects a moment after its broker starts: probe until an event crosses
        k = 0
        while not any(t.endswith("/events") for t in at_centre) and k < 100:
            k += 1
            publish(local, "demo", event(k))
            time.sleep(0.1)
        assert any(t.endswith("/events") for t in at_centre), "no event crossed the bridge"
        raw = ShelfSamples(
            id="raw-1",
            event_time_s=T0,
            device_id="shelf-g01",
            sample_rate_hz=20,
            plates=[PlateSamples(plate_id="g01-s1-p1", weights_g=[1.0, 2.0])],
        )
        publish(local, "demo", raw)
        publish(local, "demo", event(1000))
        assert wait_for(lambda: "smartstore/demo/shelf/shelf-g01/events" in at_centre[-1:], 5)
        time.sleep(0.3)
        assert not any(t.endswith("/samples") for t in at_centre)
        # and what the workers decide centrally comes back to the store
        receipt = Receipt(
            id="r1",
            event_time_s=T0,
            device_id="w1",
            session_id="s-x",
            token="x",
            entered_s=T0 - 60,
            exited_s=T0,
            currency="EUR",
            lines=[],
            total_cents=0,
            needs_review=False,
        )
        publish(central, "demo", receipt)
        assert wait_for(lambda: "smartstore/demo/brain/w1/receipts" in at_store, 5)
    finally:
        for t in made:
            t.close()
        for p in procs:
            p.terminate()
            p.wait(timeout=5)


# --- the bench ---


def test_bench_bus_places_each_store_on_one_worker_and_reports_its_keys(tmp_path: Path) -> None:
    _mosquitto_exe()
    scenario = tmp_path / "small.yaml"
    scenario.write_text(
        f"store: {STORE_FILE}\nseed: 7\narrivals:\n  visits: 6\n  arrival_rate_per_min: 30.0\n"
    )
    bench = BusBench(
        stores=2,
        workers=2,
        seconds=3.0,
        warmup_s=10.0,
        seeds=1,
        scenario=scenario,
        cache_dir=tmp_path / "cache",
        settle_s=0.5,
    )
    report = run_bus_bench(bench)
    for key in ("events_per_s", "latency_p50_ms", "latency_p99_ms", "per_worker_events"):
        assert key in report
    assert report["each_store_one_worker"] is True
    assert report["stores_per_worker"] == {"w1": 1, "w2": 1}
    assert report["events"] > 0 and report["missing_outcomes"] == 0
    per_worker = report["per_worker_events"]
    assert isinstance(per_worker, dict) and all(n > 0 for n in per_worker.values())
