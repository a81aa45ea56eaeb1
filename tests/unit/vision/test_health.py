"""Camera health transitions, with the retained statuses checked through a LocalTransport."""

from __future__ import annotations

import numpy as np
import pytest

from iot.bus import LocalTransport
from iot.payloads import DeviceStatus
from iot.topics import TOPICS, match_topic
from vision.health import CameraHealth, HealthSettings

T0 = 1_700_000_000.0
CAM = "cam-ceil-01"
W, H = 64, 48
SETTINGS = HealthSettings(stall_s=1.0, frozen_frames=4, recover_frames=2)


def good(k: int) -> np.ndarray:
    rng = np.random.default_rng(k)
    return rng.integers(30, 220, size=(H, W, 3), dtype=np.uint8)


FROZEN = good(999)
# each scenario: (name, frames); a frame is an image, None, or "skip" (no frame this step)
Frame = np.ndarray | None | str
BAD: dict[str, tuple[list[Frame], str]] = {
    "black": ([np.zeros((H, W, 3), np.uint8)], "black"),
    "flat": ([np.full((H, W, 3), 128, np.uint8)], "flat"),
    "corrupt none": ([None], "corrupt"),
    "corrupt dtype": ([good(5).astype(np.float32)], "corrupt"),
    "corrupt channels": ([good(5)[:, :, :2].copy()], "corrupt"),
    "resolution": ([np.ascontiguousarray(good(5)[: H // 2])], "resolution"),
    "frozen": ([FROZEN] * 4, "frozen"),
    "stall": (["skip"] * 11, "stalled"),
}


def _run(health: CameraHealth, frames: list[Frame], start_k: int) -> int:
    k = start_k
    for f in frames:
        t = T0 + k * 0.1
        if isinstance(f, str):
            health.missing(t)
        else:
            health.observe(t, f)
        k += 1
    return k


def _bus() -> tuple[LocalTransport, list[DeviceStatus]]:
    bus = LocalTransport()
    got: list[DeviceStatus] = []

    def on_status(topic: str, data: bytes) -> None:
        found = match_topic(topic)
        assert found is not None and found[0] is TOPICS["status"] and found[2] == CAM
        status = DeviceStatus.model_validate_json(data)
        assert status.device_id == CAM
        got.append(status)

    bus.subscribe(TOPICS["status"].topic("demo", "+", kind="camera"), on_status)
    return bus, got


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_goes_offline_then_recovers(case: str) -> None:
    frames, reason = BAD[case]
    bus, got = _bus()
    health = CameraHealth(CAM, SETTINGS, expected_size_px=(W, H), transport=bus, store_id="demo")
    k = _run(health, [good(0), good(1)], 0)
    assert health.state == "healthy"
    k = _run(health, frames, k)
    assert health.state == "unhealthy" and health.reason.startswith(reason), health.reason
    assert health.counts[reason] >= 1
    # one good frame is not enough (recover_frames=2), two are
    check = health.observe(T0 + k * 0.1, good(100))
    assert not check.usable and health.state == "unhealthy"
    check = health.observe(T0 + (k + 1) * 0.1, good(101))
    assert check.usable and check.change is not None and check.change.healthy
    assert [s.state for s in got] == ["online", "offline", "online"]
    assert {s.device_id for s in got} == {CAM}
    assert len({s.id for s in got}) == 3
    # event time, not wall clock: the offline status carries the bad frame's time
    assert T0 + 0.2 <= got[1].event_time_s <= T0 + k * 0.1
    # retained: a late subscriber sees the last state
    late: list[bytes] = []
    bus.subscribe(f"smartstore/demo/camera/{CAM}/status", lambda t, d: late.append(d))
    assert len(late) == 1 and DeviceStatus.model_validate_json(late[0]).state == "online"
    assert health.counts["to_unhealthy"] == 1 and health.counts["to_healthy"] == 2


def test_short_gap_is_not_a_stall_and_repeats_below_limit_are_not_frozen() -> None:
    health = CameraHealth(CAM, SETTINGS, expected_size_px=(W, H))
    _run(health, [good(0), "skip", "skip", good(3), FROZEN, FROZEN, FROZEN, good(7)], 0)
    assert health.state == "healthy" and health.changes[-1].healthy
    assert len(health.changes) == 1


def test_stall_is_reported_once_while_it_lasts() -> None:
    health = CameraHealth(CAM, SETTINGS, expected_size_px=(W, H))
    _run(health, [good(0)] + ["skip"] * 40, 0)
    assert [c.healthy for c in health.changes] == [True, False]
    assert health.reason.startswith("stalled")


def test_camera_that_never_sends_stalls_from_its_first_check() -> None:
    health = CameraHealth(CAM, SETTINGS)
    assert health.missing(T0) is None
    change = health.missing(T0 + 1.5)
    assert change is not None and not change.healthy and "1.5 s" in change.reason


def test_size_is_learned_from_the_first_frame_without_calibration() -> None:
    health = CameraHealth(CAM, SETTINGS)
    assert health.observe(T0, good(0)).usable
    check = health.observe(T0 + 0.1, np.ascontiguousarray(good(1)[:, : W // 2]))
    assert not check.usable and check.reason == f"resolution: {W // 2}x{H}, expected {W}x{H}"


@pytest.mark.parametrize("junk", ["a string", 3, np.zeros((0, 0, 3), np.uint8), [1, 2]])
def test_junk_never_raises(junk: object) -> None:
    health = CameraHealth(CAM, SETTINGS)
    check = health.observe(T0, junk)
    assert not check.usable and check.reason.startswith("corrupt")


def test_transport_without_store_is_refused() -> None:
    with pytest.raises(ValueError, match="store_id"):
        CameraHealth(CAM, transport=LocalTransport())
