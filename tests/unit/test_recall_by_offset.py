"""Detector recall by distance from a camera's nadir (smartstore.recall_by_offset)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartstore.cameras import CEILING_MANIFEST
from smartstore.recall_by_offset import BANDS_M, main

ROOT = Path(__file__).resolve().parents[2]


def test_prints_recall_per_band_for_people_the_cameras_saw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not CEILING_MANIFEST.is_file():
        pytest.skip(f"{CEILING_MANIFEST} is absent; train it (docs/training.md)")
    scn = tmp_path / "two.yaml"
    store = (ROOT / "stores" / "demo.yaml").as_posix()
    scn.write_text(
        f"store: {store}\nseed: 4\narrivals: {{visits: 2, arrival_rate_per_min: 6.0}}\n",
        encoding="utf-8",
    )
    args = [str(scn), "--start-s", "50", "--end-s", "62", "--every-s", "4"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model ceiling_person, 3 frame sets")
    counted = [ln for ln in lines[1:] if "recall" in ln]
    assert counted, "two shoppers in the store: some camera saw them"
    for ln in counted:
        found, total = (int(x) for x in ln.split("(")[1].rstrip(")").split(" of "))
        assert 0 <= found <= total
        assert float(ln.split(" m ")[0]) in BANDS_M
