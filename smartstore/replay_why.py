"""Why a replayed reach went to the wrong visit: what the tracks were doing at that moment.

``fusion_replay eval --why`` attaches an :class:`IdentityProbe` to the brain.
It keeps every track batch the brain reads and, at each shelf decision, which
visit each track id stood for (bindings and stitches). For every reach of a
wrong visit, :func:`explain` then says where the true actor was and which
tracks were there:

- ``ok``: a track credited to the actor's visit stood on the actor;
- ``swapped``: the actor stood under a track credited to another visit;
- ``unbound``: the actor stood under a track credited to no visit;
- ``untracked``: no track stood on the actor at all.

Each is followed by what the actor's own visit's track was on at that moment
(another shopper, nobody, or no live track). A diagnostic of the tuning tool,
not part of any service.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Any

from checkout.brain import StoreBrain
from iot.payloads import TrackBatch
from sim.twin import Twin

__all__ = ["IdentityProbe", "explain"]

ON_M = 0.5  # a track within this of a shopper's true position is on that shopper

Snapshot = dict[str, str]  # track id -> session id it was credited to


class IdentityProbe:
    """Track batches as the brain read them, and its track credits at each shelf decision."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.batches: list[list[tuple[str, float, float]]] = []
        self.credit: dict[str, Snapshot] = {}  # shelf event id -> snapshot before deciding

    def attach(self, brain: StoreBrain) -> None:
        observe, decide = brain.tracks.observe, brain._decide_shelf

        def observing(batch: TrackBatch) -> list[str]:
            self.times.append(batch.event_time_s)
            self.batches.append([(p.track_id, p.x_m, p.y_m) for p in batch.tracks])
            return observe(batch)

        def deciding(msg: Any) -> None:
            self.credit[msg.payload.id] = _snapshot(brain)
            decide(msg)

        brain.tracks.observe = observing  # type: ignore[method-assign]
        brain._decide_shelf = deciding  # type: ignore[method-assign]

    def batch_at(self, t_s: float) -> list[tuple[str, float, float]]:
        if not self.times:
            return []
        k = bisect.bisect_left(self.times, t_s)
        k = min(
            range(max(k - 1, 0), min(k + 1, len(self.times))),
            key=lambda j: abs(self.times[j] - t_s),
        )
        return self.batches[k]


def _snapshot(brain: StoreBrain) -> Snapshot:
    owner = {s.track_id: s.session_id for s in brain.book.sessions.values() if s.track_id}
    out = dict(owner)
    for alias, target in brain.tracks._alias.items():
        if target in owner:
            out[alias] = owner[target]
    return out


def _true_points(twin: Twin, t_s: float) -> dict[str, tuple[float, float]]:
    import numpy as np

    out = {}
    for v in twin.visits:
        if v.track_start_s <= t_s < v.track_end_s:
            x, y = v.position(np.array([t_s]))
            out[v.token] = (float(x[0]), float(y[0]))
    return out


def _on_whom(xy: tuple[float, float], people: dict[str, tuple[float, float]]) -> str | None:
    best = min(people.items(), key=lambda kv: math.dist(kv[1], xy), default=None)
    return best[0] if best is not None and math.dist(best[1], xy) <= ON_M else None


def explain(
    probe: IdentityProbe,
    twin: Twin,
    act: dict[str, Any],
    event_id: str | None,
    token_of: dict[str, str],
) -> str:
    """One line: the identity situation of a true reach at its start."""
    t = act["started_s"] + 0.5
    people = _true_points(twin, t)
    actor = people.get(act["token"])
    if actor is None:
        return "actor not on the floor"
    credit = probe.credit.get(event_id or "", {})
    batch = probe.batch_at(t)
    under = [
        (math.dist((x, y), actor), tid) for tid, x, y in batch if math.dist((x, y), actor) <= ON_M
    ]
    mine = [(tid, x, y) for tid, x, y in batch if token_of.get(credit.get(tid, "")) == act["token"]]
    if not under:
        kind = "untracked"
    else:
        tid = min(under)[1]
        who = token_of.get(credit.get(tid, ""))
        kind = "ok" if who == act["token"] else ("unbound" if who is None else f"swapped({who})")
    if mine:
        tid, x, y = mine[0]
        on = _on_whom((x, y), people)
        own = "own track on actor" if on == act["token"] else f"own track on {on or 'nobody'}"
    else:
        own = "own track not live"
    return f"{kind}; {own}"


def tally(lines: list[str]) -> Counter[str]:
    return Counter(line.split(";")[0].split("(")[0] for line in lines)
