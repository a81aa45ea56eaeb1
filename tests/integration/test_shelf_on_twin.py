"""The shelf adapter on the twin's load cells: every reach becomes an accurate event.

Busy shelves are the hard case: hands on neighbouring plates leak into each
other's load cells. Scored against the twin's ground truth (the actual weight
of the units each reach moved), the measured changes must be as accurate as
the store brain assumes when it reads them (2.5 sigma of the load-cell noise
plus the brain's floor, both weighings), for nearly every reach.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from checkout.settings import BrainSettings
from iot.bus import LocalTransport
from iot.payloads import ShelfEvent
from iot.shelf import ShelfAdapter
from iot.store import load_store
from sim.scenario import load_scenario
from sim.twin import Twin

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_busy_shelves_measure_every_reach_accurately() -> None:
    scenario = load_scenario(SCENARIOS / "busy.yaml")
    store = load_store(scenario.store)
    twin = Twin(store, scenario)
    bus = LocalTransport()
    events: list[ShelfEvent] = []
    ShelfAdapter(store, bus, now=lambda: twin.start_s).start()
    bus.subscribe(
        "smartstore/demo/shelf/+/events",
        lambda topic, data: events.append(ShelfEvent.model_validate_json(data)),
    )
    twin.advance(bus, twin.end_s)

    noise_g = store.devices.shelf_controllers[0].noise_g
    allowed_g = BrainSettings().fit_ok_z * math.sqrt(
        2 * (noise_g**2 + BrainSettings().weight_floor_sigma_g ** 2)
    )
    errors = []
    for reach in twin.truth.interactions:
        matched = [
            e
            for e in events
            if e.plate_id == reach.plate_id and abs(e.started_s - reach.started_s) < 1.0
        ]
        if len(matched) == 1:
            truth_g = reach.weight_g if reach.action == "put" else -reach.weight_g
            errors.append(abs(matched[0].delta_g - truth_g))
    reaches = len(twin.truth.interactions)
    assert len(errors) >= 0.98 * reaches, (
        f"only {len(errors)} of {reaches} reaches matched one event"
    )
    within = sum(e <= allowed_g for e in errors) / len(errors)
    assert within >= 0.99, (
        f"{within:.3f} of changes within {allowed_g:.1f} g (worst {max(errors):.1f} g)"
    )
