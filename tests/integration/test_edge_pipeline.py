"""The edge pipeline end to end: rendered twin frames, the real YOLOX-nano, a LocalTransport.

No accuracy assertion: the COCO model was never trained on renders. It checks
that every stage runs, batches validate on the bus, and timings are reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iot.bus import Inbox, LocalTransport, Message
from iot.payloads import TrackBatch
from iot.store import load_store
from iot.topics import TOPICS
from models import MANIFEST_DIR, load_model
from sim.render import CeilingRenderer
from sim.scenario import load_scenario
from sim.twin import Twin
from vision.detect import OnnxDetector
from vision.edge import EdgeVisionPipeline
from vision.sources import RenderedSource

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT.parent / "shared" / "models"


def test_rendered_twin_through_yolox_publishes_batches_and_timings() -> None:
    if not (MODEL_DIR / "yolox_nano.onnx").is_file():
        pytest.skip(f"{MODEL_DIR / 'yolox_nano.onnx'} is absent (see ../shared/MANIFEST.md)")
    store = load_store(ROOT / "stores" / "demo.yaml")
    twin = Twin(store, load_scenario(ROOT / "scenarios" / "demo.yaml"))
    renderer = CeilingRenderer(store, seed=1)
    cams = sorted(renderer.cameras)
    # a second of store time when someone is inside
    start = min(v.track_start_s for v in twin.visits) + 5.0
    source = RenderedSource(
        lambda cid, t: renderer.render(twin, cid, t).image,
        cams,
        start_s=start,
        end_s=start + 1.0,
        fps=10.0,
    )
    model = load_model(MANIFEST_DIR / "yolox_nano.yaml", model_dir=MODEL_DIR)
    detector = OnnxDetector.from_model(model, score_threshold=0.1, threads=2)
    bus = LocalTransport()
    inbox = Inbox(
        bus,
        store.store_id,
        service_kind="brain",
        service_id="b",
        now=lambda: start,
        known_devices=store.device_ids(),
    )
    got: list[TrackBatch] = []

    def on_batch(msg: Message) -> None:
        assert isinstance(msg.payload, TrackBatch)
        got.append(msg.payload)

    inbox.on(TOPICS["tracks"], on_batch)
    pipe = EdgeVisionPipeline(store, detector, bus)
    sent = list(pipe.run(source.frame_sets()))
    assert len(sent) == 10 and [b.id for b in got] == [b.id for b in sent]
    assert not inbox.rejected
    assert np.allclose([b.event_time_s - start for b in sent], np.arange(10) / 10)
    assert pipe.unhealthy_cameras() == []  # renders are neither black, flat nor frozen
    assert pipe.counts["frames_detected"] >= len(cams)  # warm-up frames all go to it
    timings = pipe.timings_ms()
    assert all(t["calls"] == 10 and t["total_ms"] > 0 for t in timings.values())
