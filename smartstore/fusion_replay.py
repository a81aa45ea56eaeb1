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
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from iot.bus import LocalTransport
from iot.store import load_store
from sim.scenario import load_scenario
from sim.twin import Twin
from smartstore.cameras import CameraPositioning
from smartstore.track_eval import Points, score_floor_tracks, true_positions
from vision import ceiling
from vision.appearance import describe_person
from vision.ceiling import CeilingSettings, CeilingTracker
from vision.detections import Detections
from vision.floor import CameraObservation, project_boxes
from vision.tracking import iou_xyxy

Step = tuple[float, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], dict[str, list[Any]]]


def _twin(scenario: str, seed: int) -> Twin:
    sc = load_scenario(scenario).model_copy(update={"seed": seed})
    return Twin(load_store(sc.store), sc, positioning_feed=False)


def record(scenario: str, seed: int, lighting: str, out: Path) -> int:
    steps: list[Step] = []
    original = ceiling.CeilingTracker.step

    def recording_step(
        self: CeilingTracker, time_s: float, detections: Any, frames: Any = None
    ) -> Any:
        looks = {
            cid: [describe_person(frames.get(cid), b) if frames else None for b in d.xyxy]
            for cid, d in detections.items()
        }
        dets = {
            c: (d.xyxy.copy(), d.score.copy(), d.class_id.copy()) for c, d in detections.items()
        }
        steps.append((time_s, dets, looks))
        return original(self, time_s, detections, frames)

    ceiling.CeilingTracker.step = recording_step  # type: ignore[method-assign]
    try:
        twin = _twin(scenario, seed)
        CameraPositioning(twin, LocalTransport(), lighting=lighting).advance(twin.end_s)
    finally:
        ceiling.CeilingTracker.step = original  # type: ignore[method-assign]
    payload = {"scenario": scenario, "seed": seed, "lighting": lighting, "steps": steps}
    out.write_bytes(pickle.dumps(payload))
    print(f"{len(steps)} frame sets recorded to {out}")
    return 0


def _observations(tracker: CeilingTracker, step: Step) -> list[CameraObservation]:
    _, dets, looks = step
    out: list[CameraObservation] = []
    for cid in sorted(dets):
        xyxy, score, cls = dets[cid]
        d = Detections(xyxy, score, cls).with_class([tracker.settings.person_class_id])
        tracks = [t for t in tracker.trackers[cid].update(d) if t.frames_since_hit == 0]
        if not tracks:
            continue
        boxes = np.array([t.xyxy for t in tracks])
        xy, sigma = project_boxes(tracker.cameras[cid], boxes, tracker.settings.floor)
        overlap = iou_xyxy(boxes, xyxy) if len(xyxy) else np.zeros((len(boxes), 0))
        for k, (t, (x, y), s) in enumerate(zip(tracks, xy.tolist(), sigma.tolist(), strict=True)):
            if math.isnan(x) or math.isnan(y):
                continue
            j = int(np.argmax(overlap[k])) if overlap.shape[1] else -1
            look = looks[cid][j] if j >= 0 and overlap[k, j] > 0.3 else None
            out.append(CameraObservation(cid, t.track_id, x, y, s, look))
    return out


def replay(recording: Path, overrides: list[str]) -> int:
    payload = pickle.loads(recording.read_bytes())  # our own recording, not input
    twin = _twin(payload["scenario"], payload["seed"])
    base = CeilingSettings()
    for spec in overrides:
        upd = json.loads(spec)
        settings = base.model_copy(
            update={
                "floor": base.floor.model_copy(update=upd.get("floor", {})),
                "camera_tracker": base.camera_tracker.model_copy(update=upd.get("cam", {})),
            }
        )
        tracker = CeilingTracker(twin.store, None, settings)
        frames: list[tuple[Points, Points]] = []
        for step in payload["steps"]:
            update = tracker.fusion.update(step[0], _observations(tracker, step))
            tracks = [(t.track_id, t.x_m, t.y_m) for t in update.tracks]
            frames.append((true_positions(twin, step[0]), tracks))
        m = score_floor_tracks(frames)
        print(
            f"{spec}  MOTA {m['mota']:.3f}  IDF1 {m['idf1']:.3f}  switches {m['switches']}  "
            f"fp {m['false_positives']}  misses {m['misses']}",
            flush=True,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smartstore.fusion_replay", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help="run the ceiling cameras once and keep their detections")
    r.add_argument("scenario")
    r.add_argument("out", type=Path)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--lighting", default="day")
    q = sub.add_parser("replay", help="trackers and fusion from a recording, scored")
    q.add_argument("recording", type=Path)
    q.add_argument("overrides", nargs="+", help='JSON like {"floor": {"merge_m": 0.3}}')
    args = p.parse_args(argv)
    if args.command == "record":
        return record(args.scenario, args.seed, args.lighting, args.out)
    return replay(args.recording, args.overrides)


if __name__ == "__main__":
    sys.exit(main())
