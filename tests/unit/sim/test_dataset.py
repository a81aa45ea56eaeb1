"""Dataset export: YOLO layout and held-out split, MOT sequences that round-trip."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sim.dataset import export_mot, export_yolo
from vision.mot import read_mot_text, read_seqinfo

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scn") / "small.yaml"
    store = (ROOT / "stores" / "demo.yaml").as_posix()
    path.write_text(
        f"store: {store}\nseed: 5\narrivals: {{visits: 5, arrival_rate_per_min: 6.0}}\n",
        encoding="utf-8",
    )
    return path


def _export(out: Path, scenario: Path) -> None:
    export_yolo(
        out,
        [scenario],
        frames_per_camera=3,
        val_frames_per_camera=2,
        train_seed=1,
        val_seed=2,
        cameras=["cam-ceil-01", "cam-ceil-02"],
    )


@pytest.fixture(scope="module")
def yolo_dir(tmp_path_factory: pytest.TempPathFactory, scenario_file: Path) -> Path:
    out = tmp_path_factory.mktemp("yolo")
    _export(out, scenario_file)
    return out


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file():
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def test_yolo_layout_and_labels(yolo_dir: Path) -> None:
    data = (yolo_dir / "data.yaml").read_text(encoding="utf-8")
    assert "names: [person]" in data and "val: images/val" in data
    n_boxes = 0
    for split, n in (("train", 6), ("val", 4)):
        images = sorted((yolo_dir / "images" / split).glob("*.jpg"))
        labels = sorted((yolo_dir / "labels" / split).glob("*.txt"))
        assert len(images) == n
        assert [p.stem for p in images] == [p.stem for p in labels]
        for lbl in labels:
            for line in lbl.read_text(encoding="utf-8").splitlines():
                cls, *vals = line.split()
                assert cls == "0" and len(vals) == 4
                cx, cy, w, h = (float(v) for v in vals)
                assert 0 < w <= 1 and 0 < h <= 1
                assert cx - w / 2 + 1e-6 >= 0 and cx + w / 2 <= 1 + 1e-6
                assert cy - h / 2 + 1e-6 >= 0 and cy + h / 2 <= 1 + 1e-6
                n_boxes += 1
    assert n_boxes > 0


def test_val_split_differs_in_seed_and_lighting(yolo_dir: Path) -> None:
    meta = json.loads((yolo_dir / "dataset.json").read_text(encoding="utf-8"))
    assert meta["train"]["seed"] != meta["val"]["seed"]
    assert meta["train"]["lighting"] != meta["val"]["lighting"]

    def warmth(split: str) -> float:
        imgs = [cv2.imread(str(p)) for p in (yolo_dir / "images" / split).glob("*.jpg")]
        stack = np.stack(imgs).astype(float)
        return float(stack[..., 2].mean() / stack[..., 0].mean())

    assert warmth("val") > warmth("train") * 1.1  # evening light is warmer


def test_yolo_export_is_deterministic(yolo_dir: Path, scenario_file: Path, tmp_path: Path) -> None:
    _export(tmp_path, scenario_file)
    assert _digest(tmp_path) == _digest(yolo_dir)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train_seed": 3, "val_seed": 3}, "val_seed"),
        ({"train_seed": 3, "val_seed": 4, "val_lighting": "day"}, "lighting"),
        ({"train_seed": 3, "val_seed": 4, "val_lighting": "dusk"}, "unknown lighting"),
    ],
)
def test_held_out_split_must_differ(
    kwargs: dict[str, object], match: str, scenario_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=match):
        export_yolo(tmp_path, [scenario_file], frames_per_camera=1, **kwargs)  # type: ignore[arg-type]


def test_mot_sequence_round_trips(scenario_file: Path, tmp_path: Path) -> None:
    seq = tmp_path / "rendered-01"
    result = export_mot(seq, scenario_file, "cam-ceil-01", 2.0, seed=9)
    info = read_seqinfo(seq / "seqinfo.ini")
    assert info.length_frames == result.frames == 20 and info.frame_rate_hz == 10
    assert (info.width_px, info.height_px) == (640, 480)
    assert len(list((seq / "img1").glob("*.jpg"))) == 20
    assert (seq / "img1" / "000001.jpg").is_file()
    gt = read_mot_text(seq / "gt" / "gt.txt")
    assert len(gt) == result.gt_rows > 0
    assert gt.frame.min() >= 1 and gt.frame.max() <= 20
    xyxy = gt.xyxy
    assert (xyxy[:, 0] >= 0).all() and (xyxy[:, 2] <= 640 + 1e-6).all()
    assert (xyxy[:, 1] >= 0).all() and (xyxy[:, 3] <= 480 + 1e-6).all()
    # One row per identity per frame.
    pairs = set(zip(gt.frame.tolist(), gt.track_id.tolist(), strict=True))
    assert len(pairs) == len(gt)


def test_export_renders_in_another_stores_cameras(scenario_file: Path, tmp_path: Path) -> None:
    # cam-ceil-09 exists only in the aisle-rows layout; the scenario's own store lacks it
    aisles = ROOT / "stores" / "demo-aisles.yaml"
    done = export_yolo(
        tmp_path,
        [scenario_file],
        frames_per_camera=2,
        val_frames_per_camera=1,
        train_seed=1,
        val_seed=2,
        cameras=["cam-ceil-09"],
        store=aisles,
    )
    assert done.images["train"] == 2 and done.images["val"] == 1
    meta = json.loads((tmp_path / "dataset.json").read_text(encoding="utf-8"))
    assert meta["store"] == aisles.as_posix()
    with pytest.raises(KeyError, match="cam-ceil-09"):
        export_yolo(
            tmp_path / "own",
            [scenario_file],
            frames_per_camera=1,
            train_seed=1,
            val_seed=2,
            cameras=["cam-ceil-09"],
        )
