"""``smartstore eval-tracking``: the store-level ceiling tracks scored on the floor.

What the brain receives from the ceiling cameras is one track per shopper in
floor metres (per-camera tracks fused across overlapping cameras). This runs
the same ``CameraPositioning`` as ``smartstore eval`` over a window of a
scenario, collects every ``TrackBatch`` it publishes, and scores them against
the twin's true floor positions with CLEAR-MOT and IDF1, where a track and a
shopper may be paired while they are at most ``radius_m`` apart (0.5 m: the
ground-plane convention of multi-camera pedestrian benchmarks, about a
shoulder width, closer than two shoppers stand).

Per-camera MOT on one camera's frames (``eval-mot``) charges an identity
change every time a shopper walks out of that camera's view and back; the
store's tracks do not lose a shopper who is seen by the next camera, so this
is the figure that says whether the brain is told who is where.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from iot.bus import LocalTransport
from iot.payloads import TrackBatch
from iot.store import load_store
from iot.topics import TOPICS
from sim.scenario import load_scenario
from sim.twin import Twin
from smartstore.cameras import CEILING_MANIFEST, CameraPositioning
from vision.mot import ClearMotAccumulator

__all__ = ["FLOOR_MATCH_M", "Points", "run_track_eval", "score_floor_tracks", "true_positions"]

FLOOR_MATCH_M = 0.5

Points = list[tuple[str, float, float]]  # (id, x_m, y_m)


def score_floor_tracks(
    frames: list[tuple[Points, Points]], radius_m: float = FLOOR_MATCH_M
) -> dict[str, float | int]:
    """CLEAR-MOT and IDF1 over (truth, tracks) point sets, one pair per time step.

    >>> same = [("a", 0.0, 0.0)], [("t1", 0.1, 0.0)]
    >>> far = [("a", 0.0, 0.0)], [("t1", 2.0, 0.0)]
    >>> score_floor_tracks([same, same])["mota"], score_floor_tracks([same, far])["mota"]
    (1.0, 0.0)
    """
    acc = ClearMotAccumulator()
    gt_ids: dict[str, int] = {}
    hyp_ids: dict[str, int] = {}
    for truth, tracks in frames:
        g = np.array([[x, y] for _, x, y in truth], dtype=float).reshape(-1, 2)
        h = np.array([[x, y] for _, x, y in tracks], dtype=float).reshape(-1, 2)
        dist = np.linalg.norm(g[:, None, :] - h[None, :, :], axis=2)
        acc.update_distances(
            [gt_ids.setdefault(i, len(gt_ids)) for i, _, _ in truth],
            [hyp_ids.setdefault(i, len(hyp_ids)) for i, _, _ in tracks],
            dist,
            radius_m,
        )
    return acc.counts().as_dict()


def true_positions(twin: Twin, t_s: float) -> Points:
    out: Points = []
    for v in twin.visits:
        if v.track_start_s <= t_s < v.track_end_s:
            x, y = v.position(np.array([t_s]))
            out.append((v.track_id, float(x[0]), float(y[0])))
    return out


def run_track_eval(
    scenario_path: str | Path,
    *,
    seconds: float | None = None,
    start_offset_s: float = 0.0,
    seed: int | None = None,
    lighting: str = "day",
    fps: float = 5.0,
    radius_m: float = FLOOR_MATCH_M,
    manifest: str | Path = CEILING_MANIFEST,
    frames_out: str | Path | None = None,
) -> dict[str, Any]:
    """Run the ceiling cameras over ``[start + offset, + seconds]`` and score the tracks.

    The cameras run from the scenario's start (so trackers and fusion hold
    the state they would have), and only the window is scored; ``seconds``
    None runs to the scenario's end. ``frames_out``: also write every scored
    step (time, true positions, tracks) as JSON lines, to study the errors.
    """
    if (seconds is not None and not seconds > 0) or start_offset_s < 0:
        raise ValueError(f"need seconds > 0 and offset >= 0, got {seconds} and {start_offset_s}")
    scenario = load_scenario(scenario_path)
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": int(seed)})
    twin = Twin(load_store(scenario.store), scenario, positioning_feed=False)
    transport = LocalTransport()
    batches: list[TrackBatch] = []
    transport.subscribe(
        TOPICS["tracks"].filter(twin.store.store_id),
        lambda _topic, data: batches.append(TrackBatch.model_validate_json(data)),
    )
    cameras = CameraPositioning(twin, transport, fps=fps, lighting=lighting, manifest=manifest)
    t0 = twin.start_s + start_offset_s
    t1 = twin.end_s if seconds is None else t0 + seconds
    cameras.advance(t1)
    frames = [
        (true_positions(twin, b.event_time_s), [(p.track_id, p.x_m, p.y_m) for p in b.tracks])
        for b in batches
        if b.event_time_s >= t0 - 1e-9
    ]
    if frames_out is not None:
        steps = [b.event_time_s for b in batches if b.event_time_s >= t0 - 1e-9]
        with Path(frames_out).open("w", encoding="utf-8") as fh:
            for t, (truth, tracks) in zip(steps, frames, strict=True):
                fh.write(json.dumps({"t": t, "truth": truth, "tracks": tracks}) + "\n")
    metrics = score_floor_tracks(frames, radius_m)
    errors = _position_errors(frames, radius_m)
    return {
        "scenario": str(scenario_path),
        "seed": scenario.seed,
        "lighting": lighting,
        "fps": fps,
        "window_s": [start_offset_s, round(t1 - twin.start_s, 3)],
        "radius_m": radius_m,
        "frames": len(frames),
        "overall": metrics,
        "position_error_m": errors,
        "cameras": cameras.report(),
    }


def _position_errors(frames: list[tuple[Points, Points]], radius_m: float) -> dict[str, float]:
    """Median and p95 distance from each shopper to the nearest track within the radius."""
    d = []
    for truth, tracks in frames:
        for _, x, y in truth:
            near = min((math.hypot(x - tx, y - ty) for _, tx, ty in tracks), default=math.inf)
            if near <= radius_m:
                d.append(near)
    if not d:
        return {"median": math.nan, "p95": math.nan}
    return {"median": round(float(np.median(d)), 3), "p95": round(float(np.quantile(d, 0.95)), 3)}
