"""The shared YOLOX-nano COCO model on real photos and real MOT17 frames.

Needs ``../shared/models/yolox_nano.onnx`` (never committed here) and the
shared data; each case skips with the missing path when they are absent.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from models import MANIFEST_DIR, load_model
from models.registry import ModelManifestError
from vision.detect import OnnxDetector
from vision.recall import detection_recall

pytestmark = pytest.mark.integration

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MODEL_DIR = SHARED / "models"
COCO_PERSON = SHARED / "data" / "coco-person"
MOT17_04 = SHARED / "data" / "mot17-mini" / "train" / "MOT17-04-FRCNN"

# ../shared/MANIFEST.md: on MOT17 frame 1 the model finds 13 of 38 visible pedestrians
# at IoU 0.5 (38 = MOT17-04 frame 1 with visibility >= 0.25).
MANIFEST_FOUND, MANIFEST_VISIBLE = 13, 38


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: these cases run against ../shared (see MANIFEST.md)")
    return path


@pytest.fixture(scope="module")
def detector() -> OnnxDetector:
    _need(MODEL_DIR / "yolox_nano.onnx")
    model = load_model(MANIFEST_DIR / "yolox_nano.yaml", model_dir=MODEL_DIR)
    # a recall-oriented threshold: a tracker downstream takes low-score boxes too
    return OnnxDetector.from_model(model, score_threshold=0.1, threads=2)


def test_finds_several_people_in_each_coco_photo(detector: OnnxDetector) -> None:
    photos = sorted(_need(COCO_PERSON).glob("*.jpg"))
    assert photos, f"no photos in {COCO_PERSON}"
    frames = [cv2.imread(str(p)) for p in photos]
    for path, frame, dets in zip(photos, frames, detector.detect(frames), strict=True):
        people = dets.with_class([0])
        # the folder holds photos with several people each; 0.3 is YOLOX's usual demo threshold
        assert (people.score >= 0.5).any(), f"{path.name}: no confident person"
        assert (people.score >= 0.3).sum() >= 2, f"{path.name}: fewer than 2 people"
        h, w = frame.shape[:2]
        assert (people.xyxy[:, 2] <= w).all() and (people.xyxy[:, 3] <= h).all()


def test_mot17_recall_is_at_least_the_manifest_figure(detector: OnnxDetector) -> None:
    result = detection_recall(_need(MOT17_04), detector, frames=[1], min_visibility=0.25)
    assert result["gt"] == MANIFEST_VISIBLE
    assert result["recall"] >= MANIFEST_FOUND / MANIFEST_VISIBLE
    assert result["precision"] > 0.5


def test_a_tampered_model_is_refused(tmp_path: Path) -> None:
    source = _need(MODEL_DIR / "yolox_nano.onnx").read_bytes()
    (tmp_path / "yolox_nano.onnx").write_bytes(source[:-1] + bytes([source[-1] ^ 1]))
    with pytest.raises(ModelManifestError, match="Refusing"):
        load_model(MANIFEST_DIR / "yolox_nano.yaml", model_dir=tmp_path)


def test_fixed_input_size_is_reported(detector: OnnxDetector) -> None:
    del detector  # only to skip with the fixture when the model is absent
    with pytest.raises(ValueError, match="fixed at 416x416"):
        OnnxDetector(
            MODEL_DIR / "yolox_nano.onnx", decoder="yolox", input_size=640, classes=["x"] * 80
        )
