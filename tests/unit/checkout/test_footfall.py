"""Footfall: entries and exits from synthetic tracks, dwell, occupancy, conversion, a twin run."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from checkout.footfall import (
    FootfallCounter,
    FootfallReport,
    FootfallService,
    FootfallSettings,
    conversion,
    store_zones,
)
from iot.bus import LocalTransport, publish
from iot.payloads import GateEntry, Receipt, ReceiptLine, TrackBatch, TrackPoint
from iot.store import Store, load_store
from sim.scenario import load_scenario_as
from sim.twin import Twin

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_800_000_000.0  # a whole minute, so occupancy samples fall on T0 + k * 60
RATE_HZ = 5.0
IN_X, OUT_X = 1.8, 14.2  # mid-points of gate-in and gate-out in the demo store (lines at y 0.3)

Key = tuple[float, float, float]  # (seconds after T0, x_m, y_m)


def feed(tracks: Mapping[str, Sequence[Key]], *, end: bool = True) -> list[TrackBatch]:
    """Batches at RATE_HZ: each track interpolated between its keyframes, reported ended the
    tick after its last keyframe (unless ``end`` is False: the tracker just goes quiet)."""
    last_s = max(k[-1][0] for k in tracks.values()) + 1.0
    batches = []
    for j in range(int(last_s * RATE_HZ) + 1):
        t = j / RATE_HZ
        points, ended = [], []
        for tid, keys in tracks.items():
            ts = [k[0] for k in keys]
            if ts[0] - 1e-9 <= t <= ts[-1] + 1e-9:
                x = float(np.interp(t, ts, [k[1] for k in keys]))
                y = float(np.interp(t, ts, [k[2] for k in keys]))
                points.append(TrackPoint(track_id=tid, x_m=round(x, 3), y_m=round(y, 3)))
            elif end and ts[-1] < t <= ts[-1] + 1 / RATE_HZ + 1e-9:
                ended.append(tid)
        batches.append(
            TrackBatch(
                id=f"b{j}",
                event_time_s=T0 + t,
                device_id="positioning",
                tracks=points,
                ended=ended,
            )
        )
    return batches


def run(store: Store, tracks: Mapping[str, Sequence[Key]], **settings: float) -> FootfallReport:
    counter = FootfallCounter(store, FootfallSettings.model_validate(settings))
    batches = feed(tracks)
    for b in batches:
        counter.add(b)
    counter.advance(batches[-1].event_time_s + 60.0)  # settle every held track
    return counter.report()


def visit(t: float, stay_s: float = 20.0, x_in: float = IN_X, start_y: float = 0.0) -> list[Key]:
    """In through gate-in, a walk to the exit side, out through gate-out."""
    return [
        (t, x_in, start_y),
        (t + 3, x_in, 3.0),
        (t + 3 + stay_s, OUT_X, 2.0),
        (t + 5 + stay_s, OUT_X, 0.0),
    ]


def counts(r: FootfallReport) -> tuple[int, int, int, int]:
    return (
        r.gates["gate-in"].entries,
        r.gates["gate-out"].exits,
        r.gates["gate-in"].exits,
        r.gates["gate-out"].entries,
    )


def queue(fragment_m: float) -> dict[str, list[Key]]:
    """Two shoppers 6 s apart, each tracked in three short pieces 0.1 m apart up to the
    doorway, then one piece on into the store."""
    tracks: dict[str, list[Key]] = {}
    for p in range(2):
        for k in range(3):
            y0 = k * (fragment_m + 0.1)
            tracks[f"{p}.{k}"] = [
                (6 * p + 2 * k, IN_X, y0),
                (6 * p + 2 * k + 1.5, IN_X, y0 + fragment_m),
            ]
        y0 = 3 * (fragment_m + 0.1)
        tracks[f"{p}.deep"] = [(6 * p + 5.8, IN_X, y0), (6 * p + 9, 3.0 + p, 4.0)]
    return tracks


# (case, tracks, (entries at gate-in, exits at gate-out, exits at gate-in, entries at gate-out),
#  whether the count needs stitching: the doorway rule alone handles the others)
CASES = [
    ("clean walk in and out", {"a": visit(0)}, (1, 1, 0, 0), False),
    ("picked up 1 m inside", {"a": visit(0, start_y=1.3)}, (1, 1, 0, 0), False),
    ("picked up 1.6 m inside", {"a": visit(0, start_y=1.9)}, (1, 1, 0, 0), False),
    (
        "jitter over both lines",
        {
            "a": [(0, IN_X, 0.0)]
            + [(0.2 * k + 0.2, IN_X, 0.55 if k % 2 else 0.05) for k in range(8)]
            + [(4, IN_X, 3.0), (20, OUT_X, 2.0)]
            + [(20.2 + 0.2 * k, OUT_X, 0.05 if k % 2 else 0.55) for k in range(8)]
            + [(22, OUT_X, 0.0)]
        },
        (1, 1, 0, 0),
        False,
    ),
    (
        "fragment at the entry",
        {"a": [(0, IN_X, 0.0), (0.6, IN_X, 0.7)], "b": [(1.0, 1.9, 0.8), *visit(1.0)[1:]]},
        (1, 1, 0, 0),
        False,
    ),
    (
        "fragment at the exit",
        {
            "a": [(0, IN_X, 0.0), (3, IN_X, 3.0), (15, OUT_X, 2.0), (16, OUT_X, 0.9)],
            "b": [(16.4, 14.1, 0.8), (17.5, OUT_X, 0.0)],
        },
        (1, 1, 0, 0),
        False,
    ),
    (
        "queue at the entry, short fragments",
        queue(fragment_m=0.3),
        (2, 0, 0, 0),
        False,  # no fragment gets commit_depth_m in: the doorway rule alone is exact
    ),
    (
        "queue at the entry, long fragments",
        queue(fragment_m=0.45),
        (2, 0, 0, 0),
        True,  # the third fragment gets past commit_depth_m: only stitching joins them
    ),
    (
        "two side by side",
        {"a": visit(0, x_in=1.5), "b": visit(0, x_in=2.1)},
        (2, 2, 0, 0),
        False,
    ),
    (
        "two share a track through the door",
        {"ab": visit(0), "b": [(2.0, 2.4, 1.4), (4.0, 3.0, 4.0), (25, 13.8, 2.0), (27, 13.8, 0)]},
        (2, 2, 0, 0),
        False,
    ),
    (
        "lingers in the doorway and leaves",
        {"a": [(0, IN_X, 0.0), (1, IN_X, 0.7), (11, IN_X, 0.8), (12, IN_X, 0.0)]},
        (0, 0, 0, 0),
        False,
    ),
    (
        "walks past outside",
        {"a": [(0, 0.2, 0.05), (4, 3.4, 0.05)]},
        (0, 0, 0, 0),
        False,
    ),
]


@pytest.mark.parametrize("stitch_window_s", [2.0, 0.0], ids=["stitching", "no stitching"])
@pytest.mark.parametrize("row", CASES, ids=[c[0] for c in CASES])
def test_counts_per_gate(store, row, stitch_window_s) -> None:
    case, tracks, expected, needs = row
    if needs and not stitch_window_s:
        pytest.skip("this case is only exact with stitching")
    r = run(store, tracks, stitch_window_s=stitch_window_s)
    assert counts(r) == expected, case
    assert r.entries == expected[0] + expected[3] and r.exits == expected[1] + expected[2]


def test_a_doorway_balk_is_reported_but_not_a_visit(store) -> None:
    r = run(store, {"a": [(0, IN_X, 0.0), (1, IN_X, 0.7), (11, IN_X, 0.8), (12, IN_X, 0.0)]})
    assert r.diagnostics.get("balks") == 1
    assert r.visit_dwell.count == 0


def test_a_track_first_seen_deep_inside_is_an_orphan_without_entry(store) -> None:
    r = run(store, {"a": [(0, 8.0, 6.0), (10, OUT_X, 2.0), (12, OUT_X, 0.0)]})
    assert (r.entries, r.exits) == (0, 1)
    assert r.diagnostics.get("orphans") == 1


def test_lost_in_the_exit_doorway_counts_the_exit_lost_deep_does_not(store) -> None:
    door = {"a": [(0, IN_X, 0.0), (3, IN_X, 3.0), (15, OUT_X, 2.0), (16, OUT_X, 1.0)]}
    deep = {"a": [(0, IN_X, 0.0), (3, IN_X, 3.0), (9, 8.0, 6.0)]}
    assert (run(store, door).exits, run(store, door).diagnostics.get("lost_at_door")) == (1, 1)
    r = run(store, deep)
    assert (r.entries, r.exits, r.occupancy_now) == (1, 0, 1)
    assert r.diagnostics.get("lost_inside") == 1


def test_a_track_that_goes_quiet_is_settled_and_forgotten(store) -> None:
    counter = FootfallCounter(store)
    for k in range(20):  # twenty visitors whose tracker never reports "ended"
        for b in feed({f"v{k}": visit(0)}, end=False):
            counter.add(
                b.model_copy(update={"id": f"{k}.{b.id}", "event_time_s": b.event_time_s + 40 * k})
            )
    counter.advance(T0 + 40 * 20 + 60)
    assert (counter.entries, counter.exits) == (20, 20)
    assert counter.held == 0  # no per-track state outlives its track


def test_out_of_order_and_duplicate_points_are_counted_not_used(store) -> None:
    counter = FootfallCounter(store)
    batches = feed({"a": visit(0)})
    for b in batches[:10]:
        counter.add(b)
    counter.add(batches[3])
    twice = batches[10].model_copy(update={"tracks": batches[10].tracks * 2})
    counter.add(twice)
    for b in batches[11:]:
        counter.add(b)
    r = counter.report()
    assert (r.entries, r.exits) == (1, 1)
    assert r.diagnostics["out_of_order"] == 1 and r.diagnostics["duplicate_points"] == 1


def time_in_zone_s(keys: Sequence[Key], zone) -> float:
    """The true time a keyframed walk spends in a zone, from a dense (1 ms) resampling."""
    t = np.arange(keys[0][0], keys[-1][0], 0.001)
    x = np.interp(t, [k[0] for k in keys], [k[1] for k in keys])
    y = np.interp(t, [k[0] for k in keys], [k[2] for k in keys])
    inside = (zone.x0_m <= x) & (x <= zone.x1_m) & (zone.y0_m <= y) & (y <= zone.y1_m)
    return float(inside.sum()) * 0.001


def test_zone_dwell_median_and_p90_match_the_stays(store) -> None:
    zone = store_zones(store)[0]  # g01-south: the aisle strip below gondola g01
    x, y = (zone.x0_m + zone.x1_m) / 2, (zone.y0_m + zone.y1_m) / 2
    waits = [6.0, 9.0, 12.0, 20.0, 31.0, 44.0, 45.0, 70.0]
    tracks = {  # walk along the aisle into the strip, stand, walk back out
        f"s{k}": [
            (200 * k, 1.0, y),
            (200 * k + 2, x, y),
            (200 * k + 2 + w, x, y),
            (200 * k + 4 + w, 1.0, y),
        ]
        for k, w in enumerate(waits)
    }
    stays = [time_in_zone_s(keys, zone) for keys in tracks.values()]
    tracks["pass"] = [(1800, zone.x0_m - 1, y), (1801, zone.x1_m + 1, y)]
    settings = FootfallSettings()
    r = run(store, tracks)
    d = r.zones[zone.name]
    # A stay is seen from its first to its last sample (one period short at most), then
    # binned (medians and p90s read at bin centres: half a bin).
    tol = 1 / RATE_HZ + settings.dwell_bin_s / 2
    assert d.count == len(stays) and d.passes == 1
    assert d.median_s == pytest.approx(np.percentile(stays, 50), abs=tol)
    assert d.p90_s == pytest.approx(np.percentile(stays, 90), abs=tol)
    assert d.mean_s == pytest.approx(np.mean(stays), abs=1 / RATE_HZ)
    assert all(z.count == 0 for n, z in r.zones.items() if n != zone.name)


def test_visit_dwell_is_entry_to_exit(store) -> None:
    stays = [10.0, 25.0, 40.0, 90.0]
    r = run(store, {f"v{k}": visit(150 * k, stay_s=s) for k, s in enumerate(stays)})
    # At 1 m/s the line (y 0.3) is crossed 0.3 s into the visit and 1.7 s into the last leg.
    true = [(3 + s + 1.7) - 0.3 for s in stays]
    assert r.visit_dwell.count == len(stays)
    # Crossings are seen one band (0.2 m) late on both lines, binned to half a second.
    assert r.visit_dwell.median_s == pytest.approx(np.median(true), abs=0.5)


def test_occupancy_is_sampled_on_the_step(store) -> None:
    tracks = {"a": visit(10, stay_s=100), "b": visit(20, stay_s=100), "c": visit(30, stay_s=15)}
    r = run(store, tracks)
    by_time = {round(s.time_s - T0): (s.counted, s.tracked) for s in r.occupancy}
    assert by_time[60] == (2, 2)  # c left at 50 s
    assert by_time[120] == (1, 1) and by_time[180] == (0, 0)  # a left at 115 s
    assert r.occupancy_now == 0


def _receipt(n: int, session: str, lines: int) -> Receipt:
    line = ReceiptLine(
        sku="SKU001", name="x", quantity=1, unit_price_cents=100, total_cents=100, confidence=1.0
    )
    return Receipt(
        id=f"r{n}",
        event_time_s=T0,
        device_id="brain",
        session_id=session,
        token=f"t{session}",
        entered_s=T0,
        exited_s=T0,
        currency="EUR",
        lines=[line] * lines,
        total_cents=100 * lines,
        needs_review=False,
    )


def test_conversion_is_sessions_with_a_purchase_over_entries() -> None:
    receipts = [_receipt(1, "a", 2), _receipt(2, "b", 0), _receipt(3, "c", 1), _receipt(4, "a", 2)]
    assert conversion(8, receipts) == pytest.approx(2 / 8)
    assert conversion(0, receipts) is None


def test_report_round_trips_through_json(store) -> None:
    counter = FootfallCounter(store)
    for b in feed({"a": visit(0)}):
        counter.add(b)
    r = counter.report(receipts=[_receipt(1, "a", 1)])
    assert FootfallReport.model_validate_json(r.model_dump_json()) == r
    assert json.loads(r.model_dump_json())["conversion"] == 1.0


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"commit_depth_m": 3.0}, "commit_depth_m"),
        ({"band_m": -1}, "band_m"),
        ({"nope": 1}, "nope"),
    ],
)
def test_bad_settings_name_the_field(bad, field) -> None:
    with pytest.raises(ValidationError, match=field):
        FootfallSettings(**bad)


def test_service_counts_from_the_bus_and_refuses_unknown_devices(store) -> None:
    bus = LocalTransport()
    service = FootfallService(store, bus, now=lambda: T0)
    service.start()
    for b in feed({"a": visit(0)}):
        publish(bus, store.store_id, b)
    publish(bus, store.store_id, _receipt(1, "a", 1))
    stranger = feed({"x": visit(0)})[5].model_copy(update={"device_id": "stranger", "id": "s1"})
    publish(bus, store.store_id, stranger)
    r = service.report()
    assert (r.entries, r.exits, r.purchases, r.conversion) == (1, 1, 1, 1.0)
    assert service.tracks.rejected["unknown device"] == 1


@pytest.mark.parametrize(("name", "visits"), [("normal", 30), ("busy", 40)])
def test_twin_run_counts_every_visit(name: str, visits: int) -> None:
    scenario = load_scenario_as(ROOT / "scenarios" / f"{name}.yaml", seed=None, store=None)
    arrivals = scenario.arrivals.model_copy(update={"visits": visits})
    scenario = scenario.model_copy(update={"arrivals": arrivals})
    twin = Twin(load_store(scenario.store), scenario)
    bus = LocalTransport()
    clock = [twin.start_s]
    service = FootfallService(twin.store, bus, now=lambda: clock[0])
    service.start()
    t = twin.start_s
    while t < twin.end_s:
        t = min(t + 1.0, twin.end_s)
        clock[0] = t
        twin.advance(bus, t)
    service.counter.advance(t + 10.0)
    r = service.report()
    truth = twin.truth.visits
    assert r.entries == len(truth) and r.exits == len(truth)
    assert r.gates["gate-in"].entries == len(truth) and r.gates["gate-out"].exits == len(truth)
    true_dwell = [v.exited_s - v.entered_s for v in truth]
    assert r.visit_dwell.count == len(truth)
    assert r.visit_dwell.median_s == pytest.approx(np.median(true_dwell), abs=2.0)
    for sample in r.occupancy:  # the count lags a crossing by a second or two at most
        inside = sum(v.entered_s <= sample.time_s < v.exited_s for v in truth)
        assert abs(sample.counted - inside) <= 1, sample
    assert math.isclose(r.first_s or 0, twin.start_s, abs_tol=1.0)
    assert service.counter.held == 0


def degrade(batches: list[TrackBatch], seed: int) -> list[TrackBatch]:
    """A camera tracker's faults on a clean feed: half the tracks picked up late (up to 1.5 m
    from the entry line), ids that break every ~7 s with a 0.4 s gap, and more jitter."""
    rng = np.random.default_rng(seed)
    late_m: dict[str, float] = {}
    piece: dict[str, int] = {}
    quiet_until: dict[str, float] = {}
    out = []
    for b in batches:
        t, points, ended = b.event_time_s, [], []
        for p in b.tracks:
            tid = p.track_id
            late_m.setdefault(tid, rng.uniform(0.0, 1.5) if rng.random() < 0.5 else -1.0)
            if (
                tid not in piece
                and math.hypot(max(1.0 - p.x_m, p.x_m - 2.6, 0), p.y_m - 0.3) < late_m[tid]
            ):
                continue
            piece.setdefault(tid, 0)
            if t < quiet_until.get(tid, -math.inf):
                continue
            if rng.random() < 0.03:
                ended.append(f"{tid}.{piece[tid]}")
                piece[tid] += 1
                quiet_until[tid] = t + 0.4
                continue
            jitter = rng.normal(0.0, 0.1, 2)
            points.append(
                p.model_copy(
                    update={
                        "track_id": f"{tid}.{piece[tid]}",
                        "x_m": p.x_m + jitter[0],
                        "y_m": p.y_m + jitter[1],
                    }
                )
            )
        ended += [f"{tid}.{piece[tid]}" for tid in b.ended if tid in piece]
        out.append(b.model_copy(update={"tracks": points, "ended": ended}))
    return out


@pytest.fixture(scope="module")
def busy_run() -> tuple[Twin, list[TrackBatch]]:
    """A busy scenario's twin and its clean positioning feed."""
    scenario = load_scenario_as(ROOT / "scenarios" / "busy.yaml", seed=None, store=None)
    arrivals = scenario.arrivals.model_copy(update={"visits": 40})
    twin = Twin(load_store(scenario.store), scenario.model_copy(update={"arrivals": arrivals}))
    bus = LocalTransport()
    clean: list[TrackBatch] = []
    bus.subscribe(
        "smartstore/+/tracker/+/tracks",
        lambda _t, d: clean.append(TrackBatch.model_validate_json(d)),
    )
    twin.advance(bus, twin.end_s)
    return twin, clean


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_twin_feed_with_camera_faults_counts_within_a_visit(busy_run, seed: int) -> None:
    twin, clean = busy_run
    counter = FootfallCounter(twin.store)
    for b in degrade(clean, seed):
        counter.add(b)
    counter.flush(twin.end_s + 60.0)
    r = counter.report()
    visits = len(twin.truth.visits)
    # A track picked up late and broken before its entry is committed can still slip through
    # (about one in a hundred, seen over sixteen seeds): allow one visit, as counters claim 98%.
    assert abs(r.entries - visits) <= 1 and abs(r.exits - visits) <= 1
    assert r.diagnostics["stitched"] > 100  # the faults were there, and were mended


def test_occupancy_over_time_counts_people_only_the_gates_saw(store) -> None:
    bus = LocalTransport()
    service = FootfallService(store, bus, now=lambda: T0)
    service.start()
    gate = store.gates("entry")[0].id
    # two people scan in as one party; the ceiling follows only one of them
    publish(
        bus,
        store.store_id,
        GateEntry(id="in-1", event_time_s=T0 + 10, device_id=gate, token="p", party_size=2),
    )
    batches = feed({"a": visit(10, stay_s=100)})
    later = batches[-1].model_copy(update={"id": "late", "event_time_s": T0 + 200, "tracks": []})
    for b in [*batches, later]:
        publish(bus, store.store_id, b)
    r = service.report()
    by_time = {round(s.time_s - T0): s.counted for s in r.occupancy}
    assert r.diagnostics["entries_gate_only"] == 1
    assert by_time[60] == 2  # the tracked shopper and the one in their shadow
    # the tracked one left at 115 s; the one in their shadow passed no exit gate
    assert by_time[180] == 1 == r.occupancy_now
