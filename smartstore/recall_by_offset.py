"""A ceiling detector's recall by how far off a camera's nadir each person stands.

Seen from straight above a shopper is a head on shoulders; seen from far off,
a whole leaning body. A detector trained on one camera mounting can miss the
other (docs/architecture.md, "where the ceiling cameras hang"). This renders a
scenario's ceiling cameras every ``--every-s`` seconds, runs the detector and
counts, per band of horizontal distance between a person and the camera, the
people at least half visible that a detection covers at IoU 0.5::

    python -m smartstore.recall_by_offset scenarios/busy.yaml --seed 303
    python -m smartstore.recall_by_offset scenarios/busy.yaml --seed 303 \\
        --store stores/demo-aisles.yaml --model runs/train/ceiling_person_aisles.yaml
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from iot.store import load_store
from models.registry import load_model
from sim.render import CeilingRenderer
from sim.scenario import load_scenario_as
from sim.twin import Twin
from smartstore.cameras import CEILING_MANIFEST, CEILING_SCORE_CUT, model_dir_of
from vision.detect import OnnxDetector, box_iou

__all__ = ["BANDS_M", "recall_by_offset"]

BANDS_M = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)  # lower edges of the distance bands
MIN_VISIBILITY = 0.5
IOU = 0.5


def recall_by_offset(
    twin: Twin,
    detector: OnnxDetector,
    times_s: Sequence[float],
    renderer: CeilingRenderer,
) -> list[tuple[float, int, int]]:
    """(band's lower edge, people found, people) per band, over the given times."""
    cams = {c.id: c for c in twin.store.devices.cameras if c.kind == "ceiling"}
    found = np.zeros(len(BANDS_M), int)
    total = np.zeros(len(BANDS_M), int)
    for t in times_s:
        frames = [renderer.render(twin, cid, t) for cid in cams]
        for frame, dets in zip(frames, detector.detect([f.image for f in frames]), strict=True):
            cam = cams[frame.camera_id]
            for person in frame.people:
                if person.visibility < MIN_VISIBILITY:
                    continue
                dx = person.floor_m[0] - cam.position_m[0]
                dy = person.floor_m[1] - cam.position_m[1]
                band = int(np.searchsorted(BANDS_M, np.hypot(dx, dy), side="right")) - 1
                total[band] += 1
                box = np.asarray([person.xyxy], dtype=float)
                found[band] += bool(len(dets.xyxy)) and box_iou(box, dets.xyxy).max() >= IOU
    return [(BANDS_M[k], int(found[k]), int(total[k])) for k in range(len(BANDS_M))]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m smartstore.recall_by_offset", description=__doc__)
    ap.add_argument("scenario")
    ap.add_argument("--seed", type=int, default=None, help="replace the scenario's seed")
    ap.add_argument("--store", default=None, help="render in this store file's cameras")
    ap.add_argument("--model", default=str(CEILING_MANIFEST), help="ceiling model manifest")
    ap.add_argument(
        "--score", type=float, default=CEILING_SCORE_CUT, help="detector score cut (the store's)"
    )
    ap.add_argument("--start-s", type=float, default=20.0, help="first frame, s after opening")
    ap.add_argument("--end-s", type=float, default=320.0, help="last frame before this, s")
    ap.add_argument("--every-s", type=float, default=7.0, help="seconds between frame sets")
    args = ap.parse_args(argv)
    scenario = load_scenario_as(args.scenario, seed=args.seed, store=args.store)
    twin = Twin(load_store(scenario.store), scenario, positioning_feed=False)
    model = load_model(args.model, model_dir=model_dir_of(Path(args.model)))
    detector = OnnxDetector.from_model(model, score_threshold=args.score)
    times = twin.start_s + np.arange(args.start_s, args.end_s, args.every_s)
    renderer = CeilingRenderer(twin.store, seed=scenario.seed)
    name = model.manifest.name
    print(f"model {name}, {len(times)} frame sets, score >= {args.score}, IoU {IOU}")
    for lower, found, total in recall_by_offset(twin, detector, list(times), renderer):
        if total:
            print(f"{lower:.1f} m and further: recall {found / total:.2f} ({found} of {total})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
