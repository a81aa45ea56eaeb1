"""Shared fixtures of the checkout tests: the demo store and a world driving a fresh brain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from checkout_world import World

from checkout.brain import StoreBrain
from checkout.ledger import Ledger
from checkout.settings import BrainSettings
from iot.bus import LocalTransport
from iot.store import Store, load_store

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
