"""Dataset export with several train lightings and the model's colour normalisation."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sim.dataset import export_yolo

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


def _channel_spread(folder: Path) -> float:
    stack = np.stack([cv2.imread(str(p)) for p in sorted(folder.glob("*.jpg"))]).astype(float)
    means = stack.reshape(-1, 3).mean(axis=0)
    return float(means.max() - means.min())


def test_lightings_are_dealt_round_and_colour_is_balanced(
    scenario_file: Path, tmp_path: Path
) -> None:
    kwargs = {
        "frames_per_camera": 2,
        "val_frames_per_camera": 2,
        "train_seed": 1,
        "val_seed": 2,
        "cameras": ["cam-ceil-02"],
    }
    raw = export_yolo(
        tmp_path / "raw", [scenario_file, scenario_file], train_lighting=["day", "cool"], **kwargs
    )
    balanced = export_yolo(
        tmp_path / "gw",
        [scenario_file, scenario_file],
        train_lighting=["day", "cool"],
        colour="grey_world",
        **kwargs,
    )
    assert raw.images == balanced.images and raw.boxes == balanced.boxes
    meta = json.loads((tmp_path / "gw" / "dataset.json").read_text(encoding="utf-8"))
    assert len(meta["train"]["lighting"]) == 2 and meta["colour"] == "grey_world"
    # the evening val split is warm; balanced, its channels agree (JPEG adds a little)
    assert _channel_spread(tmp_path / "raw" / "images" / "val") > 10.0
    assert _channel_spread(tmp_path / "gw" / "images" / "val") < 3.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train_lighting": ["day", "evening"]}, "lighting"),
        ({"train_lighting": []}, "empty"),
        ({"colour": "sepia"}, "unknown colour"),
    ],
)
def test_bad_lighting_or_colour_is_refused(
    kwargs: dict[str, object], match: str, scenario_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=match):
        export_yolo(
            tmp_path,
            [scenario_file],
            frames_per_camera=1,
            train_seed=1,
            val_seed=2,
            **kwargs,  # type: ignore[arg-type]
        )
