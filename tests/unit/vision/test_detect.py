"""Letterbox, decoders and NMS on synthetic arrays: a known box survives the round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vision.detect import (
    DECODERS,
    OnnxDetector,
    batched_nms,
    box_iou,
    decode_ultralytics,
    decode_yolox,
    letterbox,
    nms,
    select_detections,
    to_blob,
)

SOURCE_W, SOURCE_H, INPUT = 640, 480, 416
SOURCE_BOX = np.array([100.0, 80.0, 200.0, 280.0], dtype=np.float32)
N_CLASSES = 5


def _frame() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(SOURCE_H, SOURCE_W, 3), dtype=np.uint8)


@pytest.mark.parametrize("centre", [False, True])
def test_letterbox_places_image_and_pads(centre: bool) -> None:
    canvas, box = letterbox(_frame(), INPUT, centre=centre)
    assert canvas.shape == (INPUT, INPUT, 3)
    new_h = round(SOURCE_H * box.scale)
    assert box.scale == pytest.approx(INPUT / SOURCE_W)
    assert box.pad_x == 0
    assert box.pad_y == ((INPUT - new_h) // 2 if centre else 0)
    # everything outside the resized image is the pad grey
    assert (canvas[: box.pad_y] == 114).all()
    assert (canvas[box.pad_y + new_h :] == 114).all()
    assert not (canvas[box.pad_y : box.pad_y + new_h] == 114).all()


def test_letterbox_refuses_grey_frames() -> None:
    with pytest.raises(ValueError, match=r"\(H, W, 3\), got \(4, 4\)"):
        letterbox(np.zeros((4, 4), np.uint8), INPUT, centre=False)


def test_to_blob_layout_colour_and_scale() -> None:
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    blob = to_blob([img, img], swap_rb=True, unit_scale=True)
    assert blob.shape == (2, 3, 2, 2) and blob.dtype == np.float32
    assert blob[0, 2].max() == pytest.approx(1.0) and blob[0, 0].max() == 0.0
    raw = to_blob([img], swap_rb=False, unit_scale=False)
    assert raw[0, 0].max() == 255.0


def _yolox_raw(input_box: np.ndarray, stride: int, class_id: int) -> np.ndarray:
    """A raw YOLOX output with one confident anchor encoding ``input_box``."""
    sizes = [(INPUT // s) ** 2 for s in (8, 16, 32)]
    out = np.zeros((sum(sizes), 5 + N_CLASSES), dtype=np.float32)
    out[:, 2:4] = -5.0  # tiny boxes elsewhere, all with zero objectness
    cx, cy = (input_box[:2] + input_box[2:]) / 2
    w, h = input_box[2:] - input_box[:2]
    cells = INPUT // stride
    gx, gy = int(cx // stride), int(cy // stride)
    start = sum(sizes[: (8, 16, 32).index(stride)])
    row = out[start + gy * cells + gx]
    row[:4] = [cx / stride - gx, cy / stride - gy, np.log(w / stride), np.log(h / stride)]
    row[4] = 0.9
    row[5 + class_id] = 0.8
    return out


@pytest.mark.parametrize("stride", [8, 16, 32])
def test_yolox_box_round_trip(stride: int) -> None:
    _, box = letterbox(_frame(), INPUT, centre=DECODERS["yolox"].centre)
    input_box = SOURCE_BOX * box.scale + np.array([box.pad_x, box.pad_y] * 2)
    boxes, scores = decode_yolox(_yolox_raw(input_box, stride, class_id=3), INPUT)
    dets = select_detections(boxes, scores, score_threshold=0.3, nms_iou=0.45, max_detections=10)
    assert len(dets) == 1
    assert dets.class_id.tolist() == [3]
    assert dets.score[0] == pytest.approx(0.72)
    np.testing.assert_allclose(box.to_source(dets.xyxy)[0], SOURCE_BOX, atol=1e-3)


def test_yolox_decoder_refuses_wrong_anchor_count() -> None:
    with pytest.raises(ValueError, match=r"shape \(3549, 5\+C\).*got \(100, 85\)"):
        decode_yolox(np.zeros((100, 85), np.float32), INPUT)


def test_ultralytics_box_round_trip() -> None:
    _, box = letterbox(_frame(), INPUT, centre=DECODERS["ultralytics"].centre)
    assert box.pad_y > 0  # centred: the round trip must undo the offset
    x1, y1, x2, y2 = SOURCE_BOX * box.scale + np.array([box.pad_x, box.pad_y] * 2)
    anchors = 30
    out = np.zeros((4 + N_CLASSES, anchors), dtype=np.float32)
    out[:4] = 20.0
    out[4:] = 0.01
    out[:, 17] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 0, 0, 0.95, 0, 0]
    boxes, scores = decode_ultralytics(out, INPUT)
    dets = select_detections(boxes, scores, score_threshold=0.5, nms_iou=0.5, max_detections=5)
    assert dets.class_id.tolist() == [2]
    np.testing.assert_allclose(box.to_source(dets.xyxy)[0], SOURCE_BOX, atol=1e-3)


def test_to_source_clips_to_the_frame() -> None:
    _, box = letterbox(_frame(), INPUT, centre=False)
    out = box.to_source(np.array([[-10, -10, 500, 500]], np.float32))
    assert out.tolist() == [[0.0, 0.0, SOURCE_W, SOURCE_H]]


A = [0.0, 0.0, 2.0, 1.0]
B_THIRD = [1.0, 0.0, 3.0, 1.0]  # IoU with A is 1/3
FAR = [10.0, 10.0, 12.0, 11.0]


@pytest.mark.parametrize(
    ("boxes", "scores", "iou", "kept"),
    [
        ([], [], 0.5, []),
        ([A], [0.3], 0.5, [0]),
        ([A, A], [0.3, 0.9], 0.5, [1]),
        ([A, B_THIRD], [0.9, 0.8], 0.3, [0]),
        ([A, B_THIRD], [0.9, 0.8], 0.4, [0, 1]),
        ([B_THIRD, A, FAR], [0.5, 0.9, 0.7], 0.3, [1, 2]),
        ([A, A, A], [0.2, 0.2, 0.2], 0.5, [0]),  # ties keep the first, deterministically
    ],
)
def test_nms_table(boxes, scores, iou, kept) -> None:
    xyxy = np.asarray(boxes, np.float32).reshape(-1, 4)
    assert nms(xyxy, np.asarray(scores, np.float32), iou).tolist() == kept


@pytest.mark.parametrize("shift", [0.0, -50.0])  # boxes may stick out left of the image
def test_batched_nms_keeps_overlapping_boxes_of_other_classes(shift: float) -> None:
    xyxy = np.asarray([A, A, A, [-10, 0, 1, 5], [0, 0, 2, 6]], np.float32) + shift
    score = np.asarray([0.9, 0.8, 0.7, 0.6, 0.5], np.float32)
    kept = batched_nms(xyxy, score, np.asarray([0, 1, 0, 0, 1], np.int32), 0.5)
    assert kept.tolist() == [0, 1, 3, 4]


def test_batched_nms_with_boxes_left_of_the_image() -> None:
    # a class-1 box as far up-left as the class-0 box is down-right: a shift by the largest
    # absolute coordinate would move it onto the class-0 box
    xyxy = np.asarray([[0, 0, 10, 10], [-10, -10, 0, 0]], np.float32)
    kept = batched_nms(xyxy, np.asarray([0.9, 0.8], np.float32), np.asarray([0, 1], np.int32), 0.5)
    assert kept.tolist() == [0, 1]


def test_box_iou_values() -> None:
    iou = box_iou(np.asarray([A], np.float32), np.asarray([A, B_THIRD, FAR], np.float32))
    np.testing.assert_allclose(iou[0], [1.0, 1 / 3, 0.0], atol=1e-6)


def test_select_filters_score_class_and_count() -> None:
    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 300, size=(50, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + 20], axis=1)
    scores = rng.uniform(0, 1, size=(50, N_CLASSES)).astype(np.float32)
    dets = select_detections(
        boxes, scores, score_threshold=0.5, nms_iou=0.5, max_detections=7, keep_class_ids=[1, 4]
    )
    assert 0 < len(dets) <= 7
    assert set(dets.class_id.tolist()) <= {1, 4}
    assert (dets.score >= 0.5).all()
    assert (np.diff(dets.score) <= 0).all()


def test_detector_refuses_unknown_decoder_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown decoder 'ssd'"):
        OnnxDetector(tmp_path / "m.onnx", decoder="ssd", input_size=416, classes=["p"])  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"m\.onnx not found"):
        OnnxDetector(tmp_path / "m.onnx", decoder="yolox", input_size=416, classes=["p"])


def test_a_detector_fed_balanced_frames_does_not_balance_them_again() -> None:
    from models.registry import load_model, model_dir_of
    from vision.detect import OnnxDetector

    manifest = Path(__file__).resolve().parents[3] / "models" / "manifests" / "shelf_hands.yaml"
    model = load_model(manifest, model_dir=model_dir_of(manifest))
    assert model.manifest.colour == "grey_world"
    assert OnnxDetector.from_model(model).colour == "grey_world"
    assert OnnxDetector.from_model(model, balanced_upstream=True).colour == "none"
