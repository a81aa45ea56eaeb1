"""Load-cell faults, read from the raw samples before any change detector sees them.

A healthy load cell is never perfectly still: its ADC reads a few tenths of
a gram of noise, and its resting load changes only when a hand moves
something (a step, over in a second) or, very slowly, with temperature (a
few grams an hour). ``LoadCellMonitor`` watches every plate of the store for
the four ways a cell betrays that it no longer weighs:

- ``stuck``: the same raw value, to the bit, for ``stuck_s`` while another
  cell on the same controller moves (so the controller and its ADC are
  alive), or while a shelf camera saw a hand pick or put on the plate;
- ``drifting``: the resting load slides at ``drift_rate_g_per_s`` or more,
  steadily, for ``drift_window_s``. Half-second means of the samples are
  fitted with a line: a drift fits it to within the noise, while a hand's
  act (a step, a press, a slow lift that ends) leaves residuals far larger,
  and a real removal stops where the items left: it never keeps sliding;
- ``saturated``: pinned at the top of the plate's range (at least
  ``saturation_share`` of its ``max_load_g``) for ``range_hold_s``;
- ``out_of_range``: below ``min_weight_g`` (an unplugged or broken cell)
  for ``range_hold_s``.

A fault is raised at once when its test holds (a single garbage batch is not
a fault: the range faults wait ``range_hold_s``) and cleared after the cell
has read well for ``recover_s``, so a flickering cell does not flap. Each
change is a ``LoadCellFault`` for the bus, stamped with the sample times
(event time). ``stuck`` needs a noisy neighbour or a camera: a cell alone on
its controller, never seen touched, cannot be told from a very quiet one.

>>> from iot.payloads import PlateSamples, ShelfSamples
>>> mon = LoadCellMonitor({"p1": ("ctl", 5000.0, 2.0), "p2": ("ctl", 5000.0, 2.0)})
>>> raised = []
>>> for k in range(40):  # p1 reads 1000.0 g exactly, p2 is a live cell
...     batch = ShelfSamples(id=f"b{k}", event_time_s=1e9 + k / 10, device_id="ctl",
...         sample_rate_hz=20, plates=[PlateSamples(plate_id="p1", weights_g=[1000.0] * 2),
...         PlateSamples(plate_id="p2", weights_g=[800.0 + k % 3, 801.5 - k % 2])])
...     raised += mon.observe(batch)
>>> [(f.plate_id, f.fault, f.state, f.since_s) for f in raised]
[('p1', 'stuck', 'raised', 1000000000.0)]
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from iot.payloads import LoadCellFault, LoadCellFaultKind, ShelfSamples

__all__ = ["LoadCellFaultSettings", "LoadCellMonitor", "PlateSpec"]

PlateSpec = tuple[str, float, float]  # (controller id, max load g, noise g of its controller)
_KINDS: tuple[LoadCellFaultKind, ...] = ("stuck", "drifting", "saturated", "out_of_range")
_MAX_HANDS = 16  # hand sightings waiting for a plate's samples, at most per plate


class LoadCellFaultSettings(BaseModel):
    """When a load cell counts as faulty, and when it is trusted again (units in the names)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    stuck_s: float = Field(
        default=3.0,
        gt=0,
        le=600,
        description="Raw value identical to the bit this long, while the controller's other "
        "cells move, makes a cell stuck, s.",
    )
    min_noise_g: float = Field(
        default=0.05,
        ge=0,
        description="Controllers whose declared noise is below this are never judged stuck "
        "(a noiseless cell holds its value honestly), g.",
    )
    drift_window_s: float = Field(
        default=7.0,
        ge=2,
        le=120,
        description="Span of half-second means fitted with a line to find a drift, s.",
    )
    drift_rate_g_per_s: float = Field(
        default=0.5,
        gt=0,
        description="A steady slide of the resting load at least this fast is a drift, g/s "
        "(a healthy cell drifts a few g per hour); it clears below half of it.",
    )
    drift_fit_sigmas: float = Field(
        default=3.0,
        gt=0,
        description="The half-second means must lie this close to the line (RMS, in noise "
        "sigmas of a mean) for a slide to count: a hand's act fits no line.",
    )
    drift_fit_floor_g: float = Field(
        default=0.3, ge=0, description="Least RMS residual always accepted (quantisation), g."
    )
    drift_min_t: float = Field(
        default=6.0,
        gt=0,
        description="Least t-statistic of the fitted slope (a healthy cell's noise almost "
        "never fakes one of 6 over the window).",
    )
    saturation_share: float = Field(
        default=0.995,
        gt=0.5,
        le=1.0,
        description="A reading at or above this share of the plate's max_load_g is pinned at "
        "the top of its range.",
    )
    range_hold_s: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="Saturated or out of range this long before it is a fault (a spike is not), s.",
    )
    recover_s: float = Field(
        default=2.0,
        ge=0,
        le=600,
        description="A faulty cell must read well this long before its fault clears, s.",
    )


