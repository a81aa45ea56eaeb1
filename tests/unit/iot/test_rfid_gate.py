"""Exit-gate direction logic: passes, directions, flutter, static tags, bounded memory."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from iot.rfid import TagRead
from iot.rfid_gate import GateSettings, Passage, PassageDetector
from iot.store import RfidAntenna, RfidReader

T0 = 1.8e9
EPC = "3074257BF7194E4000001A85"
READER = RfidReader(
    id="rfid-exit",
    format="impinj",
    gate="gate-out",
    antennas=[
        RfidAntenna(port=1, zone="inner", position_m=(14.2, 1.1)),
        RfidAntenna(port=3, zone="inner", position_m=(15.0, 1.1)),
        RfidAntenna(port=2, zone="outer", position_m=(14.2, 0.05)),
    ],
)
IN, OUT = 1, 2  # antenna ports: inner, outer


def read(port: int, t_s: float, epc: str = EPC, rssi: float = -55.0) -> TagRead:
    return TagRead("rfid-exit", epc, port, rssi, t_s)


def walk(
    det: PassageDetector, ports: list[int], t0_s: float = T0, dt_s: float = 0.1, epc: str = EPC
) -> float:
    """Feed one read per port, ``dt_s`` apart, ticking at each read; returns the last time."""
    t = t0_s
    for k, port in enumerate(ports):
        t = t0_s + k * dt_s
        det.feed(read(port, t, epc))
        assert det.tick(t) == []  # nothing is decided while the tag is still being read
    return t


def test_inner_then_outer_is_out() -> None:
    det = PassageDetector(READER)
    last = walk(det, [IN, IN, 3, IN, OUT, OUT])
    det.feed(read(OUT, last + 0.05, rssi=-40.0))
    assert det.tick(last + 0.05 + 0.99) == []  # quiet for less than quiet_s
    (p,) = det.tick(last + 1.05)
    assert p == Passage(
        reader_id="rfid-exit",
        gate_id="gate-out",
        epc_hex=EPC,
        direction="out",
        first_seen_s=T0,
        last_seen_s=last + 0.05,
        zones=("inner", "outer"),
        reads=7,
        peak_rssi_dbm=-40.0,
    )
    assert det.counts["passage out"] == 1 and det.tick(last + 5) == []  # decided once


def test_outer_then_inner_is_in() -> None:
    det = PassageDetector(READER)
    last = walk(det, [OUT, OUT, IN, IN])
    (p,) = det.tick(last + 1.0)
    assert p.direction == "in" and p.zones == ("outer", "inner")


@pytest.mark.parametrize(
    ("ports", "outcome"),
    [
        ([IN] * 6, "one zone"),
        ([OUT] * 3, "one zone"),
        ([IN], "too few reads"),
        ([IN, IN, IN, OUT, OUT, OUT, IN, IN, IN], "impossible direction"),
        ([IN, IN, OUT, OUT, IN, IN, OUT, OUT], "impossible direction"),
    ],
)
def test_no_passage(ports: list[int], outcome: str) -> None:
    det = PassageDetector(READER)
    last = walk(det, ports)
    assert det.tick(last + 1.0) == []
    assert det.counts[outcome] == 1
    assert not any(k.startswith("passage") for k in det.counts)


def test_flutter_in_the_overlap_is_dropped_but_strict_settings_keep_it() -> None:
    ports = [IN, IN, IN, OUT, IN, OUT, IN, OUT, OUT, OUT]
    det = PassageDetector(READER)
    (p,) = det.tick(walk(det, ports) + 1.0)
    assert p.direction == "out" and p.zones == ("inner", "outer")
    strict = PassageDetector(READER, GateSettings(zone_min_reads=1))
    assert strict.tick(walk(strict, ports) + 1.0) == []
    assert strict.counts["impossible direction"] == 1


def test_min_reads_setting() -> None:
    det = PassageDetector(READER, GateSettings(min_reads=5))
    assert det.tick(walk(det, [IN, IN, OUT, OUT]) + 1.0) == []
    assert det.counts["too few reads"] == 1


def test_display_item_read_on_and_on_never_passes() -> None:
    det = PassageDetector(READER)
    # Read every 0.2 s on the inner antenna, with now and then a stray outer read.
    ports = [OUT if k % 17 == 16 else IN for k in range(150)]  # 30 s
    last = walk(det, ports, dt_s=0.2)
    assert det.tick(last + 2.0) == []
    assert det.counts["static tag"] == 1
    assert not any(k.startswith("passage") for k in det.counts)
    # Still static while it keeps being read, even by a clean inner-to-outer sequence...
    last = walk(det, [IN, IN, OUT, OUT], t0_s=last + 5.0)
    assert det.tick(last + 2.0) == []
    # ...until it has been away static_absence_s: then it is an item like any other.
    last = walk(det, [IN, IN, OUT, OUT], t0_s=last + 31.0)
    assert [p.direction for p in det.tick(last + 1.0)] == ["out"]


def test_tag_that_keeps_reappearing_is_static() -> None:
    det = PassageDetector(READER)
    t = T0
    for _ in range(2):  # bursts at one zone, 3 s apart: a tag near the door, shaded now and then
        t = walk(det, [IN, IN, IN], t0_s=t) + 3.0
        det.tick(t)
    last = walk(det, [IN, IN, OUT, OUT], t0_s=t)  # the third pass in a row
    assert det.tick(last + 1.0) == []
    assert det.counts["one zone"] == 2 and det.counts["static tag"] == 1


def test_out_and_back_in_are_two_passages() -> None:
    det = PassageDetector(READER)
    last = walk(det, [IN, IN, OUT, OUT])
    first = det.tick(last + 1.0)
    last = walk(det, [OUT, OUT, IN, IN], t0_s=last + 4.0)
    second = det.tick(last + 1.0)
    assert [p.direction for p in first + second] == ["out", "in"]


def test_passes_split_by_a_gap_even_without_ticks() -> None:
    det = PassageDetector(READER)
    for k, port in enumerate([IN, IN, OUT, OUT]):
        det.feed(read(port, T0 + 0.1 * k))
    for k, port in enumerate([OUT, OUT, IN, IN]):
        det.feed(read(port, T0 + 5.0 + 0.1 * k))
    assert [p.direction for p in det.tick(T0 + 10.0)] == ["out", "in"]


def test_late_reads_and_unknown_antennas_are_counted_and_ignored() -> None:
    det = PassageDetector(READER)
    det.tick(T0 + 10.0)
    det.feed(read(IN, T0 + 9.0))  # exactly quiet_s behind: its pass would already be decided
    det.feed(read(7, T0 + 10.0))
    assert det.counts["late read"] == 1 and det.counts["unknown antenna"] == 1
    assert det.tracked_tags == 0
    det.tick(T0 + 5.0)  # the clock does not run backwards
    assert det.now_s == T0 + 10.0


def test_tags_are_forgotten_after_static_absence() -> None:
    det = PassageDetector(READER)
    last = walk(det, [IN, IN, OUT, OUT])
    det.tick(last + 1.0)
    assert det.tracked_tags == 1  # remembered, to see whether it keeps coming back
    det.tick(last + 30.0)
    assert det.tracked_tags == 0


def test_many_tags_at_once_are_bounded_and_evictions_counted() -> None:
    det = PassageDetector(READER, GateSettings(max_tracked_tags=50))
    for n in range(200):
        det.feed(read(IN, T0 + n * 0.001, epc=f"{0x3074257BF7194E4000000000 + n:024X}"))
    assert det.tracked_tags == 50 and det.counts["evicted"] == 150


def test_a_flooding_reader_does_not_grow_memory() -> None:
    det = PassageDetector(READER)
    reads = iter(read(IN if k % 2 else OUT, T0 + k * 0.01) for k in range(60_000))
    for r in (next(reads) for _ in range(2_000)):
        det.feed(r)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for r in reads:  # ten minutes of one tag flip-flopping 100 times a second
            det.feed(r)
            det.tick(r.time_s)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64_000, grown
    assert det.tracked_tags == 1 and det.counts["static tag"] >= 1


def test_reader_without_gate_or_foreign_reads_are_refused() -> None:
    with pytest.raises(ValueError, match="guards no gate"):
        PassageDetector(RfidReader(id="shelf-reader", gate=None))
    det = PassageDetector(READER)
    with pytest.raises(ValueError, match="'other' fed to the detector of 'rfid-exit'"):
        det.feed(TagRead("other", EPC, 1, -50.0, T0))


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"quiet_s": 10.0, "max_pass_s": 5.0}, "must be shorter than max_pass_s"),
        ({"quiet_s": 2.0, "static_absence_s": 1.0}, "at least quiet_s"),
        ({"quiet_s": 0.0}, "greater than 0"),
        ({"quiet_ms": 1}, "Extra inputs"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, float], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        GateSettings(**kwargs)  # type: ignore[arg-type]


def test_default_quiet_fits_the_exit_alert_budget() -> None:
    assert GateSettings().quiet_s <= 1.0


tag_reads = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from([IN, OUT, 3, 9]), st.integers(1, 2500)),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(tag_reads)
def test_tick_cadence_does_not_change_the_answer(steps: list[tuple[int, int, int]]) -> None:
    """Ticking at every read or only at the end decides the same passages (determinism)."""
    epcs = [f"{0x3074257BF7194E4000000000 + n:024X}" for n in range(4)]
    eager, lazy = PassageDetector(READER), PassageDetector(READER)
    t = T0
    got_eager: list[Passage] = []
    for tag, port, dt_ms in steps:
        t += dt_ms / 1000
        r = read(port, t, epcs[tag])
        eager.feed(r)
        lazy.feed(r)
        got_eager += eager.tick(t)
    got_eager += eager.tick(t + 100.0)
    got_lazy = lazy.tick(t + 100.0)
    key = sorted(got_eager, key=lambda p: (p.first_seen_s, p.epc_hex))
    assert key == sorted(got_lazy, key=lambda p: (p.first_seen_s, p.epc_hex))
    for p in got_eager:
        assert len(p.zones) == 2 and p.direction == ("out" if p.zones[0] == "inner" else "in")
        assert p.reads >= 2 and p.last_seen_s - p.first_seen_s <= 8.0
