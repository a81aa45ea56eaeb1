"""Scoring store operations: stock-out latency and false alerts, shrink matching, footfall."""

from __future__ import annotations

import pytest

from sim.ops_scoring import Case, footfall_error, shrink_metrics, stockout_metrics
from sim.truth import IncidentTruth, StockoutTruth

T = 1000.0


def test_stockout_latency_misses_and_false_alerts() -> None:
    truth = [
        StockoutTruth(plate_id="p1", sku="A", empty_s=T, refilled_s=T + 100),
        StockoutTruth(plate_id="p2", sku="B", empty_s=T + 10),  # never alerted
    ]
    alerts = [("p1", "A", T + 2.0, T + 101), ("p1", "A", T + 200.0, None), ("p3", "C", T + 5, None)]
    m = stockout_metrics(alerts, truth, end_s=T + 210)
    assert m["stockouts_alerted"] == 1
    assert m["false_stockout_alerts"] == 2  # after the refill, and on a pile that never ran out
    # p95 of [2, 200]: a miss costs the rest of the run
    assert m["stockout_alert_p95_s"] == pytest.approx(2 + 0.95 * 198, abs=1e-3)


def test_an_alert_a_moment_early_still_counts() -> None:
    truth = [StockoutTruth(plate_id="p1", sku="A", empty_s=T)]
    m = stockout_metrics([("p1", "A", T - 0.5, None)], truth, end_s=T + 60)
    assert (m["stockouts_alerted"], m["stockout_alert_p95_s"]) == (1, 0.0)
    assert m["false_stockout_alerts"] == 0


def test_an_alert_left_open_over_a_put_back_covers_the_next_stock_out() -> None:
    # empty, one unit put back (no clear: hysteresis), empty again
    truth = [
        StockoutTruth(plate_id="p1", sku="A", empty_s=T, refilled_s=T + 20),
        StockoutTruth(plate_id="p1", sku="A", empty_s=T + 40, refilled_s=T + 90),
    ]
    m = stockout_metrics([("p1", "A", T + 1.5, T + 91)], truth, end_s=T + 100)
    assert (m["stockouts_alerted"], m["stockout_alert_p95_s"]) == (2, pytest.approx(1.425))
    assert m["false_stockout_alerts"] == 0


def test_an_alert_raised_while_units_remain_is_false() -> None:
    truth = [StockoutTruth(plate_id="p1", sku="A", empty_s=T + 50)]
    m = stockout_metrics([("p1", "A", T + 10, None)], truth, end_s=T + 100)
    assert m["false_stockout_alerts"] == 1
    assert m["stockouts_alerted"] == 1  # the store did know, early, when it ran out


TAILGATER = IncidentTruth(
    kind="tailgating",
    category="theft",
    t_s=T,
    until_s=T + 60,
    token="t-1",
    plate_ids=["p4"],
    epcs=["3074"],
)
SWAP = IncidentTruth(
    kind="wrong_put_back", category="theft", t_s=T + 300, until_s=T + 330, plate_ids=["p7"]
)


@pytest.mark.parametrize(
    ("case", "matches"),
    [
        (Case("c", "tailgating", T + 6, T + 1, None, None), True),
        (Case("c", "tailgating", T + 30, T + 20, None, None), False),  # not at its entry
        (Case("c", "unattributed_removal", T + 30, T + 29, "p4", None), True),
        (Case("c", "unattributed_removal", T + 30, T + 29, "p5", None), False),
        (Case("c", "tagged_item_unpaid", T + 62, T + 58, None, "3074"), True),
        (Case("c", "unattributed_removal", T + 500, T + 499, "p4", None), False),  # after it left
    ],
)
def test_what_points_at_a_tailgater(case: Case, matches: bool) -> None:
    m = shrink_metrics([case], [TAILGATER], end_s=T + 1000)
    assert m["shrink_recall"] == (1.0 if matches else 0.0)
    assert m["shrink_precision"] == (1.0 if matches else 0.0)


def test_alert_time_runs_from_the_thiefs_exit_and_a_miss_costs_the_run() -> None:
    cases = [Case("c1", "tagged_item_unpaid", T + 61.5, T + 58, None, "3074")]
    m = shrink_metrics(cases, [TAILGATER, SWAP], end_s=T + 1000)
    assert m["shrink_recall"] == 0.5
    assert m["shrink_alert_p95_s"] == pytest.approx(1.5 + 0.95 * (670 - 1.5), abs=1e-3)


def test_findings_merged_into_one_case_count_it_once() -> None:
    cases = [
        Case("c1", "tailgating", T + 6, T + 1, None, None),
        Case("c1", "unattributed_removal", T + 30, T + 29, "p9", None),
        Case("c2", "wrong_put_back", T + 301, T + 301, "p7", None),
    ]
    m = shrink_metrics(cases, [TAILGATER, SWAP], end_s=T + 1000)
    assert (m["shrink_cases"], m["shrink_precision"], m["shrink_recall"]) == (2, 1.0, 1.0)


@pytest.mark.parametrize(
    ("counted", "people", "error"), [(60, 60, 0.0), (59, 60, 1 / 60), (0, 0, 0.0)]
)
def test_footfall_error(counted: int, people: int, error: float) -> None:
    assert footfall_error(counted, people) == pytest.approx(error)
