"""Looks as a witness: who the person at the hand, or on the exit line, looks like.

The brain decides who acted by positions (the track nearest the hand) and who
left by the track on the exit line. Each camera track also sends the
person's look while the person stands clear of others (``TrackPoint.look``),
and each visit has an enrolled look from its first seconds
(``SessionBook.look_of``). This module weighs them (``checkout.looks``):

- :meth:`Witness.act`: does the track at the hand look like the visit it
  stands for? A clear look of another visit (or of none enrolled, where the
  track's own visit clearly does not fit) takes the act;
- :meth:`Witness.exit`: an exit no position explains (the track on the line is
  bound to nobody) closes the visit the crossing person clearly looks like.
"""

from __future__ import annotations

import numpy as np

from checkout.fusion import Attribution
from checkout.ledger import SessionRecord
from checkout.looks import identify, mean_look, whereabouts
from checkout.sessions import SessionBook
from checkout.settings import BrainSettings
from checkout.tracks import TrackHistory
from iot.payloads import GateExit

__all__ = ["Witness"]

ON_THE_LINE_M = 0.5  # a track this close to the exit line at the exit is the one crossing

# (distance to the hand, track id, the visit it stands for or None)
Actor = tuple[float, str, str | None]


class Witness:
    """Weighs the looks of tracks against the visits' enrolled looks."""

    def __init__(self, book: SessionBook, tracks: TrackHistory, settings: BrainSettings) -> None:
        self.book = book
        self.tracks = tracks
        self.settings = settings

    def act(self, who: Attribution, actor: Actor, window: tuple[float, float]) -> Attribution:
        """``who`` (by position), or the visit the track at the hand clearly looks like."""
        s = self.settings
        if not s.look_attribution:
            return who
        distance_m, track_id, credited = actor
        look = self.look_at(track_id, *window)
        if look is None:
            return who
        visits = self._whereabouts(track_id, window)
        found = identify(look, credited, visits, keep_prior=s.look_keep_prior)
        if not found.names(credited, s.look_min_belief, s.look_strong_odds):
            return who
        named = found.session_id
        return Attribution(
            named,
            found.belief,
            distance_m,
            who.distance_m,
            f"track {track_id} at the hand ({distance_m:.2f} m) {found.reason}; "
            f"by position: {who.reason}",
            who.session_id if who.session_id != named else None,
        )

    def exit(self, exit_: GateExit, why: str) -> tuple[SessionRecord | None, str]:
        """An exit that positions could not explain: does the person crossing look like a visit?

        Only then: near the gate a track's looks are seconds old (the floor
        markings spoil nearer ones), and in a queue at the exit a track can
        change people in those seconds, so a live bound track on the line
        outranks its looks. A visit closed by look is flagged for review.
        """
        s = self.settings
        if not s.look_attribution:
            return None, why
        t = exit_.event_time_s
        walker = self.book.track_at_exit(exit_, within_m=ON_THE_LINE_M)
        if walker is None:
            return None, why
        window = (t - s.look_window_s, t)
        look = self.look_at(walker, *window, at=t)
        if look is None:
            return None, why
        visits = {
            sid: v
            for sid, v in self._whereabouts(walker, window).items()
            if self.book.sessions[sid].state != "closed"
        }
        found = identify(look, None, visits, keep_prior=s.look_keep_prior)
        # closing a visit ends its receipt: only a look that fits its visit clearly may
        if found.odds is None or not found.names(None, s.look_min_belief, s.look_strong_odds):
            return None, why
        assert found.session_id is not None
        chosen = self.book.sessions[found.session_id]
        chosen.review_reasons.append(
            f"closed by exit {exit_.id}: the track at the gate {found.reason}"
        )
        return chosen, f"track {walker} at the gate {found.reason}; by position: {why}"

    def look_at(
        self, track_id: str, t0: float, t1: float, at: float | None = None
    ) -> np.ndarray | None:
        """The look of ``track_id`` around the window (its clear looks nearest ``at``, by
        default the window's middle; one camera track's only), if it sent any."""
        w = self.settings.look_window_s
        looks = self.tracks.looks(track_id, t0 - w, t1 + w)
        if not looks:
            return None
        ref = (t0 + t1) / 2 if at is None else at
        looks.sort(key=lambda x: (max(t0 - x[0], 0.0, x[0] - t1), abs(x[0] - ref)))
        piece = looks[0][1]  # a stitched track's pieces may be different people
        same = [v for _, p, v in looks if p == piece][: self.settings.look_samples]
        return mean_look(same)

    def _whereabouts(
        self, actor_track: str, window: tuple[float, float]
    ) -> dict[str, tuple[np.ndarray | None, float]]:
        """Every visit in the store then: its learnt look and where its own track was."""
        records = self.book.in_store_during(*window)
        enrolled = {r.session_id: self.book.look_of(r.session_id) for r in records}
        out: dict[str, tuple[np.ndarray | None, float]] = {}
        for r in records:
            assert r.track_id is not None
            if r.track_id == actor_track:
                out[r.session_id] = (enrolled[r.session_id], 1.0)
                continue
            live = self.tracks.position_at(r.track_id, window[1], self.settings.position_gap_s)
            others = [v for sid, v in enrolled.items() if sid != r.session_id and v is not None]
            weight = whereabouts(
                self.look_at(r.track_id, *window),
                enrolled[r.session_id],
                others,
                live=live is not None,
            )
            out[r.session_id] = (enrolled[r.session_id], weight)
        return out
