"""Keep each visit on its own shopper: move camera tracks between visits when looks say so.

A visit follows a time series of positions (``TrackHistory``), fed by the
camera tracks bound or stitched to it. When two shoppers brush past each
other the cameras can carry a track over to the other person, and a lost
shopper's new track can be stitched to the wrong visit; from then on that
visit's positions are somebody else's, its shelf acts go on the wrong receipt
and its exit closes the wrong visit.

Every clear look a track sends is weighed here against every open visit's
enrolled look (``checkout.looks``). A track whose recent looks fit one visit
clearly (``look_strong_odds``), fit no other visit nearly as well, and fit the
visit it now feeds clearly not (or that visit has no enrolled look) is moved:
from now on it feeds the visit it looks like (``TrackHistory.refile``). The
track that fed that visit until now is handed to the visit that lost the moved
one if it looks like it (the two were swapped), else it is let go as a track of
nobody's, for the sessions' continuation rules to place. Evidence, not
continuity, decides; a track is moved at most once in ``rebind_hold_s``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from checkout.looks import look_distance, mean_look, same_person_odds
from checkout.sessions import SessionBook
from checkout.settings import BrainSettings
from checkout.tracks import TrackHistory
from iot.payloads import TrackBatch

__all__ = ["IdentityKeeper"]

log = logging.getLogger(__name__)

LOOSE = "~"  # suffix of the series of a track let go (it stands for nobody yet)


class IdentityKeeper:
    """Moves camera tracks to the visit whose enrolled look they carry."""

    def __init__(self, book: SessionBook, tracks: TrackHistory, settings: BrainSettings) -> None:
        self.book = book
        self.tracks = tracks
        self.settings = settings
        self._moved_s: dict[str, float] = {}  # camera track -> when it was last moved

    def check(self, batch: TrackBatch) -> list[str]:
        """Weigh the looks that came with ``batch``; returns what was moved, for the log."""
        s = self.settings
        enrolled = {
            sid: v
            for sid, r in self.book.sessions.items()
            if r.state != "closed"
            and r.track_id is not None
            and (v := self.book.look_of(sid)) is not None
        }
        if not enrolled:
            return []
        owner = {
            r.track_id: sid
            for sid, r in self.book.sessions.items()
            if r.state != "closed" and r.track_id is not None
        }
        t = batch.event_time_s
        live = {p.track_id for p in batch.tracks}
        moves: list[str] = []
        for p in batch.tracks:
            if p.look is None or t - self._moved_s.get(p.track_id, -math.inf) < s.rebind_hold_s:
                continue
            look = self._recent_look(p.track_id, t)
            if look is None:
                continue
            series = self.tracks.canonical(p.track_id)
            target = self._clearly(look, owner.get(series), enrolled)
            if target is None:
                continue
            moves.append(
                self._move(p.track_id, series, target, loser=owner.get(series), live=live, t=t)
            )
        return moves

    def _recent_look(self, track_id: str, t: float) -> np.ndarray | None:
        s = self.settings
        series = self.tracks.canonical(track_id)
        mine = [
            v
            for _, piece, v in self.tracks.looks(series, t - s.rebind_window_s, t)
            if piece == track_id
        ]
        return mean_look(mine[-s.rebind_looks :]) if len(mine) >= s.rebind_looks else None

    def _clearly(
        self, look: np.ndarray, current: str | None, enrolled: dict[str, np.ndarray]
    ) -> str | None:
        """The visit this look is clearly of, if not ``current`` and ``current`` clearly not."""
        strong = self.settings.look_strong_odds
        odds = {sid: same_person_odds(look_distance(v, look)) for sid, v in enrolled.items()}
        ranked = sorted(odds.items(), key=lambda kv: (-kv[1], kv[0]))
        best, best_odds = ranked[0]
        if best == current or best_odds < strong:
            return None
        if len(ranked) > 1 and ranked[1][1] * strong > best_odds:
            return None  # two visits look alike: no evidence for either
        if current is not None and current in odds and odds[current] * strong > 1.0:
            return None  # the track still fits its own visit: no reason to move it
        return best

    def _move(
        self, track_id: str, series: str, visit: str, *, loser: str | None, live: set[str], t: float
    ) -> str:
        target = self.book.sessions[visit].track_id
        assert target is not None
        displaced = self.tracks.piece(target)
        self.tracks.refile(track_id, target)
        self._moved_s[track_id] = t
        note = f"track {track_id} moved from {loser or 'nobody'} to {visit} by its look"
        if displaced is not None and displaced != track_id and displaced in live:
            back = self._looks_like(displaced, loser, t)
            if back:
                self.tracks.refile(displaced, series)
            else:
                self.tracks.refile(displaced, displaced + LOOSE, create=True)
            self._moved_s[displaced] = t
            note += f"; track {displaced} " + (f"given to {loser}" if back else "let go")
        log.info("%s", note)
        return note

    def _looks_like(self, track_id: str, visit: str | None, t: float) -> bool:
        """Does the track fit ``visit`` (a visit with no enrolled look: yes, none refutes it)?"""
        if visit is None:
            return False
        enrolled = self.book.look_of(visit)
        if enrolled is None:
            return True
        look = self._recent_look(track_id, t)
        return look is not None and same_person_odds(look_distance(enrolled, look)) >= 1.0
