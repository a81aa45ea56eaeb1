"""The whole store over a real broker gives the receipts the in-process evaluation gives.

``smartstore demo``'s composition root runs the twin's devices, the shelf
adapter and the brain as separate MQTT clients on a real broker (the embedded
one, and Mosquitto); ``smartstore eval`` runs the same services in-process.
For the same scenario and seed, every visit must get the same receipt lines.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
import yaml

from smartstore.demo import run_demo
from smartstore.evaluate import run_eval

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """A short scenario on a copy of the demo store with a store id of this run alone."""
    store = yaml.safe_load((ROOT / "stores" / "demo.yaml").read_text())
    store["store_id"] = f"e2e{uuid.uuid4().hex[:10]}"
    (tmp_path / "store.yaml").write_text(yaml.safe_dump(store))
    path = tmp_path / "scenario.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "store": "store.yaml",
                "seed": 5,
                "arrivals": {"visits": 4, "arrival_rate_per_min": 30.0},
                "behaviour": {"plates_per_visit": {"min": 1, "max": 3}, "put_back_prob": 0.3},
            }
        )
    )
    return path


def _lines(receipts) -> dict[str, dict[str, int]]:
    return {r.token: {line.sku: line.quantity for line in r.lines} for r in receipts}


def test_store_over_a_real_broker_matches_the_in_process_run(
    broker_url: str, scenario: Path, tmp_path: Path
) -> None:
    live = run_demo(
        scenario,
        broker_url=broker_url,
        speed=5.0,
        port=0,  # any free port, chosen at bind time: a port picked earlier can be taken
        db_path=tmp_path / "ledger.sqlite",
        out=io.StringIO(),
        positioning="simulated",
        interactions="none",
    )
    local = run_eval(scenario, progress=None, positioning="simulated", interactions="none")
    assert live.metrics["visits"] == local.metrics["visits"] == 4
    assert live.metrics["missing_receipts"] == 0
    assert live.metrics["duplicate_receipts"] == 0
    assert _lines(live.receipts) == _lines(local.receipts)
    assert live.brain_stats["dead_letters"] == 0
    assert (tmp_path / "ledger.sqlite").exists()
