"""The digital twin: a simulated store with shoppers and devices, and its ground truth.

Nothing in production imports this package; tests and the composition roots
(``smartstore demo``, ``smartstore eval``) do.
"""

from sim.scenario import Scenario, ScenarioFileError, load_scenario
from sim.truth import GroundTruth, InteractionTruth, StockoutTruth, VisitTruth
from sim.twin import Twin

__all__ = [
    "GroundTruth",
    "InteractionTruth",
    "Scenario",
    "ScenarioFileError",
    "StockoutTruth",
    "Twin",
    "VisitTruth",
    "load_scenario",
]
