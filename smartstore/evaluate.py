"""Composition root for ``smartstore eval``: a scenario in simulated time, scored.

Wires the twin, the shelf adapter and the store brain on an in-process
transport (deterministic, as fast as the CPU allows), steps event time,
and scores the receipts against the twin's ground truth. The services are
the same objects ``smartstore demo`` runs over MQTT; only the transport and
the clock differ.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from checkout.brain import BrainSettings, StoreBrain
from checkout.heatmap import window_png
from checkout.ledger import Ledger
from iot.bus import LocalTransport, Transport
from iot.payloads import Receipt
from iot.shelf import ShelfAdapter
from iot.store import Store, load_store
from sim.ops_scoring import Case, footfall_error, shrink_metrics, stockout_metrics
from sim.scenario import load_scenario_as
from sim.scoring import TrueVisit, format_table, score
from sim.twin import Twin
from smartstore.cameras import (
    CEILING_MANIFEST,
    SHELF_MANIFEST,
    CameraPositioning,
    ShelfCameras,
)
from smartstore.operations import StoreOperations
from vision.snapshots import EvidenceSnapshotter

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
    epcis_path: str | Path | None = None,
    heatmap_path: str | Path | None = None,
    evidence_dir: str | Path | None = None,
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
    ``epcis_path``: also write the run's sales, gate passages and closing stock
    count there as an EPCIS 2.0 document; ``heatmap_path``: the whole run's
    floor occupancy as a PNG over the floor plan; ``evidence_dir``: where the
    cases' camera snapshots (blurred at capture) go (default: a temporary folder).
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
    with tempfile.TemporaryDirectory(prefix="smartstore-evidence-") as scratch:
        snapshots = EvidenceSnapshotter(twin.store, transport, evidence_dir or scratch, now=clock)
        snapshots.start()
        cameras, shelf_cams = _vision(
            twin,
            transport,
            (positioning, interactions),
            manifests,
            fps=camera_fps,
            lighting=lighting,
            stand_ins=(ceiling, shelves),
            snapshots=snapshots,
        )
        brain, operations = _run_services(
            twin,
            store_file,
            transport,
            clock,
            (cameras, shelf_cams),
            db_path=db_path,
            settings=settings,
            on_brain=on_brain,
            exports=(epcis_path, heatmap_path),
            step_s=step_s,
            progress=progress,
        )
        operations["evidence_snapshots"] = snapshots.stats().get("snapshots", 0)
    if truth_path:
        twin.truth.write_json(Path(truth_path))
    visits = [TrueVisit(v.token, v.exited_s, v.basket) for v in twin.truth.visits]
    metrics: dict[str, float | int | str] = dict(score(visits, brain.receipts))
    wall = time.perf_counter() - started
    metrics.update(operations)
    metrics.update(
        seed=scenario.seed,
        simulated_s=round(twin.end_s - twin.start_s, 1),
        wall_s=round(wall, 2),
        positioning=positioning,
        interactions=interactions,
    )
    result = EvalResult(metrics, brain.stats(), list(brain.receipts), wall)
    result.cameras = cameras.report() if cameras is not None else None
    result.shelf_cameras = shelf_cams.report() if shelf_cams is not None else None
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
    snapshots: EvidenceSnapshotter | None = None,
) -> tuple[Ceiling | None, Shelves | None]:
    """The ceiling and shelf camera paths a run's modes ask for (stand-ins where given)."""
    (positioning, interactions), (ceiling, shelves) = modes, stand_ins
    cameras: Ceiling | None = None
    if positioning == "cameras":
        cameras = (
            ceiling(twin, transport)
            if ceiling is not None
            else CameraPositioning(
                twin,
                transport,
                fps=fps,
                lighting=lighting,
                manifest=manifests["ceiling"],
                snapshots=snapshots,
            )
        )
    shelf_cams: Shelves | None = None
    if interactions == "cameras":
        shelf_cams = (
            shelves(twin, transport)
            if shelves is not None
            else ShelfCameras(
                twin,
                transport,
                lighting=lighting,
                manifest=manifests["shelf"],
                snapshots=snapshots,
            )
        )
    return cameras, shelf_cams


