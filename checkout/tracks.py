"""Track history: where each anonymous person track was, over a bounded stretch of event time.

Positions arrive as ``TrackBatch`` snapshots (about 5 Hz). Per track we keep
a time series that is pruned by age, plus where and when the track was first
seen (which is what binds a track to a scan-in at the entry gate).

>>> h = TrackHistory(retention_s=60)
>>> h.add(100.0, "t1", 1.0, 1.0); h.add(100.2, "t1", 1.2, 1.0)
>>> h.mean_position("t1", 99.0, 101.0)
(1.1, 1.0)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from iot.payloads import TrackBatch, TrackPoint

__all__ = ["FirstSeen", "LookSample", "TrackHistory", "segment_distance_m"]

Sample = tuple[float, float, float]  # (event_time_s, x_m, y_m)

# (event_time_s, the camera track id that sent it, unit look): a stitched track's
# looks keep the id of the piece they came from, which may be another person
LookSample = tuple[float, str, np.ndarray]


@dataclass(frozen=True)
class FirstSeen:
    """When and where a track appeared."""

    time_s: float
    x_m: float
    y_m: float


@dataclass
class _Track:
    first: FirstSeen
    samples: deque[Sample] = field(default_factory=deque)
    ended_s: float | None = None
    looks: deque[LookSample] = field(default_factory=deque)
    piece: str | None = None  # the camera track that fed this series last


class TrackHistory:
    """Bounded per-track time series of floor positions.

    ``retention_s``: samples older than this behind the newest time seen are
    dropped by ``prune``; a track with no samples left is forgotten.
    ``max_samples``: a hard cap per track, so memory stays bounded even if
    ``prune`` is never called.
    """

    def __init__(
        self,
        retention_s: float = 120.0,
        max_samples: int = 5000,
        *,
        return_slack_m: float = 1.0,
        return_speed_m_s: float = 1.5,
    ) -> None:
        if retention_s <= 0:
            raise ValueError(f"retention_s must be > 0, got {retention_s!r}")
        if max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples!r}")
        self.retention_s = retention_s
        self.max_samples = max_samples
        # how far a series' own camera track may come back from where it was last
        # seen and still be its person (the brain passes its stitch radius and speed)
        self.return_slack_m = return_slack_m
        self.return_speed_m_s = return_speed_m_s
        self._tracks: dict[str, _Track] = {}
        # a camera track that continues a lost one is filed under the lost one's id
        self._alias: dict[str, str] = {}
        self._pinned: dict[str, str] = {}  # series -> the camera track last refiled into it
        self._own_last: dict[str, Sample] = {}  # series -> its own camera track's last sample
        self.latest_s = -math.inf

    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._tracks

    def observe(self, batch: TrackBatch) -> list[str]:
        """Add one snapshot; returns the ids of tracks seen for the first time."""
        new = [
            p.track_id
            for p in batch.tracks
            if p.track_id not in self._tracks and p.track_id not in self._alias
        ]
        for p in self._one_piece_each(batch):
            series = self.canonical(p.track_id)
            self.add(batch.event_time_s, series, p.x_m, p.y_m)
            self._tracks[series].piece = p.track_id
            if p.track_id == series:
                self._own_last[series] = (batch.event_time_s, p.x_m, p.y_m)
            if p.look is not None:
                self.add_look(batch.event_time_s, p.track_id, p.look)
        for track_id in batch.ended:
            track = self._tracks.get(self.canonical(track_id))
            if track is not None:
                track.ended_s = batch.event_time_s
        return new

    def _one_piece_each(self, batch: TrackBatch) -> list[TrackPoint]:
        """At most one point per time series: two live pieces of one series are two people.

        A stitched piece and the track it continues can both be live (the lost
        track came back, or the two were one person seen twice). One series must
        not mix two positions. The series' own track keeps it if it came back
        where its person could have walked since it was last seen (the floor
        fusion brought the id back for a reason: it re-identifies by look, the
        stitch only guessed by position); otherwise the piece that continues the
        series' last position does. A stitched piece that loses is let go, and
        is its own track from now on.
        """
        pieces: dict[str, list[TrackPoint]] = {}
        for p in batch.tracks:
            pieces.setdefault(self.canonical(p.track_id), []).append(p)
        kept: list[TrackPoint] = []
        t = batch.event_time_s
        for series, points in pieces.items():
            if len(points) > 1:
                last = self.last_sample(series)
                pinned = self._pinned.get(series)
                points.sort(
                    key=lambda p: (
                        p.track_id != pinned,
                        not self._own_back(series, p, t),
                        0.0 if last is None else math.hypot(p.x_m - last[1], p.y_m - last[2]),
                        p.track_id != series,
                    )
                )
                for loser in points[1:]:
                    self._alias.pop(loser.track_id, None)
                    if loser.track_id != series:
                        kept.append(loser)  # its own series from now on
            kept.append(points[0])
        return kept

    def _own_back(self, series: str, p: TrackPoint, time_s: float) -> bool:
        """``p`` is the series' own track, back within walking reach of where it was last."""
        last = self._own_last.get(series)
        if p.track_id != series or last is None:
            return False
        reach = self.return_slack_m + self.return_speed_m_s * max(time_s - last[0], 0.0)
        return math.hypot(p.x_m - last[1], p.y_m - last[2]) <= reach

    def canonical(self, track_id: str) -> str:
        """The series a camera track's samples are filed under (its own unless moved)."""
        return self._alias.get(track_id, track_id)

    def refile(self, track_id: str, into_id: str | None, *, create: bool = False) -> None:
        """From now on, file camera track ``track_id`` under series ``into_id`` (None: its own).

        For a track found to follow another visit's shopper: its samples so far
        stay where they were (they were that series' best guess then); new ones
        go to the series of the person it follows now, and it wins that series
        over any other piece live at once. ``create``: ``into_id`` is a new
        series, started by the track's next sample.
        """
        if into_id is None or into_id == track_id:
            self._alias.pop(track_id, None)
            self._pinned[track_id] = track_id
            return
        if into_id not in self._tracks and not create:
            raise KeyError(f"cannot refile {track_id!r} into unknown series {into_id!r}")
        self._alias[track_id] = into_id
        self._pinned[into_id] = track_id
        if into_id in self._tracks:
            self._tracks[into_id].ended_s = None

    def piece(self, series_id: str) -> str | None:
        """The camera track that fed a series last (None if none)."""
        track = self._tracks.get(series_id)
        return None if track is None else track.piece

    def stitch(self, new_id: str, into_id: str) -> None:
        """File ``new_id`` (its samples so far and all to come) under ``into_id``.

        For a camera track that continues one lost a moment ago: one person,
        one time series, whatever the tracker's ids did.
        """
        target = self.canonical(into_id)
        if new_id == target or target not in self._tracks:
            raise KeyError(f"cannot stitch {new_id!r} into unknown or same track {into_id!r}")
        moved = self._tracks.pop(new_id, None)
        self._alias[new_id] = target
        for old, canon in self._alias.items():
            if canon == new_id:
                self._alias[old] = target
        dest = self._tracks[target]
        dest.ended_s = None
        if moved is not None:
            for sample in moved.samples:
                self.add(sample[0], target, sample[1], sample[2])
            dest.looks.extend(moved.looks)
            dest.looks = deque(sorted(dest.looks, key=lambda x: x[0]), maxlen=self.max_samples)
            if moved.ended_s is not None:
                dest.ended_s = moved.ended_s

    def last_sample(self, track_id: str) -> Sample | None:
        """The newest (time, x, y) of a track (a time series' id, not a piece's)."""
        track = self._tracks.get(track_id)
        return track.samples[-1] if track and track.samples else None

    def add(self, time_s: float, track_id: str, x_m: float, y_m: float) -> None:
        """Record one position; samples older than the track's newest are inserted in order."""
        track = self._tracks.get(track_id)
        if track is None:
            track = _Track(
                FirstSeen(time_s, x_m, y_m),
                deque(maxlen=self.max_samples),
                looks=deque(maxlen=self.max_samples),
            )
            self._tracks[track_id] = track
        elif time_s < track.first.time_s:
            track.first = FirstSeen(time_s, x_m, y_m)
        samples = track.samples
        if samples and time_s < samples[-1][0]:
            # Rare over a real broker: keep the series sorted for windowed reads.
            items = sorted([*samples, (time_s, x_m, y_m)])
            samples.clear()
            samples.extend(items)
        else:
            samples.append((time_s, x_m, y_m))
        self.latest_s = max(self.latest_s, time_s)

    def add_look(self, time_s: float, track_id: str, look: list[float]) -> None:
        """Keep a camera track's look (filed under its canonical id, tagged with its own)."""
        track = self._tracks.get(self.canonical(track_id))
        if track is None:
            return
        v = np.asarray(look, dtype=np.float32)
        norm = float(np.linalg.norm(v))
        if not math.isfinite(norm) or norm < 1e-6:
            return
        track.looks.append((time_s, track_id, v / norm))

    def looks(self, track_id: str, t0_s: float, t1_s: float) -> list[LookSample]:
        """Looks of a track (a time series' id) with ``t0_s <= t <= t1_s``, oldest first."""
        track = self._tracks.get(track_id)
        if track is None:
            return []
        return [x for x in track.looks if t0_s <= x[0] <= t1_s]

    def first_seen(self, track_id: str) -> FirstSeen | None:
        track = self._tracks.get(track_id)
        return track.first if track else None

    def ended_s(self, track_id: str) -> float | None:
        track = self._tracks.get(track_id)
        return track.ended_s if track else None

    def track_ids(self) -> list[str]:
        return list(self._tracks)

    def window(self, track_id: str, t0_s: float, t1_s: float, gap_s: float = 0.0) -> list[Sample]:
        """Samples with ``t0_s <= t <= t1_s``, else the nearest one within ``gap_s`` of it."""
        track = self._tracks.get(track_id)
        if track is None or not track.samples:
            return []
        inside = [s for s in track.samples if t0_s <= s[0] <= t1_s]
        if inside or gap_s <= 0:
            return inside
        nearest = min(track.samples, key=lambda s: _gap(s[0], t0_s, t1_s))
        return [nearest] if _gap(nearest[0], t0_s, t1_s) <= gap_s else []

    def mean_position(
        self, track_id: str, t0_s: float, t1_s: float, gap_s: float = 0.0
    ) -> tuple[float, float] | None:
        """Mean (x, y) over the window, or None if the track has no sample there."""
        samples = self.window(track_id, t0_s, t1_s, gap_s)
        if not samples:
            return None
        n = len(samples)
        return (sum(s[1] for s in samples) / n, sum(s[2] for s in samples) / n)

    def position_at(self, track_id: str, time_s: float, gap_s: float) -> tuple[float, float] | None:
        """The sample nearest in time to ``time_s``, if within ``gap_s``."""
        samples = self.window(track_id, time_s, time_s, gap_s)
        return (samples[0][1], samples[0][2]) if samples else None

    def prune(self, now_s: float) -> int:
        """Drop samples older than ``now_s - retention_s``; forget empty tracks; return how many."""
        horizon = now_s - self.retention_s
        gone = []
        for track_id, track in self._tracks.items():
            while track.samples and track.samples[0][0] < horizon:
                track.samples.popleft()
            while track.looks and track.looks[0][0] < horizon:
                track.looks.popleft()
            if not track.samples:
                gone.append(track_id)
        for track_id in gone:
            del self._tracks[track_id]
        if gone:
            dropped = set(gone)
            self._alias = {k: v for k, v in self._alias.items() if v not in dropped}
            self._pinned = {k: v for k, v in self._pinned.items() if k not in dropped}
            self._own_last = {k: v for k, v in self._own_last.items() if k not in dropped}
        return len(gone)

    def sample_count(self) -> int:
        return sum(len(t.samples) for t in self._tracks.values())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._tracks))


def _gap(t: float, t0: float, t1: float) -> float:
    return max(t0 - t, 0.0, t - t1)


def segment_distance_m(
    point: tuple[float, float], segment: tuple[tuple[float, float], tuple[float, float]]
) -> float:
    """Distance from a floor point to a line segment (a gate line, a plate front)."""
    (px, py), ((ax, ay), (bx, by)) = point, segment
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    u = 0.0 if length2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return math.hypot(px - (ax + u * dx), py - (ay + u * dy))
