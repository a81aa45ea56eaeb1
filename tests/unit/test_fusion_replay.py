"""fusion_replay's shelf tape: what the shelf cameras published comes back in order, on time."""

from __future__ import annotations

import math

from iot.bus import LocalTransport
from smartstore.fusion_replay import RecordedShelves, _Tape


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