def _run_services(
    twin: Twin,
    store_file: Store,
    transport: Transport,
    clock: SimClock,
    vision: tuple[Ceiling | None, Shelves | None],
    *,
    db_path: str | Path | None,
    settings: BrainSettings | None,
    on_brain: Callable[[StoreBrain], None] | None,
    exports: tuple[str | Path | None, str | Path | None],
    step_s: float,
    progress: TextIO | None,
) -> tuple[StoreBrain, dict[str, float | int | str]]:
    """Start the brain, store operations and the shelf adapter, drive the run, stop them."""
    cameras, shelf_cams = vision
    with tempfile.TemporaryDirectory(prefix="smartstore-eval-") as tmp:
        ledger = Ledger(str(db_path or Path(tmp) / "ledger.sqlite"))
        brain = StoreBrain(store_file, transport, ledger, settings=settings or BrainSettings())
        brain.start()
        if on_brain is not None:
            on_brain(brain)
        ops = StoreOperations(store_file, transport, Path(tmp) / "ops.sqlite", now=clock)
        ops.start()
        ops.count_shelves(twin.store.planogram, twin.start_s)  # as the twin stocked them
        adapter = ShelfAdapter(store_file, transport, now=clock)
        adapter.start()
        try:
            _drive(
                twin, (brain, ops), clock, (cameras, shelf_cams), step_s=step_s, progress=progress
            )
            if shelf_cams is not None:
                shelf_cams.finish()  # hands still in a shelf at the end: their episodes close
                brain.tick(twin.end_s)
            ops.tick(twin.end_s + 10.0)  # let the last passages and entries be decided
            operations = _score_operations(ops, twin)
            _export(ops, brain, twin, exports)
        finally:
            brain.close()
            ops.close()
            ledger.close()
        del adapter
    return brain, operations


def _export(
    ops: StoreOperations,
    brain: StoreBrain,
    twin: Twin,
    paths: tuple[str | Path | None, str | Path | None],
) -> None:
    """The run's EPCIS document and its whole-run heatmap, where asked for."""
    epcis_path, heatmap_path = paths
    if epcis_path is not None:
        doc = ops.epcis(brain.receipts, at_s=twin.end_s)
        Path(epcis_path).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    if heatmap_path is not None:
        ops.heat.flush(twin.end_s)
        png = window_png(ops.heat, twin.store, twin.start_s, twin.end_s)
        Path(heatmap_path).write_bytes(png)


def _score_operations(ops: StoreOperations, twin: Twin) -> dict[str, float | int | str]:
    """Footfall, stock-out and shrink figures against the twin's truth (None where none)."""
    truth = twin.truth
    entries = ops.footfall.report().entries
    people = len(truth.visits) + len(truth.unscanned)
    out: dict[str, float | int | str | None] = {
        "footfall_entries": entries,
        "footfall_error": round(footfall_error(entries, people), 4),
    }
    alerts = [
        (a.plate_id, a.sku, a.raised_s, a.cleared_s)
        for a in ops.inventory.alert_log(kind="stockout")
    ]
    out.update(stockout_metrics(alerts, truth.stockouts, end_s=twin.end_s))
    filed = [
        Case(
            f.case_id,
            f.finding.rule,
            f.finding.detected_s or f.finding.incident_s,
            f.finding.incident_s,
            f.finding.plate_id,
            f.finding.epc_hex,
        )
        for f in ops.shrink.filed
    ]
    out.update(shrink_metrics(filed, truth.incidents, end_s=twin.end_s))
    by_rule = Counter(f.rule for f in filed)
    out["shrink_findings"] = ", ".join(f"{r} {n}" for r, n in sorted(by_rule.items())) or "none"
    return {k: v for k, v in out.items() if v is not None}


def _drive(
    twin: Twin,
    services: tuple[StoreBrain, StoreOperations],
    clock: SimClock,
    vision: tuple[Ceiling | None, Shelves | None],
    *,
    step_s: float,
    progress: TextIO | None,
) -> None:
    """Step event time from the twin's start to its end, publishing and ticking."""
    brain, ops = services
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
        ops.tick(t)
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
