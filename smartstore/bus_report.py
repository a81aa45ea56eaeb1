"""The figures of ``smartstore bench bus``, from what it published and what it heard.

Kept apart from the bench's machinery (``smartstore.bench_bus``) so the
arithmetic is tested without a broker: see that module's docstring for what
each figure means.
"""

from __future__ import annotations

import bisect
import json
import statistics
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from checkout.sessions import session_id_for
from checkout.settings import BrainSettings
from iot.payloads import GateEntry, SessionEvent, ShelfOutcome
from smartstore.bus_traffic import Recorded

if TYPE_CHECKING:
    from smartstore.bench_bus import BusBench

__all__ = ["Heard", "Seen", "StoreRun", "print_report", "report"]


@dataclass
class StoreRun:
    """One simulated store of the bench: its traffic, split into warm-up and window."""

    sid: str
    traffic: list[Recorded]
    warm: list[Recorded]
    window: list[Recorded]
    published: list[float] = field(default_factory=list)  # wall time of each window message


@dataclass
class Seen:
    """What the observer heard, stamped on arrival (perf_counter)."""

    outcomes: list[tuple[float, str, bytes]] = field(default_factory=list)
    sessions: list[tuple[float, str, bytes]] = field(default_factory=list)
    claims: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    lock: threading.Lock = field(default_factory=threading.Lock)


def _fusion_latencies(
    stores: list[StoreRun],
    outcomes: dict[tuple[str, str], float],
    delay_s: float,
    worst: list[tuple[float, str, float]] | None = None,
) -> tuple[list[float], int]:
    """Seconds from "could be decided" to the outcome seen, per window shelf event; missing."""
    latencies: list[float] = []
    missing = 0
    for s in stores:
        times = [m.event_time_s for m in s.window]
        # the newest event time published so far, after each message (send order)
        running: list[float] = []
        newest = float("-inf")
        for t in times:
            newest = max(newest, t)
            running.append(newest)
        for i, m in enumerate(s.window):
            if m.channel != "shelf_events":
                continue
            due = m.event_time_s + delay_s
            j = bisect.bisect_left(running, due)
            if j >= len(s.window):
                continue  # could only be decided after the window: not counted
            could = max(s.published[i], s.published[j])
            event_id = _event_id(m.data)
            seen_at = outcomes.get((s.sid, event_id))
            if seen_at is None:
                missing += 1
                continue
            latencies.append(max(0.0, seen_at - could))
            if worst is not None:
                worst.append((seen_at - could, s.sid, could))
    return latencies, missing


def _event_id(data: bytes) -> str:
    return str(json.loads(data)["id"])


def _entry_latencies(stores: list[StoreRun], opened: dict[tuple[str, str], float]) -> list[float]:
    out = []
    for s in stores:
        for i, m in enumerate(s.window):
            if m.channel != "gate_entries":
                continue
            entry = GateEntry.model_validate_json(m.data)
            seen_at = opened.get((s.sid, session_id_for(entry.token)))
            if seen_at is not None:
                out.append(max(0.0, seen_at - s.published[i]))
    return out


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 2)
    cut = statistics.quantiles(values, n=1000, method="inclusive")
    return round(cut[min(len(cut) - 1, max(0, round(q * 1000) - 1))] * 1000, 2)


@dataclass
class Heard:
    """The observer's records, sorted out: first sightings and who made each decision."""

    outcomes: dict[tuple[str, str], float] = field(default_factory=dict)  # (store, event) -> t
    opened: dict[tuple[str, str], float] = field(default_factory=dict)  # (store, session) -> t
    workers_of: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def _heard(seen: Seen, stats: dict[str, dict[str, object]]) -> Heard:
    heard = Heard()
    for at, topic, data in seen.outcomes:
        sid, worker = topic.split("/")[1], topic.split("/")[3]
        heard.workers_of[sid].add(worker)
        ev = ShelfOutcome.model_validate_json(data)
        heard.outcomes.setdefault((sid, ev.source_event_id), at)
    for at, topic, data in seen.sessions:
        sid, worker = topic.split("/")[1], topic.split("/")[3]
        heard.workers_of[sid].add(worker)
        session = SessionEvent.model_validate_json(data)
        if session.state == "open":
            heard.opened.setdefault((sid, session.session_id), at)
    for wid, st in stats.items():  # and each worker's own count of what it handled
        by_store = st.get("events_by_store", {})
        if isinstance(by_store, dict):
            for sid, n in by_store.items():
                if isinstance(n, int) and n > 0:
                    heard.workers_of[sid].add(wid)
    return heard


