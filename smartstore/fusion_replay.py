"""Tune the ceiling trackers and floor fusion in seconds, not minutes: record once, replay.

Rendering and detecting a busy scenario's ceiling cameras takes minutes on
two cores; the trackers and the fusion after them take seconds. So:

    python -m smartstore.fusion_replay record scenarios/busy.yaml --seed 101 out/busy-101.pkl
    python -m smartstore.fusion_replay replay out/busy-101.pkl '{}' '{"floor": {"merge_m": 0.3}}'

``record`` runs the cameras as ``smartstore eval-tracking`` does and keeps, per
frame set, each camera's detections and the look of each detected person.
``replay`` runs per-camera trackers and floor fusion from the recording with
settings overrides (``{"cam": {...}, "floor": {...}}``: fields of
``TrackerSettings`` and ``FloorSettings``) and scores the store-level tracks
as ``eval-tracking`` does. Looks are taken from the detection under each
tracked box, so a replay of the default settings lands within a few
thousandths of the full run, not on it. Tune on one seed, report another.

The receipts too (``smartstore eval`` with both camera paths replayed, about
30 s for busy instead of half an hour)::

    python -m smartstore.fusion_replay record-shelves scenarios/busy.yaml out/sh-23.pkl --seed 23
    python -m smartstore.fusion_replay eval out/busy-23.pkl --shelves out/sh-23.pkl \
        --reid models/ceiling_reid.onnx '{"floor": {...}}' --brain '{"hand_reach_m": 0.9}'

``record`` also keeps each detection's re-id crop, so ``--reid`` replays the
learned looks (``vision.reid``); without it the recorded colour histograms
are used. ``eval`` lists each wrong receipt and what the brain did with each
reach of that visit (charged right, to another visit, unattributed, unexplained);
``--why`` adds what the tracks were doing at that moment (``smartstore.replay_why``:
the actor under its own visit's track, another visit's, nobody's, or no track).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from checkout.sessions import session_id_for
from checkout.settings import BrainSettings
from iot.bus import LocalTransport, Transport
from iot.store import load_store
from sim.scenario import load_scenario_as
from sim.scoring import format_table
from sim.twin import Twin
from smartstore.cameras import (
    CEILING_MANIFEST,
    CEILING_SCORE_CUT,
    SHELF_MANIFEST,
    CameraPositioning,
    ShelfCameras,
)
from smartstore.evaluate import run_eval
from smartstore.replay_why import IdentityProbe, explain, tally
from smartstore.replay_window import Anchors, describe_step, remember_anchors
from smartstore.track_eval import Points, score_floor_tracks, true_positions
from vision import ceiling
from vision.appearance import describe_person
from vision.ceiling import CeilingSettings, CeilingTracker, LookOf
from vision.detections import Detections
from vision.floor import CameraObservation
from vision.reid import ReidEmbedder, balanced_crops
from vision.tracking import iou_xyxy

# (time, per camera: detections' arrays, their histogram looks, their re-id crops)
Step = tuple[
    float,
    dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    dict[str, list[Any]],
    dict[str, np.ndarray],
]
Embed = Callable[[list[np.ndarray]], np.ndarray]


def _twin(scenario: str, seed: int, store: str | None = None) -> Twin:
    sc = load_scenario_as(scenario, seed=seed, store=store)
    return Twin(load_store(sc.store), sc, positioning_feed=False)


def _payload_twin(payload: dict[str, Any]) -> Twin:
    return _twin(payload["scenario"], payload["seed"], payload.get("store"))


def record(
    scenario: str,
    seed: int,
    lighting: str,
    out: Path,
    *,
    store: str | None = None,
    ceiling_model: str | None = None,
    score_threshold: float = CEILING_SCORE_CUT,
) -> int:
    steps: list[Step] = []
    original = ceiling.CeilingTracker.step

    def recording_step(
        self: CeilingTracker,
        time_s: float,
        detections: Any,
        frames: Any = None,
        look_of: Any = None,
    ) -> Any:
        looks = {
            cid: [describe_person(frames.get(cid), b) if frames else None for b in d.xyxy]
            for cid, d in detections.items()
        }
        dets = {
            c: (d.xyxy.copy(), d.score.copy(), d.class_id.copy()) for c, d in detections.items()
        }
        crops = {
            cid: np.array(balanced_crops(frames[cid], d.xyxy), np.uint8)
            for cid, d in detections.items()
            if frames and cid in frames
        }
        steps.append((time_s, dets, looks, crops))
        return original(self, time_s, detections, frames, look_of)

    ceiling.CeilingTracker.step = recording_step  # type: ignore[method-assign]
    try:
        twin = _twin(scenario, seed, store)
        CameraPositioning(
            twin,
            LocalTransport(),
            lighting=lighting,
            reid_manifest=None,
            manifest=ceiling_model or CEILING_MANIFEST,
            score_threshold=score_threshold,
        ).advance(twin.end_s)
    finally:
        ceiling.CeilingTracker.step = original  # type: ignore[method-assign]
    payload = {
        "scenario": scenario,
        "seed": seed,
        "lighting": lighting,
        "store": store,
        "ceiling_model": ceiling_model,
        "steps": steps,
    }
    out.write_bytes(pickle.dumps(payload))
    print(f"{len(steps)} frame sets recorded to {out}")
    return 0


def _recorded_looks(step: Step, embed: Embed | None = None) -> LookOf:
    """Each tracked box's look: that of the recorded detection it overlaps most.

    ``embed``: a re-id model's looks from the recorded crops instead of the histogram.
    """
    dets, looks = step[1], step[2]
    crops = step[3] if len(step) > 3 else {}  # recordings from before crops were kept
    if embed is not None:
        looks = {cid: list(embed(list(c))) if len(c) else [] for cid, c in crops.items()}

    def look_of(camera_id: str, xyxy: np.ndarray) -> list[np.ndarray | None]:
        boxes = dets[camera_id][0]
        if not len(boxes):
            return [None] * len(xyxy)
        overlap = iou_xyxy(np.asarray(xyxy, dtype=float).reshape(-1, 4), boxes)
        best = overlap.argmax(axis=1)
        return [looks[camera_id][j] if overlap[k, j] > 0.3 else None for k, j in enumerate(best)]

    return look_of


def _detections(step: Step) -> dict[str, Detections]:
    return {cid: Detections(*arrays) for cid, arrays in step[1].items()}


def _observations(
    tracker: CeilingTracker, step: Step, embed: Embed | None = None
) -> list[CameraObservation]:
    return tracker.observe(_detections(step), look_of=_recorded_looks(step, embed))


def _embedder(onnx: Path | None) -> Embed | None:
    return None if onnx is None else ReidEmbedder(onnx).embed


def replay(recording: Path, overrides: list[str], reid: Path | None = None) -> int:
    payload = pickle.loads(recording.read_bytes())  # our own recording, not input
    twin = _payload_twin(payload)
    embed = _embedder(reid)
    for spec in overrides:
        tracker = CeilingTracker(twin.store, None, _settings(spec))
        frames: list[tuple[Points, Points]] = []
        for step in payload["steps"]:
            update = tracker.fusion.update(step[0], _observations(tracker, step, embed))
            tracks = [(t.track_id, t.x_m, t.y_m) for t in update.tracks]
            frames.append((true_positions(twin, step[0]), tracks))
        m = score_floor_tracks(frames)
        print(
            f"{spec}  MOTA {m['mota']:.3f}  IDF1 {m['idf1']:.3f}  switches {m['switches']}  "
            f"fp {m['false_positives']}  misses {m['misses']}",
            flush=True,
        )
    return 0


def window(
    recording: Path,
    t0_s: float,
    t1_s: float,
    people: list[str],
    *,
    reid: Path | None = None,
    spec: str = "{}",
) -> int:
    """Print the fusion state around the chosen shoppers, step by step (``replay_window``)."""
    payload = pickle.loads(recording.read_bytes())  # our own recording, not input
    twin = _payload_twin(payload)
    embed = _embedder(reid)
    tracker = CeilingTracker(twin.store, None, _settings(spec))
    anchors: Anchors = {}
    start = payload["steps"][0][0]
    for step in payload["steps"]:
        rel = step[0] - start
        if rel > t1_s:
            break
        obs = _observations(tracker, step, embed)
        tracker.fusion.update(step[0], obs)
        remember_anchors(tracker.fusion, anchors)
        if rel >= t0_s:
            here = {p: (x, y) for p, x, y in true_positions(twin, step[0]) if p in people}
            print(describe_step(tracker.fusion, rel, obs, here, anchors))
    return 0


class RecordedCameras:
    """The ceiling cameras of ``smartstore eval``, replayed from a recording with other settings."""

    def __init__(
        self,
        payload: dict[str, Any],
        transport: Transport,
        settings: CeilingSettings,
        embed: Embed | None = None,
    ):
        self.steps: list[Step] = payload["steps"]
        self.embed = embed
        self.tracker: CeilingTracker | None = None
        self.transport = transport
        self.settings = settings
        self._next = 0

    def bind(self, twin: Twin) -> RecordedCameras:
        self.tracker = CeilingTracker(twin.store, self.transport, self.settings)
        return self

    def advance(self, until_s: float) -> int:
        assert self.tracker is not None
        done = 0
        while self._next < len(self.steps) and self.steps[self._next][0] <= until_s:
            step = self.steps[self._next]
            looks = _recorded_looks(step, self.embed)
            self.tracker.process(step[0], _detections(step), look_of=looks)
            self._next += 1
            done += 1
        return done

    def report(self) -> dict[str, object]:
        return {"frame_sets": self._next, "replayed": True}


class _Tape:
    """A transport that keeps what is published, stamped with the drive loop's time."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.messages: list[tuple[float, str, bytes]] = []

    def publish(self, topic: str, data: bytes, qos: int = 0, retain: bool = False) -> None:
        self.messages.append((self.now_s, topic, data))

    def subscribe(self, topic_filter: str, callback: Any, qos: int = 0) -> None:
        pass

    def close(self) -> None:
        pass


