"""The twin's thieves, restocks and RFID readers: what they publish and what the truth says."""

from __future__ import annotations

from pathlib import Path

import pytest

from iot.bus import LocalTransport
from iot.payloads import GateEntry, TagPassage
from iot.rfid_adapter import RfidAdapter
from iot.store import load_store
from iot.topics import TOPICS
from sim.scenario import load_scenario_as, parse_scenario
from sim.twin import Twin

ROOT = Path(__file__).resolve().parents[3]


def small_theft(**theft: object) -> Twin:
    sc = parse_scenario(
        {
            "store": "stores/demo.yaml",
            "seed": 5,
            "arrivals": {"visits": 12, "arrival_rate_per_min": 4.0},
            "theft": {"tailgaters": 3, "swaps": 3, "stray_tags_per_reader": 1} | theft,
        },
        base_dir=ROOT,
    )
    return Twin(load_store(sc.store), sc)


def test_tailgaters_walk_in_unscanned_and_owe_no_receipt() -> None:
    twin = small_theft()
    transport = LocalTransport()
    scans: list[GateEntry] = []
    transport.subscribe(
        TOPICS["gate_entries"].filter(),
        lambda t, d: scans.append(GateEntry.model_validate_json(d)),
        1,
    )
    twin.advance(transport, twin.end_s)
    truth = twin.truth
    assert len(truth.visits) == 12 and len(truth.unscanned) == 3
    assert sorted(s.token for s in scans) == sorted(v.token for v in truth.visits)
    tailgating = [i for i in truth.incidents if i.kind == "tailgating"]
    assert sorted(i.token for i in tailgating) == sorted(v.token for v in truth.unscanned)
    for i in tailgating:  # each followed a scanning shopper through the gate a moment later
        assert min(abs(i.t_s - v.entered_s) for v in truth.visits) < 1.6


def test_a_swap_leaves_a_carried_product_on_the_tagged_plate_it_took_from() -> None:
    twin = small_theft()
    swaps = [r for v in twin.visits for r in v.reaches if r.swap]
    assert swaps, "the draw should hold at least one swap"
    for r in swaps:
        visit = next(v for v in twin.visits if v.token == r.token)
        took = [x for x in visit.reaches if x.plate_id == r.plate_id and x.action == "pick"]
        assert took and all(twin.store.items[x.sku].rfid_tagged for x in took)
        assert r.action == "put" and r.wrong_plate and r.sku not in {x.sku for x in took}
    kinds = [i.kind for i in twin.truth.incidents]
    assert kinds.count("wrong_put_back") == len(swaps)


def test_honest_scenarios_plan_as_before_and_have_no_incidents() -> None:
    sc = load_scenario_as(ROOT / "scenarios" / "normal.yaml")
    twin = Twin(load_store(sc.store), sc)
    assert twin.truth.incidents == [] and twin.truth.unscanned == []
    assert all(v.role == "shopper" for v in twin.visits)


def test_gate_readers_see_every_carried_tag_leave_and_never_the_parked_ones() -> None:
    twin = small_theft(swaps=0)
    transport = LocalTransport()
    clock = [twin.start_s]
    adapter = RfidAdapter(twin.store, transport, now=lambda: clock[0])
    adapter.start()
    got: list[TagPassage] = []
    transport.subscribe(
        TOPICS["tag_passages"].filter(),
        lambda t, d: got.append(TagPassage.model_validate_json(d)),
        1,
    )
    t = twin.start_s
    while t < twin.end_s:
        t = min(t + 0.2, twin.end_s)
        clock[0] = t
        twin.advance(transport, t)
        adapter.tick(t)
    adapter.tick(twin.end_s + 5)
    carried = {tag.epc_hex for tags in twin.tags.values() for tag in tags}
    assert carried, "the draw should carry tagged units out"
    out = {p.epc_hex for p in got if p.direction == "out"}
    assert out <= carried  # the parked display tags never pass
    assert len(out) >= 0.9 * len(carried)
    assert adapter.stats().get("static tag", 0) >= 1


def restocked(fraction: float) -> Twin:
    sc = parse_scenario(
        {
            "store": "stores/demo.yaml",
            "seed": 3,
            "arrivals": {"visits": 30, "arrival_rate_per_min": 4.0},
            "stock": {
                "initial_fraction": fraction,
                "restocks": [{"at_s": 240, "capacity_fraction": 0.2}],
            },
        },
        base_dir=ROOT,
    )
    return Twin(load_store(sc.store), sc)


def test_restocks_refill_stock_outs() -> None:
    twin = restocked(0.25)
    assert len(twin.restocks) == len(twin.store.planogram)
    assert twin.truth.stockouts, "a quarter-full store should run out of something"
    restock_s = twin.start_s + 240
    for so in twin.truth.stockouts:
        if so.empty_s < restock_s:
            assert so.refilled_s is not None and so.refilled_s <= restock_s + 1e-6


def test_a_restock_that_overfills_a_plate_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"over its capacity .*; restock fewer units"):
        restocked(1.0)
