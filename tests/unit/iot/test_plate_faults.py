"""Load-cell faults in the shelf adapter: stuck, drifting, saturated, out of range.

Each fault is injected into a live controller's samples at ``ONSET``; the
tests measure, in event time, how long the adapter takes to publish it, that
the faulty plate invents no pick or put while (and after) it misreads, and
that the controller's healthy plates go on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from iot.bus import LocalTransport, publish
from iot.payloads import (
    DeadLetter,
    Interaction,
    LoadCellFault,
    PlateSamples,
    ShelfEvent,
    ShelfSamples,
)
from iot.plate_faults import LoadCellFaultSettings, LoadCellMonitor
from iot.shelf import ShelfAdapter
from iot.store import Store, load_store

T0 = 1.8e9
RATE = 20.0
BATCH = 2  # samples per batch: 0.1 s at 20 Hz
CTL = "shelf-g01"
PLATE = "g01-s1-p1"  # SKU001, 522 g, max load 20 kg
OTHER = "g01-s2-p1"  # SKU004, 1080 g, same controller
ONSET = 10.0  # s after T0 when the fault starts
ALERT_WITHIN_S = 10.0


@pytest.fixture(scope="module")
def store() -> Store:
    return load_store(Path(__file__).resolve().parents[3] / "stores" / "demo.yaml")


Reading = Callable[[float, float], float]  # (seconds after T0, noisy level) -> raw reading


class Rig:
    """A started adapter on a LocalTransport, fed a controller's noisy samples."""

    def __init__(self, store: Store, settings: LoadCellFaultSettings | None = None) -> None:
        self.store = store
        self.bus = LocalTransport()
        self.events: list[ShelfEvent] = []
        self.faults: list[LoadCellFault] = []
        self.letters: list[DeadLetter] = []
        self.bus.subscribe(
            "smartstore/demo/shelf/+/events",
            lambda t, d: self.events.append(ShelfEvent.model_validate_json(d)),
        )
        self.bus.subscribe(
            "smartstore/demo/shelf/+/faults",
            lambda t, d: self.faults.append(LoadCellFault.model_validate_json(d)),
        )
        self.bus.subscribe(
            "smartstore/demo/shelf/shelf-adapter/deadletter",
            lambda t, d: self.letters.append(DeadLetter.model_validate_json(d)),
        )
        self.adapter = ShelfAdapter(store, self.bus, now=lambda: T0, faults=settings)
        self.adapter.start()
        self.rng = np.random.default_rng(11)
        self.levels = {
            pid: 1500.0
            + sum(
                e.initial_units * store.items[e.sku].unit_weight_g for e in store.skus_on_plate(pid)
            )
            for pid in store.controller_plates[CTL]
        }
        self.readings: dict[str, Reading] = {}  # plate -> how its cell misreads
        self.n = 0

    def run(self, until_s: float) -> None:
        """Stream every plate of the controller up to ``until_s`` seconds after T0."""
        while self.n / RATE < until_s - 1e-9:
            t_rel = self.n / RATE
            plates = []
            for pid, level in self.levels.items():
                noisy = np.round(level + self.rng.normal(0, 2.0, BATCH), 1).tolist()
                read = self.readings.get(pid)
                if read is not None:
                    noisy = [read(t_rel + k / RATE, w) for k, w in enumerate(noisy)]
                plates.append(PlateSamples(plate_id=pid, weights_g=noisy))
            batch = ShelfSamples(
                id=f"{CTL}.b{self.n}",
                event_time_s=T0 + t_rel,
                device_id=CTL,
                sample_rate_hz=RATE,
                plates=plates,
            )
            publish(self.bus, "demo", batch)
            self.n += BATCH

    def raised(self, fault: str) -> list[LoadCellFault]:
        return [f for f in self.faults if f.fault == fault and f.state == "raised"]


def stuck_at(value: float) -> Reading:
    return lambda t, w: w if t < ONSET else value


def drifting(rate_g_per_s: float) -> Reading:
    return lambda t, w: w + max(0.0, t - ONSET) * rate_g_per_s