_BUCKET_S = 0.5  # drift is fitted to means of this much time


@dataclass
class _State:
    """One fault kind of one plate."""

    raised: bool = False
    since_s: float = 0.0
    bad_since: float | None = None
    good_since: float | None = None


@dataclass
class _Plate:
    controller_id: str
    max_g: float
    noise_g: float
    run_value: float | None = None  # the current run of identical raw values
    run_since: float = -math.inf
    varied_t: float = -math.inf  # last sample that differed from the one before it
    last_t: float = -math.inf
    origin_t: float | None = None  # times of the drift fit are relative to this
    bucket: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])  # n, Σt, Σw, t0
    means: deque[tuple[float, float, float]] = field(default_factory=deque)  # (t, mean, n)
    drift: tuple[bool | None, str] = (None, "")  # the verdict of the last fit
    misread: bool = False  # its last batch read out of range or pinned at the top
    hands: list[tuple[float, float]] = field(default_factory=list)  # (started_s, ended_s)
    states: dict[str, _State] = field(default_factory=lambda: {k: _State() for k in _KINDS})


class LoadCellMonitor:
    """Fault state of every plate's load cell; see the module docstring.

    ``plates``: plate id -> (controller id, max load g, noise g). Feed every
    batch a controller sends (``observe``, before refusing any of it) in time
    order; ``hand_seen`` when a shelf camera saw a hand pick or put on a plate.
    """

    def __init__(
        self,
        plates: Mapping[str, PlateSpec],
        settings: LoadCellFaultSettings | None = None,
        *,
        min_weight_g: float = -1000.0,
    ) -> None:
        self.settings = settings or LoadCellFaultSettings()
        self.min_weight_g = min_weight_g
        self._plates = {pid: _Plate(c, max_g, noise) for pid, (c, max_g, noise) in plates.items()}
        self._window = max(4, round(self.settings.drift_window_s / _BUCKET_S))

    # --- reading ---

    def faulty(self, plate_id: str) -> bool:
        """Whether any fault of the plate is raised now."""
        p = self._plates.get(plate_id)
        return p is not None and any(s.raised for s in p.states.values())

    def misreads(self, plate_id: str) -> bool:
        """Whether the plate's last batch read no weight (out of range, or pinned at the top):
        a fault in the making, or a spike; either way not a weight to detect changes in."""
        p = self._plates.get(plate_id)
        return p is not None and p.misread

    def active(self) -> list[tuple[str, LoadCellFaultKind, float]]:
        """(plate, fault, since_s) of every fault raised now, by plate."""
        return [
            (pid, kind, p.states[kind].since_s)
            for pid, p in sorted(self._plates.items())
            for kind in _KINDS
            if p.states[kind].raised
        ]

    # --- feeding ---

    def hand_seen(self, plate_id: str, started_s: float, ended_s: float) -> None:
        """A camera saw a hand take or leave something on the plate between these times."""
        p = self._plates.get(plate_id)
        if p is not None and math.isfinite(started_s) and ended_s >= started_s:
            p.hands = [*p.hands[-(_MAX_HANDS - 1) :], (started_s, ended_s)]

    def observe(self, batch: ShelfSamples) -> list[LoadCellFault]:
        """Fold one batch in; returns the faults raised or cleared by it."""
        period = 1.0 / batch.sample_rate_hz
        t0 = batch.event_time_s
        mine = [
            (ps, p)
            for ps in batch.plates
            if (p := self._plates.get(ps.plate_id)) is not None
            and p.controller_id == batch.device_id
        ]
        for ps, p in mine:
            self._fold(p, t0, period, ps.weights_g)
        alive_t = max((p.varied_t for _, p in mine), default=-math.inf)
        out: list[LoadCellFault] = []
        for ps, p in mine:
            if self._may_change(p):
                out += self._judge(ps.plate_id, p, ps.weights_g, alive_t)
        return out

    def _may_change(self, p: _Plate) -> bool:
        """False for the common case, cheaply: a healthy cell reading well."""
        if p.hands or p.drift[0] or p.last_t - p.run_since >= self.settings.stuck_s:
            return True
        return p.misread or any(st.raised or st.bad_since is not None for st in p.states.values())

    def _fold(self, p: _Plate, t0: float, period: float, weights: list[float]) -> None:
        lo, hi = min(weights), max(weights)
        if lo == hi and p.run_value == lo:
            pass  # the run goes on
        else:
            k = len(weights) - 1
            while k > 0 and weights[k - 1] == weights[k]:
                k -= 1
            if k > 0 or p.run_value is not None:  # the value changed inside or at this batch
                p.varied_t = t0 + k * period
            p.run_value, p.run_since = weights[-1], t0 + k * period
        p.last_t = t0 + (len(weights) - 1) * period
        p.misread = lo < self.min_weight_g or hi >= self.settings.saturation_share * p.max_g
        if p.misread:
            p.means.clear()  # nothing to fit in readings that are not weights
            p.bucket = [0.0, 0.0, 0.0, 0.0]
            return
        if p.origin_t is None:
            p.origin_t = t0
        n = len(weights)
        rel = t0 - p.origin_t
        if p.bucket[0] and rel - p.bucket[3] >= _BUCKET_S - 1e-6:
            self._close_bucket(p)
        if not p.bucket[0]:
            p.bucket[3] = rel
        p.bucket[0] += n
        p.bucket[1] += n * rel + period * n * (n - 1) / 2
        p.bucket[2] += sum(weights)

    def _close_bucket(self, p: _Plate) -> None:
        n, st, sw, _ = p.bucket
        p.means.append((st / n, sw / n, n))
        while len(p.means) > self._window:
            p.means.popleft()
        p.bucket = [0.0, 0.0, 0.0, 0.0]
        p.drift = self._fit(p)

    # --- judging ---

    def _judge(
        self, plate_id: str, p: _Plate, weights: list[float], alive_t: float
    ) -> list[LoadCellFault]:
        s = self.settings
        t = p.last_t
        lo, hi = min(weights), max(weights)
        low, high = lo < self.min_weight_g, hi >= s.saturation_share * p.max_g
        out = []
        verdicts: tuple[tuple[LoadCellFaultKind, tuple[bool | None, str]], ...] = (
            ("out_of_range", (low, f"read {lo:.1f} g, below {self.min_weight_g:.0f} g")),
            ("saturated", (high, f"read {hi:.1f} g, max load {p.max_g:.0f} g")),
            # a pinned reading is constant too: one fault at a time says what is wrong
            ("stuck", (None, "") if low or high else self._stuck(p, alive_t)),
            ("drifting", p.drift if p.means else (None, "")),
        )
        for kind, (bad, detail) in verdicts:
            hold = s.range_hold_s if kind in ("out_of_range", "saturated") else 0.0
            since = {"stuck": p.run_since, "drifting": self._window_start(p)}.get(kind)
            change = self._step(
                plate_id, p, kind, bad, t=t, hold_s=hold, since=since, detail=detail
            )
            if change is not None:
                out.append(change)
        return out

    def _stuck(self, p: _Plate, alive_t: float) -> tuple[bool | None, str]:
        """``alive_t``: the newest variation of any cell of the batch (this one's is older)."""
        s = self.settings
        still_s = p.last_t - p.run_since
        missed = self._hand_missed(p)
        if still_s < s.stuck_s and not missed:
            return False, ""
        detail = f"read {p.run_value} g to the bit for {still_s:.1f} s"
        if missed:
            return True, detail + " while a camera saw a hand act on it"
        if alive_t > p.last_t - s.stuck_s and p.noise_g >= s.min_noise_g:
            return True, detail + " while the controller's other cells moved"
        return None, ""

    @staticmethod
    def _hand_missed(p: _Plate) -> bool:
        """A hand acted on the plate inside the current run of identical values."""
        if not p.hands:
            return False
        p.hands = [h for h in p.hands if h[1] >= p.run_since]
        return any(h[0] >= p.run_since and h[1] <= p.last_t for h in p.hands)

    def _fit(self, p: _Plate) -> tuple[bool | None, str]:
        """A line through the half-second means: does the resting load slide steadily?"""
        s = self.settings
        if len(p.means) < self._window:
            return None, ""
        xs = [m[0] for m in p.means]
        ys = [m[1] for m in p.means]
        n = len(xs)
        xm, ym = sum(xs) / n, sum(ys) / n
        sxx = sum((x - xm) ** 2 for x in xs)
        slope = sum((x - xm) * (y - ym) for x, y in zip(xs, ys, strict=True)) / sxx
        resid = [y - ym - slope * (x - xm) for x, y in zip(xs, ys, strict=True)]
        rms = math.sqrt(sum(r * r for r in resid) / (n - 2))
        per_mean = max(p.noise_g, 0.0) / math.sqrt(min(m[2] for m in p.means))
        if rms > s.drift_fit_sigmas * per_mean + s.drift_fit_floor_g:
            return None, ""  # a hand's act, not a slide: nothing to say either way
        t_stat = abs(slope) / max(rms / math.sqrt(sxx), 1e-9)
        if abs(slope) >= s.drift_rate_g_per_s and t_stat >= s.drift_min_t:
            span = xs[-1] - xs[0]
            return True, f"resting load slid {slope * span:+.1f} g in {span:.1f} s"
        if abs(slope) < s.drift_rate_g_per_s / 2:
            return False, ""
        return None, ""

    def _window_start(self, p: _Plate) -> float:
        if not p.means or p.origin_t is None:
            return p.last_t
        return p.origin_t + p.means[0][0] - _BUCKET_S / 2

    def _step(
        self,
        plate_id: str,
        p: _Plate,
        kind: LoadCellFaultKind,
        bad: bool | None,
        *,
        t: float,
        hold_s: float,
        since: float | None,
        detail: str,
    ) -> LoadCellFault | None:
        st = p.states[kind]
        if bad is None:
            return None
        if bad:
            st.good_since = None
            if st.raised:
                return None
            if st.bad_since is None:
                st.bad_since = t
            if t - st.bad_since < hold_s:
                return None
            st.raised, st.since_s = True, min(since if since is not None else t, st.bad_since)
            return self._event(plate_id, p, kind, "raised", t=t, detail=detail)
        st.bad_since = None
        if not st.raised:
            return None
        if st.good_since is None:
            st.good_since = t
        if t - st.good_since < self.settings.recover_s:
            return None
        st.raised, st.good_since = False, None
        detail = f"read well again for {self.settings.recover_s:g} s"
        return self._event(plate_id, p, kind, "cleared", t=t, detail=detail)

    @staticmethod
    def _event(
        plate_id: str, p: _Plate, kind: LoadCellFaultKind, state: str, *, t: float, detail: str
    ) -> LoadCellFault:
        since = p.states[kind].since_s
        return LoadCellFault(
            id=f"{p.controller_id}:{plate_id}:{kind}:{round(since * 1000)}:{state}"[:128],
            event_time_s=t,
            device_id=p.controller_id,
            plate_id=plate_id,
            fault=kind,
            state="raised" if state == "raised" else "cleared",
            since_s=since,
            detail=detail[:500],
        )
