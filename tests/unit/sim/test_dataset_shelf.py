"""Shelf-camera dataset export: YOLO layout, hand/product classes, held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sim.dataset import SHELF_CLASSES, export_shelf_yolo, shelf_crop
from sim.render_shelf import HandTruth, ShelfFrame

ROOT = Path(__file__).resolve().parents[3]
CAMERAS = ["cam-shelf-g03", "cam-shelf-g05"]


@pytest.fixture(scope="module")
def shelf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario = tmp_path_factory.mktemp("scn") / "shoppers.yaml"
    store = (ROOT / "stores" / "demo.yaml").as_posix()
    scenario.write_text(
        f"store: {store}\nseed: 5\narrivals: {{visits: 14, arrival_rate_per_min: 6.0}}\n",
        encoding="utf-8",
    )
    out = tmp_path_factory.mktemp("shelf")
    export_shelf_yolo(
        out,
        [scenario],
        frames_per_camera=6,
        val_frames_per_camera=3,
        train_seed=1,
        val_seed=2,
        cameras=CAMERAS,
        empty_fraction=0.2,
    )
    return out


def _labels(root: Path, split: str) -> dict[str, list[tuple[int, list[float]]]]:
    out = {}
    for f in sorted((root / "labels" / split).glob("*.txt")):
        rows = [line.split() for line in f.read_text(encoding="utf-8").splitlines()]
        out[f.stem] = [(int(r[0]), [float(v) for v in r[1:]]) for r in rows]
    return out


def test_layout_classes_and_boxes(shelf_dir: Path) -> None:
    data = (shelf_dir / "data.yaml").read_text(encoding="utf-8")
    assert f"nc: {len(SHELF_CLASSES)}" in data and "names: [hand, hand_holding]" in data
    hands = products = 0
    for split, n in (("train", 6 * len(CAMERAS)), ("val", 3 * len(CAMERAS))):
        images = sorted(p.stem for p in (shelf_dir / "images" / split).glob("*.jpg"))
        labels = _labels(shelf_dir, split)
        assert len(images) == n and images == sorted(labels)
        for rows in labels.values():
            classes = [c for c, _ in rows]
            assert set(classes) <= {0, 1}
            for _, (cx, cy, w, h) in rows:
                assert 0 < w <= 1 and 0 < h <= 1
                assert cx - w / 2 >= -1e-6 and cx + w / 2 <= 1 + 1e-6
                assert cy - h / 2 >= -1e-6 and cy + h / 2 <= 1 + 1e-6
            hands += classes.count(0)
            products += classes.count(1)
    assert hands > 0 and products > 0


def test_val_split_is_held_out(shelf_dir: Path) -> None:
    meta = json.loads((shelf_dir / "dataset.json").read_text(encoding="utf-8"))
    assert meta["classes"] == ["hand", "hand_holding"]
    assert meta["train"]["seed"] != meta["val"]["seed"]
    assert meta["train"]["lighting"][0] != meta["val"]["lighting"]
    assert sum(meta["boxes"].values()) > 0


def test_same_train_and_val_seed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="held-out split needs its own seed"):
        export_shelf_yolo(tmp_path, ["x.yaml"], frames_per_camera=1, train_seed=3, val_seed=3)


def _frame(hands: list[tuple[float, float, float, float]]) -> ShelfFrame:
    image = np.arange(480 * 640 * 3, dtype=np.uint32).reshape(480, 640, 3).astype(np.uint8)
    truth = tuple(HandTruth("t", 0, "p", "pick", "dwell", box, False, None, None) for box in hands)
    return ShelfFrame("cam", 0.0, image, truth, ())


def test_crop_keeps_the_hand_at_full_resolution() -> None:
    frame = _frame([(400.0, 300.0, 420.0, 324.0)])
    for seed in range(20):
        image, lines = shelf_crop(frame, 320, np.random.default_rng(seed))
        assert image.shape == (320, 320, 3)
        assert len(lines) == 1
        _, cx, cy, w, h = (float(v) for v in lines[0].split())
        # the label is the hand's own 20 x 24 pixels, wherever the square fell
        assert w * 320 == pytest.approx(20, abs=1e-3) and h * 320 == pytest.approx(24, abs=1e-3)
        u, v = 410 - cx * 320, 312 - cy * 320  # the square's corner in the frame
        assert np.array_equal(
            image, frame.image[round(v) : round(v) + 320, round(u) : round(u) + 320]
        )


def test_crop_drops_a_hand_mostly_outside_and_clips_one_mostly_inside() -> None:
    # two hands 300 px apart: a 100 px square around one cannot hold much of the other
    frame = _frame([(100.0, 100.0, 120.0, 124.0), (400.0, 100.0, 420.0, 124.0)])
    image, lines = shelf_crop(frame, 100, np.random.default_rng(1))
    assert image.shape == (100, 100, 3) and len(lines) == 1
    empty = _frame([])
    image, lines = shelf_crop(empty, 320, np.random.default_rng(2))
    assert image.shape == (320, 320, 3) and lines == []
