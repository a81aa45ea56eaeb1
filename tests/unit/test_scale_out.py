"""Scale-out's pure parts: the store→worker plan, the bridge's topics, the edge's scope and the
bus bench's arithmetic. On a broker: tests/integration/test_scale_out_mqtt.py."""

from __future__ import annotations

import json
import math
import stat
from collections import Counter
from pathlib import Path

import pytest

from iot.broker_acl import DEVICE_KINDS
from iot.bus import LocalTransport
from iot.store import load_store
from iot.topics import TOPICS
from smartstore.bridge import LOCAL_ONLY, bridge_text, bridge_topics, write_bridge_config
from smartstore.bus_report import Heard, StoreRun, _fusion_latencies, _pct, _placement
from smartstore.bus_traffic import Recorded, store_file_as
from smartstore.cli import main
from smartstore.edge import DeviceScope, split_devices
from smartstore.partitions import assign, owner_of, parse_slot
from smartstore.worker import _StoreView, ledger_opener

ROOT = Path(__file__).resolve().parents[2]
STORE = load_store(ROOT / "stores" / "demo.yaml")
STORES = [f"s{k:02d}" for k in range(20)]


# --- assignment ---


@pytest.mark.parametrize(
    ("n_stores", "n_workers"), [(20, 1), (20, 2), (20, 3), (20, 7), (3, 5), (100, 6), (1, 1)]
)
def test_every_store_goes_to_exactly_one_worker_and_loads_differ_by_at_most_one(
    n_stores: int, n_workers: int
) -> None:
    stores = [f"store-{k}" for k in range(n_stores)]
    plan = assign(stores, [f"w{k}" for k in range(n_workers)])
    placed = Counter(s for share in plan.values() for s in share)
    assert set(placed) == set(stores) and set(placed.values()) == {1}
    loads = [len(share) for share in plan.values()]
    assert max(loads) <= math.ceil(n_stores / n_workers)
    assert max(loads) - min(loads) <= 1


def test_twenty_equal_stores_on_two_workers_split_ten_and_ten() -> None:
    plan = assign(STORES, ["worker-a", "worker-b"])
    assert sorted(len(s) for s in plan.values()) == [10, 10]


def test_every_process_computes_the_same_plan_whatever_the_order() -> None:
    forward = assign(STORES, ["w1", "w2", "w3"])
    backward = assign(list(reversed(STORES)), ["w3", "w1", "w2"])
    assert forward == backward


def test_when_a_worker_leaves_the_others_mostly_keep_their_stores() -> None:
    workers = ["w1", "w2", "w3", "w4", "w5"]
    before = owner_of(assign(STORES, workers))
    after = owner_of(assign(STORES, workers[:-1]))
    moved = [s for s in STORES if before[s] != after[s]]
    leavers = [s for s in STORES if before[s] == "w5"]
    assert set(leavers) <= set(moved)
    assert len(moved) <= 2 * len(leavers)  # a plain hash % W would move about 80% of them


@pytest.mark.parametrize(
    ("stores", "workers", "message"),
    [
        (["a", "a"], ["w1"], r"store id\(s\) a given twice"),
        (["a"], ["w1", "w1"], r"worker id\(s\) w1 given twice"),
        (["a"], [], "no live worker"),
    ],
)
def test_assignment_refuses_what_it_cannot_place(
    stores: list[str], workers: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        assign(stores, workers)


def test_static_slots_split_the_stores_between_them() -> None:
    assert parse_slot("auto") is None
    slots = [parse_slot(f"{k}/3") for k in range(3)]
    shares = [slot.stores(STORES) for slot in slots if slot is not None]
    assert sorted(s for share in shares for s in share) == sorted(STORES)
    for bad in ("3/3", "1-2", "x/2", "0/0"):
        with pytest.raises(ValueError, match="--partition"):
            parse_slot(bad)


# --- the worker's wiring ---


def test_a_store_view_shares_every_channel_but_retained_statuses() -> None:
    view = _StoreView.__new__(_StoreView)
    view.group = "chain.s01"
    assert (
        view.shared("smartstore/s01/shelf/+/events")
        == "$share/chain.s01/smartstore/s01/shelf/+/events"
    )
    assert view.shared("smartstore/s01/camera/+/status") == "smartstore/s01/camera/+/status"


def test_one_ledger_template_for_many_stores_must_name_the_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"put \{store\} in it"):
        ledger_opener(str(tmp_path / "one.sqlite"), ["a", "b"])
    opener = ledger_opener(str(tmp_path / "ledgers" / "{store}.sqlite"), ["a", "b"])
    opener("a").close()
    assert (tmp_path / "ledgers" / "a.sqlite").is_file()


# --- the bridge ---


def test_the_bridge_sends_events_out_and_keeps_raw_samples_home() -> None:
    lines = bridge_topics("s01")
    out = {line.split()[1] for line in lines if line.split()[2] == "out"}
    inward = {line.split()[1] for line in lines if line.split()[2] == "in"}
    for channel in TOPICS.values():
        topic = channel.filter("s01")
        if channel.name in LOCAL_ONLY:
            assert topic not in out | inward, channel.name
        elif channel.kind in DEVICE_KINDS:
            assert topic in out, channel.name
        elif channel.kind != "+":
            assert topic in inward, channel.name
    assert "smartstore/s01/shelf/+/samples" not in out
    assert "smartstore/s01/shelf/+/status" in out and "smartstore/s01/brain/+/status" in inward
    assert not any(line.split()[2] == "in" for line in bridge_topics("s01", inbound=False))


