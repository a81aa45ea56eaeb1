"""Sessions: a scan-in bound to the track born at the entry gate, closed by an exit.

A ``GateEntry`` opens a session. It is bound to the unbound track first seen
within ``bind_window_s`` of the scan-in and within ``bind_radius_m`` of the
entry gate centre, the closest in time; if no such track exists yet, the
session waits and binds when one appears, or, if it walked in in another
shopper's shadow, when a new track appears beside that companion. A
``GateExit`` closes the session
with its token, or else the session whose track is nearest the exit gate line
at the exit time (within ``exit_radius_m``); failing that, one whose track
was lost (at the gate, then anywhere), and last a session that never had a
track (two shoppers who walked in as one box). The fallbacks flag the visit
for review. This module decides; the brain persists and publishes.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from checkout.ids import derived_id
from checkout.ledger import SessionRecord
from checkout.looks import Enrolment
from checkout.settings import BrainSettings
from checkout.tracks import FirstSeen, TrackHistory, segment_distance_m
from iot.payloads import GateEntry, GateExit, TrackBatch
from iot.store import Store

__all__ = ["SessionBook", "session_id_for"]

log = logging.getLogger(__name__)


def session_id_for(token: str) -> str:
    """The session id a scan-in token opens (deterministic, so replays agree)."""
    return derived_id("s-", token)


class SessionBook:
    """The brain's live sessions: binding to tracks and matching exits."""

    def __init__(self, store: Store, tracks: TrackHistory, settings: BrainSettings) -> None:
        self.store = store
        self.tracks = tracks
        self.settings = settings
        self.sessions: dict[str, SessionRecord] = {}
        self.enrolments: dict[str, Enrolment] = {}  # session id -> its look, being learnt
        self._entry_centres = [g.centre_m for g in store.gates("entry")]
        self._exit_lines = [g.line_m for g in store.gates("exit")]

    # --- look-ups ---

    def get(self, session_id: str) -> SessionRecord | None:
        return self.sessions.get(session_id)

    def by_token(self, token: str) -> SessionRecord | None:
        return self.sessions.get(session_id_for(token))

    def bound_tracks(self) -> set[str]:
        return {s.track_id for s in self.sessions.values() if s.track_id is not None}

    def restore(self, record: SessionRecord) -> None:
        """Take back a session rebuilt from the ledger."""
        self.sessions[record.session_id] = record

    def in_store_during(self, t0_s: float, t1_s: float) -> list[SessionRecord]:
        """Bound sessions that were inside (entered before ``t1_s``, not exited before ``t0_s``)."""
        return [
            s
            for s in self.sessions.values()
            if s.track_id is not None
            and s.entered_s <= t1_s
            and (s.exited_s is None or s.exited_s >= t0_s)
        ]

    # --- opening and binding ---

    def open(self, entry: GateEntry) -> SessionRecord:
        """A new session for a scan-in (the caller checks the token is not already in use)."""
        record = SessionRecord(
            session_id=session_id_for(entry.token),
            token=entry.token,
            state="open",
            entered_s=entry.event_time_s,
            entry_event_id=entry.id,
        )
        self.sessions[record.session_id] = record
        return record

    def bind_session(self, record: SessionRecord) -> bool:
        """Bind an unbound session to the best unbound track born at the entry gate."""
        if record.track_id is not None or record.state == "closed":
            return False
        bound = self.bound_tracks()
        best: tuple[float, str] | None = None
        for track_id in self.tracks.track_ids():
            if track_id in bound or not self._born_at_entry(track_id):
                continue
            first = self.tracks.first_seen(track_id)
            assert first is not None
            dt = abs(first.time_s - record.entered_s)
            if dt <= self.settings.bind_window_s and (best is None or (dt, track_id) < best):
                best = (dt, track_id)
        if best is None:
            return False
        self._bind(record, best[1])
        return True

    def bind_track(self, track_id: str) -> SessionRecord | None:
        """A track just appeared: bind it to the waiting session scanned in closest in time."""
        if track_id in self.bound_tracks() or not self._born_at_entry(track_id):
            return None
        first = self.tracks.first_seen(track_id)
        assert first is not None
        waiting = [
            (abs(s.entered_s - first.time_s), s.session_id)
            for s in self.sessions.values()
            if s.state == "open" and abs(s.entered_s - first.time_s) <= self.settings.bind_window_s
        ]
        if not waiting:
            return None
        record = self.sessions[min(waiting)[1]]
        self._bind(record, track_id)
        return record

    def continue_track(self, track_id: str) -> SessionRecord | None:
        """A track appeared that no scan-in explains: does it continue a lost one?

        Candidates are open visits whose track was last seen before this one
        appeared (at most ``stitch_window_s`` before) and close enough for a
        walk in the gap. The nearest wins; its track id then stands for both
        (``TrackHistory.stitch``). When two visits could explain the new track
        equally well, the winner is flagged for review: positions may have
        swapped between two shoppers.
        """
        first = self.tracks.first_seen(track_id)
        if first is None or track_id in self.bound_tracks() or self._born_at_entry(track_id):
            return None  # born at the entry: a visitor about to scan in, not a lost one
        ranked: list[tuple[float, str]] = []
        for s in self.sessions.values():
            if s.state != "bound" or s.track_id is None:
                continue
            last = self.tracks.last_sample(s.track_id)
            if last is None:
                continue
            gap = first.time_s - last[0]
            if not 0.0 < gap <= self.settings.stitch_window_s:
                # still being tracked (a sample in this very batch: two live tracks
                # are two people), or lost too long ago
                continue
            reach = self.settings.stitch_radius_m + self.settings.stitch_speed_m_s * max(gap, 0.0)
            d = math.hypot(first.x_m - last[1], first.y_m - last[2])
            if d <= reach:
                ranked.append((d / max(reach, 1e-6), s.session_id))
        if not ranked:
            return None
        ranked.sort()
        record = self.sessions[ranked[0][1]]
        assert record.track_id is not None
        if len(ranked) > 1 and ranked[1][0] - ranked[0][0] < 0.25:
            other = self.sessions[ranked[1][1]].token
            record.review_reasons.append(
                f"track {track_id} continued this visit but could as well be visit {other}'s"
            )
        self.tracks.stitch(track_id, record.track_id)
        log.info("track %s continues %s (session %s)", track_id, record.track_id, record.session_id)
        return record

    def bind_late(self, track_id: str) -> SessionRecord | None:
        """A new track nobody explains, beside the companion of a visit still waiting?

        Two shoppers who walk in shoulder to shoulder are one box at the entry:
        one scan-in gets the track, the other waits. When they part, the second
        is a new track away from the entry that continues nobody
        (``continue_track`` found no lost visit), first seen beside the track of
        the shopper who scanned in with it. It binds to that waiting visit
        (within ``late_bind_s`` of its scan-in), flagged for review. A new track
        anywhere else is more often a lost shopper come back than a companion.
        """
        s = self.settings
        first = self.tracks.first_seen(track_id)
        if first is None or s.late_bind_s <= 0 or track_id in self.bound_tracks():
            return None
        best: tuple[float, str] | None = None
        for waiting in self.sessions.values():
            if (
                waiting.state != "open"
                or not 0 <= first.time_s - waiting.entered_s <= s.late_bind_s
            ):
                continue
            d = self._companion_distance(waiting, first)
            if d is not None and d <= s.stitch_radius_m and (best is None or d < best[0]):
                best = (d, waiting.session_id)
        if best is None:
            return None
        record = self.sessions[best[1]]
        record.review_reasons.append(
            f"no track at the entry; bound later to track {track_id}, which appeared "
            f"{best[0]:.1f} m from a shopper who scanned in with this one"
        )
        self._bind(record, track_id)
        return record

    def _companion_distance(self, waiting: SessionRecord, first: FirstSeen) -> float | None:
        """How far from ``first`` the nearest track was of a visit scanned in with ``waiting``."""
        best: float | None = None
        for c in self.sessions.values():
            if c.track_id is None or c.session_id == waiting.session_id:
                continue
            if abs(c.entered_s - waiting.entered_s) > self.settings.bind_window_s:
                continue
            where = self.tracks.position_at(c.track_id, first.time_s, self.settings.position_gap_s)
            if where is not None:
                d = math.hypot(first.x_m - where[0], first.y_m - where[1])
                best = d if best is None else min(best, d)
        return best

    def _bind(self, record: SessionRecord, track_id: str) -> None:
        record.track_id = track_id
        record.state = "bound"
        self.enrolments[record.session_id] = Enrolment(track_id, record.entered_s)
        log.info("session %s bound to track %s", record.session_id, track_id)

    # --- looks ---

    def learn_looks(self, batch: TrackBatch) -> None:
        """Enrol visits' looks from the tracks bound to them at the entry (checkout.looks)."""
        s = self.settings
        learning = {
            e.track_id: e
            for sid, e in self.enrolments.items()
            if len(e.looks) < s.enrol_looks and sid in self.sessions
        }
        for p in batch.tracks:
            e = learning.get(p.track_id)
            if e is not None and p.look is not None:
                look = np.asarray(p.look, dtype=np.float32)
                norm = float(np.linalg.norm(look))
                if math.isfinite(norm) and norm > 1e-6:
                    e.add(
                        batch.event_time_s,
                        look / norm,
                        most=s.enrol_looks,
                        window_s=s.enrol_window_s,
                    )

    def look_of(self, session_id: str) -> np.ndarray | None:
        """A visit's enrolled look, once it has enough clear looks."""
        e = self.enrolments.get(session_id)
        return None if e is None else e.vector(self.settings.enrol_min_looks)

    def _born_at_entry(self, track_id: str) -> bool:
        first = self.tracks.first_seen(track_id)
        if first is None:
            return False
        return any(
            math.hypot(first.x_m - cx, first.y_m - cy) <= self.settings.bind_radius_m
            for cx, cy in self._entry_centres
        )

    # --- exits ---

    def match_exit(self, exit_: GateExit) -> tuple[SessionRecord | None, str]:
        """The open session this exit closes, and why (or why none)."""
        if exit_.token is not None:
            record = self.by_token(exit_.token)
            if record is not None and record.state != "closed":
                return record, f"exit scanned token {exit_.token}"
            if record is not None:
                return (
                    None,
                    f"token {exit_.token} belongs to session {record.session_id}, already closed",
                )
            # An unknown token at the exit: fall back to position.
        best: tuple[float, str] | None = None
        for s in self.sessions.values():
            if s.state != "bound" or s.track_id is None:
                continue
            where = self.tracks.position_at(
                s.track_id, exit_.event_time_s, self.settings.position_gap_s
            )
            if where is None:
                continue
            d = min(segment_distance_m(where, line) for line in self._exit_lines)
            if d <= self.settings.exit_radius_m and (best is None or (d, s.session_id) < best):
                best = (d, s.session_id)
        if best is None:
            return self._exit_by_lost_track(exit_)
        return self.sessions[best[1]], f"track nearest the exit gate ({best[0]:.2f} m)"

    def _exit_by_lost_track(self, exit_: GateExit) -> tuple[SessionRecord | None, str]:
        """No live track at the exit: the visit whose track was lost there most recently.

        Cameras can lose a shopper in the last metres (the gate, a blind spot);
        a track last seen near the exit line shortly before is the best evidence
        left. Such a close is flagged for review.
        """
        best: tuple[float, float, str] | None = None
        for s in self.sessions.values():
            if s.state != "bound" or s.track_id is None:
                continue
            last = self.tracks.last_sample(s.track_id)
            window = self.settings.stitch_window_s
            if last is None or not 0.0 <= exit_.event_time_s - last[0] <= window:
                continue
            d = min(segment_distance_m((last[1], last[2]), line) for line in self._exit_lines)
            if d <= self.settings.exit_radius_m:
                key = (exit_.event_time_s - last[0], d, s.session_id)
                best = key if best is None or key < best else best
        if best is None:
            return self._exit_by_orphan(exit_)
        record = self.sessions[best[2]]
        record.review_reasons.append(
            f"closed by exit {exit_.id} from a track lost {best[0]:.1f} s before it"
        )
        return record, f"track lost {best[0]:.1f} s earlier {best[1]:.2f} m from the exit gate"

    def _exit_by_orphan(self, exit_: GateExit) -> tuple[SessionRecord | None, str]:
        """Last resort: someone left, and a visit had lost its track somewhere in the store.

        No track, live or lost, explains the exit; the person who walked out is
        then most likely a visit whose track broke earlier and was not picked
        up again (two shoppers merged into one box, a blind corner). Leaving
        that visit open would leave its shopper without a receipt, so the visit
        whose lost track ended nearest, in space and time, to where the track
        walking out was first seen is closed (the most recently lost one when
        no track is at the gate), and flagged for review.
        """
        walker = self._unbound_track_at_exit(exit_)
        ranked: list[tuple[float, str]] = []
        for s in self.sessions.values():
            if s.state != "bound" or s.track_id is None:
                continue
            last = self.tracks.last_sample(s.track_id)
            if last is not None and exit_.event_time_s - last[0] <= self.settings.position_gap_s:
                continue  # still tracked elsewhere in the store: not this exit
            if last is None:
                ranked.append((math.inf, s.session_id))
            elif walker is None:
                ranked.append((exit_.event_time_s - last[0], s.session_id))
            else:
                gap = max(walker.time_s - last[0], 0.0)
                d = math.hypot(walker.x_m - last[1], walker.y_m - last[2])
                ranked.append((d + self.settings.stitch_speed_m_s * gap, s.session_id))
        if not ranked:
            return self._exit_by_waiting(exit_)
        record = self.sessions[min(ranked)[1]]
        record.review_reasons.append(
            f"closed by exit {exit_.id}, which no track explained: its track had been lost"
        )
        return record, "no track at the exit; the visit whose track was lost best explains it"

    def _exit_by_waiting(self, exit_: GateExit) -> tuple[SessionRecord | None, str]:
        """No tracked visit can have walked out: a visit that never had a track did.

        The longest-waiting one (scanned in first) is closed and flagged; left
        open it would never get a receipt.
        """
        waiting = [
            (s.entered_s, s.session_id)
            for s in self.sessions.values()
            if s.state == "open" and s.entered_s <= exit_.event_time_s
        ]
        if not waiting:
            return (
                None,
                f"no bound track within {self.settings.exit_radius_m:.1f} m of the exit gate",
            )
        record = self.sessions[min(waiting)[1]]
        record.review_reasons.append(
            f"closed by exit {exit_.id}: no track was ever bound to this visit"
        )
        return record, "no tracked visit explains the exit; this visit never had a track"

    def track_at_exit(self, exit_: GateExit, within_m: float | None = None) -> str | None:
        """The track nearest the exit gate line at the exit time (within ``within_m``,
        default exit_radius_m)."""
        limit = self.settings.exit_radius_m if within_m is None else within_m
        best: tuple[float, str] | None = None
        for track_id in self.tracks.track_ids():
            where = self.tracks.position_at(
                track_id, exit_.event_time_s, self.settings.position_gap_s
            )
            if where is None:
                continue
            d = min(segment_distance_m(where, line) for line in self._exit_lines)
            if d <= limit and (best is None or (d, track_id) < best):
                best = (d, track_id)
        return None if best is None else best[1]

    def _unbound_track_at_exit(self, exit_: GateExit) -> FirstSeen | None:
        """Where the unbound track at the exit gate at exit time was first seen, if one is."""
        bound = self.bound_tracks()
        best: tuple[float, FirstSeen] | None = None
        for track_id in self.tracks.track_ids():
            if track_id in bound:
                continue
            where = self.tracks.position_at(
                track_id, exit_.event_time_s, self.settings.position_gap_s
            )
            first = self.tracks.first_seen(track_id)
            if where is None or first is None:
                continue
            d = min(segment_distance_m(where, line) for line in self._exit_lines)
            if d <= self.settings.exit_radius_m and (best is None or d < best[0]):
                best = (d, first)
        return None if best is None else best[1]

    def close(self, record: SessionRecord, exit_: GateExit) -> None:
        record.state = "closed"
        record.exited_s = exit_.event_time_s
        record.exit_event_id = exit_.id

    def forget(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        self.enrolments.pop(session_id, None)
