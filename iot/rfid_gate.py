"""Exit-gate logic for one RFID reader: which tags walked through, and which way.

A gate reader has antennas on both sides of the gate line: *inner* (store
side) and *outer* (street side). A tag carried through is read by one zone
and then the other. ``PassageDetector`` folds a reader's ``TagRead``s, in
event time, into *passes*: a tag's reads belong to one pass while the gaps
between them stay under ``quiet_s``. Once a tag has been quiet that long its
pass is decided from the order of zones: inner then outer is ``out``, outer
then inner is ``in``; one zone only (a tag walking past, not through), too
few reads, or zones going back and forth are not passages and are counted.

Where the two fields overlap a reader alternates between antennas, so a
tag in the overlap reads inner, outer, inner, outer for a moment. A short
run of reads in one zone between runs in the other (fewer than
``zone_min_reads``) is taken as that flutter and dropped before the
direction is read; long runs back and forth stay an impossible direction.

Tags that do not move must never pass: a tagged item on a display by the
door is read on and on. A pass lasting longer than ``max_pass_s``, or a tag
showing up in ``static_repeat_passes`` passes in a row without ever being
away ``static_absence_s``, is marked static; it produces nothing until it
has been unread for ``static_absence_s``.

Memory is bounded: a flood of reads of one tag only adds to counters, the
zone runs of one pass are capped, and at most ``max_tracked_tags`` tags are
remembered (the longest-unread is forgotten first, and counted). All
decisions use the reads' own timestamps and ``tick(now_s)``: no wall clock.

>>> from iot.store import RfidAntenna, RfidReader
>>> reader = RfidReader(id="r1", gate="gate-out", antennas=[
...     RfidAntenna(port=1, zone="inner", position_m=(0.0, 1.0)),
...     RfidAntenna(port=2, zone="outer", position_m=(0.0, 0.0))])
>>> det = PassageDetector(reader)
>>> for k, port in enumerate([1, 1, 1, 2, 2]):
...     det.feed(TagRead("r1", "3074257BF7194E4000001A85", port, -50.0, 1.8e9 + 0.1 * k))
>>> det.tick(1.8e9 + 1.0)  # the last read was 0.6 s ago: not quiet yet
[]
>>> [(p.direction, p.zones, p.reads) for p in det.tick(1.8e9 + 1.4)]
[('out', ('inner', 'outer'), 5)]
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iot.rfid import TagRead
from iot.store import RfidReader

__all__ = ["GateSettings", "Passage", "PassageDetector"]

log = logging.getLogger(__name__)

Zone = Literal["inner", "outer"]
MAX_RUNS = 256  # zone runs kept per pass; more is flutter for sure and decided as impossible


class GateSettings(BaseModel):
    """Hysteresis of the exit-gate logic (units in the names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quiet_s: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="A tag's pass is decided once it has not been read for this long, s. "
        "Keep it small: the exit-to-alert budget of 2 s includes it.",
    )
    min_reads: int = Field(
        default=2, ge=1, le=1000, description="A pass with fewer reads is noise, not a passage."
    )
    zone_min_reads: int = Field(
        default=2,
        ge=1,
        le=100,
        description="A run of fewer reads in one zone, between runs in the other, is flutter "
        "where the antenna fields overlap and is dropped (1 keeps every run).",
    )
    max_pass_s: float = Field(
        default=8.0,
        gt=0,
        le=3600,
        description="A tag read with no quiet gap for longer than this, s, is not walking "
        "through: it is static and never passes.",
    )
    static_repeat_passes: int = Field(
        default=3,
        ge=2,
        le=100,
        description="A tag in this many passes in a row, each within static_absence_s of the "
        "one before, is static (it hangs about the door).",
    )
    static_absence_s: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="A static tag may pass again only after being unread this long, s; "
        "passes further apart than this are not 'in a row'.",
    )
    max_tracked_tags: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Tags remembered at once per reader; beyond it the longest-unread one is "
        "forgotten (counted as evicted).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> GateSettings:
        if not self.quiet_s < self.max_pass_s:
            raise ValueError(
                f"quiet_s ({self.quiet_s}) must be shorter than max_pass_s ({self.max_pass_s})"
            )
        if self.static_absence_s < self.quiet_s:
            raise ValueError(
                f"static_absence_s ({self.static_absence_s}) must be at least quiet_s "
                f"({self.quiet_s})"
            )
        return self


