"""`smartstore bench vision` runs briefly and writes its keys (skips without shared data)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from smartstore.bench import DEFAULT_MODEL_DIR, load_frames, peak_rss_mb
from smartstore.cli import main

MODEL = DEFAULT_MODEL_DIR / "yolox_nano.onnx"
needs_model = pytest.mark.skipif(
    not MODEL.is_file(), reason=f"shared model {MODEL} absent; the bench needs it"
)


def _folder(tmp_path: Path, n: int = 6) -> Path:
    """A tiny image folder: a dark square walks over a light floor."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(n):
        img = np.full((240, 320, 3), 170, np.uint8)
        cv2.rectangle(img, (20 + 20 * k, 60), (70 + 20 * k, 180), (30, 30, 30), -1)
        cv2.imwrite(str(folder / f"{k:06d}.jpg"), img)
    return folder


def test_load_frames_from_folder_and_errors(tmp_path: Path) -> None:
    frames = load_frames(_folder(tmp_path), max_frames=4)
    assert len(frames) == 4 and frames[0].shape == (240, 320, 3)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_frames(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="at least 2"):
        load_frames(empty)


def test_peak_rss_is_positive() -> None:
    assert peak_rss_mb() > 10.0


@needs_model
def test_bench_vision_writes_the_keys(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    rc = main(
        [
            "bench", "vision", "--cameras", "2", "--seconds", "0.05",
            "--source", str(_folder(tmp_path)), "--json", str(out),
            "--model-dir", str(DEFAULT_MODEL_DIR),
        ]
    )  # fmt: skip
    assert rc == 0
    report = json.loads(out.read_text())
    for key in ("camera_fps_end_to_end", "cameras", "detector_ms", "peak_rss_mb", "end_to_end"):
        assert key in report
    assert report["cameras"] == 2
    assert report["camera_fps_end_to_end"] > 0
    assert report["detector_ms"]["416_fp32"] > 0
    # the shared export's input is fixed: other sizes are declared, not faked
    assert report["detector_variants"]["640_fp32"]["available"] is False
    assert report["detector_ms"]["320_fp32"] is None
    runs = report["end_to_end"]
    assert {"fp32_ungated", "fp32_gated"} <= set(runs)
    assert runs["fp32_ungated"]["detector_share"] == 1.0
    assert 0 < runs["fp32_gated"]["detector_share"] <= 1.0
    assert set(runs["fp32_gated"]["stage_ms_per_camera_frame"]) >= {
        "motion", "inference", "tracking"
    }  # fmt: skip


@needs_model
def test_bench_vision_idle_cameras_skip_the_detector(tmp_path: Path) -> None:
    from models.registry import load_model
    from smartstore.bench import DEFAULT_MANIFEST, run_pipeline
    from vision.detect import OnnxDetector
    from vision.motion import MotionSettings

    model = load_model(DEFAULT_MANIFEST, model_dir=DEFAULT_MODEL_DIR)
    detector = OnnxDetector.from_model(model, keep_class_ids=[0])
    frames = load_frames(_folder(tmp_path))
    motion = MotionSettings(warmup_frames=1, refresh_every_frames=1000)
    run = run_pipeline(
        detector,
        frames,
        cameras=4,
        active_cameras=1,
        gated=True,
        seconds=0.3,
        motion=motion,
        min_rounds=12,  # a loaded machine's 0.3 s may hold only the warm-up rounds
    )
    # three of four cameras watch a still floor: after warm-up only the active one detects
    assert run["detector_share"] < 0.5
    assert run["camera_frames"] % 4 == 0


def test_bench_rejects_bad_arguments(tmp_path: Path) -> None:
    if not MODEL.is_file():
        pytest.skip(f"shared model {MODEL} absent")
    assert main(["bench", "vision", "--cameras", "0", "--seconds", "0.01"]) == 2
