"""A store's central event traffic, recorded once from the twin, for ``smartstore bench bus``.

What crosses from a store's edge to the checkout workers is events, not raw
samples: gate entries and exits, positioning track batches, and the shelf
events the edge's shelf adapter settles from the load cells. Recording runs
the twin and a ``ShelfAdapter`` on an in-process bus (about 5 s for the busy
scenario on one core) and keeps those messages in the order they were sent,
each with its send time; a benchmark then replays them at any pace without
the simulator being its bottleneck. Recordings are cached as JSON lines,
keyed by the scenario, its store file and the seed.

>>> msg = Recorded(1.8e9, 1.8e9, "gate/gate-in/entries", 1, b'{"id": "x"}', "gate_entries")
>>> msg.topic("s01")
'smartstore/s01/gate/gate-in/entries'
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import yaml

from iot.bus import LocalTransport
from iot.shelf import ShelfAdapter
from iot.store import load_store
from iot.topics import PREFIX, match_topic
from sim.scenario import Scenario, load_scenario_as
from sim.twin import Twin

__all__ = ["CENTRAL_CHANNELS", "Recorded", "record_traffic", "store_file_as"]

log = logging.getLogger(__name__)

# The channels a store's edge sends to the checkout workers in the simulated store.
CENTRAL_CHANNELS = frozenset({"gate_entries", "gate_exits", "tracks", "shelf_events"})
_STEP_S = 0.05  # event time per twin step while recording: the send-time resolution
_FORMAT = 1  # bump when the recording's content changes


@dataclass(frozen=True)
class Recorded:
    """One message of a store's traffic, its topic without ``smartstore/<store>/``."""

    send_s: float
    event_time_s: float
    tail: str
    qos: int
    data: bytes
    channel: str

    def topic(self, store_id: str) -> str:
        return f"{PREFIX}/{store_id}/{self.tail}"


def _cache_key(scenario_path: Path, seed: int) -> str:
    scenario = load_scenario_as(scenario_path, seed=seed)
    h = hashlib.sha256()
    h.update(f"{_FORMAT}\0{seed}\0".encode())
    h.update(Path(scenario_path).read_bytes())
    h.update(Path(scenario.store).read_bytes())
    return h.hexdigest()[:16]


def record_traffic(
    scenario_path: str | Path, seed: int, cache_dir: str | Path | None = None
) -> tuple[list[Recorded], float]:
    """``(messages in send order, the scenario's start time)`` for one seed of a scenario."""
    path = Path(scenario_path)
    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / f"{path.stem}-seed{seed}-{_cache_key(path, seed)}.jsonl"
        if cached.is_file():
            return _read(cached)
    messages, start_s = _record(path, seed)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(cached.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.write(json.dumps({"start_s": start_s}) + "\n")
            for m in messages:
                row = [m.send_s, m.event_time_s, m.tail, m.qos, m.data.decode(), m.channel]
                f.write(json.dumps(row) + "\n")
        tmp.replace(cached)
    return messages, start_s


def _record(path: Path, seed: int) -> tuple[list[Recorded], float]:
    messages, twin = record_central(load_scenario_as(path, seed=seed))
    log.info("recorded %d messages of %s seed %d", len(messages), path.name, seed)
    return messages, twin.start_s


def record_central(scenario: Scenario) -> tuple[list[Recorded], Twin]:
    """Run the twin and its shelf adapter once; keep what the edge sends the workers.

    Returns the messages in send order and the twin (its truth, start and end).
    """
    store = load_store(scenario.store)
    twin = Twin(store, scenario, positioning_feed=True)
    bus = LocalTransport()
    now = [twin.start_s]
    out: list[Recorded] = []
    head = f"{PREFIX}/{store.store_id}/"

    def keep(topic: str, data: bytes) -> None:
        found = match_topic(topic)
        if found is None or found[0].name not in CENTRAL_CHANNELS:
            return
        channel = found[0]
        event_time = float(json.loads(data)["event_time_s"])
        tail = topic.removeprefix(head)
        out.append(Recorded(now[0], event_time, tail, channel.qos, data, channel.name))

    bus.subscribe(f"{PREFIX}/{store.store_id}/+/+/+", keep)
    adapter = ShelfAdapter(store, bus, now=lambda: now[0])
    adapter.start()
    t = twin.start_s
    while t < twin.end_s:
        t = min(t + _STEP_S, twin.end_s)
        now[0] = t
        twin.advance(bus, t)
    return out, twin


def free_port() -> int:
    """A loopback port nobody listens on now (for a private broker)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on loopback ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _read(path: Path) -> tuple[list[Recorded], float]:
    with path.open(encoding="utf-8") as f:
        start_s = float(json.loads(f.readline())["start_s"])
        out = []
        for line in f:
            send_s, event_s, tail, qos, data, channel = json.loads(line)
            out.append(Recorded(send_s, event_s, tail, qos, data.encode(), channel))
    return out, start_s


def store_file_as(store_path: str | Path, store_id: str, out_path: str | Path) -> Path:
    """Write a copy of a store file under another ``store_id`` (a chain of identical stores)."""
    data = yaml.safe_load(Path(store_path).read_text(encoding="utf-8"))
    data["store_id"] = store_id
    out = Path(out_path)
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out
