"""Faults for ``smartstore eval --faults``: what to inject, how, and how to tell the damage.

The pure parts of the fault-injection run (``smartstore.fault_run`` wires
them to a broker and worker processes):

- ``parse_faults``: the ``--faults`` list, checked;
- ``FaultInjector``: sits between a store's devices and the broker and, from
  a seed, sends a share of the messages twice (the copy a few messages later,
  as a QoS 1 redelivery comes) and holds a share back behind a few later
  ones. A held message is never passed by one stamped ``reorder_max_s`` or
  more after it, so no decision changes order against it: the brain decides
  a shelf event only once event time has passed it by ``attribution_delay_s``
  (0.3 s), and ``reorder_max_s`` (0.25 s) stays inside that;
- ``choose_moments``: seeded moments at which visits are open (when to kill
  the worker, when to restart the broker);
- ``compare_runs``: the faulty run's cart lines and receipts against the clean
  run's: lines lost, lines counted twice or that went elsewhere, receipts
  that differ.

>>> sent = []
>>> inj = FaultInjector(lambda m: sent.append(m.topic), duplicate_rate=1.0, reorder_rate=0.0,
...                     seed=1, duplicate_lag=1)
>>> for i in range(3):
...     inj.push(Outgoing(f"t{i}", b"{}", 1, float(i)))
>>> inj.flush(); sent
['t0', 't1', 't0', 't2', 't1', 't2']
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from iot.payloads import CartEvent, Receipt

__all__ = [
    "FAULT_KINDS",
    "FaultInjector",
    "LineKey",
    "Outgoing",
    "RunRecord",
    "choose_moments",
    "compare_runs",
    "parse_faults",
    "summarize_receipts",
]

FAULT_KINDS = ("worker-kill", "broker-restart", "duplicates", "reorder")


def parse_faults(text: str) -> frozenset[str]:
    """``worker-kill,broker-restart,...`` → the set; an unknown or empty entry: ValueError."""
    kinds = [k.strip() for k in text.split(",")]
    bad = [k for k in kinds if k not in FAULT_KINDS]
    if bad or not kinds:
        raise ValueError(
            f"--faults {text!r}: unknown fault {', '.join(repr(b) for b in bad)}; "
            f"give a comma-separated list of {', '.join(FAULT_KINDS)}"
        )
    return frozenset(kinds)


@dataclass(frozen=True)
class Outgoing:
    """One message on its way to the broker."""

    topic: str
    data: bytes
    qos: int
    event_time_s: float


@dataclass
class _Held:
    msg: Outgoing
    let_pass: int  # how many later messages may still go before it


class FaultInjector:
    """Duplicates and reorders a message stream on its way out, deterministically from ``seed``.

    ``send(msg)`` is the real publish. ``duplicate_rate``: share of messages sent
    twice, the copy after 1..``duplicate_lag`` later messages. ``reorder_rate``:
    share held back behind 1..``reorder_depth`` later messages, never behind one
    stamped ``reorder_max_s`` or more after it. Call ``flush`` at the end.
    """

    def __init__(
        self,
        send: Callable[[Outgoing], None],
        *,
        duplicate_rate: float = 0.0,
        reorder_rate: float = 0.0,
        seed: int = 0,
        duplicate_lag: int = 20,
        reorder_depth: int = 4,
        reorder_max_s: float = 0.25,
    ) -> None:
        for name, rate in (("duplicate_rate", duplicate_rate), ("reorder_rate", reorder_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name}={rate!r}: give a share between 0 and 1")
        if duplicate_lag < 1 or reorder_depth < 1 or reorder_max_s <= 0:
            raise ValueError(
                f"duplicate_lag={duplicate_lag}, reorder_depth={reorder_depth}: give at least "
                f"1; reorder_max_s={reorder_max_s}: give a positive time"
            )
        self._send = send
        self.duplicate_rate = duplicate_rate
        self.reorder_rate = reorder_rate
        self.duplicate_lag = duplicate_lag
        self.reorder_depth = reorder_depth
        self.reorder_max_s = reorder_max_s
        self._rng = random.Random(seed)
        self._held: list[_Held] = []
        self._copies: list[tuple[int, Outgoing]] = []  # (messages still to go first, copy)
        self.sent = 0  # every publish, copies included
        self.duplicates = 0
        self.reordered = 0

    def push(self, msg: Outgoing) -> None:
        """Take the next message of the stream (it may go now, later, or twice)."""
        self._release(lambda h: msg.event_time_s >= h.msg.event_time_s + self.reorder_max_s)
        if self.reorder_rate and self._rng.random() < self.reorder_rate:
            self._held.append(_Held(msg, self._rng.randint(1, self.reorder_depth)))
            self.reordered += 1
            return
        self._emit(msg)
        for h in self._held:
            h.let_pass -= 1
        self._release(lambda h: h.let_pass <= 0)

    def flush(self) -> None:
        """Send everything still held back, then the copies still due."""
        self._release(lambda h: True)
        for _, copy in self._copies:
            self._publish(copy)
        self._copies.clear()

    def _release(self, due: Callable[[_Held], bool]) -> None:
        going = [h for h in self._held if due(h)]
        if going:
            self._held = [h for h in self._held if not due(h)]
            for h in going:
                self._emit(h.msg)

    def _emit(self, msg: Outgoing) -> None:
        self._publish(msg)
        still: list[tuple[int, Outgoing]] = []
        for left, copy in self._copies:
            if left <= 1:
                self._publish(copy)
            else:
                still.append((left - 1, copy))
        self._copies = still
        if self.duplicate_rate and self._rng.random() < self.duplicate_rate:
            self._copies.append((self._rng.randint(1, self.duplicate_lag), msg))
            self.duplicates += 1

    def _publish(self, msg: Outgoing) -> None:
        self.sent += 1
        self._send(msg)


def choose_moments(
    spans: Sequence[tuple[float, float]],
    count: int,
    *,
    seed: int,
    min_gap_s: float = 30.0,
    edge_s: float = 5.0,
) -> list[float]:
    """``count`` seeded moments, each inside some visit's ``(entered_s, exited_s)``.

    Moments keep ``edge_s`` inside their visit and ``min_gap_s`` from each other
    (fewer come back when the visits leave no room). Sorted.
    """
    usable = [(a + edge_s, b - edge_s) for a, b in spans if b - a > 2 * edge_s]
    if not usable or count <= 0:
        return []
    rng = random.Random(seed)
    weights = [b - a for a, b in usable]
    chosen: list[float] = []
    for _ in range(count * 50):
        if len(chosen) == count:
            break
        a, b = rng.choices(usable, weights)[0]
        t = rng.uniform(a, b)
        i = bisect.bisect(chosen, t)
        near = chosen[max(0, i - 1) : i + 1]
        if all(abs(t - c) >= min_gap_s for c in near):
            chosen.insert(i, t)
    return chosen


LineKey = tuple[str, str, int]  # (session, sku, quantity delta) of one cart line


@dataclass
class RunRecord:
    """What a run left in its ledger: cart lines by id, receipts by session."""

    lines: dict[str, LineKey] = field(default_factory=dict)
    receipts: dict[str, Receipt] = field(default_factory=dict)

    @classmethod
    def of(cls, lines: Iterable[CartEvent], receipts: Iterable[Receipt]) -> RunRecord:
        record = cls()
        for line in lines:
            record.lines[line.id] = (line.session_id, line.sku, line.quantity_delta)
        for receipt in receipts:
            if receipt.session_id in record.receipts:
                raise ValueError(f"two receipts for session {receipt.session_id}")
            record.receipts[receipt.session_id] = receipt
        return record


def _receipt_key(r: Receipt) -> tuple[object, ...]:
    """What must be equal for two receipts to be the same receipt to the shopper."""
    lines = sorted((x.sku, x.quantity, x.unit_price_cents, x.total_cents) for x in r.lines)
    return (r.id, r.token, r.exited_s, tuple(lines), r.total_cents, r.needs_review)


def _units(r: Receipt | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in r.lines if r is not None else []:
        out[line.sku] = out.get(line.sku, 0) + line.quantity
    return out


def compare_runs(clean: RunRecord, faulty: RunRecord) -> dict[str, object]:
    """The faulty run against the clean one (JSON-ready).

    ``lost_lines``: clean cart lines (by id: one per shelf event) the faulty run
    does not have with the same visit, SKU and quantity; ``double_counted_lines``:
    faulty lines the clean run does not have so (an extra line, or one charged to
    another visit, SKU or quantity). ``lost_units``/``double_counted_units``: the
    same over receipts, units per (visit, SKU). ``receipts_match_clean_run``: the
    same visits got receipts, each with the same id, lines, prices, total and
    review flag.
    """
    lost = [i for i, key in clean.lines.items() if faulty.lines.get(i) != key]
    extra = [i for i, key in faulty.lines.items() if clean.lines.get(i) != key]
    missing = sorted(set(clean.receipts) - set(faulty.receipts))
    added = sorted(set(faulty.receipts) - set(clean.receipts))
    differing = sorted(
        s
        for s in set(clean.receipts) & set(faulty.receipts)
        if _receipt_key(clean.receipts[s]) != _receipt_key(faulty.receipts[s])
    )
    lost_units = double_units = 0
    for s in set(clean.receipts) | set(faulty.receipts):
        a, b = _units(clean.receipts.get(s)), _units(faulty.receipts.get(s))
        for sku in a.keys() | b.keys():
            lost_units += max(a.get(sku, 0) - b.get(sku, 0), 0)
            double_units += max(b.get(sku, 0) - a.get(sku, 0), 0)
    return {
        "lost_lines": len(lost),
        "double_counted_lines": len(extra),
        "receipts_match_clean_run": not (missing or added or differing),
        "lines_clean": len(clean.lines),
        "lines_faulty": len(faulty.lines),
        "receipts_clean": len(clean.receipts),
        "receipts_faulty": len(faulty.receipts),
        "receipts_missing": missing,
        "receipts_extra": added,
        "receipts_differing": differing,
        "lost_units": lost_units,
        "double_counted_units": double_units,
        "lost_line_ids": sorted(lost)[:20],
        "double_counted_line_ids": sorted(extra)[:20],
    }


def summarize_receipts(receipts: Mapping[str, Receipt]) -> dict[str, int]:
    """Counts of a run's receipts: how many, how many flagged, how many units."""
    return {
        "receipts": len(receipts),
        "needing_review": sum(r.needs_review for r in receipts.values()),
        "units": sum(sum(_units(r).values()) for r in receipts.values()),
    }