def record_shelves(
    scenario: str,
    seed: int,
    lighting: str,
    out: Path,
    *,
    step_s: float = 0.1,
    store: str | None = None,
    shelf_model: str | None = None,
) -> int:
    """Run the shelf cameras as ``smartstore eval`` does; keep what they publish, and when."""
    twin = _twin(scenario, seed, store)
    tape = _Tape()
    cams = ShelfCameras(twin, tape, lighting=lighting, manifest=shelf_model or SHELF_MANIFEST)
    t = twin.start_s
    while t < twin.end_s:
        t = min(t + step_s, twin.end_s)
        tape.now_s = t
        cams.advance(t)
    tape.now_s = math.inf
    cams.finish()
    payload = {
        "scenario": scenario,
        "seed": seed,
        "lighting": lighting,
        "store": store,
        "shelf_model": shelf_model,
        "messages": tape.messages,
    }
    out.write_bytes(pickle.dumps(payload))
    print(f"{len(tape.messages)} shelf camera messages recorded to {out}")
    return 0


class RecordedShelves:
    """The shelf cameras of ``smartstore eval``, replayed: what they published, when they did."""

    def __init__(self, payload: dict[str, Any], transport: Transport) -> None:
        self.messages: list[tuple[float, str, bytes]] = payload["messages"]
        self.transport = transport
        self._next = 0

    def advance(self, until_s: float) -> int:
        start = self._next
        while self._next < len(self.messages) and self.messages[self._next][0] <= until_s:
            _, topic, data = self.messages[self._next]
            self.transport.publish(topic, data, 1, False)
            self._next += 1
        return self._next - start

    def finish(self) -> None:
        self.advance(math.inf)

    def report(self) -> dict[str, object]:
        return {"messages": self._next, "replayed": True}