@dataclass(frozen=True)
class Passage:
    """A tag that went through a reader's gate."""

    reader_id: str
    gate_id: str
    epc_hex: str
    direction: Literal["out", "in"]
    first_seen_s: float
    last_seen_s: float
    zones: tuple[Zone, ...]  # zone runs in read order, after dropping flutter
    reads: int
    peak_rssi_dbm: float


@dataclass
class _Run:
    zone: Zone
    reads: int


@dataclass
class _Pass:
    first_s: float
    last_s: float
    reads: int = 0
    peak_rssi_dbm: float = -math.inf
    runs: list[_Run] = field(default_factory=list)  # in read order
    overflow: bool = False

    def add(self, zone: Zone, read: TagRead) -> None:
        self.last_s = max(self.last_s, read.time_s)
        self.reads += read.reads
        self.peak_rssi_dbm = max(self.peak_rssi_dbm, read.rssi_dbm)
        if self.runs and self.runs[-1].zone == zone:
            self.runs[-1].reads += read.reads
        elif len(self.runs) < MAX_RUNS:
            self.runs.append(_Run(zone, read.reads))
        else:
            self.overflow = True


@dataclass
class _Tag:
    last_s: float  # last read, any zone
    open: _Pass | None = None
    static: bool = False
    in_a_row: int = 0  # passes in a row, each within static_absence_s of the one before
    last_pass_end_s: float = -math.inf


