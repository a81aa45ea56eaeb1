"""MotionGate on synthetic frames and on a real video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from vision.detections import Detections
from vision.motion import (
    MotionGate,
    MotionSettings,
    detection_regions,
    merge_boxes,
    offset_detections,
)

TUD = (
    Path(__file__).resolve().parents[4]
    / "shared"
    / "data"
    / "mot15"
    / "TUD-Campus"
    / "TUD-Campus.mp4"
)


def _scene(seed: int = 0, shape: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A textured light floor (smooth, so blur does not erase it) in BGR.

    Differencing works on grey levels: a shopper whose grey level equals the
    floor's would be invisible, so the floor is light and the coat dark.
    """
    rng = np.random.default_rng(seed)
    coarse = rng.integers(100, 220, size=(shape[0] // 16, shape[1] // 16, 3), dtype=np.uint8)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    noise = rng.normal(0.0, sigma, size=frame.shape)
    return np.clip(frame.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def _settings(**kw: object) -> MotionSettings:
    base: dict[str, object] = {"warmup_frames": 3, "refresh_every_frames": 1000}
    base.update(kw)
    return MotionSettings.model_validate(base)


def test_static_noisy_scene_has_no_motion() -> None:
    rng = np.random.default_rng(1)
    scene = _scene()
    gate = MotionGate(_settings())
    decisions = [gate.update(_noisy(scene, rng)) for _ in range(40)]
    assert [d.reason for d in decisions[:3]] == ["warmup"] * 3
    assert all(d.reason == "still" and not d.detect for d in decisions[3:])
    assert all(d.boxes.shape == (0, 4) for d in decisions[3:])


@pytest.mark.parametrize("step_px", [4, 9])
def test_moving_blob_gets_a_box_around_it(step_px: int) -> None:
    rng = np.random.default_rng(2)
    scene = _scene()
    gate = MotionGate(_settings())
    for _ in range(5):
        gate.update(_noisy(scene, rng))
    for k in range(12):
        frame = scene.copy()
        x0, y0 = 30 + k * step_px, 80
        cv2.rectangle(frame, (x0, y0), (x0 + 40, y0 + 70), (30, 25, 40), thickness=-1)  # dark coat
        d = gate.update(_noisy(frame, rng))
        assert d.detect and d.reason == "motion", k
        assert d.boxes.shape[0] >= 1
        # one box holds the whole blob, and it is not much bigger than it
        holds = (
            (d.boxes[:, 0] <= x0)
            & (d.boxes[:, 1] <= y0)
            & (d.boxes[:, 2] >= x0 + 40)
            & (d.boxes[:, 3] >= y0 + 70)
        )
        assert holds.any(), (k, d.boxes.tolist())
        box = d.boxes[np.flatnonzero(holds)[0]]
        assert (box[2] - box[0]) * (box[3] - box[1]) < 6 * 40 * 70
        assert 0 < d.moving_fraction < 0.2


@pytest.mark.parametrize(("normalise", "expect_motion"), [(True, False), (False, True)])
def test_lighting_ramp(normalise: bool, expect_motion: bool) -> None:
    rng = np.random.default_rng(3)
    scene = _scene().astype(np.float64)
    gate = MotionGate(_settings(normalise_brightness=normalise))
    reasons = []
    for k in range(30):
        gain = 1.0 - 0.02 * k  # the lights dim by 2 % a frame, to 42 %
        reasons.append(
            gate.update(_noisy(np.clip(scene * gain, 0, 255).astype(np.uint8), rng)).reason
        )
    moved = any(r == "motion" for r in reasons[3:])
    assert moved is expect_motion


def test_refresh_runs_the_detector_periodically_on_a_still_scene() -> None:
    scene = _scene()
    gate = MotionGate(_settings(warmup_frames=1, refresh_every_frames=5))
    detect = [gate.update(scene).detect for _ in range(21)]
    # frame 0 warms up; then every 5th still frame is a refresh
    assert [i for i, d in enumerate(detect) if d] == [0, 5, 10, 15, 20]


def test_resolution_change_resets_background() -> None:
    gate = MotionGate(_settings(warmup_frames=1))
    gate.update(_scene())
    gate.update(_scene())
    d = gate.update(_scene(shape=(120, 160)))
    assert d.reason == "resized" and d.detect


def test_small_changes_below_min_area_are_ignored() -> None:
    scene = _scene()
    gate = MotionGate(_settings(min_area_px=2000))
    for _ in range(4):
        gate.update(scene)
    frame = scene.copy()
    frame[100:110, 100:110] = 255  # 100 px: a fleck, not a person
    assert gate.update(frame).reason == "still"


@pytest.mark.parametrize(
    ("field", "value"),
    [("diff_threshold", 0), ("downscale", 0), ("warmup_frames", 0), ("bogus", 1)],
)
def test_bad_settings_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        MotionSettings.model_validate({field: value})


def test_even_blur_is_rounded_up() -> None:
    assert MotionSettings(blur_px=4).blur_px == 5


def test_bad_frame_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        MotionGate().update(np.zeros((4, 4, 2), np.uint8))


def test_merge_and_regions() -> None:
    boxes = np.array([[10, 10, 20, 20], [15, 15, 30, 30], [100, 100, 110, 110]], np.float32)
    merged = merge_boxes(boxes, gap_px=0)
    assert merged.tolist() == [[10, 10, 30, 30], [100, 100, 110, 110]]
    crops = detection_regions(boxes[2:], (480, 640), min_side_px=64)
    assert crops is not None and crops.tolist() == [[73, 73, 137, 137]]
    # crops covering most of the frame: one full-frame inference instead
    assert detection_regions(np.array([[0, 0, 600, 400]], np.float32), (480, 640)) is None
    assert detection_regions(np.zeros((0, 4), np.float32), (480, 640)) is None


def test_offset_detections() -> None:
    d = Detections.from_arrays([[1, 2, 3, 4]], [0.9], [0])
    assert offset_detections(d, 10, 20).xyxy.tolist() == [[11, 22, 13, 24]]


@pytest.mark.skipif(not TUD.is_file(), reason=f"real video {TUD} absent (shared data)")
def test_real_video_walkers_move_and_a_frozen_frame_does_not() -> None:
    cap = cv2.VideoCapture(str(TUD))
    frames = []
    while len(frames) < 40:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) >= 20
    gate = MotionGate(MotionSettings(warmup_frames=3, refresh_every_frames=1000))
    live = [gate.update(f) for f in frames]
    moving = [d for d in live[3:] if d.reason == "motion"]
    # TUD-Campus: pedestrians cross the whole sequence
    assert len(moving) >= 0.8 * len(live[3:])
    assert all(0 < d.moving_fraction < 0.8 for d in moving)
    # the same camera frozen on one frame: motion dies out as the background learns it
    frozen = [gate.update(frames[-1]) for _ in range(120)]
    assert all(d.reason == "still" for d in frozen[-40:])
