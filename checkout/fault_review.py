"""Which visits a faulty device may have shortchanged, so the brain flags them for review.

A load cell that is stuck, drifting or pinned, or a shelf controller that
went silent, can lose a pick (nobody is charged) or invent one (somebody is
charged for nothing); the shelf adapter then publishes no events for that
plate, and fusion cannot tell a quiet shelf from a blind one. A shopper
tracker gone silent leaves every act in the store without positions. So the
brain hears the ``device_health`` alerts (``checkout.device_alerts``) and
``FaultReview`` finds the visits the fault touched:

- a plate's load cell: visits whose track stayed within reach of that plate
  for a second or more (walking by is not acting);
- a shelf controller: likewise, near any plate it reads (its gondola);
- a shopper tracker: every visit in the store;

each while the fault lasted, from the alert's ``since_s`` (when the fault
began, which may be seconds before the alert) to its clear. Each visit gets
one review reason per fault, naming the device. Shelf cameras are not here:
the brain decides from weight alone while one is down and flags a visit only
when that leaves its attribution ambiguous. Gates, readers and ceiling
cameras change no cart line, so their alerts are for store operations only.

Windows of track history are checked as event time passes (``review``) and
once more for a visit about to get its receipt (``review_visit``). A visit
receipted before the alert arrived cannot be flagged on its receipt: such
reasons come back marked late, for the ledger and the counters.

>>> from pathlib import Path
>>> from checkout.tracks import TrackHistory
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> review = FaultReview(store, TrackHistory(), reach_m=1.05)
>>> review.alert(Alert(id="r.a1", event_time_s=1.8e9 + 5, device_id="devices", alert_id="a1",
...     kind="device_health", state="raised", subject_id="shelf-g01", fault="stale",
...     since_s=1.8e9))
>>> [(e.subject_id, e.plates[:2]) for e in review.episodes()]
[('shelf-g01', ['g01-s1-p1', 'g01-s1-p2'])]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from checkout.ledger import SessionRecord
from checkout.tracks import TrackHistory
from iot.payloads import Alert
from iot.store import Store

__all__ = ["FaultEpisode", "FaultReview"]

_CHECK_EVERY_S = 0.5  # event time between two looks at the track history
_MAX_EPISODES = 1000  # faults remembered at once, at most (oldest dropped)
_MIN_DWELL_S = 1.0  # time within reach that makes a visit "at" the device, not walking by
_MAX_STEP_S = 0.5  # a longer gap between two track samples counts as this much

Segment = tuple[float, float, float]  # (x0, x1, y): a plate front on the floor


@dataclass
class FaultEpisode:
    """One device fault, as the brain keeps it to flag the visits it touched."""

    alert_id: str
    subject_id: str
    fault: str
    plates: list[str]  # plates whose events the fault affects; empty: the whole store
    since_s: float
    until_s: float | None = None  # None while the fault lasts
    checked_s: float = -math.inf  # track history reviewed up to here
    flagged: set[str] = field(default_factory=set)
    dwell_s: dict[str, float] = field(default_factory=dict)  # time within reach, by visit
    fronts: list[Segment] = field(default_factory=list)
    what: str = ""


class FaultReview:
    """Device faults and the visits they touched; see the module docstring.

    ``reach_m``: how near a plate front a shopper must come to act on it
    (the store's reach plus the attribution margin).
    """

    def __init__(self, store: Store, tracks: TrackHistory, *, reach_m: float) -> None:
        self.store = store
        self.tracks = tracks
        self.reach_m = reach_m
        self._episodes: dict[str, FaultEpisode] = {}
        self._trackers = set(store.devices.positioning)
        self._last_review_s = -math.inf

    def episodes(self) -> list[FaultEpisode]:
        return list(self._episodes.values())

    def alert(self, alert: Alert) -> None:
        """Take in a ``device_health`` alert (others are ignored)."""
        if alert.kind != "device_health" or alert.subject_id is None:
            return
        known = self._episodes.get(alert.alert_id)
        if alert.state == "cleared":
            if known is not None:
                known.until_s = alert.event_time_s
            return
        if known is not None:
            return
        plates = self._plates_of(alert.subject_id, alert.plate_id)
        if plates is None:
            return  # a device that changes no cart line
        since = alert.since_s if alert.since_s is not None else alert.event_time_s
        ep = FaultEpisode(
            alert_id=alert.alert_id,
            subject_id=alert.subject_id,
            fault=alert.fault or "fault",
            plates=plates,
            since_s=since,
            checked_s=since,
            fronts=self._fronts(plates),
            what=self._describe(alert.subject_id, alert.plate_id, alert.gondola_id),
        )
        self._episodes[alert.alert_id] = ep
        while len(self._episodes) > _MAX_EPISODES:
            del self._episodes[next(iter(self._episodes))]

    def review(
        self, sessions: Iterable[SessionRecord], upto_s: float
    ) -> list[tuple[SessionRecord, str]]:
        """Visits the faults touched up to ``upto_s`` not flagged before, with the reason."""
        if not self._episodes or upto_s - self._last_review_s < _CHECK_EVERY_S:
            return []
        self._last_review_s = upto_s
        visits = list(sessions)
        out = []
        for ep in list(self._episodes.values()):
            t1 = upto_s if ep.until_s is None else min(upto_s, ep.until_s)
            if t1 > ep.checked_s:
                out += [(v, self._flag(ep, v)) for v in visits if self._touched(ep, v, t1)]
                ep.checked_s = t1
            if ep.until_s is not None and ep.checked_s >= ep.until_s:
                del self._episodes[ep.alert_id]
        return out

    def review_visit(self, visit: SessionRecord, upto_s: float) -> list[str]:
        """Reasons for one visit about to be receipted, up to ``upto_s`` (its exit)."""
        out = []
        for ep in self._episodes.values():
            t1 = upto_s if ep.until_s is None else min(upto_s, ep.until_s)
            if t1 > ep.checked_s and self._touched(ep, visit, t1, keep=False):
                out.append(self._flag(ep, visit))
        return out

    # --- plumbing ---

    def _touched(
        self, ep: FaultEpisode, visit: SessionRecord, t1: float, *, keep: bool = True
    ) -> bool:
        """Was the visit where the fault bites, between what was checked and ``t1``?

        ``keep``: add the time within reach to the visit's tally (the window will
        not be looked at again)."""
        t0 = ep.checked_s
        if visit.session_id in ep.flagged or visit.entered_s > t1:
            return False
        if visit.exited_s is not None and visit.exited_s < t0:
            return False
        if not ep.plates:
            return True  # without positions, every visit in the store is in doubt
        if visit.track_id is None:
            return False
        limit = self.reach_m
        dwell = ep.dwell_s.get(visit.session_id, 0.0)
        prev_t: float | None = None
        for t, x, y in self.tracks.window(visit.track_id, t0, t1):
            step = _MAX_STEP_S if prev_t is None else min(t - prev_t, _MAX_STEP_S)
            prev_t = t
            if any(
                math.hypot(max(x0 - x, 0.0, x - x1), y - fy) <= limit for x0, x1, fy in ep.fronts
            ):
                dwell += step
        if keep:
            ep.dwell_s[visit.session_id] = dwell
        return dwell >= _MIN_DWELL_S

    def _flag(self, ep: FaultEpisode, visit: SessionRecord) -> str:
        ep.flagged.add(visit.session_id)
        ep.dwell_s.pop(visit.session_id, None)
        where = "in the store" if not ep.plates else "within reach of it"
        return (
            f"{ep.what} was faulty ({ep.fault}) from {_clock(ep.since_s)} while this visit was "
            f"{where}: cart lines there may be missing or wrong (device alert {ep.alert_id})"
        )

    def _plates_of(self, subject_id: str, plate_id: str | None) -> list[str] | None:
        if subject_id in self._trackers:
            return []
        plates = self.store.controller_plates.get(subject_id)
        if plates is None:
            return None
        return [plate_id] if plate_id in plates else list(plates)

    def _fronts(self, plates: list[str]) -> list[Segment]:
        """The plates' front edges, merged along each gondola face."""
        by_face: dict[float, list[float]] = {}
        for pid in plates:
            (x0, y), (x1, _) = self.store.plate_front_m(pid)
            span = by_face.setdefault(y, [x0, x1])
            span[0], span[1] = min(span[0], x0), max(span[1], x1)
        return [(x0, x1, y) for y, (x0, x1) in sorted(by_face.items())]

    def _describe(self, subject_id: str, plate_id: str | None, gondola_id: str | None) -> str:
        if subject_id in self._trackers:
            return f"shopper tracker {subject_id}"
        gondola = gondola_id or next(
            (c.gondola for c in self.store.devices.shelf_controllers if c.id == subject_id), None
        )
        at = f" on gondola {gondola}" if gondola else ""
        if plate_id is not None:
            return f"load cell of plate {plate_id} (shelf controller {subject_id}{at})"
        return f"shelf controller {subject_id}{at}"


def _clock(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).strftime("%H:%M:%S UTC")
