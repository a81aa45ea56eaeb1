"""Receipt scoring against ground truth."""

from __future__ import annotations

import math

import pytest

from iot.payloads import Receipt, ReceiptLine
from sim.scoring import TrueVisit, score

EXIT = 1_800_000_000.0


def receipt(
    token: str, lines: dict[str, int], *, delay_s: float = 0.5, review: bool = False
) -> Receipt:
    return Receipt(
        id=f"r-{token}",
        event_time_s=EXIT + delay_s,
        device_id="brain",
        session_id=f"s-{token}",
        token=token,
        entered_s=EXIT - 100,
        exited_s=EXIT,
        currency="EUR",
        lines=[
            ReceiptLine(
                sku=s, name=s, quantity=q, unit_price_cents=100, total_cents=100 * q, confidence=1.0
            )
            for s, q in lines.items()
        ],
        total_cents=100 * sum(lines.values()),
        needs_review=review,
    )


def test_perfect_receipts_score_one() -> None:
    visits = [TrueVisit("a", EXIT, {"X": 2}), TrueVisit("b", EXIT, {})]
    m = score(visits, [receipt("a", {"X": 2}), receipt("b", {})])
    assert m["receipt_exact_match"] == 1.0
    assert m["line_item_f1"] == 1.0
    assert m["exit_to_receipt_p95_s"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("truth", "predicted", "exact", "precision", "recall"),
    [
        ({"X": 2}, {"X": 1}, 0.0, 1.0, 0.5),  # one unit missed
        ({"X": 1}, {"X": 1, "Y": 1}, 0.0, 0.5, 1.0),  # one extra line
        ({"X": 1, "Y": 0}, {"X": 1}, 1.0, 1.0, 1.0),  # zero quantities do not count
        ({"X": 3}, {"Y": 3}, 0.0, 0.0, 0.0),  # wrong SKU
    ],
)
def test_line_items_count_quantities(truth, predicted, exact, precision, recall) -> None:
    m = score([TrueVisit("a", EXIT, truth)], [receipt("a", predicted)])
    assert m["receipt_exact_match"] == exact
    assert m["line_item_precision"] == pytest.approx(precision)
    assert m["line_item_recall"] == pytest.approx(recall)


def test_missing_unexpected_and_flagged_receipts() -> None:
    visits = [TrueVisit("a", EXIT, {"X": 1}), TrueVisit("b", EXIT, {"Y": 1})]
    m = score(visits, [receipt("a", {"X": 1}, review=True, delay_s=2.0), receipt("zz", {"Q": 1})])
    assert m["missing_receipts"] == 1 and m["unexpected_receipts"] == 1
    assert m["receipt_exact_match"] == 0.5
    assert m["review_rate"] == 0.5
    assert m["review_precision"] == 0.0  # the flagged receipt was right
    assert m["silent_error_rate"] == 0.5  # visit b got no receipt and no flag
    assert m["exit_to_receipt_p50_s"] == pytest.approx(2.0)


def test_no_receipts_gives_nan_latency_not_a_crash() -> None:
    m = score([TrueVisit("a", EXIT, {"X": 1})], [])
    assert m["receipt_exact_match"] == 0.0 and math.isnan(m["exit_to_receipt_p95_s"])