def _settings(spec: str) -> CeilingSettings:
    base, upd = CeilingSettings(), json.loads(spec)
    return base.model_copy(
        update={
            "floor": base.floor.model_copy(update=upd.get("floor", {})),
            "camera_tracker": base.camera_tracker.model_copy(update=upd.get("cam", {})),
        }
    )


def replay_eval(
    recording: Path,
    spec: str,
    brain_spec: str,
    shelf_recording: Path | None = None,
    reid: Path | None = None,
    *,
    why: bool = False,
) -> int:
    """``smartstore eval`` with the ceiling cameras replayed: receipts scored, misses listed.

    ``why``: also say, for each reach of a wrong visit, what the tracks were doing
    (``smartstore.replay_why``).
    """
    payload = pickle.loads(recording.read_bytes())  # our own recording, not input
    settings = _settings(spec)
    shelves = None if shelf_recording is None else pickle.loads(shelf_recording.read_bytes())
    brain = BrainSettings().model_copy(update=json.loads(brain_spec))
    probe = IdentityProbe() if why else None
    with tempfile.TemporaryDirectory() as tmp:
        truth = Path(tmp) / "truth.json"
        result = run_eval(
            payload["scenario"],
            seed=payload["seed"],
            store=payload.get("store"),
            lighting=payload["lighting"],
            interactions="none" if shelf_recording is None else "cameras",
            settings=brain,
            progress=None,
            truth_path=truth,
            db_path=Path(tmp) / "ledger.sqlite",
            ceiling=lambda twin, transport: RecordedCameras(
                payload, transport, settings, _embedder(reid)
            ).bind(twin),
            shelves=None
            if shelves is None
            else lambda _, transport: RecordedShelves(shelves, transport),
            on_brain=None if probe is None else probe.attach,
        )
        truth_data = json.loads(truth.read_text())
        visits, interactions = truth_data["visits"], truth_data["interactions"]
        decisions = _decisions(Path(tmp) / "ledger.sqlite")
    receipts = {r.token: r for r in result.receipts}
    tokens = {session_id_for(v["token"]): v["token"] for v in visits}
    wrong = set()
    for v in visits:
        r = receipts.get(v["token"])
        got = {} if r is None else {ln.sku: ln.quantity for ln in r.lines if ln.quantity}
        want = {k: q for k, q in v["basket"].items() if q}
        if got != want:
            wrong.add(v["token"])
            flag = "missing" if r is None else ("review" if r.needs_review else "SILENT")
            print(f"{v['token']:>12} {flag:7} want {want} got {got}")
    causes: dict[str, int] = {}
    twin = _payload_twin(payload) if probe is not None else None
    situations: list[str] = []
    for act in interactions:
        event_id, cause = _who_got(act, decisions, tokens)
        if act["token"] in wrong and cause != "right":
            causes[cause.split(" ")[0]] = causes.get(cause.split(" ")[0], 0) + 1
            print(
                f"   {act['token']} {act['action']} {act['sku']} on {act['plate_id']} "
                f"at {act['started_s'] - payload_start(visits):.1f}: {cause}"
            )
            if probe is not None and twin is not None:
                situations.append(explain(probe, twin, act, event_id, tokens))
                print(f"      tracks: {situations[-1]}")
    print("reaches of wrong visits, by what went wrong:", causes)
    if situations:
        print("their track situations:", dict(tally(situations)))
    print(format_table(result.metrics))
    return 0


