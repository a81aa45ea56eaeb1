"""The ceiling-tracking service publishes TrackBatch payloads the brain's inbox accepts."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from test_floor_synth import T0, Walker, demo_store, frame_detections, line_walk

from iot.bus import Inbox, LocalTransport, Message
from iot.payloads import TrackBatch
from iot.topics import TOPICS
from vision.ceiling import CeilingSettings, CeilingTracker
from vision.detections import Detections

STORE = demo_store()


def test_published_batches_validate_through_an_inbox() -> None:
    bus = LocalTransport()
    inbox = Inbox(
        bus,
        STORE.store_id,
        service_kind="brain",
        service_id="b",
        now=lambda: T0,
        known_devices=STORE.device_ids(),
    )
    got: list[TrackBatch] = []

    def on_batch(msg: Message) -> None:
        assert isinstance(msg.payload, TrackBatch)
        got.append(msg.payload)

    inbox.on(TOPICS["tracks"], on_batch)
    tracker = CeilingTracker(STORE, bus)
    # Walks out of view mid-store, so its track must end in a later batch.
    walkers = [Walker(1, line_walk((2.0, 2.0), (9.0, 8.0), 0.0))]
    rng = np.random.default_rng(0)
    sent = [
        tracker.process(T0 + k / 10, frame_detections(STORE, walkers, k / 10, rng)[0])
        for k in range(120)
    ]
    assert not inbox.rejected
    assert [b.id for b in got] == [b.id for b in sent]
    assert len({b.id for b in got}) == len(got)
    assert {b.device_id for b in got} == {"ceiling-tracker"}
    ids = {p.track_id for b in got for p in b.tracks}
    ended = [i for b in got for i in b.ended]
    assert len(ids) == 1 and ended == sorted(ids)
    # Times follow the camera frame rate (10 FPS).
    assert np.allclose(np.diff([b.event_time_s for b in got]), 0.1)


def test_unknown_camera_is_refused_with_its_name() -> None:
    tracker = CeilingTracker(STORE)
    with pytest.raises(ValueError, match="cam-nowhere"):
        tracker.process(T0, {"cam-nowhere": Detections.empty()})


def test_missing_camera_is_not_an_error() -> None:
    tracker = CeilingTracker(STORE)
    batch = tracker.process(T0, {"cam-ceil-01": Detections.empty()})
    assert batch.tracks == [] and batch.ended == []


def test_other_classes_are_ignored() -> None:
    tracker = CeilingTracker(STORE, settings=CeilingSettings())
    cam = "cam-ceil-02"
    box = Detections.from_arrays([[300, 220, 340, 260]], [0.9], [3])
    for k in range(5):
        batch = tracker.process(T0 + k / 10, {cam: box})
    assert batch.tracks == []


def test_unlisted_device_id_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        CeilingTracker(STORE, settings=CeilingSettings(device_id="ceiling-x"))
    assert "ceiling-x" in caplog.text and "positioning" in caplog.text


def test_store_without_ceiling_cameras_is_refused() -> None:
    bare = STORE.model_copy(update={"devices": STORE.devices.model_copy(update={"cameras": []})})
    with pytest.raises(ValueError, match="no ceiling cameras"):
        CeilingTracker(bare)


def test_a_look_function_stands_in_for_frames() -> None:
    # fusion_replay feeds recorded looks this way; the frames path uses the same hook
    tracker = CeilingTracker(STORE)
    cam = "cam-ceil-02"
    box = Detections.from_arrays([[300, 220, 340, 260]], [0.9], [0])
    asked: list[str] = []

    def look_of(camera_id: str, xyxy: np.ndarray) -> list[np.ndarray | None]:
        asked.append(camera_id)
        assert xyxy.shape == (1, 4)
        return [np.full(3, 1.0 / np.sqrt(3.0))]

    obs = []
    for _ in range(3):
        obs = tracker.observe({cam: box}, look_of=look_of)
    assert obs and all(o.look is not None and o.look.shape == (3,) for o in obs)
    assert set(asked) == {cam}
    assert all(o.look is None for o in CeilingTracker(STORE).observe({cam: box}))
