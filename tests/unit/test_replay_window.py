"""replay_window: the fusion state line names the tracks near a shopper and who fed them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iot.store import load_store
from smartstore.replay_window import Anchors, describe_step, remember_anchors
from vision.floor import CameraObservation, FloorFusion, FloorSettings

STORE = load_store(Path(__file__).resolve().parents[2] / "stores" / "demo.yaml")
RED, BLUE = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])


def test_a_step_line_shows_the_near_tracks_their_feeders_and_look_distances() -> None:
    fusion = FloorFusion(STORE, FloorSettings(anchor_looks=3))
    anchors: Anchors = {}
    line = ""
    for k in range(10):
        obs = [
            CameraObservation("cam-a", 1, 5.0, 5.0, 0.05, RED),
            CameraObservation("cam-b", 7, 9.0, 5.0, 0.05, BLUE),
        ]
        fusion.update(1_800_000_000.0 + 0.2 * k, obs)
        remember_anchors(fusion, anchors)
        line = describe_step(fusion, 0.2 * k, obs, {"red": (5.1, 5.0)}, anchors)
    assert line.startswith("    1.8 red@(5.10,5.00) | ct-1 (5.00,5.00)")
    assert "fed ['cam-a:1']" in line and "a1=0.00" in line
    assert "cam-b" not in line, "a track 4 m away is not shown"
