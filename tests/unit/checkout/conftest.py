"""Shared fixtures of the checkout tests: the demo store and a world driving a fresh brain."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from checkout_world import World

from checkout.brain import StoreBrain
from checkout.ledger import Ledger
from checkout.settings import BrainSettings
from iot.bus import LocalTransport
from iot.store import Store, gtin_check_digit, load_store, parse_store

DEMO = Path(__file__).resolve().parents[3] / "stores" / "demo.yaml"


@pytest.fixture(scope="session")
def store() -> Store:
    return load_store(DEMO)


@pytest.fixture
def make_world(store: Store):
    """Factory: a started brain on a fresh LocalTransport, wrapped in a World."""
    made: list[StoreBrain] = []

    def make(
        ledger: Ledger | None = None, settings: BrainSettings | None = None, seed: int = 7
    ) -> World:
        transport = LocalTransport()
        world = World(store, None, transport, np.random.default_rng(seed))  # type: ignore[arg-type]
        transport.subscribe("smartstore/#", lambda t, d: world.seen.append((t, d)))
        brain = StoreBrain(store, transport, ledger or Ledger(":memory:"), settings=settings)
        brain.start()
        world.brain = brain
        made.append(brain)
        return world

    yield make
    for brain in made:
        brain.close()


@pytest.fixture
def shared_store() -> Store:
    """The demo store with a lemon still water, of the same weight, beside SKU001 on g01-s1-p1."""
    raw = yaml.safe_load(DEMO.read_text())
    data = copy.deepcopy(raw)
    lemon = dict(raw["catalog"]["items"][0], sku="SKU031", name="Still water lemon 500 ml")
    first13 = "0400638000031"
    lemon["gtin"] = first13 + str(gtin_check_digit(first13))
    data["catalog"]["items"].append(lemon)
    data["planogram"][0].update(capacity_units=12, initial_units=10)
    data["planogram"].append(dict(data["planogram"][0], sku="SKU031", facings=1))
    return parse_store(data, "shared.yaml")
