"""The shipped ceiling-camera person model on frames the twin renders afresh.

The frames come from a scenario re-seeded with a seed neither dataset split
used, under the held-out split's lighting ("evening"), so they are new views of
the conditions the manifest's mAP50 was measured on. Skipped when
``models/ceiling_person.onnx`` is absent (it is only shipped when small).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import MANIFEST_DIR, load_model
from vision.detect import OnnxDetector, box_iou
from vision.detections import Detections

pytestmark = pytest.mark.integration

MODEL_DIR = Path(__file__).resolve().parents[2] / "models"
MODEL_FILE = MODEL_DIR / "ceiling_person.onnx"
FRESH_SEED = 90210  # none of the training exports' seeds (101 and derived) nor val's (202)
MIN_VISIBILITY = 0.2  # the dataset export's default: people less visible are unlabelled
SCORE = 0.25  # an operating threshold, not the AP sweep's 0.01
# Bound: on the held-out val split (manifest, docs/training.md) this model's recall at score
# 0.25 and IoU 0.5 was 0.944 (406 of 430), with 0.30 false detections per frame. Fresh
# frames are a few dozen people, so the bound leaves room for their sampling spread.
RECALL_MEASURED = 0.944
MIN_RECALL = 0.85
MAX_FALSE_PER_FRAME = 0.8


@pytest.fixture(scope="module")
def detector() -> OnnxDetector:
    if not MODEL_FILE.is_file():
        pytest.skip(f"{MODEL_FILE} is absent; train it with models/train.py (docs/training.md)")
    model = load_model(MANIFEST_DIR / "ceiling_person.yaml", model_dir=MODEL_DIR)
    return OnnxDetector.from_model(model, score_threshold=SCORE, threads=2)


def _fresh_frames(n_per_camera: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, visible people's boxes) from busy.yaml re-seeded, people in view."""
    from iot.store import load_store
    from sim.render import LIGHTING_PRESETS, CeilingRenderer, RenderSettings
    from sim.scenario import load_scenario
    from sim.twin import Twin

    root = Path(__file__).resolve().parents[2]
    scenario = load_scenario(root / "scenarios" / "busy.yaml").model_copy(
        update={"seed": FRESH_SEED}
    )
    twin = Twin(load_store(scenario.store), scenario)
    renderer = CeilingRenderer(
        twin.store,
        seed=FRESH_SEED,
        settings=RenderSettings(lighting=LIGHTING_PRESETS["evening"]),
    )
    rng = np.random.default_rng(FRESH_SEED)
    out = []
    for cam_id in sorted(renderer.cameras):
        times = np.sort(rng.uniform(twin.start_s, twin.end_s, size=20))
        busy = [float(t) for t in times if renderer.people_in_view(twin, cam_id, float(t))]
        for t in busy[:n_per_camera]:
            frame = renderer.render(twin, cam_id, t)
            out.append((frame.image, frame.boxes_xyxy(MIN_VISIBILITY)))
    return out


def _found(dets: Detections, gt: np.ndarray) -> tuple[int, int]:
    """(people found at IoU 0.5, detections matching nobody), greedy one-to-one."""
    if len(gt) == 0:
        return 0, len(dets)
    if len(dets) == 0:
        return 0, 0
    iou = box_iou(dets.xyxy, gt.astype(np.float32))
    claimed = np.zeros(len(gt), bool)
    false = 0
    for i in np.argsort(-dets.score):
        j = int(np.argmax(np.where(claimed, -1.0, iou[i])))
        if iou[i, j] >= 0.5 and not claimed[j]:
            claimed[j] = True
        else:
            false += 1
    return int(claimed.sum()), false


def test_recall_on_fresh_rendered_frames_matches_the_manifest(detector: OnnxDetector) -> None:
    frames = _fresh_frames(n_per_camera=2)
    assert len(frames) >= 8, "the fresh scenario should put people in view of most cameras"
    found = visible = false = 0
    for image, gt in frames:
        people = detector.detect([image])[0].with_class([0])
        f, fp = _found(people, gt)
        found, visible, false = found + f, visible + len(gt), false + fp
    assert visible >= 10, f"only {visible} visible people rendered; pick busier times"
    recall = found / visible
    assert recall >= MIN_RECALL, (
        f"found {found} of {visible} visible people (recall {recall:.3f}); the model "
        f"measured {RECALL_MEASURED} on the val split, so the bound is {MIN_RECALL}"
    )
    assert false / len(frames) <= MAX_FALSE_PER_FRAME, f"{false} false detections"
