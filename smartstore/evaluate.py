"""Composition root for ``smartstore eval``: a scenario in simulated time, scored.

Wires the twin, the shelf adapter and the store brain on an in-process
transport (deterministic, as fast as the CPU allows), steps event time,
and scores the receipts against the twin's ground truth. The services are
the same objects ``smartstore demo`` runs over MQTT; only the transport and
the clock differ.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from checkout.brain import BrainSettings, StoreBrain
from checkout.ledger import Ledger
from iot.bus import LocalTransport, Transport
from iot.payloads import Receipt
from iot.shelf import ShelfAdapter
from iot.store import load_store
from sim.scenario import load_scenario_as
from sim.scoring import TrueVisit, format_table, score
from sim.twin import Twin
from smartstore.cameras import (
    CEILING_MANIFEST,
    SHELF_MANIFEST,
    CameraPositioning,
    ShelfCameras,
)

__all__ = ["INTERACTION_MODES", "POSITIONING_MODES", "EvalResult", "SimClock", "run_eval"]

POSITIONING_MODES = ("cameras", "simulated")
INTERACTION_MODES = ("cameras", "none")

log = logging.getLogger(__name__)


class Ceiling(Protocol):
    """What the drive loop needs of the ceiling cameras: advance to a time, then report."""

    def advance(self, until_s: float) -> int: ...

    def report(self) -> dict[str, object]: ...


class Shelves(Ceiling, Protocol):
    """The shelf cameras also close the episodes still open at the end."""

    def finish(self) -> None: ...


class SimClock:
    """Event time of a simulated run; services read it only to stamp dead letters."""

    def __init__(self, start_s: float) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s


@dataclass
class EvalResult:
    metrics: dict[str, float | int | str]
    brain_stats: dict[str, int] = field(default_factory=dict)
    receipts: list[Receipt] = field(default_factory=list)
    wall_s: float = 0.0
    cameras: dict[str, object] | None = None
    shelf_cameras: dict[str, object] | None = None


def run_eval(
    scenario_path: str | Path,
    *,
    db_path: str | Path | None = None,
    truth_path: str | Path | None = None,
    step_s: float = 0.1,
    settings: BrainSettings | None = None,
    seed: int | None = None,
    store: str | Path | None = None,
    progress: TextIO | None = sys.stderr,
    positioning: str = "cameras",
    camera_fps: float = 5.0,
    lighting: str = "day",
    interactions: str = "cameras",
    models: dict[str, str] | None = None,
    ceiling: Callable[[Twin, Transport], Ceiling] | None = None,
    shelves: Callable[[Twin, Transport], Shelves] | None = None,
    on_brain: Callable[[StoreBrain], None] | None = None,
) -> EvalResult:
    """Run one scenario end to end in simulated time and score it.

    ``seed`` replaces the scenario's seed (same scenario, another draw); ``store``
    the scenario's store file (same shoppers, another layout of devices).
    ``positioning``: ``cameras`` (rendered ceiling frames through the edge
    vision pipeline, the default) or ``simulated`` (the twin's own positions
    with Gaussian noise, for comparison). ``interactions``: ``cameras``
    (rendered shelf cameras through the shelf vision pipeline, the default) or
    ``none`` (the shelves alone say what was taken: the shelves-only mode).
    ``models``: other manifests for ``ceiling`` or ``shelf`` than the shipped ones.
    ``ceiling``: builds a stand-in for the rendered ceiling cameras (used with
    ``positioning="cameras"``; ``smartstore.fusion_replay`` replays recorded detections);
    ``shelves`` likewise for the shelf cameras (replays their recorded events).
    ``on_brain``: called with the started brain (diagnostics attach probes there).
    """
    manifests: dict[str, str | Path] = {"ceiling": CEILING_MANIFEST, "shelf": SHELF_MANIFEST}
    manifests.update(models or {})
    if interactions not in INTERACTION_MODES:
        raise ValueError(f"unknown interactions {interactions!r}; use one of {INTERACTION_MODES}")
    if positioning not in POSITIONING_MODES:
        raise ValueError(f"unknown positioning {positioning!r}; use one of {POSITIONING_MODES}")
    started = time.perf_counter()
    scenario = load_scenario_as(scenario_path, seed=seed, store=store)
    store_file = load_store(scenario.store)
    twin = Twin(store_file, scenario, positioning_feed=positioning == "simulated")
    clock = SimClock(twin.start_s)
    transport = LocalTransport()
    cameras, shelf_cams = _vision(
        twin,
        transport,
        (positioning, interactions),
        manifests,
        fps=camera_fps,
        lighting=lighting,
        stand_ins=(ceiling, shelves),
    )
    with tempfile.TemporaryDirectory(prefix="smartstore-eval-") as tmp:
        ledger = Ledger(str(db_path or Path(tmp) / "ledger.sqlite"))
        brain = StoreBrain(store_file, transport, ledger, settings=settings or BrainSettings())
        brain.start()
        if on_brain is not None:
            on_brain(brain)
        adapter = ShelfAdapter(store_file, transport, now=clock)
        adapter.start()
        try:
            _drive(twin, brain, clock, (cameras, shelf_cams), step_s=step_s, progress=progress)
            if shelf_cams is not None:
                shelf_cams.finish()  # hands still in a shelf at the end: their episodes close
                brain.tick(twin.end_s)
        finally:
            brain.close()
            ledger.close()
        del adapter
    if truth_path:
        twin.truth.write_json(Path(truth_path))
    visits = [TrueVisit(v.token, v.exited_s, v.basket) for v in twin.truth.visits]
    metrics: dict[str, float | int | str] = dict(score(visits, brain.receipts))
    wall = time.perf_counter() - started
    metrics["seed"] = scenario.seed
    metrics["simulated_s"] = round(twin.end_s - twin.start_s, 1)
    metrics["wall_s"] = round(wall, 2)
    metrics["positioning"] = positioning
    metrics["interactions"] = interactions
    result = EvalResult(metrics, brain.stats(), list(brain.receipts), wall)
    if cameras is not None:
        result.cameras = cameras.report()
    if shelf_cams is not None:
        result.shelf_cameras = shelf_cams.report()
    return result


def _vision(
    twin: Twin,
    transport: Transport,
    modes: tuple[str, str],
    manifests: dict[str, str | Path],
    *,
    fps: float,
    lighting: str,
    stand_ins: tuple[
        Callable[[Twin, Transport], Ceiling] | None, Callable[[Twin, Transport], Shelves] | None
    ],
) -> tuple[Ceiling | None, Shelves | None]:
    """The ceiling and shelf camera paths a run's modes ask for (stand-ins where given)."""
    (positioning, interactions), (ceiling, shelves) = modes, stand_ins
    cameras: Ceiling | None = None
    if positioning == "cameras":
        cameras = (
            ceiling(twin, transport)
            if ceiling is not None
            else CameraPositioning(
                twin, transport, fps=fps, lighting=lighting, manifest=manifests["ceiling"]
            )
        )
    shelf_cams: Shelves | None = None
    if interactions == "cameras":
        shelf_cams = (
            shelves(twin, transport)
            if shelves is not None
            else ShelfCameras(twin, transport, lighting=lighting, manifest=manifests["shelf"])
        )
    return cameras, shelf_cams


def _drive(
    twin: Twin,
    brain: StoreBrain,
    clock: SimClock,
    vision: tuple[Ceiling | None, Shelves | None],
    *,
    step_s: float,
    progress: TextIO | None,
) -> None:
    """Step event time from the twin's start to its end, publishing and ticking."""
    t = twin.start_s
    next_report = time.perf_counter() + 5.0
    while t < twin.end_s:
        t = min(t + step_s, twin.end_s)
        clock.now_s = t
        twin.advance(brain.transport, t)
        for part in vision:
            if part is not None:
                part.advance(t)
        brain.tick(t)
        if progress is not None and time.perf_counter() >= next_report:
            next_report += 5.0
            done = (t - twin.start_s) / max(twin.end_s - twin.start_s, 1e-9)
            p = twin.progress(t)
            print(
                f"  eval {done:6.1%}  simulated {t - twin.start_s:7.1f} s  "
                f"visits exited {p['exited']}/{p['visits']}  receipts {len(brain.receipts)}",
                file=progress,
                flush=True,
            )


def print_report(result: EvalResult, out: TextIO = sys.stdout) -> None:
    print(format_table(result.metrics), file=out)


__all__ += ["format_table", "print_report"]