class PassageDetector:
    """Pure event-time gate logic for one reader: ``feed`` reads, ``tick`` returns passages.

    ``counts`` says what happened to every read and pass: ``passage out``,
    ``passage in``, ``one zone``, ``too few reads``, ``impossible direction``,
    ``static tag``, ``late read``, ``unknown antenna``, ``evicted``.
    """

    def __init__(self, reader: RfidReader, settings: GateSettings | None = None) -> None:
        if reader.gate is None:
            raise ValueError(
                f"reader {reader.id!r} guards no gate; give it a gate in the store file "
                "to decide passages"
            )
        self.reader = reader
        self.gate_id = reader.gate
        self.settings = settings or GateSettings()
        self._zone: dict[int, Zone] = {a.port: a.zone for a in reader.antennas}
        self._tags: OrderedDict[str, _Tag] = OrderedDict()  # least recently read first
        self._ready: list[Passage] = []
        self.counts: Counter[str] = Counter()
        self.now_s = -math.inf

    @property
    def tracked_tags(self) -> int:
        """Tags remembered now (open passes, static tags, recent passers)."""
        return len(self._tags)

    def feed(self, read: TagRead) -> None:
        """Take one read. Reads should come in time order; one older than ``quiet_s``
        behind the newest time seen is late (its pass may be decided) and is dropped."""
        if read.reader_id != self.reader.id:
            raise ValueError(
                f"read from reader {read.reader_id!r} fed to the detector of {self.reader.id!r}"
            )
        s = self.settings
        zone = self._zone.get(read.antenna_port)
        if zone is None:
            self._count("unknown antenna", f"port {read.antenna_port} is not in the store file")
            return
        if read.time_s <= self.now_s - s.quiet_s:
            self._count("late read", f"{self.now_s - read.time_s:.3f} s behind the newest")
            return
        self.now_s = max(self.now_s, read.time_s)
        self.counts["reads"] += 1
        tag = self._touch(read.epc_hex, read.time_s)
        gap_s = read.time_s - tag.last_s
        if tag.static and gap_s >= s.static_absence_s:  # gone long enough: a fresh tag again
            tag.static, tag.in_a_row, tag.last_pass_end_s = False, 0, -math.inf
        tag.last_s = max(tag.last_s, read.time_s)
        if tag.static:
            return
        if tag.open is not None and gap_s >= s.quiet_s:  # tick was not called in the gap
            self._decide(read.epc_hex, tag)
        if tag.open is None:
            tag.open = _Pass(first_s=read.time_s, last_s=read.time_s)
        tag.open.add(zone, read)
        if tag.open.last_s - tag.open.first_s > s.max_pass_s:
            tag.open, tag.static = None, True
            self._count("static tag", f"{read.epc_hex} read for over {s.max_pass_s} s")

    def tick(self, now_s: float) -> list[Passage]:
        """Decide every pass quiet for ``quiet_s`` at event time ``now_s``; returns passages.

        The clock never runs backwards: an earlier ``now_s`` than already seen
        (from a read or a tick) is treated as the newest time seen.
        """
        s = self.settings
        self.now_s = now_s = max(self.now_s, now_s)
        forget = []
        for epc, tag in self._tags.items():  # least recently read first: stop at the fresh
            if now_s - tag.last_s < s.quiet_s:
                break
            if tag.open is not None:
                self._decide(epc, tag)
            if now_s - tag.last_s >= s.static_absence_s:
                forget.append(epc)
        for epc in forget:
            del self._tags[epc]
        ready, self._ready = self._ready, []
        return sorted(ready, key=lambda p: (p.last_seen_s, p.epc_hex))

    def _touch(self, epc: str, time_s: float) -> _Tag:
        tag = self._tags.get(epc)
        if tag is not None:
            self._tags.move_to_end(epc)
            return tag
        if len(self._tags) >= self.settings.max_tracked_tags:
            old_epc, _ = self._tags.popitem(last=False)
            self._count("evicted", f"{old_epc} forgotten: more than max_tracked_tags tags")
        tag = self._tags[epc] = _Tag(last_s=time_s)
        return tag

    def _decide(self, epc: str, tag: _Tag) -> None:
        s = self.settings
        done, tag.open = tag.open, None
        assert done is not None
        near_last = done.first_s - tag.last_pass_end_s < s.static_absence_s
        tag.in_a_row = tag.in_a_row + 1 if near_last else 1
        tag.last_pass_end_s = done.last_s
        if tag.in_a_row >= s.static_repeat_passes:
            tag.static = True
            self._count("static tag", f"{epc} in {tag.in_a_row} passes in a row")
            return
        if done.reads < s.min_reads:
            self.counts["too few reads"] += 1
            return
        zones = _smooth(done.runs, s.zone_min_reads)
        if done.overflow or len(zones) > 2:
            self._count("impossible direction", f"{epc} went {'/'.join(zones[:8])}...")
            return
        if len(zones) == 1:
            self.counts["one zone"] += 1
            return
        direction: Literal["out", "in"] = "out" if zones[0] == "inner" else "in"
        self.counts[f"passage {direction}"] += 1
        self._ready.append(
            Passage(
                reader_id=self.reader.id,
                gate_id=self.gate_id,
                epc_hex=epc,
                direction=direction,
                first_seen_s=done.first_s,
                last_seen_s=done.last_s,
                zones=zones,
                reads=done.reads,
                peak_rssi_dbm=done.peak_rssi_dbm,
            )
        )

    def _count(self, what: str, detail: str) -> None:
        self.counts[what] += 1
        n = self.counts[what]
        if n <= 10 or n % 1000 == 0:  # a flood must not flood the log too
            log.info("%s: %s: %s (seen %d times)", self.reader.id, what, detail, n)


def _smooth(runs: list[_Run], zone_min_reads: int) -> tuple[Zone, ...]:
    """Zones in read order: drop short runs between others (flutter), then merge alike neighbours.

    The first and last runs always count: they are where the tag came from and went to.
    """
    zones: list[Zone] = []
    for k, run in enumerate(runs):
        inside = 0 < k < len(runs) - 1
        if inside and run.reads < zone_min_reads:
            continue
        if not zones or zones[-1] != run.zone:
            zones.append(run.zone)
    return tuple(zones)
