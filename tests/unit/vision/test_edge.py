"""The edge pipeline with a fake detector over a LocalTransport.

People walk known floor paths; their boxes in each ceiling camera are the
projections of their bodies (``test_floor_synth.frame_detections``), drawn
into synthetic frames so the motion gate sees them move. The fake detector
returns, for each frame it is given, the boxes that were drawn into it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import pytest
from test_floor_synth import T0, Walker, demo_store, frame_detections, line_walk

from iot.bus import Inbox, LocalTransport, Message
from iot.payloads import DeviceStatus, TrackBatch
from iot.topics import TOPICS
from vision.detections import Detections
from vision.edge import EdgeSettings, EdgeVisionPipeline
from vision.health import HealthSettings
from vision.sources import FrameSet

STORE = demo_store()
CAMS = sorted(c.id for c in STORE.devices.cameras if c.kind == "ceiling")
FPS = 10.0


class FakeDetector:
    """Returns the boxes registered for each frame object; records who asked."""

    def __init__(self) -> None:
        self.by_frame: dict[int, tuple[str, float, Detections]] = {}
        self.seen: list[tuple[str, float]] = []
        self.calls = 0

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += 1
        out = []
        for f in frames:
            cid, t, dets = self.by_frame[id(f)]
            self.seen.append((cid, t))
            out.append(dets)
        return out


def _backgrounds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    out = {}
    for cid in CAMS:
        small = rng.integers(60, 160, size=(60, 80, 3), dtype=np.uint8)
        out[cid] = cv2.resize(small, (640, 480), interpolation=cv2.INTER_LINEAR)
    return out


def make_frame_sets(
    walkers: Sequence[Walker],
    seconds: float,
    detector: FakeDetector,
    spoil: Callable[[str, float, np.ndarray], np.ndarray | None] | None = None,
) -> list[FrameSet]:
    bgs = _backgrounds()
    rng = np.random.default_rng(3)
    sets = []
    for k in range(int(seconds * FPS)):
        s = k / FPS
        dets, _ = frame_detections(STORE, walkers, s, rng, noise_px=1.0, miss_rate=0.0)
        frames: dict[str, np.ndarray | None] = {}
        for cid in CAMS:
            img = bgs[cid].copy()
            img[0, :, :] = k % 256  # a live sensor never repeats a frame exactly
            for x0, y0, x1, y1 in dets[cid].xyxy.astype(int):
                img[max(y0, 0) : y1, max(x0, 0) : x1] = 240
            frame = spoil(cid, s, img) if spoil else img
            frames[cid] = frame
            if isinstance(frame, np.ndarray):
                detector.by_frame[id(frame)] = (cid, s, dets[cid])
        sets.append(FrameSet(T0 + s, frames))
    return sets


def _brain_inbox(bus: LocalTransport) -> tuple[Inbox, list[TrackBatch], list[DeviceStatus]]:
    inbox = Inbox(
        bus,
        STORE.store_id,
        service_kind="brain",
        service_id="b",
        now=lambda: T0,
        known_devices=STORE.device_ids(),
    )
    batches: list[TrackBatch] = []
    statuses: list[DeviceStatus] = []

    def on_batch(msg: Message) -> None:
        assert isinstance(msg.payload, TrackBatch)
        batches.append(msg.payload)

    def on_status(topic: str, data: bytes) -> None:
        statuses.append(DeviceStatus.model_validate_json(data))

    inbox.on(TOPICS["tracks"], on_batch)
    bus.subscribe(TOPICS["status"].topic(STORE.store_id, "+", kind="camera"), on_status)
    return inbox, batches, statuses


WALKERS = [
    # near cam-ceil-01 (x 2, y 3.5) the whole time, slowly
    Walker(1, line_walk((1.5, 2.5), (3.5, 4.5), 0.0, speed=0.3)),
    # across the far half of the store, seen by cameras 06-08
    Walker(2, line_walk((5.0, 10.0), (15.0, 10.0), 0.0, speed=1.0)),
]
BLACK = (3.0, 5.0)  # s: cam-ceil-01 sees black


def _black(cid: str, s: float, img: np.ndarray) -> np.ndarray:
    if cid == "cam-ceil-01" and BLACK[0] <= s < BLACK[1]:
        return np.zeros_like(img)
    return img


def test_black_camera_goes_offline_others_keep_tracking_and_it_recovers() -> None:
    bus = LocalTransport()
    inbox, batches, statuses = _brain_inbox(bus)
    detector = FakeDetector()
    sets = make_frame_sets(WALKERS, 9.0, detector, _black)
    pipe = EdgeVisionPipeline(STORE, detector, bus, health=HealthSettings(recover_frames=3))
    sent = list(pipe.run(sets))
    assert not inbox.rejected
    assert [b.id for b in batches] == [b.id for b in sent] and len(sent) == len(sets)

    cam1 = [s for s in statuses if s.device_id == "cam-ceil-01"]
    assert [s.state for s in cam1] == ["online", "offline", "online"]
    assert cam1[1].event_time_s == pytest.approx(T0 + BLACK[0])
    # back after recover_frames good frames
    assert cam1[2].event_time_s == pytest.approx(T0 + BLACK[1] + 2 / FPS)
    others = [s for s in statuses if s.device_id != "cam-ceil-01"]
    assert {s.state for s in others} == {"online"} and len(others) == len(CAMS) - 1

    # the detector never saw cam-ceil-01 while it was unhealthy
    cam1_seen = [s for cid, s in detector.seen if cid == "cam-ceil-01"]
    assert not [s for s in cam1_seen if BLACK[0] <= s < BLACK[1] + 2 / FPS]
    assert [s for s in cam1_seen if s >= BLACK[1]], "cam-ceil-01 not used after recovery"

    def near(b: TrackBatch, x: float, y: float) -> bool:
        return any(np.hypot(p.x_m - x, p.y_m - y) < 1.0 for p in b.tracks)

    def walker_at(w: Walker, b: TrackBatch) -> tuple[float, float]:
        p = w.where(b.event_time_s - T0)
        assert p is not None
        return p

    during = [b for b in sent if BLACK[0] + 0.5 <= b.event_time_s - T0 < BLACK[1]]
    after = [b for b in sent if b.event_time_s - T0 >= BLACK[1] + 1.5]
    assert len(during) == 15 and len(after) == 25
    # the others keep producing tracks for walker 2 during the blackout
    assert all(near(b, *walker_at(WALKERS[1], b)) for b in during)
    # walker 1 is tracked again once cam-ceil-01 is back
    assert all(near(b, *walker_at(WALKERS[0], b)) for b in after)
    assert pipe.health["cam-ceil-01"].counts["black"] == int((BLACK[1] - BLACK[0]) * FPS)
    assert pipe.counts["frames_unusable"] >= int((BLACK[1] - BLACK[0]) * FPS)


def test_still_frames_skip_the_detector_and_reuse_detections() -> None:
    standing = [Walker(1, lambda t: (6.0, 3.5))]
    detector = FakeDetector()
    sets = make_frame_sets(standing, 4.0, detector)
    pipe = EdgeVisionPipeline(STORE, detector, LocalTransport())
    sent = list(pipe.run(sets))
    n_frames = len(sets) * len(CAMS)
    assert pipe.counts["frames_gated"] > n_frames // 2
    assert pipe.counts["frames_detected"] + pipe.counts["frames_gated"] == n_frames
    assert detector.calls == pipe.counts["detector_calls"] <= len(sets)
    # the standing person stays tracked although most frames never reached the detector
    assert all(any(np.hypot(p.x_m - 6.0, p.y_m - 3.5) < 0.7 for p in b.tracks) for b in sent[10:])
    timings = pipe.timings_ms()
    assert set(timings) == {"health", "motion", "detect", "track"}
    assert all(t["calls"] == len(sets) for t in timings.values())

    ungated = EdgeVisionPipeline(
        STORE, FakeDetector(), None, settings=EdgeSettings(motion_gating=False)
    )
    ungated.detector = detector
    list(ungated.run(sets))
    assert ungated.counts["frames_detected"] == n_frames and not ungated.counts["frames_gated"]


def test_stalled_camera_goes_offline_and_late_or_unknown_input_is_counted() -> None:
    bus = LocalTransport()
    inbox, batches, statuses = _brain_inbox(bus)
    detector = FakeDetector()
    sets = make_frame_sets(WALKERS, 4.0, detector)
    for s in sets[5:]:
        del s.frames["cam-ceil-05"]
    sets[3].frames["cam-elsewhere"] = sets[3].frames["cam-ceil-02"]
    pipe = EdgeVisionPipeline(STORE, detector, bus, health=HealthSettings(stall_s=1.0))
    sent = list(pipe.run([*sets[:6], sets[2], *sets[6:]]))  # one set replayed out of order
    assert len(sent) == len(sets)
    assert pipe.counts["late_frame_sets"] == 1 and pipe.counts["unknown_camera_frames"] == 1
    cam5 = [s.state for s in statuses if s.device_id == "cam-ceil-05"]
    assert cam5 == ["online", "offline"]
    assert pipe.unhealthy_cameras() == ["cam-ceil-05"]
    assert not inbox.rejected and len(batches) == len(sets)


def test_detector_returning_the_wrong_count_is_an_error() -> None:
    class Broken:
        def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
            return []

    detector = FakeDetector()
    sets = make_frame_sets(WALKERS, 0.1, detector)
    pipe = EdgeVisionPipeline(STORE, Broken(), None)
    with pytest.raises(RuntimeError, match="one Detections per frame"):
        list(pipe.run(sets))
