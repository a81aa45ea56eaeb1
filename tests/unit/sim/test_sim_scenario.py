"""Scenario files: shipped ones load, bad ones fail naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim.scenario import ScenarioFileError, load_scenario, load_scenario_as, with_store

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["normal", "busy", "demo"])
def test_shipped_scenarios_load_and_resolve_the_store(name: str) -> None:
    s = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    assert s.store == (ROOT / "stores" / "demo.yaml").resolve()
    assert s.behaviour.plates_per_visit.min <= s.behaviour.plates_per_visit.max


def _write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


GOOD = {"store": str(ROOT / "stores" / "demo.yaml"), "seed": 1}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"behaviour": {"put_back_prob": 1.5}}, "behaviour.put_back_prob"),
        ({"behaviour": {"walk_speed_m_s": {"min": 1.5, "max": 1.0}}}, "behaviour.walk_speed_m_s"),
        ({"arrivals": {"visits": 0}}, "arrivals.visits"),
        ({"arrivals": {"rate": 3}}, "arrivals.rate"),
        ({"sensors": {"positioning_rate_hz": -1}}, "sensors.positioning_rate_hz"),
        ({"behaviour": {"between_reaches_s": {"min": 0.2, "max": 1.0}}}, "behaviour"),
        ({"seed": "abc"}, "seed"),
    ],
)
def test_bad_scenario_names_the_field(tmp_path: Path, patch: dict[str, object], field: str) -> None:
    with pytest.raises(ScenarioFileError) as err:
        load_scenario(_write(tmp_path, {**GOOD, **patch}))
    assert f"- {field}" in str(err.value)
    assert str(tmp_path / "s.yaml") in str(err.value)


def test_missing_store_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match=r"store: file .*nowhere.yaml does not exist"):
        load_scenario(_write(tmp_path, {"store": "nowhere.yaml"}))


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match="cannot read"):
        load_scenario(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: [unclosed")
    with pytest.raises(ScenarioFileError, match="not valid YAML"):
        load_scenario(bad)


def test_relative_store_path_is_read_from_the_scenario_folder(tmp_path: Path) -> None:
    (tmp_path / "stores").mkdir()
    (tmp_path / "stores" / "x.yaml").write_text((ROOT / "stores" / "demo.yaml").read_text())
    sub = tmp_path / "scen"
    sub.mkdir()
    (sub / "s.yaml").write_text("store: ../stores/x.yaml\n")
    assert load_scenario(sub / "s.yaml").store == (tmp_path / "stores" / "x.yaml").resolve()


def test_with_store_keeps_the_shoppers_and_swaps_the_store() -> None:
    sc = load_scenario(ROOT / "scenarios" / "busy.yaml")
    other = with_store(sc, ROOT / "stores" / "demo-aisles.yaml")
    assert other.store == (ROOT / "stores" / "demo-aisles.yaml").resolve()
    assert other.model_copy(update={"store": sc.store}) == sc
    with pytest.raises(ScenarioFileError, match=r"nowhere\.yaml does not exist"):
        with_store(sc, ROOT / "stores" / "nowhere.yaml")


def test_load_scenario_as_replaces_only_what_is_given() -> None:
    path = ROOT / "scenarios" / "busy.yaml"
    plain = load_scenario(path)
    assert load_scenario_as(path) == plain
    reseeded = load_scenario_as(path, seed=plain.seed + 1)
    assert reseeded.seed == plain.seed + 1 and reseeded.store == plain.store
    moved = load_scenario_as(path, seed=7, store=ROOT / "stores" / "demo-aisles.yaml")
    assert moved.seed == 7 and moved.store.name == "demo-aisles.yaml"
    assert moved.model_copy(update={"seed": plain.seed, "store": plain.store}) == plain
