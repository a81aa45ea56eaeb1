"""Shelf-camera dataset export: YOLO layout, hand/product classes, held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.dataset import SHELF_CLASSES, export_shelf_yolo

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
