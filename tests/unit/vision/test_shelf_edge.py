"""The shelf-camera edge pipeline: gating, batching, health and publishing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from iot.bus import LocalTransport
from iot.payloads import Interaction
from iot.store import Store, load_store
from iot.topics import TOPICS
from vision.detections import Detections
from vision.health import HealthSettings
from vision.shelf_edge import ShelfVisionPipeline

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_800_000_000.0
CAM = "cam-shelf-t1"
ZONES = {CAM: {"g01-s1-p2": (250.0, 240.0, 390.0, 300.0)}}


def store_with_shelf_camera() -> Store:
    data = load_store(ROOT / "stores" / "demo.yaml").model_dump()
    data["devices"]["cameras"] = [
        c for c in data["devices"]["cameras"] if c["kind"] == "ceiling"
    ] + [
        {
            "id": CAM,
            "kind": "shelf",
            "gondola": "g01",
            "position_m": (4.0, 1.5, 1.0),
            "yaw_deg": 0.0,
            "pitch_deg": 90.0,
            "focal_px": 300.0,
            "width_px": 640,
            "height_px": 480,
            "fps": 10.0,
        }
    ]
    return Store.model_validate(data)


class ScriptedDetector:
    """Returns a scripted hand (and product) per call, counting frames it saw."""

    def __init__(self, script: list[Detections]) -> None:
        self.script = script
        self.frames = 0

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for _ in frames:
            out.append(self.script[min(self.frames, len(self.script) - 1)])
            self.frames += 1
        return out


def hand(y: float, holding: bool) -> Detections:
    top = y - 15 if holding else y  # a holding hand: one box, the package above the fingers
    return Detections.from_arrays(np.array([[300, top, 340, y + 40]], float), [0.9], [int(holding)])


def moving_frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(n)]


def test_a_pick_is_published_on_the_interactions_topic() -> None:
    transport = LocalTransport()
    got: list[Interaction] = []
    transport.subscribe(
        TOPICS["interactions"].filter(),
        lambda _topic, data: got.append(Interaction.model_validate_json(data)),
    )
    ys = [440, 320, 250, 250, 250, 320, 440]
    script = [hand(y, holding=k >= 4) for k, y in enumerate(ys)] + [Detections.empty()] * 3
    pipe = ShelfVisionPipeline(
        store_with_shelf_camera(),
        ScriptedDetector(script),
        None,
        ZONES,
        transport,
        motion_gating=False,
    )
    for k, frame in enumerate(moving_frames(len(script))):
        pipe.step(T0 + k * 0.1, {CAM: frame})
    pipe.flush()
    assert [(e.action, e.plate_id) for e in got] == [("pick", "g01-s1-p2")]
    assert pipe.counts["interactions_pick"] == 1


def test_still_frames_skip_the_detector_and_keep_the_last_detections() -> None:
    det = ScriptedDetector([Detections.empty()])
    pipe = ShelfVisionPipeline(store_with_shelf_camera(), det, None, ZONES, None)
    rng = np.random.default_rng(1)
    still = rng.integers(60, 120, (480, 640, 3)).astype(np.int16)
    for k in range(30):  # the same shelf with fresh sensor noise in every frame
        noisy = np.clip(still + rng.integers(-3, 4, still.shape), 0, 255).astype(np.uint8)
        pipe.step(T0 + k * 0.1, {CAM: noisy})
    assert pipe.counts["frames_gated"] > 20 and det.frames < 10


def test_an_unhealthy_camera_drops_its_open_episodes() -> None:
    script = [hand(250, holding=False)] * 5
    pipe = ShelfVisionPipeline(
        store_with_shelf_camera(),
        ScriptedDetector(script),
        None,
        ZONES,
        None,
        motion_gating=False,
        health=HealthSettings(),
    )
    for k, frame in enumerate(moving_frames(3)):
        pipe.step(T0 + k * 0.1, {CAM: frame})
    assert pipe.trackers[CAM].episodes
    for k in range(3, 40):
        pipe.step(T0 + k * 0.1, {CAM: np.zeros((480, 640, 3), np.uint8)})  # black
    assert not pipe.trackers[CAM].episodes
    assert pipe.counts["episodes_dropped"] >= 1 and pipe.flush() == []


def test_zones_for_an_unknown_camera_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown shelf camera"):
        ShelfVisionPipeline(store_with_shelf_camera(), ScriptedDetector([]), None, {"x": {}}, None)