def pinned_at(value: float) -> Reading:
    return lambda t, w: w if t < ONSET else value


FAULTS = [
    # id, the cell's misreading from ONSET on, fault, how late since_s may lie
    ("stuck", stuck_at(12_983.4), "stuck", 0.1),
    ("drifting-1g-per-s", drifting(1.0), "drifting", 0.5),
    ("drifting-0.6g-per-s", drifting(0.6), "drifting", 0.5),
    ("saturated-in-range", pinned_at(19_950.0), "saturated", 0.1),
    ("saturated-past-full-scale", pinned_at(21_474.8), "saturated", 0.1),
    ("unplugged", pinned_at(-8_388.6), "out_of_range", 0.1),
]


@pytest.mark.parametrize(
    ("reading", "fault", "since_slack_s"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS]
)
def test_each_fault_is_published_within_seconds_of_its_onset(
    store: Store, reading: Reading, fault: str, since_slack_s: float
) -> None:
    rig = Rig(store)
    rig.readings[PLATE] = reading
    rig.run(ONSET + 15.0)
    [found] = rig.raised(fault)
    assert (found.device_id, found.plate_id) == (CTL, PLATE)
    latency_s = found.event_time_s - (T0 + ONSET)
    assert 0.0 <= latency_s < 8.0, latency_s  # the alert service adds at most a tick
    # a drift dates from the start of the window that showed it: early rather than late
    assert T0 + ONSET - 7.5 <= found.since_s <= T0 + ONSET + since_slack_s
    assert found.detail
    assert [f.plate_id for f in rig.faults] == [PLATE]  # the healthy cells raise nothing
    assert rig.adapter.monitor.faulty(PLATE) and not rig.adapter.monitor.faulty(OTHER)
    assert rig.events == []  # the misreading cell invents no pick or put


def test_a_healthy_controller_raises_nothing_in_ten_minutes(store: Store) -> None:
    rig = Rig(store)
    # the twin's slow drift (4 g/h) and a slow sway of a couple of grams, on every plate
    for k, pid in enumerate(rig.levels):
        rig.readings[pid] = lambda t, w, k=k: w + 4.0 * t / 3600 + 1.5 * np.sin(t / 300 + k)
    rig.run(600.0)
    assert rig.faults == [] and rig.events == [] and rig.letters == []


def test_picks_and_a_slow_lift_are_not_a_drift(store: Store) -> None:
    rig = Rig(store)
    rig.run(5.0)
    rig.levels[PLATE] -= 522.0  # a pick: a step
    rig.run(15.0)
    start = 15.0
    # a hand easing two bottles off over 3 s, then nothing more
    rig.readings[PLATE] = lambda t, w: w - 1044.0 * min(1.0, max(0.0, (t - start) / 3.0))
    rig.run(35.0)
    assert rig.faults == []
    assert [(e.plate_id, e.action, e.quantity) for e in rig.events] == [
        (PLATE, "pick", 1),
        (PLATE, "pick", 2),
    ]


def test_a_stuck_cell_clears_when_it_reads_again_and_its_jump_is_no_pick(store: Store) -> None:
    rig = Rig(store)
    rig.readings[PLATE] = lambda t, w: 12_983.4 if ONSET <= t < ONSET + 20 else w
    rig.levels[PLATE] -= 0  # the shelf keeps its goods; only the cell lies
    rig.run(ONSET + 8)
    rig.levels[PLATE] -= 2 * 522.0  # a shopper takes two bottles while the cell is stuck
    rig.levels[OTHER] -= 1080.0  # and one from the healthy plate beside it
    rig.run(ONSET + 40)
    states = [(f.fault, f.state) for f in rig.faults]
    assert states == [("stuck", "raised"), ("stuck", "cleared")]
    raised, cleared = rig.faults
    assert raised.since_s == cleared.since_s == pytest.approx(T0 + ONSET)
    recover_s = LoadCellFaultSettings().recover_s
    assert cleared.event_time_s - (T0 + ONSET + 20) == pytest.approx(recover_s, abs=0.15)
    # the healthy plate's pick is an event; the stuck plate's lost pick and its jump are not
    assert [(e.plate_id, e.quantity) for e in rig.events] == [(OTHER, 1)]


