"""Score issued receipts against the twin's ground truth.

Definitions (see ../shared/REFERENCE.md, "Metrics used in the field"):

- receipt exact-match: share of true visits whose receipt has exactly the true
  per-SKU quantities (put-backs netted). A visit with no receipt is a miss.
- line items: over (visit, SKU) quantities, TP = min(pred, true),
  FP = pred beyond true, FN = true beyond pred; precision, recall, F1.
- review rate: share of true visits whose receipt is flagged for review.
- silent error rate: share of true visits whose receipt is wrong and was not
  flagged: the errors a shopper would find before the store does.
- review precision: share of flagged receipts that really were wrong (the
  rest cost a reviewer's time for nothing).
- exit-to-receipt latency: receipt issue time minus the true exit time, both
  event time, over visits that got a receipt.

>>> from iot.payloads import Receipt
>>> r = Receipt(id="r", event_time_s=2e9 + 0.6, device_id="b", session_id="s", token="t",
...             entered_s=2e9 - 60, exited_s=2e9, currency="EUR", lines=[], total_cents=0,
...             needs_review=False)
>>> score([TrueVisit("t", 2e9, {})], [r])["receipt_exact_match"]
1.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from iot.payloads import Receipt

__all__ = ["TrueVisit", "format_table", "score"]


@dataclass(frozen=True)
class TrueVisit:
    """What scoring needs of a visit's ground truth."""

    token: str
    exited_s: float
    basket: Mapping[str, int]


def score(visits: Sequence[TrueVisit], receipts: Iterable[Receipt]) -> dict[str, float | int]:
    """Metrics for one run; keys are stable (they are the eval JSON)."""
    by_token: dict[str, Receipt] = {}
    duplicates = 0
    for r in receipts:
        if r.token in by_token:
            duplicates += 1
        by_token[r.token] = r
    tokens = {v.token for v in visits}
    exact = tp = fp = fn = flagged = flagged_wrong = silent = 0
    latencies: list[float] = []
    for visit in visits:
        receipt = by_token.get(visit.token)
        predicted = _quantities(receipt)
        truth = {k: q for k, q in visit.basket.items() if q > 0}
        right = predicted == truth
        exact += right
        for sku in predicted.keys() | truth.keys():
            p, t = predicted.get(sku, 0), truth.get(sku, 0)
            tp += min(p, t)
            fp += max(p - t, 0)
            fn += max(t - p, 0)
        if receipt is not None:
            flagged += receipt.needs_review
            flagged_wrong += receipt.needs_review and not right
            latencies.append(receipt.event_time_s - visit.exited_s)
        silent += not right and not (receipt is not None and receipt.needs_review)
    n = len(visits)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "visits": n,
        "receipts": sum(1 for t in by_token if t in tokens),
        "missing_receipts": sum(1 for v in visits if v.token not in by_token),
        "unexpected_receipts": sum(1 for t in by_token if t not in tokens),
        "duplicate_receipts": duplicates,
        "receipt_exact_match": exact / n if n else 0.0,
        "line_item_precision": precision,
        "line_item_recall": recall,
        "line_item_f1": f1,
        "review_rate": flagged / n if n else 0.0,
        "review_precision": flagged_wrong / flagged if flagged else 1.0,
        "silent_error_rate": silent / n if n else 0.0,
        "exit_to_receipt_p50_s": _percentile(latencies, 50),
        "exit_to_receipt_p95_s": _percentile(latencies, 95),
        "exit_to_receipt_max_s": max(latencies) if latencies else float("nan"),
    }


def _quantities(receipt: Receipt | None) -> dict[str, int]:
    if receipt is None:
        return {}
    out: dict[str, int] = {}
    for line in receipt.lines:
        out[line.sku] = out.get(line.sku, 0) + line.quantity
    return out


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def format_table(metrics: Mapping[str, float | int | str]) -> str:
    """A two-column text table of metrics, as ``smartstore eval`` prints it."""
    width = max(len(k) for k in metrics)
    rows = []
    for key, value in metrics.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        rows.append(f"  {key:<{width}}  {shown}")
    return "\n".join(rows)