def _placement(
    stores: list[StoreRun], heard: Heard, stats: dict[str, dict[str, object]]
) -> dict[str, object]:
    """Events and stores per worker, each store's worker set, and the balance."""
    per_worker = {w: int(str(st.get("events", 0) or 0)) for w, st in sorted(stats.items())}
    total = sum(per_worker.values())
    share = {w: (n / total if total else 0.0) for w, n in per_worker.items()}
    ideal = 1.0 / max(1, len(per_worker))
    deviation = max((abs(v - ideal) / ideal for v in share.values()), default=0.0)
    store_sets = {s.sid: sorted(heard.workers_of.get(s.sid, ())) for s in stores}
    stores_of: dict[str, int] = dict.fromkeys(stats, 0)
    for workers in store_sets.values():
        for w in workers:
            stores_of[w] = stores_of.get(w, 0) + 1
    return {
        "per_worker_events": per_worker,
        "per_worker_share": {w: round(v, 4) for w, v in share.items()},
        "max_share_deviation": round(deviation, 4),
        "balanced_within_10pct": deviation <= 0.10,
        "stores_per_worker": dict(sorted(stores_of.items())),
        "store_workers": store_sets,
        "each_store_one_worker": all(len(v) == 1 for v in store_sets.values()),
    }


def _cpu(
    cpus: tuple[dict[str, float | None], dict[str, float | None]],
    stats: dict[str, dict[str, object]],
    events: int,
) -> dict[str, object]:
    window = {
        w: (round(b - a, 3) if a is not None and (b := cpus[1].get(w)) is not None else None)
        for w, a in sorted(cpus[0].items())
    }
    known = [v for v in window.values() if v is not None]
    per_1000 = None
    if events and len(known) == len(window):
        per_1000 = round(sum(known) / events * 1000, 3)
    return {
        "worker_cpu_s": window,
        "worker_cpu_s_total_run": {w: st.get("cpu_s") for w, st in sorted(stats.items())},
        "cpu_s_per_1000_events": per_1000,
    }


def report(
    bench: BusBench,
    stores: list[StoreRun],
    seen: Seen,
    *,
    stats: dict[str, dict[str, object]],
    walls: tuple[float, float],
    cpus: tuple[dict[str, float | None], dict[str, float | None]],
) -> dict[str, object]:
    heard = _heard(seen, stats)
    delay = BrainSettings().attribution_delay_s
    worst: list[tuple[float, str, float]] = []
    fusion, missing = _fusion_latencies(stores, heard.outcomes, delay, worst)
    worst.sort(reverse=True)
    entries = _entry_latencies(stores, heard.opened)
    wall_s = max(walls[1] - walls[0], 1e-9)
    events = sum(len(s.window) for s in stores)
    p99 = _pct(fusion, 0.99)
    return {
        "stores": bench.stores,
        "workers": bench.workers,
        "seconds": round(wall_s, 2),
        "speed": bench.speed,
        "warmup_s": bench.warmup_s,
        "events": events,
        "events_per_s": round(events / wall_s, 1),
        "shelf_events": len(fusion) + missing,
        "latency_p50_ms": _pct(fusion, 0.50),
        "latency_p99_ms": p99,
        "latency_max_ms": round(max(fusion) * 1000, 2) if fusion else None,
        "p99_under_200ms": p99 is not None and p99 < 200.0,
        "missing_outcomes": missing,
        "latency_worst": [
            {"ms": round(x * 1000, 1), "store": sid, "at_s": round(at - walls[0], 2)}
            for x, sid, at in worst[:5]
        ],
        "entry_latency_p50_ms": _pct(entries, 0.50),
        "entry_latency_p99_ms": _pct(entries, 0.99),
        "latency_definition": (
            "shelf event: from when it could first be decided (its own publication, or the "
            f"first later message of its store stamped >= its time + {delay:g} s, whichever is "
            "later) to its ShelfOutcome seen on the bus; entry: scan-in published to session open"
        ),
        **_placement(stores, heard, stats),
        **_cpu(cpus, stats, events),
    }


def print_report(report: dict[str, object], out: Callable[[str], None] = print) -> None:
    """The bench's figures as a few readable lines."""
    out(
        f"{report['stores']} stores, {report['workers']} worker(s), x{report['speed']} for "
        f"{report['seconds']} s: {report['events_per_s']} events/s "
        f"({report['events']} events, {report['shelf_events']} shelf events)"
    )
    out(
        f"fusion latency p50 {report['latency_p50_ms']} ms, p99 {report['latency_p99_ms']} ms, "
        f"max {report['latency_max_ms']} ms; missing outcomes {report['missing_outcomes']}; "
        f"scan-in to session p50 {report['entry_latency_p50_ms']} ms, "
        f"p99 {report['entry_latency_p99_ms']} ms"
    )
    out(
        f"per worker events {report['per_worker_events']}, stores {report['stores_per_worker']}, "
        f"max share deviation {report['max_share_deviation']}, "
        f"each store on one worker: {report['each_store_one_worker']}"
    )
    out(
        f"worker CPU over the window {report['worker_cpu_s']} s; "
        f"{report['cpu_s_per_1000_events']} CPU s per 1000 events; "
        f"load average {report.get('load_average_1m')} on {report.get('cpus')} CPUs"
    )
