"""The twin stocks shared plates the way the planogram layout (iot.facings) says."""

from __future__ import annotations

from pathlib import Path

import pytest

from iot.facings import facing_spans_m
from iot.store import load_store
from sim.render_face import shelf_face, stock_layout

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("store_file", ["demo.yaml", "twins.yaml"])
def test_renderer_grids_sit_on_the_planogram_spans(store_file: str) -> None:
    store = load_store(ROOT / "stores" / store_file)
    checked = 0
    for cam in (c for c in store.devices.cameras if c.kind == "shelf"):
        face = shelf_face(store, cam)
        for grid in stock_layout(store, face):
            spans = {sku: (x0, x1) for sku, x0, x1 in facing_spans_m(store, grid.plate_id)}
            s0, s1 = grid.span_m
            xs = sorted(face.left_x_m + face.direction * s for s in (s0, s1))
            assert xs[0] == pytest.approx(spans[grid.sku][0], abs=1e-6)
            assert xs[1] == pytest.approx(spans[grid.sku][1], abs=1e-6)
            checked += 1
    assert checked >= 40
