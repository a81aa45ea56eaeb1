"""The vision commands on the shared real data: `smartstore eval-mot` and `eval-detector`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartstore.cli import main

pytestmark = pytest.mark.integration

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests need the shared data beside the repository")
    return path


def test_eval_mot_prints_and_writes_per_sequence_and_overall(tmp_path: Path, capsys) -> None:
    root = _need(SHARED / "data" / "mot15")
    out = tmp_path / "mot.json"
    assert main(["eval-mot", str(root), "TUD-Campus", "KITTI-17", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["sequences"]) == {"TUD-Campus", "KITTI-17"}
    parts = result["sequences"].values()
    assert result["overall"]["switches"] == sum(p["switches"] for p in parts)
    assert "overall" in capsys.readouterr().out


def test_eval_detector_reports_recall_on_real_frames(tmp_path: Path, capsys) -> None:
    models = _need(SHARED / "models")
    _need(models / "yolox_nano.onnx")
    seq = _need(SHARED / "data" / "mot15" / "PETS09-S2L1")
    out = tmp_path / "det.json"
    argv = ["eval-detector", str(seq), "--max-frames", "5", "--model-dir", str(models)]
    assert main([*argv, "--json", str(out)]) == 0
    [figures] = json.loads(out.read_text())["sequences"]
    assert figures["frames"] == 5 and 0.0 < figures["recall"] <= 1.0
    assert "recall" in capsys.readouterr().out


def test_dataset_commands_write_yolo_and_mot_folders(tmp_path: Path) -> None:
    yolo, mot = tmp_path / "yolo", tmp_path / "mot"
    assert main(["dataset", "export", str(yolo), "--frames-per-camera", "1"]) == 0
    assert (yolo / "data.yaml").exists()
    labels = list((yolo / "labels" / "val").glob("*.txt"))
    assert labels and all(
        len(line.split()) == 5 for f in labels for line in f.read_text().split("\n") if line
    )
    assert main(["dataset", "mot", str(mot), "scenarios/busy.yaml", "cam-ceil-02", "2"]) == 0
    assert (mot / "seqinfo.ini").exists() and (mot / "gt" / "gt.txt").read_text().strip()
