"""Scoring store operations against the twin's truth: footfall, stock-outs, shrink cases.

- ``footfall_error``: |entries counted - people who walked in| / people who
  walked in (scanned visits and tailgaters alike).
- stock-outs: each true stock-out (a pile's last unit left) is alerted by the
  first stock-out alert for that pile raised from ``early_s`` before it until
  the pile was refilled, or by one still open from before (a unit put back
  does not clear an alert: hysteresis); ``stockout_alert_p95_s`` is the 95th
  percentile of raise minus empty time over true stock-outs (0 for one already
  open; a missed one counts as the rest of the run). ``false_stockout_alerts``
  counts alerts raised while the pile truly still held units.
- shrink: a filed finding matches an incident when it points at it:
  tailgating (an entry case within ``entry_slack_s`` of the tailgater's entry,
  or any case naming a plate the tailgater took from, or a tag it carried,
  during its visit), wrong_put_back (a case on that plate within
  ``act_slack_s``), weight_loss (a case on that plate within ``act_slack_s``).
  ``shrink_recall``: incidents matched; ``shrink_precision``: cases with a
  matching finding; ``shrink_alert_p95_s``: 95th percentile, over theft
  incidents, of the first matching finding's detection minus the person's exit
  (never below 0; an unmatched incident counts as the rest of the run).

>>> from sim.truth import IncidentTruth
>>> inc = IncidentTruth(kind="weight_loss", category="operations", t_s=10.0, until_s=10.0,
...                     plate_ids=["p1"])
>>> shrink_metrics([Case("c1", "weight_loss_no_interaction", 12.0, 11.0, "p1", None)],
...                [inc], end_s=100.0)["shrink_recall"]
1.0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sim.truth import IncidentTruth, StockoutTruth

__all__ = ["Case", "footfall_error", "shrink_metrics", "stockout_metrics"]

_THEFT_RULES = {"tailgating", "unattributed_removal", "tagged_item_unpaid", "wrong_put_back"}


@dataclass(frozen=True)
class Case:
    """One filed finding, reduced to what scoring reads."""

    case_id: str
    rule: str
    detected_s: float
    incident_s: float
    plate_id: str | None
    epc_hex: str | None


def footfall_error(counted: int, truth_people: int) -> float:
    return abs(counted - truth_people) / truth_people if truth_people else float(counted > 0)


def _p95(values: Sequence[float]) -> float | None:
    return round(float(np.percentile(values, 95)), 3) if values else None


def stockout_metrics(
    alerts: Iterable[tuple[str, str, float, float | None]],
    truth: Sequence[StockoutTruth],
    *,
    end_s: float,
    early_s: float = 1.0,
) -> dict[str, float | int | None]:
    """``alerts``: (plate, sku, raised_s, cleared_s or None) of every stock-out alert."""
    raised = sorted(alerts, key=lambda a: a[2])
    by_pile: dict[tuple[str, str], list[StockoutTruth]] = {}
    for so in truth:
        by_pile.setdefault((so.plate_id, so.sku), []).append(so)

    def empty_at(pile: tuple[str, str], t: float) -> bool:
        return any(
            so.empty_s - early_s <= t <= (so.refilled_s if so.refilled_s is not None else end_s)
            for so in by_pile.get(pile, [])
        )

    latencies: list[float] = []
    alerted = 0
    for so in truth:
        until = so.refilled_s if so.refilled_s is not None else end_s
        pile = (so.plate_id, so.sku)
        # an alert still open from before (hysteresis: a unit put back does not clear it)
        already = any(
            (a[0], a[1]) == pile and a[2] < so.empty_s and (a[3] is None or a[3] > so.empty_s)
            for a in raised
        )
        first = next(
            (
                a[2]
                for a in raised
                if (a[0], a[1]) == pile and so.empty_s - early_s <= a[2] <= until
            ),
            None,
        )
        if already:
            latencies.append(0.0)
        elif first is not None:
            latencies.append(max(0.0, first - so.empty_s))
        else:
            latencies.append(end_s - so.empty_s)
        alerted += already or first is not None
    false = sum(not empty_at((a[0], a[1]), a[2]) for a in raised)
    return {
        "stockouts": len(truth),
        "stockouts_alerted": alerted,
        "stockout_alert_p95_s": _p95(latencies),
        "false_stockout_alerts": false,
    }


def _matches(case: Case, inc: IncidentTruth, *, entry_slack_s: float, act_slack_s: float) -> bool:
    if inc.kind == "tailgating":
        during = inc.t_s - entry_slack_s <= case.incident_s <= inc.until_s + act_slack_s
        if case.rule == "tailgating":
            return abs(case.incident_s - inc.t_s) <= entry_slack_s
        on_its_plates = case.plate_id in inc.plate_ids or case.epc_hex in inc.epcs
        return during and on_its_plates and case.rule in _THEFT_RULES
    if inc.kind == "wrong_put_back":
        if case.rule == "tagged_item_unpaid":
            return case.epc_hex in inc.epcs
        return case.plate_id in inc.plate_ids and abs(case.incident_s - inc.t_s) <= act_slack_s
    return (
        case.plate_id in inc.plate_ids
        and abs(case.incident_s - inc.t_s) <= act_slack_s
        and case.rule in {"weight_loss_no_interaction", "unattributed_removal"}
    )


def shrink_metrics(
    filed: Sequence[Case],
    incidents: Sequence[IncidentTruth],
    *,
    end_s: float,
    entry_slack_s: float = 8.0,
    act_slack_s: float = 10.0,
) -> dict[str, float | int | None]:
    cases = {c.case_id for c in filed}
    good_cases: set[str] = set()
    matched = 0
    latencies: list[float] = []
    for inc in incidents:
        hits = [
            c
            for c in filed
            if _matches(c, inc, entry_slack_s=entry_slack_s, act_slack_s=act_slack_s)
        ]
        good_cases |= {c.case_id for c in hits}
        matched += bool(hits)
        if inc.category == "theft":
            first = min((c.detected_s for c in hits), default=end_s)
            latencies.append(max(0.0, first - inc.until_s))
    return {
        "shrink_incidents": len(incidents),
        "shrink_cases": len(cases),
        "shrink_recall": round(matched / len(incidents), 4) if incidents else 1.0,
        "shrink_precision": round(len(good_cases) / len(cases), 4) if cases else 1.0,
        "shrink_alert_p95_s": _p95(latencies),
    }