def test_a_cell_alone_is_judged_stuck_only_when_a_camera_saw_a_hand(store: Store) -> None:
    mon = LoadCellMonitor({"p": (CTL, 20_000.0, 2.0)})

    def feed(t0: float, seconds: float) -> list[LoadCellFault]:
        out = []
        for k in range(round(seconds * 10)):
            batch = ShelfSamples(
                id=f"b{t0}.{k}",
                event_time_s=T0 + t0 + k / 10,
                device_id=CTL,
                sample_rate_hz=RATE,
                plates=[PlateSamples(plate_id="p", weights_g=[5000.0, 5000.0])],
            )
            out += mon.observe(batch)
        return out

    assert feed(0.0, 10.0) == []  # nobody to compare with: not judged
    mon.hand_seen("p", T0 + 11.0, T0 + 12.0)
    [fault] = feed(10.0, 3.0)
    assert (fault.fault, fault.state) == ("stuck", "raised")
    assert fault.event_time_s == pytest.approx(T0 + 12.0, abs=0.11)
    assert "hand" in fault.detail


def test_a_camera_pick_on_a_stuck_plate_reaches_the_monitor_over_the_bus(store: Store) -> None:
    rig = Rig(store)
    rig.run(ONSET)
    for pid in rig.levels:
        if pid != PLATE:
            rig.readings[pid] = lambda t, w: 9_000.0  # the whole controller freezes ...
    rig.readings[PLATE] = lambda t, w: 9_000.0
    rig.run(ONSET + 1.0)
    seen = Interaction(
        id="i-1",
        event_time_s=T0 + ONSET + 1.0,
        device_id="cam-shelf-g01",
        gondola_id="g01",
        plate_id=PLATE,
        action="pick",
        started_s=T0 + ONSET + 0.3,
        sku="SKU001",
        quantity=1,
        confidence=0.9,
        sku_confidence=0.9,
        hand_x_m=1.0,
        hand_y_m=1.0,
    )
    publish(rig.bus, "demo", seen)
    rig.run(ONSET + 1.5)
    # ... and only the plate the camera saw a hand take from is known to be stuck
    assert [(f.plate_id, f.fault) for f in rig.raised("stuck")] == [(PLATE, "stuck")]


def test_saturation_is_dead_lettered_once_and_the_other_plates_go_on(store: Store) -> None:
    rig = Rig(store)
    rig.run(ONSET)
    rig.readings[PLATE] = pinned_at(25_000.0)  # past max_load_g: no cell reads that
    rig.run(ONSET + 3)
    rig.levels[OTHER] -= 1080.0
    rig.run(ONSET + 8)
    reasons = [lt.reason.split(":")[0] for lt in rig.letters]
    assert set(reasons) == {"weight out of range"} and 1 <= len(reasons) <= 6  # until raised
    assert "the other plates' samples were used" in rig.letters[0].reason
    assert [(f.fault, f.state) for f in rig.faults] == [("saturated", "raised")]
    assert rig.adapter.faulty_batches_dropped > 40
    assert [(e.plate_id, e.action, e.quantity) for e in rig.events] == [(OTHER, "pick", 1)]


def test_a_flickering_cell_raises_once_and_clears_once(store: Store) -> None:
    rig = Rig(store)
    # unplugged 0.8 s out of every 1.5 s for 9 s, then sound
    rig.readings[PLATE] = lambda t, w: (
        -8_388.6 if ONSET <= t < ONSET + 9 and (t - ONSET) % 1.5 < 0.8 else w
    )
    rig.run(ONSET + 20)
    assert [(f.fault, f.state) for f in rig.faults] == [
        ("out_of_range", "raised"),
        ("out_of_range", "cleared"),
    ]
    assert rig.faults[1].event_time_s >= T0 + ONSET + 8.0


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="stuck_s"):
        LoadCellFaultSettings(stuck_s=0)
    with pytest.raises(ValueError, match="saturation_share"):
        LoadCellFaultSettings(saturation_share=1.5)
