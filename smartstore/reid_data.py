"""Person crops with identities from the twin's ceiling cameras: data for the re-id model.

Runs a scenario's ceiling cameras exactly as ``smartstore eval`` does
(renderer, detector, trackers) and keeps, for every detected person who stands
alone (the only shopper within ``alone_m``), a small crop of the detection box
and the shopper it shows (the detection's floor point within ``match_m`` of
that shopper's true position). Crops are cut from the grey-world balanced
frame, as the runtime re-id step cuts them (``vision.reid``).

    .venv/bin/python -m smartstore.reid_data runs/reid/busy-202.npz scenarios/busy.yaml --seed 202

The output ``.npz`` holds ``crops`` (N, S, S, 3) uint8 BGR, ``person`` (N,)
visit index, ``time_s`` (N,) and ``camera`` (N,) names; a person's identity is
only meaningful within one file (one scenario draw).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from iot.bus import LocalTransport
from iot.store import load_store
from sim.scenario import load_scenario
from sim.twin import Twin
from smartstore.cameras import CameraPositioning
from smartstore.track_eval import true_positions
from vision import ceiling
from vision.floor import project_boxes
from vision.reid import CROP_PX, balanced_crops

__all__ = ["collect"]


def collect(
    scenario_path: str,
    seed: int,
    *,
    lighting: str = "day",
    match_m: float = 0.3,
    alone_m: float = 1.0,
    min_score: float = 0.5,
) -> dict[str, np.ndarray]:
    sc = load_scenario(scenario_path).model_copy(update={"seed": seed})
    twin = Twin(load_store(sc.store), sc, positioning_feed=False)
    visit_index = {v.track_id: v.index for v in twin.visits}
    crops: list[np.ndarray] = []
    person: list[int] = []
    times: list[float] = []
    cams: list[str] = []
    original = ceiling.CeilingTracker.step

    def step(self: Any, time_s: float, detections: Any, frames: Any = None, look_of: Any = None):
        truth = true_positions(twin, time_s)
        for cid, d in detections.items():
            keep = d.score >= min_score
            if not keep.any() or frames is None or cid not in frames:
                continue
            boxes = d.xyxy[keep]
            xy, _ = project_boxes(self.cameras[cid], boxes, self.settings.floor)
            cut = balanced_crops(frames[cid], boxes)
            for (x, y), crop in zip(xy.tolist(), cut, strict=True):
                who = _alone(truth, x, y, match_m, alone_m)
                if who is not None:
                    crops.append(crop)
                    person.append(visit_index[who])
                    times.append(time_s)
                    cams.append(cid)
        return original(self, time_s, detections, frames, look_of)

    ceiling.CeilingTracker.step = step  # type: ignore[method-assign]
    try:
        CameraPositioning(twin, LocalTransport(), lighting=lighting, reid_manifest=None).advance(
            twin.end_s
        )
    finally:
        ceiling.CeilingTracker.step = original  # type: ignore[method-assign]
    return {
        "crops": np.array(crops, np.uint8).reshape(-1, CROP_PX, CROP_PX, 3),
        "person": np.array(person, np.int32),
        "time_s": np.array(times),
        "camera": np.array(cams),
    }


def _alone(
    truth: list[tuple[str, float, float]], x: float, y: float, match_m: float, alone_m: float
) -> str | None:
    """The shopper at (x, y) if exactly one is within match_m and no other within alone_m."""
    if math.isnan(x) or math.isnan(y):
        return None
    near = sorted((math.hypot(x - tx, y - ty), tid) for tid, tx, ty in truth)
    if not near or near[0][0] > match_m:
        return None
    if len(near) > 1 and near[1][0] <= alone_m:
        return None
    return near[0][1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smartstore.reid_data", description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("scenario")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--lighting", default="day")
    args = p.parse_args(argv)
    data = collect(args.scenario, args.seed, lighting=args.lighting)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, allow_pickle=False, **data)
    people = len(set(data["person"].tolist()))
    print(f"{len(data['person'])} crops of {people} shoppers written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