def _decisions(db: Path) -> list[tuple[str, str | None, str, str, float]]:
    with sqlite3.connect(db) as con:
        return [
            (row[0], row[1], row[2], row[3], row[4])
            for row in con.execute(
                "SELECT event_id, session_id, outcome, reason, event_time_s FROM shelf_decisions"
            )
        ]


def payload_start(visits: list[dict[str, Any]]) -> float:
    return min(v["entered_s"] for v in visits)


def _who_got(
    act: dict[str, Any],
    decisions: list[tuple[str, str | None, str, str, float]],
    tokens: dict[str, str],
) -> tuple[str | None, str]:
    """What the brain made of one true reach: its shelf event's id, outcome and visit."""
    near = [
        d
        for d in decisions
        if f":{act['plate_id']}:" in d[0] and act["started_s"] - 0.5 <= d[4] <= act["ended_s"] + 4.0
    ]
    if not near:
        return None, "no-event (the shelf saw nothing)"
    event_id, session_id, outcome, reason, _ = min(near, key=lambda d: abs(d[4] - act["ended_s"]))
    if outcome != "cart":
        return event_id, f"{outcome} ({reason[:80]})"
    who = tokens.get(session_id or "", session_id)
    if who == act["token"]:
        return event_id, "right"
    return event_id, f"other-visit {who} ({reason[-90:]})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smartstore.fusion_replay", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help="run the ceiling cameras once and keep their detections")
    r.add_argument("scenario")
    r.add_argument("out", type=Path)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--lighting", default="day")
    r.add_argument("--store", help="the scenario's shoppers in this store file's cameras")
    r.add_argument("--ceiling-model", help="manifest of another ceiling person model")
    r.add_argument(
        "--score-threshold",
        type=float,
        default=CEILING_SCORE_CUT,
        help="detector score cut (default: the store's, smartstore.cameras.CEILING_SCORE_CUT)",
    )
    rs = sub.add_parser("record-shelves", help="run the shelf cameras once and keep their events")
    rs.add_argument("scenario")
    rs.add_argument("out", type=Path)
    rs.add_argument("--seed", type=int, required=True)
    rs.add_argument("--lighting", default="day")
    rs.add_argument("--store", help="the scenario's shoppers in this store file")
    rs.add_argument("--shelf-model", help="manifest of another shelf hand model")
    q = sub.add_parser("replay", help="trackers and fusion from a recording, scored")
    q.add_argument("recording", type=Path)
    q.add_argument("overrides", nargs="+", help='JSON like {"floor": {"merge_m": 0.3}}')
    q.add_argument("--reid", type=Path, help="a re-id ONNX: looks from the recorded crops")
    w = sub.add_parser("window", help="the fusion state around chosen shoppers, step by step")
    w.add_argument("recording", type=Path)
    w.add_argument("t0", type=float, help="seconds after the recording's first frame set")
    w.add_argument("t1", type=float)
    w.add_argument("--people", required=True, help="true track ids, e.g. trk-51,trk-52")
    w.add_argument("--reid", type=Path, help="a re-id ONNX: looks from the recorded crops")
    w.add_argument("--overrides", default="{}", help="as for replay")
    e = sub.add_parser("eval", help="smartstore eval with the ceiling cameras replayed")
    e.add_argument("recording", type=Path)
    e.add_argument("overrides", nargs="?", default="{}", help="as for replay")
    e.add_argument("--shelves", type=Path, help="a record-shelves recording (default: none)")
    e.add_argument("--brain", default="{}", help="BrainSettings overrides as JSON")
    e.add_argument("--reid", type=Path, help="a re-id ONNX: looks from the recorded crops")
    e.add_argument("--why", action="store_true", help="say what the tracks did at each miss")
    args = p.parse_args(argv)
    if args.command == "eval":
        return replay_eval(
            args.recording, args.overrides, args.brain, args.shelves, args.reid, why=args.why
        )
    if args.command == "window":
        people = args.people.split(",")
        return window(args.recording, args.t0, args.t1, people, reid=args.reid, spec=args.overrides)
    if args.command == "record-shelves":
        return record_shelves(
            args.scenario,
            args.seed,
            args.lighting,
            args.out,
            store=args.store,
            shelf_model=args.shelf_model,
        )
    if args.command == "record":
        return record(
            args.scenario,
            args.seed,
            args.lighting,
            args.out,
            store=args.store,
            ceiling_model=args.ceiling_model,
            score_threshold=args.score_threshold,
        )
    return replay(args.recording, args.overrides, args.reid)


if __name__ == "__main__":
    sys.exit(main())
