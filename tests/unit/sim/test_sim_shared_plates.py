"""Shared plates in the twin: shoppers pick a SKU, stock and truth are kept per (plate, SKU)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from iot.store import Store, load_store
from sim.floorplan import FloorPlan
from sim.scenario import Scenario, load_scenario
from sim.shoppers import _Planner
from sim.truth import InteractionTruth
from sim.twin import Twin

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(ROOT / "scenarios" / "twins.yaml")


@pytest.fixture(scope="module")
def store(scenario: Scenario) -> Store:
    return load_store(scenario.store)


@pytest.fixture(scope="module")
def twin(store: Store, scenario: Scenario) -> Twin:
    return Twin(store, scenario)


def shared(store: Store, plate_id: str) -> bool:
    return len(store.skus_on_plate(plate_id)) > 1


def picks(twin: Twin) -> list[InteractionTruth]:
    return [i for i in twin.truth.interactions if i.action == "pick"]


def test_the_twins_store_shares_plates_between_equal_weight_skus(store: Store) -> None:
    twin_plates = []
    for plate in store.plates():
        entries = store.skus_on_plate(plate)
        units = {
            (store.items[e.sku].unit_weight_g, store.items[e.sku].weight_tolerance_g)
            for e in entries
        }
        if 2 <= len(entries) <= 3 and len(units) == 1:
            twin_plates.append(plate)
    assert len(twin_plates) >= 6


def test_most_picks_come_from_shared_plates_and_take_one_of_their_skus(
    store: Store, twin: Twin
) -> None:
    from_shared = [i for i in picks(twin) if shared(store, i.plate_id)]
    assert len(from_shared) > len(picks(twin)) / 2
    for i in from_shared:
        assert store.planogram_entry(i.plate_id, i.sku) is not None, i
        assert not i.wrong_plate
    # Shoppers really choose between a plate's SKUs: some plates lose units of two SKUs.
    taken: dict[str, set[str]] = defaultdict(set)
    for i in from_shared:
        taken[i.plate_id].add(i.sku)
    assert sum(len(skus) > 1 for skus in taken.values()) >= 6


def test_truth_baskets_hold_the_sku_actually_taken(store: Store, twin: Twin) -> None:
    by_token: dict[str, Counter[str]] = defaultdict(Counter)
    for i in twin.truth.interactions:
        by_token[i.token][i.sku] += i.quantity if i.action == "pick" else -i.quantity
    for v in twin.truth.visits:
        assert v.basket == {s: q for s, q in sorted(by_token[v.token].items()) if q}
    # Each reach moves whole units of its own SKU, whichever pile of the plate it came from.
    for i in twin.truth.interactions:
        item = store.items[i.sku]
        spread = 5 * item.weight_tolerance_g * np.sqrt(i.quantity)
        assert abs(i.weight_g - i.quantity * item.unit_weight_g) < spread, i


def test_stock_is_kept_per_plate_and_sku(store: Store, twin: Twin) -> None:
    stock = {(e.plate, e.sku): e.initial_units for e in store.planogram}
    for i in sorted(twin.truth.interactions, key=lambda i: i.started_s):
        if i.wrong_plate:
            continue
        stock[(i.plate_id, i.sku)] += -i.quantity if i.action == "pick" else i.quantity
        assert stock[(i.plate_id, i.sku)] >= 0, i
    for out in twin.truth.stockouts:
        assert store.planogram_entry(out.plate_id, out.sku) is not None


def test_put_backs_on_a_shared_plate_return_the_sku_taken(store: Store, twin: Twin) -> None:
    puts = [
        i
        for i in twin.truth.interactions
        if i.action == "put" and not i.wrong_plate and shared(store, i.plate_id)
    ]
    assert puts, "the scenario puts units back on shared plates"
    taken = {(i.token, i.plate_id, i.sku) for i in picks(twin)}
    for i in puts:
        assert (i.token, i.plate_id, i.sku) in taken, i


def test_the_same_seed_plans_the_same_shared_picks(
    store: Store, scenario: Scenario, twin: Twin
) -> None:
    again = Twin(store, scenario)
    assert again.truth == twin.truth


def test_a_single_sku_plate_draws_no_random_number_for_the_sku(scenario: Scenario) -> None:
    # Why it matters: stores of one SKU per plate must plan exactly as before shared plates.
    demo = load_store(ROOT / "stores" / "demo.yaml")
    planner = _Planner(demo, scenario, FloorPlan(demo))
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    assert planner._choose_sku(rng, "g01-s1-p1", scenario.start_time_s) == "SKU001"
    assert rng.bit_generator.state == before
