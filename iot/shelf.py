"""Weight-plate change detection and the shelf adapter service.

A load cell under a plate reports its load many times a second. Most of the
time the load is *stable*: noise around a level that drifts very slowly. A
reach makes it *unstable* (the hand presses, the item leaves or arrives, the
plate wobbles) and then it is stable again at a new level. The settled
difference is what was picked (negative) or put (positive).

``PlateChangeDetector`` is the pure state machine for one plate;
``read_quantity`` reads a change against the unit weight of the planogram
SKU; ``ShelfAdapter`` is the edge service that feeds raw ``ShelfSamples``
from the bus into one detector per plate and publishes ``ShelfEvent``.

>>> det = PlateChangeDetector(noise_g=0.2)
>>> t = [1e9 + k / 20 for k in range(60)]
>>> w = [1000.0] * 20 + [1400.0, 1700.0, 1300.0] + [900.0] * 37
>>> [c for c in (det.update(ti, wi) for ti, wi in zip(t, w)) if c]
[PlateChange(started_s=1000000001.0, settled_s=1000000001.55, delta_g=-100.0, noise_g=0.2)]
>>> read_quantity(-100.0, unit_weight_g=50.0, tolerance_g=1.0, noise_g=0.5)[0]
2
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from iot.bus import Inbox, Message, Transport, publish
from iot.payloads import Interaction, ShelfEvent, ShelfSamples
from iot.plate_faults import LoadCellFaultSettings, LoadCellMonitor
from iot.store import PlanogramEntry, Store
from iot.topics import TOPICS

__all__ = [
    "DetectorSettings",
    "PlateChange",
    "PlateChangeDetector",
    "ShelfAdapter",
    "read_quantity",
]

log = logging.getLogger(__name__)

MIN_WEIGHT_G = -1000.0  # below this a load cell is broken or unplugged, not merely tared
RATE_TOLERANCE = 0.05  # a batch's sample rate may differ this much from the store file's


class DetectorSettings(BaseModel):
    """Hysteresis and thresholds of the change detector (units in the names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    settle_s: float = Field(
        default=0.4,
        gt=0,
        le=5,
        description="The load must stay stable this long before a change is settled and emitted.",
    )
    trigger_sigmas: float = Field(
        default=5.0,
        gt=0,
        description="A sample this many noise sigmas from the baseline starts a change.",
    )
    trigger_min_g: float = Field(
        default=8.0,
        ge=0,
        description="Floor of the trigger band, g, so a quiet cell ignores crosstalk.",
    )
    stable_sigmas: float = Field(
        default=2.0,
        gt=0,
        description="A window is stable while its spread stays within this many noise sigmas.",
    )
    stable_min_g: float = Field(default=1.0, ge=0, description="Floor of the stability band, g.")
    retare_tau_s: float = Field(
        default=5.0,
        gt=0,
        description="Time constant of the baseline re-tare while stable, s (follows slow drift).",
    )
    noise_tau_s: float = Field(
        default=30.0, gt=0, description="Time constant of the running noise estimate, s."
    )
    min_noise_g: float = Field(
        default=0.2, gt=0, description="Lower bound of the noise estimate, g."
    )
    max_gap_s: float = Field(
        default=0.5,
        gt=0,
        description="A longer pause between samples makes the plate unstable from before it.",
    )


@dataclass(frozen=True)
class PlateChange:
    """A settled change on one plate."""

    started_s: float  # first sample outside the stable band
    settled_s: float  # last sample of the stable window that closed the change
    delta_g: float  # settled level minus the baseline before the change
    noise_g: float  # measured noise, one sigma, g


class PlateChangeDetector:
    """Stable → unstable → stable segmentation of one plate's raw load.

    ``noise_g`` is the prior noise (the controller's datasheet figure); the
    detector re-measures it from successive differences while the plate is
    stable, so thresholds follow the cell actually fitted. ``min_change_g``:
    settled changes smaller than this are absorbed into the baseline and not
    returned (the adapter sets it to a fraction of a unit weight).
    """

    def __init__(
        self,
        *,
        noise_g: float = 2.0,
        min_change_g: float | None = None,
        settings: DetectorSettings | None = None,
        name: str = "plate",
    ) -> None:
        if not math.isfinite(noise_g) or noise_g < 0:
            raise ValueError(f"noise_g must be a finite number >= 0, got {noise_g!r}")
        self.settings = s = settings or DetectorSettings()
        self.name = name
        self._var = max(noise_g, s.min_noise_g) ** 2
        self.min_change_g = min_change_g
        self._baseline: float | None = None
        self._last_t = -math.inf
        self._last_w = 0.0
        self._stable = True
        self._started_s = 0.0
        self._window: deque[tuple[float, float]] = deque()
        self._trigger_g = 0.0
        self._rates = (0.0, 0.0, 0.0, 0.0)  # (period_s, retare and noise EMA weights, min variance)
        self._update_thresholds()

    # --- read-only state ---

    @property
    def noise_g(self) -> float:
        return math.sqrt(self._var)

    @property
    def baseline_g(self) -> float | None:
        return self._baseline

    @property
    def stable(self) -> bool:
        return self._stable

    @property
    def trigger_g(self) -> float:
        return self._trigger_g

    # --- feeding ---

    def interrupt(self) -> None:
        """The stream broke (lost or refused samples): the plate is unstable from its last sample.

        The next settle is measured against the baseline from before the break,
        so an item taken during the break is still reported.
        """
        if self._baseline is not None and self._stable:
            self._go_unstable(self._last_t)

    def update(self, t_s: float, weight_g: float) -> PlateChange | None:
        """Feed one sample (in time order); returns a change when the plate settles."""
        if not t_s > self._last_t:
            raise ValueError(
                f"{self.name}: sample time {t_s!r} is not after the previous {self._last_t!r}; "
                "feed samples in time order"
            )
        if not math.isfinite(weight_g):
            raise ValueError(f"{self.name}: weight {weight_g!r} at t={t_s} is not finite")
        if self._baseline is None:  # first sample: adopt it as the level
            self._baseline, self._last_t, self._last_w = weight_g, t_s, weight_g
            return None
        dt = t_s - self._last_t
        if dt > self.settings.max_gap_s and self._stable:
            self._go_unstable(self._last_t)
        prev_w = self._last_w
        self._last_t, self._last_w = t_s, weight_g
        if self._stable:
            d = weight_g - self._baseline
            if -self._trigger_g < d < self._trigger_g:
                # Stable: re-tare slowly (drift) and learn the noise from successive
                # differences, which a slow drift or a constant offset does not inflate.
                a = min(1.0, dt / self.settings.retare_tau_s)
                self._baseline += a * d
                diff = weight_g - prev_w
                an = min(1.0, dt / self.settings.noise_tau_s)
                self._var += an * (0.5 * diff * diff - self._var)
                self._var = max(self._var, self.settings.min_noise_g**2)
                return None
            self._go_unstable(t_s)
        return self._unstable_sample(t_s, weight_g)

    def feed(self, t0_s: float, period_s: float, weights_g: list[float]) -> list[PlateChange]:
        """Feed a batch of evenly spaced samples; same result as ``update`` on each.

        The common case (stable, every sample inside the trigger band) runs in
        one tight loop with the state in locals: a store has hundreds of plates
        sampled tens of times a second.
        """
        base = self._baseline
        if (
            not self._stable
            or base is None
            or not t0_s > self._last_t
            or (t0_s - self._last_t > self.settings.max_gap_s)
        ):
            return self._feed_slow(t0_s, period_s, weights_g)
        trig = self._trigger_g
        lo, hi = base - trig, base + trig
        if not all(lo < w < hi for w in weights_g):  # also False for NaN
            return self._feed_slow(t0_s, period_s, weights_g)
        if period_s != self._rates[0]:
            s = self.settings
            self._rates = (
                period_s,
                min(1.0, period_s / s.retare_tau_s),
                min(1.0, period_s / s.noise_tau_s),
                s.min_noise_g**2,
            )
        _, a, an, min_var = self._rates
        var, prev = self._var, self._last_w
        for w in weights_g:
            base += a * (w - base)
            diff = w - prev
            var += an * (0.5 * diff * diff - var)
            prev = w
        self._baseline = base
        self._var = var if var > min_var else min_var
        self._last_w = prev
        self._last_t = t0_s + (len(weights_g) - 1) * period_s
        return []

    def _feed_slow(self, t0_s: float, period_s: float, weights_g: list[float]) -> list[PlateChange]:
        out = []
        for k, w in enumerate(weights_g):
            change = self.update(t0_s + k * period_s, w)
            if change is not None:
                out.append(change)
        return out

    def _go_unstable(self, t_s: float) -> None:
        self._stable = False
        self._started_s = t_s
        self._window.clear()

    def _unstable_sample(self, t_s: float, weight_g: float) -> PlateChange | None:
        s = self.settings
        win = self._window
        win.append((t_s, weight_g))
        tol = 1e-6
        while win and win[0][0] < t_s - s.settle_s - tol:
            win.popleft()
        if len(win) < 3 or win[-1][0] - win[0][0] < s.settle_s - tol:
            return None
        n = len(win)
        mean = sum(w for _, w in win) / n
        var = sum((w - mean) ** 2 for _, w in win) / (n - 1)
        band = max(s.stable_sigmas * self.noise_g, s.stable_min_g)
        if var > band * band:
            return None
        half = n // 2
        first = sum(w for _, w in list(win)[:half]) / half
        second = sum(w for _, w in list(win)[n - half :]) / half
        if abs(second - first) > band:  # a slow ramp (hand easing off) is not settled
            return None
        return self._settle(t_s, mean)

    def _settle(self, t_s: float, level_g: float) -> PlateChange | None:
        assert self._baseline is not None
        delta = level_g - self._baseline
        self._baseline = level_g
        self._stable = True
        self._window.clear()
        floor_g = self.min_change_g if self.min_change_g is not None else self._trigger_g
        self._update_thresholds()
        if abs(delta) < floor_g:
            log.debug(
                "%s: settled change %.1f g below %.1f g, absorbed into the baseline",
                self.name,
                delta,
                floor_g,
            )
            return None
        return PlateChange(self._started_s, t_s, round(delta, 3), round(self.noise_g, 3))

    def _update_thresholds(self) -> None:
        s = self.settings
        self._trigger_g = max(s.trigger_sigmas * self.noise_g, s.trigger_min_g)


def read_quantity(
    delta_g: float, *, unit_weight_g: float, tolerance_g: float, noise_g: float
) -> tuple[int, float]:
    """Units of an item closest to ``|delta_g|`` and how well the change fits that whole number.

    The expected spread of ``k`` units is ``sqrt(k * tolerance_g**2 + noise_g**2)``.
    Confidence is the posterior of ``k`` against its neighbours (low halfway
    between two whole numbers) times a soft fit term (low when ``|delta_g|`` is
    many spreads away from any whole number, e.g. a different product).
    """
    if unit_weight_g <= 0:
        raise ValueError(f"unit_weight_g must be > 0, got {unit_weight_g!r}")
    x = abs(delta_g)
    k = max(1, round(x / unit_weight_g))

    def z(j: int) -> float:
        spread = math.sqrt(j * tolerance_g**2 + noise_g**2) or 1e-9
        return (x - j * unit_weight_g) / spread

    zk = z(k)
    # Clamp the exponent both ways: with unequal spreads a neighbour can fit far better.
    like = [
        math.exp(-0.5 * max(-1000.0, min(z(j) ** 2 - zk**2, 1000.0)))
        for j in (k - 1, k + 1)
        if j >= 1
    ]
    posterior = 1.0 / (1.0 + sum(like))
    fit = math.exp(-zk * zk / 8.0)
    return k, round(min(1.0, max(0.0, posterior * fit)), 4)


@dataclass(frozen=True)
class _Held:
    """A settled change waiting for its shelf to be quiet before it is measured."""

    controller_id: str
    change: PlateChange
    before_g: float  # the plate's level before the change


class ShelfAdapter:
    """Edge service: raw ``ShelfSamples`` in, settled ``ShelfEvent`` out.

    One detector per plate of every shelf controller in the store. Batches are
    read through an ``Inbox`` (known devices: the shelf controllers; batches
    older than the newest one are refused). A batch naming a plate its
    controller does not read, a weight outside the plate's range, or one that
    overlaps or leaves a gap after the previous batch is dead-lettered and
    never produces an event; after a refused batch or a gap the plates are
    treated as unstable, so a change across the hole is still measured against
    the level before it.

    Each batch is read by a ``LoadCellMonitor`` first: a plate whose cell is
    stuck, drifting, saturated or out of range is published as a
    ``LoadCellFault`` and makes no events while the fault lasts (nothing is
    invented from a cell that does not weigh; store operations and the brain
    hear the fault instead); its detector starts afresh when the fault is
    raised and when it clears. The other plates of the batch go on. Shelf
    cameras' pick and put episodes tell the monitor where a hand acted.

    Call ``start()`` to subscribe. All work happens in the transport's
    callback (for ``MqttTransport``: paho's network thread).
    """

    def __init__(
        self,
        store: Store,
        transport: Transport,
        *,
        service_id: str = "shelf-adapter",
        now: Callable[[], float] = time.time,
        settings: DetectorSettings | None = None,
        min_units: float = 0.4,
        max_hold_s: float = 4.0,
        faults: LoadCellFaultSettings | None = None,
    ) -> None:
        self.store = store
        self.transport = transport
        self.service_id = service_id
        self.inbox = Inbox(
            transport,
            store.store_id,
            service_kind="shelf",
            service_id=service_id,
            now=now,
            known_devices=[c.id for c in store.devices.shelf_controllers],
        )
        self.cameras = Inbox(
            transport,
            store.store_id,
            service_kind="shelf",
            service_id=service_id,
            now=now,
            known_devices=[c.id for c in store.devices.cameras if c.kind == "shelf"],
        )
        self.detectors: dict[str, PlateChangeDetector] = {}
        self._settings = settings
        self._owner: dict[str, str] = {}
        self._max_load_g: dict[str, float] = {}
        self._next_t: dict[str, float] = {}
        self._held: dict[str, _Held] = {}
        self._quiet_level: dict[str, float] = {}  # each plate's load when its shelf was last quiet
        self._shelf_of = {pid: store.plate(pid)[1].id for pid in store.plates()}
        self._shelf_plates: dict[str, list[str]] = {}
        for pid, shelf_id in self._shelf_of.items():
            self._shelf_plates.setdefault(shelf_id, []).append(pid)
        self.max_hold_s = max_hold_s
        self.published = 0
        self.faulty_batches_dropped = 0  # a plate's samples while its range fault is raised
        noise_by_ctl = {c.id: c.noise_g for c in store.devices.shelf_controllers}
        self._rate_hz = {c.id: c.sample_rate_hz for c in store.devices.shelf_controllers}
        # Any product can be put back on any plate, so the smallest change worth an
        # event is a fraction of the lightest unit in the catalog, not of the plate's own SKU.
        self._min_change_g = min_units * min(item.unit_weight_g for item in store.items.values())
        self._noise_g: dict[str, float] = {}
        for ctl, plate_ids in store.controller_plates.items():
            for pid in plate_ids:
                self._owner[pid] = ctl
                self._max_load_g[pid] = store.plate(pid)[2].max_load_g
                self._noise_g[pid] = noise_by_ctl[ctl]
                self.detectors[pid] = self._new_detector(pid)
        self.monitor = LoadCellMonitor(
            {p: (c, self._max_load_g[p], self._noise_g[p]) for p, c in self._owner.items()},
            faults,
            min_weight_g=MIN_WEIGHT_G,
        )
        self._started = False

    def _new_detector(self, plate_id: str) -> PlateChangeDetector:
        return PlateChangeDetector(
            noise_g=self._noise_g[plate_id],
            settings=self._settings,
            name=plate_id,
            min_change_g=self._min_change_g,
        )

    def start(self) -> None:
        """Subscribe to every shelf controller's samples and the shelf cameras' episodes
        (idempotent)."""
        if not self._started:
            self.inbox.on(TOPICS["shelf_samples"], self._on_samples, max_lateness_s=0.0)
            self.cameras.on(TOPICS["interactions"], self._on_interaction)
            self._started = True

    def _on_interaction(self, msg: Message) -> None:
        seen = msg.payload
        assert isinstance(seen, Interaction)
        if seen.action in ("pick", "put"):  # something changed hands: the cell must have moved
            self.monitor.hand_seen(seen.plate_id, seen.started_s, seen.event_time_s)

    def _on_samples(self, msg: Message) -> None:
        batch = msg.payload
        assert isinstance(batch, ShelfSamples)
        problem = self._check(batch)
        if problem is not None:
            reason, detail = problem
            self.inbox.reject(msg.topic, batch.model_dump_json().encode(), reason, detail)
            self._skip(batch, interrupt=reason != "overlapping samples")
            return
        self._watch(batch)
        refused = self._out_of_range(msg.topic, batch)
        period = 1.0 / batch.sample_rate_hz
        t0 = batch.event_time_s
        for ps in batch.plates:
            if ps.plate_id in refused:
                continue
            self._next_t[ps.plate_id] = t0 + len(ps.weights_g) * period
            if self.monitor.faulty(ps.plate_id):
                continue  # a cell that does not weigh makes no events
            if self.monitor.misreads(ps.plate_id):  # pinned at the top: a spike, or a fault
                self.detectors[ps.plate_id].interrupt()
                continue
            for change in self.detectors[ps.plate_id].feed(t0, period, ps.weights_g):
                self._hold(batch.device_id, ps.plate_id, change)
        self._release_quiet(
            batch.device_id, t0 + max(len(ps.weights_g) for ps in batch.plates) * period
        )

    def _hold(self, controller_id: str, plate_id: str, change: PlateChange) -> None:
        """Keep a settled change until its whole shelf is quiet.

        A hand pressing on a neighbouring plate leaks a few percent of its force
        into this plate's load cell; measuring the new level while the shelf
        still shakes would bias the change by that much. So the levels before
        and after are read while every plate on the shelf is stable (or the
        change is released after ``max_hold_s`` with the level it has then).
        """
        baseline = self.detectors[plate_id].baseline_g
        level_before_this = (baseline if baseline is not None else 0.0) - change.delta_g
        earlier = self._held.pop(plate_id, None)
        if earlier is not None:  # a second change on the plate: the first one ended before it
            self._release(plate_id, earlier, change.settled_s, level_before_this)
        before = self._quiet_level.get(plate_id, level_before_this)
        self._held[plate_id] = _Held(controller_id, change, before)

    def _release_quiet(self, controller_id: str, now_s: float) -> None:
        for plate_id, held in list(self._held.items()):
            waited = now_s - held.change.settled_s
            if self._shelf_quiet(plate_id) or waited >= self.max_hold_s:
                del self._held[plate_id]
                level = self.detectors[plate_id].baseline_g
                self._release(plate_id, held, now_s, level if level is not None else 0.0)
        for plate_id in self.store.controller_plates[controller_id]:
            det = self.detectors[plate_id]
            # The level before the next change must not include a neighbour's press either.
            if (
                plate_id not in self._held
                and det.baseline_g is not None
                and det.stable
                and self._shelf_quiet(plate_id)
            ):
                self._quiet_level[plate_id] = det.baseline_g

    def _release(self, plate_id: str, held: _Held, now_s: float, level_g: float) -> None:
        delta = level_g - held.before_g
        self._quiet_level[plate_id] = level_g
        if abs(delta) < (self.detectors[plate_id].min_change_g or 0.0):
            log.debug(
                "%s: change on %s faded to %.1f g once the shelf was quiet",
                self.service_id,
                plate_id,
                delta,
            )
            return
        change = PlateChange(held.change.started_s, now_s, delta, held.change.noise_g)
        self._emit(held.controller_id, plate_id, change)

    def _shelf_quiet(self, plate_id: str) -> bool:
        return all(self.detectors[p].stable for p in self._shelf_plates[self._shelf_of[plate_id]])

    def _watch(self, batch: ShelfSamples) -> None:
        """Publish the load-cell faults this batch raised or cleared; reseat those plates."""
        for fault in self.monitor.observe(batch):
            # The level a faulty cell reported says nothing of the plate: start afresh,
            # so neither the fault's onset nor its end is read as a pick or a put.
            self.detectors[fault.plate_id] = self._new_detector(fault.plate_id)
            self._held.pop(fault.plate_id, None)
            self._quiet_level.pop(fault.plate_id, None)
            publish(self.transport, self.store.store_id, fault)
            level = logging.WARNING if fault.state == "raised" else logging.INFO
            log.log(level, "%s: %s %s on %s: %s", self.service_id, fault.fault, fault.state,
                    fault.plate_id, fault.detail)  # fmt: skip

    def _out_of_range(self, topic: str, batch: ShelfSamples) -> set[str]:
        """Plates whose samples no cell can read: refused; the batch's other plates go on."""
        refused: dict[str, str] = {}
        for ps in batch.plates:
            lo, hi, max_g = min(ps.weights_g), max(ps.weights_g), self._max_load_g[ps.plate_id]
            if lo < MIN_WEIGHT_G or hi > max_g:
                refused[ps.plate_id] = f"{ps.plate_id!r} read {lo:.1f}..{hi:.1f} g"
                self.detectors[ps.plate_id].interrupt()
                self._next_t.pop(ps.plate_id, None)
        news = {p: d for p, d in refused.items() if not self.monitor.faulty(p)}
        self.faulty_batches_dropped += len(refused) - len(news)
        if news:  # a known fault is alerted once, not dead-lettered every batch
            detail = (
                f"plate {'; '.join(news.values())}, allowed {MIN_WEIGHT_G:.0f}..max_load_g "
                f"({', '.join(f'{self._max_load_g[p]:.0f}' for p in news)} g); "
                f"the other plates' samples were used"
            )
            self.inbox.reject(
                topic, batch.model_dump_json().encode(), "weight out of range", detail
            )
        return set(refused)

    def _check(self, batch: ShelfSamples) -> tuple[str, str] | None:
        """Why a whole batch must be refused, or None. Checked before any detector sees it."""
        ctl = batch.device_id
        declared_hz = self._rate_hz[ctl]
        # Sample times come from the rate: one far off (1e-300 Hz) puts them at infinity.
        if abs(batch.sample_rate_hz - declared_hz) > RATE_TOLERANCE * declared_hz:
            return (
                "wrong sample rate",
                f"controller {ctl!r} sends {batch.sample_rate_hz:g} Hz; the store file says "
                f"{declared_hz:g} Hz (within {RATE_TOLERANCE:.0%})",
            )
        period = 1.0 / batch.sample_rate_hz
        seen: set[str] = set()
        for ps in batch.plates:
            pid = ps.plate_id
            if self._owner.get(pid) != ctl:
                return "plate not owned", f"plate {pid!r} is not read by controller {ctl!r}"
            if pid in seen:
                return "duplicate plate", f"plate {pid!r} appears twice in one batch"
            seen.add(pid)
        for ps in batch.plates:
            expected = self._next_t.get(ps.plate_id)
            if expected is None:
                continue
            off = batch.event_time_s - expected
            if off < -0.5 * period:
                return (
                    "overlapping samples",
                    f"plate {ps.plate_id!r} batch starts "
                    f"{-off:.3f} s before the previous one ended",
                )
            if off > 0.5 * period:
                return "gap in samples", f"plate {ps.plate_id!r} missed {off:.3f} s of samples"
        return None

    def _skip(self, batch: ShelfSamples, *, interrupt: bool) -> None:
        """A refused batch: the plates it names are unstable until they settle again."""
        if not interrupt:
            return
        for ps in batch.plates:
            det = self.detectors.get(ps.plate_id)
            if det is not None and self._owner[ps.plate_id] == batch.device_id:
                det.interrupt()
                # Where the next batch should start is unknown after garbage: do not
                # report a second, derived gap; the detector already treats it as a break.
                self._next_t.pop(ps.plate_id, None)

    def _best_reading(
        self, entries: list[PlanogramEntry], change: PlateChange
    ) -> tuple[str, int, float]:
        """(sku, units, confidence) of the plate's SKU whose unit weight fits the change best.

        On a plate shared by SKUs of equal weight this is the first listed: the
        edge only reads weight; the brain weighs the SKUs against each other.
        """
        best: tuple[str, int, float] | None = None
        for entry in entries:
            item = self.store.items[entry.sku]
            quantity, confidence = read_quantity(
                change.delta_g,
                unit_weight_g=item.unit_weight_g,
                tolerance_g=item.weight_tolerance_g,
                noise_g=change.noise_g,
            )
            if best is None or confidence > best[2]:
                best = (entry.sku, quantity, confidence)
        assert best is not None, "called with at least one planogram entry"
        return best

    def _emit(self, controller_id: str, plate_id: str, change: PlateChange) -> None:
        entries = self.store.skus_on_plate(plate_id)
        if not entries:
            log.warning(
                "%s: change of %.1f g on plate %s, which has no planogram entry; not published",
                self.service_id,
                change.delta_g,
                plate_id,
            )
            return
        sku, quantity, confidence = self._best_reading(entries, change)
        start_ms, settle_ms = round(change.started_s * 1000), round(change.settled_s * 1000)
        event = ShelfEvent(
            # Start and settle times together: two changes released at once still differ.
            id=f"{controller_id}:{plate_id}:{start_ms}-{settle_ms}",
            event_time_s=change.settled_s,
            device_id=controller_id,
            plate_id=plate_id,
            action="pick" if change.delta_g < 0 else "put",
            delta_g=change.delta_g,
            started_s=change.started_s,
            sku=sku,
            quantity=min(quantity, 1000),
            confidence=confidence,
            noise_g=min(change.noise_g, 10_000.0),
        )
        publish(self.transport, self.store.store_id, event)
        self.published += 1
        log.debug("%s: %s", self.service_id, json.dumps(event.model_dump(), default=str))
