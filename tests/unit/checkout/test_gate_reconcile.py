"""Gate passages the tracks missed: matched in time, per gate, by party size."""

from __future__ import annotations

import pytest

from checkout.gate_reconcile import GateReconciler


@pytest.mark.parametrize(
    ("passages", "crossings", "unseen"),
    [
        ([(100.0, 1)], [101.0], 0),  # seen
        ([(100.0, 1)], [], 1),  # nobody crossed: the tracks missed a person
        ([(100.0, 1)], [108.0], 1),  # too late to be that person
        ([(100.0, 2)], [100.5], 1),  # a party of two, one crossing
        ([(100.0, 1), (101.5, 1)], [100.8], 1),  # two scan-ins, one blob through the door
        ([(100.0, 1)], [100.5, 101.0], 0),  # a tailgater: the extra crossing stays counted
    ],
)
def test_unseen_passages(
    passages: list[tuple[float, int]], crossings: list[float], unseen: int
) -> None:
    r = GateReconciler(window_s=5.0)
    for t, people in passages:
        r.passage("gate-in", t, people)
    for t in crossings:
        r.crossing("gate-in", t)
    r.settle(200.0)
    assert r.unseen["gate-in"] == unseen


def test_a_crossing_at_another_gate_does_not_count() -> None:
    r = GateReconciler(window_s=5.0)
    r.passage("gate-in", 100.0)
    r.crossing("gate-out", 100.0)
    r.settle(200.0)
    assert r.unseen["gate-in"] == 1


def test_nothing_is_decided_before_the_window_has_passed() -> None:
    r = GateReconciler(window_s=5.0)
    r.passage("gate-in", 100.0)
    r.settle(104.0)
    assert r.unseen["gate-in"] == 0
    r.crossing("gate-in", 104.5)
    r.settle(106.0)
    assert r.unseen["gate-in"] == 0


def test_memory_stays_bounded() -> None:
    r = GateReconciler(window_s=5.0)
    for k in range(10_000):
        r.crossing("gate-in", float(k))
        r.settle(float(k))
    assert len(r._crossings) <= 20


def test_a_bad_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s must be positive"):
        GateReconciler(window_s=0)
