"""fusion_replay's shelf tape: what the shelf cameras published comes back in order, on time."""

from __future__ import annotations

import math

from iot.bus import LocalTransport
from smartstore.fusion_replay import RecordedShelves, _payload_twin, _Tape


def test_a_taped_shelf_run_replays_each_message_once_when_its_time_comes() -> None:
    tape = _Tape()
    for now, topic in [(10.0, "a"), (10.1, "b"), (10.1, "c"), (math.inf, "flushed")]:
        tape.now_s = now
        tape.publish(topic, topic.encode())
    bus = LocalTransport()
    got: list[str] = []
    bus.subscribe("#", lambda topic, data: got.append(data.decode()))
    shelves = RecordedShelves({"messages": tape.messages}, bus)
    assert shelves.advance(9.9) == 0
    assert shelves.advance(10.1) == 3 and got == ["a", "b", "c"]
    assert shelves.advance(10.1) == 0
    shelves.finish()
    assert got == ["a", "b", "c", "flushed"]
    assert shelves.report()["messages"] == 4


def test_recordings_rebuild_the_twin_in_the_store_they_were_made_in() -> None:
    def ceiling_cameras(payload: dict[str, object]) -> int:
        twin = _payload_twin(payload)
        return sum(c.kind == "ceiling" for c in twin.store.devices.cameras)

    made = {"scenario": "scenarios/demo.yaml", "seed": 3}
    assert ceiling_cameras(made) == 8  # recordings made before the store was kept
    assert ceiling_cameras({**made, "store": "stores/demo-aisles.yaml"}) == 12