def test_the_bridge_logs_in_over_tls_and_keeps_its_file_private(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not read here")
    url = f"mqtts://demo-bridge:s3cr%40t@central.example:8883?ca={ca}"
    text = bridge_text(STORE, central_url=url)
    assert "address central.example:8883" in text
    assert "remote_username demo-bridge" in text and "remote_password s3cr@t" in text
    assert f"bridge_cafile {ca}" in text and "{{" not in text
    path = write_bridge_config(STORE, tmp_path / "bridges" / "demo.conf", central_url=url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ValueError, match="accounts="):
        bridge_text(STORE, central_url=f"mqtts://central.example?accounts={ca}")


# --- the edge ---


def test_an_edge_serves_only_shelf_controllers_and_readers_it_is_given() -> None:
    assert split_devices(STORE, ["shelf-g02", "rfid-exit"]) == {
        "shelf": ["shelf-g02"],
        "rfid": ["rfid-exit"],
    }
    camera = STORE.devices.cameras[0].id
    for ids, message in (
        ([camera], "is a camera"),
        (["shelf-g99"], "not a shelf controller or RFID reader"),
        (["shelf-g01", "shelf-g01"], "twice"),
        ([], "names no device"),
    ):
        with pytest.raises(ValueError, match=message):
            split_devices(STORE, ids)


def test_device_scope_narrows_wildcards_to_the_served_devices_and_hears_their_time() -> None:
    bus = LocalTransport()
    heard: list[float] = []
    scope = DeviceScope(bus, {"shelf": ["shelf-g01"]}, heard=heard.append)
    got: list[str] = []
    scope.subscribe("smartstore/demo/shelf/+/samples", lambda t, d: got.append(t))
    scope.subscribe("smartstore/demo/ops/+/evidence", lambda t, d: got.append(t))
    bus.publish("smartstore/demo/shelf/shelf-g01/samples", b'{"id":"a","event_time_s":5e8}')
    bus.publish("smartstore/demo/shelf/shelf-g02/samples", b'{"id":"b","event_time_s":6e8}')
    bus.publish("smartstore/demo/ops/o1/evidence", b"{}")
    assert got == ["smartstore/demo/shelf/shelf-g01/samples", "smartstore/demo/ops/o1/evidence"]
    assert heard == [5e8]


# --- the bus bench ---


def _msg(send_s: float, event_s: float, channel: str, event_id: str = "x") -> Recorded:
    data = json.dumps({"id": event_id, "event_time_s": event_s}).encode()
    return Recorded(send_s, event_s, "t/t/t", 1, data, channel)


def test_fusion_latency_starts_when_the_event_could_first_be_decided() -> None:
    # A shelf event at t=10.0 is due at 10.3: the track at 10.2 cannot decide it, the one at
    # 10.4 can. One shelf event published late (after its due time) counts from its own send.
    window = [
        _msg(10.0, 10.0, "shelf_events", "e1"),
        _msg(10.2, 10.2, "tracks"),
        _msg(10.4, 10.4, "tracks"),
        _msg(11.4, 11.4, "tracks"),
        _msg(11.5, 11.0, "shelf_events", "e2"),  # settled at 11.0, sent after its due time
        _msg(20.0, 20.0, "shelf_events", "e3"),  # due after the window: not counted
    ]
    sent = [100.0, 100.2, 100.4, 101.4, 101.5, 110.0]
    store = StoreRun("s1", window, [], window, published=sent)
    outcomes = {("s1", "e1"): 100.41, ("s1", "e2"): 101.52}
    latencies, missing = _fusion_latencies([store], outcomes, 0.3)
    assert [round(x, 3) for x in latencies] == [0.01, 0.02]
    assert missing == 0
    latencies, missing = _fusion_latencies([store], {}, 0.3)
    assert (latencies, missing) == ([], 2)


def test_percentiles_are_in_milliseconds() -> None:
    assert _pct([], 0.5) is None
    assert _pct([0.002], 0.99) == 2.0
    assert _pct([k / 1000 for k in range(1, 101)], 0.99) == pytest.approx(99.0, abs=1.0)


def test_placement_flags_a_store_seen_on_two_workers_and_an_uneven_split() -> None:
    heard = Heard()
    heard.workers_of["s1"] |= {"w1"}
    heard.workers_of["s2"] |= {"w1", "w2"}
    stats: dict[str, dict[str, object]] = {"w1": {"events": 700}, "w2": {"events": 300}}
    stores = [StoreRun(s, [], [], []) for s in ("s1", "s2")]
    placed = _placement(stores, heard, stats)
    assert placed["each_store_one_worker"] is False
    assert placed["store_workers"] == {"s1": ["w1"], "s2": ["w1", "w2"]}
    assert placed["max_share_deviation"] == 0.4 and placed["balanced_within_10pct"] is False


def test_bench_bus_refuses_bad_options_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "bus", "--stores", "0"]) == 2
    assert "--stores 0" in capsys.readouterr().err


def test_a_store_file_copy_differs_only_in_its_id(tmp_path: Path) -> None:
    copy = load_store(store_file_as(ROOT / "stores" / "demo.yaml", "s07", tmp_path / "s07.yaml"))
    assert copy.store_id == "s07"
    assert copy.model_dump(exclude={"store_id"}) == STORE.model_dump(exclude={"store_id"})
