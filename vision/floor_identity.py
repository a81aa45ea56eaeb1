"""Whom each store track stands for: looks, swap repair, and the revival of lost tracks.

Positions alone keep a store track on its shopper until two shoppers meet:
one box for both, a few frames, and each track may leave on the other
person, or one track dies in the crowd and its neighbour slides onto the
survivor. :class:`IdentityKeeper` watches the looks of the people under the
tracks and gives ids back. It owns the tracks lost lately (retired away from
an exit, so perhaps only hidden); :class:`vision.floor.FloorFusion` owns the
live ones and the camera-local id bindings, and hands both in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from vision.appearance import look_distance
from vision.floor_settings import FloorSettings
from vision.floor_track import StoreTrack, segment_distance, unit

log = logging.getLogger(__name__)

Owners = dict[tuple[str, int], int]  # camera-local key -> store track number
GateLine = tuple[tuple[float, float], tuple[float, float]]


class IdentityKeeper:
    """Looks per store track, swap repair, revival and reclaim of lost identities."""

    def __init__(self, settings: FloorSettings, gate_lines: Sequence[GateLine]) -> None:
        self.settings = settings
        self.lost: list[StoreTrack] = []
        self._gates = list(gate_lines)

    # --- looks ---

    def learn_look(self, t: StoreTrack, looks: list[np.ndarray], tracks: list[StoreTrack]) -> None:
        """Fold this step's looks of ``t``'s person into its running, anchor and recent looks."""
        t.clear_look = None
        if not looks:
            return
        s = self.settings
        crowded = any(
            u is not t and float(np.hypot(*(u.pos - t.pos))) < s.look_clear_m for u in tracks
        )
        if crowded:
            t.recent, t.recent_n = None, 0  # a box of two teaches nothing about one
            if t.look is not None:
                return
        new = np.mean(looks, axis=0)
        mixed = new if t.look is None else s.look_memory * t.look + (1 - s.look_memory) * new
        t.look = unit(mixed)
        if crowded:
            return
        near_gate = self.near_gate(t)
        if not near_gate:
            t.clear_look = unit(new)
        if t.anchor_n < s.anchor_looks and not near_gate:
            t.anchor = unit(new if t.anchor is None else t.anchor * t.anchor_n + new)
            t.anchor_n += 1
        # a short memory: what the person looks like now, not since the track began
        kept = min(t.recent_n, 2 * s.recent_looks)
        t.recent = unit(new if t.recent is None else t.recent * kept + new)
        t.recent_n += 1

    def near_gate(self, t: StoreTrack) -> bool:
        """Gate markings on the floor colour the boxes of people on them: no anchor there."""
        m = self.settings.anchor_gate_m
        return any(segment_distance(t.pos, a, b) <= m for a, b in self._gates)

    # --- swap repair ---

    def repair_swaps(self, tracks: list[StoreTrack], owners: Owners, time_s: float) -> None:
        """Give back the ids of two tracks that took each other's person when they met.

        Two shoppers who pass shoulder to shoulder (one box for both, a few
        frames) can leave each track on the other person; positions alone
        cannot tell, and the running look soon learns the new person. Each
        track therefore keeps an anchor look (its first clear looks away from
        the gates, then frozen) and a recent one (clear looks since it was
        last crowded). When two tracks that met lately are both seen and
        clear again, and their anchors fit each other's recent looks better,
        by ``swap_margin``, than their own, the ids (and anchors) change
        places; each track stays on the person it is following.
        """
        s = self.settings
        live = [t for t in tracks if t.confirmed]
        for i, a in enumerate(live):
            for b in live[i + 1 :]:
                if float(np.hypot(*(a.pos - b.pos))) <= s.encounter_m:
                    a.met_s[b.number] = b.met_s[a.number] = time_s
                elif time_s - a.met_s.get(b.number, -math.inf) <= s.encounter_s and self._swapped(
                    a, b, time_s
                ):
                    self._swap(a, b, tracks, owners)

    def _swapped(self, a: StoreTrack, b: StoreTrack, time_s: float) -> bool:
        s = self.settings
        for t in (a, b):
            if t.anchor_n < s.anchor_looks or t.recent_n < s.recent_looks:
                return False
            if t.last_seen_s < time_s:
                return False
        keep = look_distance(a.anchor, a.recent) + look_distance(b.anchor, b.recent)
        swap = look_distance(a.anchor, b.recent) + look_distance(b.anchor, a.recent)
        return swap + s.swap_margin < keep

    @staticmethod
    def _swap(a: StoreTrack, b: StoreTrack, tracks: list[StoreTrack], owners: Owners) -> None:
        log.info("store tracks %s and %s swapped people: ids given back", a.number, b.number)
        na, nb = a.number, b.number
        for name in ("number", "anchor", "anchor_n", "born_s", "born_at_entry", "met_s"):
            va, vb = getattr(a, name), getattr(b, name)
            setattr(a, name, vb)
            setattr(b, name, va)
        for key, owner in owners.items():  # camera ids stay with the person they follow
            if owner in (na, nb):
                owners[key] = nb if owner == na else na
        for t in tracks:
            t.near_since_s.pop(na, None)
            t.near_since_s.pop(nb, None)

    # --- lost tracks ---

    def remember(self, t: StoreTrack) -> None:
        """``t`` was retired away from an exit: its person may only be hidden."""
        if t.look is not None:
            self.lost.append(t)

    def forget_old(self, time_s: float) -> None:
        self.lost = [t for t in self.lost if time_s - t.last_seen_s <= self.settings.revive_s]

    def revive(self, t: StoreTrack, owners: Owners) -> None:
        """A new track away from the entry continues a lost one that looks like it: same id.

        The cameras lose a shopper for longer than ``max_coast_s`` when two
        bodies merge into one box or in a blind corner; the person who
        reappears is then a new track. If a track lost lately, within walking
        reach, has a look within ``revive_look`` of the new one, the new track
        takes its id (and identity look), so the brain sees one shopper.
        """
        s = self.settings
        if s.revive_s <= 0 or t.born_at_entry or t.look is None:
            return
        lost = self._lost_match(t, t.look, t.born_s, anchored_only=False)
        if lost is not None:
            self._adopt(t, lost, owners)

    def reclaim(self, tracks: list[StoreTrack], owners: Owners, time_s: float) -> list[int]:
        """Tracks on the wrong person take back a lost identity that fits; returns ids dropped.

        When shopper A's track dies in a crowd, B's track can slide onto A
        while B gets a new track: not a swap of two live tracks. An anchored
        track whose recent look no longer fits its anchor but fits a lost
        track's (within ``revive_look``, better by ``swap_margin``) takes that
        identity; the identity it held is then lost in turn, for a young track
        (one still learning its anchor) that looks like it to take back. With no
        such lost track, a young live track whose person fits the anchor takes
        the identity instead (:meth:`_hand_over`): the shopper the track left got
        a new track. Merged-away tracks count as lost (:meth:`remember`).
        """
        s = self.settings
        if s.revive_s <= 0:
            return []
        ended: list[int] = []
        for t in [t for t in tracks if t.confirmed and t.last_seen_s == time_s]:
            if t.recent is None or t.recent_n < s.recent_looks:
                continue
            if t.anchor_n < s.anchor_looks:  # young: may take back a lost identity
                lost = self._lost_match(t, t.recent, time_s)
                if lost is not None:
                    ended.append(t.number)
                    self._adopt(t, lost, owners)
                continue
            own = look_distance(t.anchor, t.recent)
            if own <= s.revive_look:
                continue
            lost = self._lost_match(t, t.recent, time_s)
            if lost is None or own - look_distance(lost.anchor, t.recent) < s.swap_margin:
                young = self._young_match(t, tracks, own, time_s)
                if young is not None:
                    self._hand_over(t, young, tracks, owners)
                continue
            dropped = StoreTrack(
                t.number, t.x.copy(), t.P.copy(), t.born_s, time_s, t.born_at_entry
            )
            dropped.anchor, dropped.anchor_n, dropped.look = t.anchor, t.anchor_n, t.anchor
            ended.append(t.number)
            self._adopt(t, lost, owners)
            self.lost.append(dropped)
        return ended

    def _young_match(
        self, t: StoreTrack, tracks: list[StoreTrack], own: float, time_s: float
    ) -> StoreTrack | None:
        """A young live track on ``t``'s person: its recent look fits ``t``'s anchor, by
        ``swap_margin`` better than ``t``'s own recent look does."""
        s = self.settings
        best: tuple[float, StoreTrack] | None = None
        for y in tracks:
            if y is t or not y.confirmed or y.last_seen_s < time_s or y.anchor_n >= s.anchor_looks:
                continue
            if y.recent is None or y.recent_n < s.recent_looks:
                continue
            d = look_distance(t.anchor, y.recent)
            if d <= s.revive_look and own - d >= s.swap_margin and (best is None or d < best[0]):
                best = (d, y)
        return None if best is None else best[1]

    def _hand_over(
        self, t: StoreTrack, young: StoreTrack, tracks: list[StoreTrack], owners: Owners
    ) -> None:
        """``t`` left its person for another, who got the young track: ids change places.

        The young track takes ``t``'s identity; ``t`` takes the young id and learns
        its person's anchor afresh (the young anchor was learnt on someone else).
        """
        self._swap(t, young, tracks, owners)
        t.anchor, t.anchor_n = None, 0

    def _lost_match(
        self, t: StoreTrack, look: np.ndarray, since_s: float, *, anchored_only: bool = True
    ) -> StoreTrack | None:
        """The lost track nearest in look to ``look`` (within ``revive_look``) that could
        have walked to ``t`` since ``since_s``; ``anchored_only``: only finished anchors."""
        s = self.settings
        best: tuple[float, StoreTrack] | None = None
        for lost in self.lost:
            if anchored_only and (lost.anchor is None or lost.anchor_n < s.anchor_looks):
                continue
            reach = s.gate_m + s.revive_speed_m_s * max(since_s - lost.last_seen_s, 0.0)
            if float(np.hypot(*(t.pos - lost.pos))) > reach:
                continue
            d = look_distance(lost.anchor if lost.anchor is not None else lost.look, look)
            if d <= s.revive_look and (best is None or d < best[0]):
                best = (d, lost)
        return None if best is None else best[1]

    def _adopt(self, t: StoreTrack, lost: StoreTrack, owners: Owners) -> None:
        """``t`` continues ``lost``: its id, birth and identity look."""
        self.lost.remove(lost)
        log.info("store track %s continues lost track %s", t.number, lost.number)
        for key, owner in owners.items():
            if owner == t.number:
                owners[key] = lost.number
        t.number, t.born_s, t.born_at_entry = lost.number, lost.born_s, lost.born_at_entry
        t.anchor, t.anchor_n, t.met_s = lost.anchor, lost.anchor_n, lost.met_s
