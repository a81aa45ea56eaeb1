"""The store description: the demo store's facts and clear errors for bad files."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import yaml

from iot.store import StoreFileError, gtin_check_digit, load_store, parse_store

DEMO = Path(__file__).resolve().parents[2] / "stores" / "demo.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(DEMO.read_text())


def test_demo_store_meets_the_issue_minimums() -> None:
    store = load_store(DEMO)
    assert len(store.gondolas) >= 8
    assert len(store.plates()) >= 40
    assert len(store.items) >= 30
    weights = sorted(i.unit_weight_g for i in store.items.values())
    closest = min(b - a for a, b in itertools.pairwise(weights))
    assert closest <= 5.0, "the demo store must contain SKUs of nearly equal weight"
    assert set(store.planogram_by_plate) == set(store.plates()), "every plate is stocked"


def test_plate_geometry_faces_the_aisle() -> None:
    store = load_store(DEMO)
    (x0, y0), (x1, y1) = store.plate_front_m("g01-s1-p1")  # south-facing shelf of g01
    assert y0 == y1 == store.gondolas[0].y_m
    assert x1 - x0 == pytest.approx(1.0)
    assert store.distance_to_plate_m("g01-s1-p1", x0 + 0.5, y0 - 0.45) == pytest.approx(0.45)
    assert store.distance_to_plate_m("g01-s1-p1", x1 + 0.3, y0 - 0.4) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("catalog"), "catalog: Field required"),
        (lambda d: d["gondolas"][0].update(length_m=-1), "gondolas.0.length_m"),
        (lambda d: d["gondolas"][0].update(colour="red"), "gondolas.0.colour: Extra inputs"),
        (lambda d: d["catalog"]["items"][0].update(gtin="04006380000010"), "check digit"),
        (
            lambda d: d["planogram"][0].update(sku="NOPE"),
            "planogram[0].sku 'NOPE' is not in the catalog",
        ),
        (
            lambda d: d["planogram"][1].update(
                plate=d["planogram"][0]["plate"], sku=d["planogram"][0]["sku"]
            ),
            "planogram[1] repeats plate 'g01-s1-p1' with sku 'SKU001' (first listed at "
            "planogram[0]); merge",
        ),
        (
            # A second SKU on a plate is fine, but not when both full overload the load cell.
            lambda d: d["planogram"][1].update(plate=d["planogram"][0]["plate"]),
            "plate 'g01-s1-p1' full (24 x SKU001, 24 x SKU002) weighs 25104 g, above its "
            "max_load_g 20000 g",
        ),
        (lambda d: d["planogram"][0].update(initial_units=10_000), "exceeds capacity_units"),
        (
            lambda d: d["floor"]["gates"][1].update(kind="entry"),
            "needs at least one entry and one exit gate",
        ),
        (
            lambda d: d["devices"]["shelf_controllers"][0].update(gondola="g99"),
            "'g99' is not a gondola",
        ),
        (lambda d: d.update(store_id="Demo Store"), "store_id"),
    ],
)
def test_bad_store_files_name_the_bad_field(raw: dict, mutate, expected: str) -> None:
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(StoreFileError) as info:
        parse_store(data, "bad.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("bad.yaml: invalid store description")


def test_unreadable_and_non_yaml_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(StoreFileError, match="cannot read store file"):
        load_store(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("store_id: [unclosed\n")
    with pytest.raises(StoreFileError, match="not valid YAML"):
        load_store(broken)


@pytest.mark.parametrize(
    ("first13", "digit"),
    [
        ("8061414112345", 8),
        ("0400638000001", gtin_check_digit("0400638000001")),
        ("0000000000000", 0),
    ],
)
def test_gtin_check_digit(first13: str, digit: int) -> None:
    # 80614141123458 is the GTIN of the GS1 SGTIN-96 worked example.
    assert gtin_check_digit(first13) == digit


def test_a_plate_may_stock_several_skus(raw: dict) -> None:
    data = copy.deepcopy(raw)
    # SKU002 moves next to SKU001 on g01-s1-p1, half as many of each so the full plate fits.
    first, second = data["planogram"][0], data["planogram"][1]
    lonely = second["plate"]
    second["plate"] = first["plate"]
    for entry in (first, second):
        entry.update(capacity_units=12, initial_units=10)
    store = parse_store(data, "shared.yaml")
    entries = store.skus_on_plate(first["plate"])
    assert [e.sku for e in entries] == [first["sku"], second["sku"]], "file order"
    assert store.planogram_by_plate[first["plate"]] == entries
    assert store.skus_on_plate(lonely) == [], "the plate SKU002 left is unstocked"
    assert lonely not in store.planogram_by_plate
    entry = store.planogram_entry(first["plate"], second["sku"])
    assert entry is not None and entry.initial_units == 10
    assert store.planogram_entry(lonely, second["sku"]) is None
    # The returned list is a copy: callers cannot change the store's planogram.
    entries.clear()
    assert len(store.skus_on_plate(first["plate"])) == 2


def test_the_twins_store_loads_with_shared_plates() -> None:
    store = load_store(DEMO.parent / "twins.yaml")
    sizes = [len(store.skus_on_plate(p)) for p in store.plates()]
    assert sum(2 <= n <= 3 for n in sizes) >= 6
    assert len({e.plate for e in store.planogram}) == len(store.plates()), "every plate stocked"
