"""Linear assignment against brute force on small random matrices."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vision.assignment import (
    connected_components,
    match_capped,
    match_max_cardinality,
    solve_dense,
)


def _partial_matchings(n: int, m: int):
    """Every matching (set of disjoint row-column pairs), the empty one included."""
    for size in range(min(n, m) + 1):
        for rows in itertools.combinations(range(n), size):
            for cols in itertools.permutations(range(m), size):
                yield list(zip(rows, cols, strict=True))


def _brute_dense(cost: np.ndarray) -> float:
    n, m = cost.shape
    k = min(n, m)
    return min(
        sum(cost[r, c] for r, c in pairs) for pairs in _partial_matchings(n, m) if len(pairs) == k
    )


def _brute_capped(cost: np.ndarray, cap: float) -> float:
    n, m = cost.shape
    best = np.inf
    for pairs in _partial_matchings(n, m):
        if any(cost[r, c] > cap for r, c in pairs):
            continue
        total = sum(cost[r, c] for r, c in pairs) + (n + m - 2 * len(pairs)) * cap / 2
        best = min(best, total)
    return best


def _brute_max_card(cost: np.ndarray, cap: float) -> tuple[int, float]:
    n, m = cost.shape
    best = (0, 0.0)
    for pairs in _partial_matchings(n, m):
        if any(cost[r, c] > cap for r, c in pairs):
            continue
        key = (len(pairs), sum(cost[r, c] for r, c in pairs))
        if key[0] > best[0] or (key[0] == best[0] and key[1] < best[1]):
            best = key
    return best


def _shapes() -> list[tuple[int, int, int]]:
    return [(n, m, seed) for n in range(0, 5) for m in range(0, 5) for seed in range(3)]


@pytest.mark.parametrize(("n", "m", "seed"), _shapes())
def test_solve_dense_matches_brute_force(n: int, m: int, seed: int) -> None:
    cost = np.random.default_rng(seed).uniform(-1.0, 5.0, size=(n, m))
    rows, cols = solve_dense(cost)
    assert len(rows) == min(n, m)
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    if n and m:
        assert cost[rows, cols].sum() == pytest.approx(_brute_dense(cost))


@pytest.mark.parametrize(("n", "m", "seed"), _shapes())
def test_match_capped_matches_brute_force(n: int, m: int, seed: int) -> None:
    cost = np.random.default_rng(100 + seed).uniform(0.0, 1.0, size=(n, m))
    cap = 0.5
    rows, cols = match_capped(cost, cap)
    assert (cost[rows, cols] <= cap).all()
    total = cost[rows, cols].sum() + (n + m - 2 * len(rows)) * cap / 2
    assert total == pytest.approx(_brute_capped(cost, cap))


@pytest.mark.parametrize(("n", "m", "seed"), _shapes())
def test_match_max_cardinality_matches_brute_force(n: int, m: int, seed: int) -> None:
    cost = np.random.default_rng(200 + seed).uniform(0.0, 1.0, size=(n, m))
    cost[cost > 0.8] = np.nan  # forbidden pairs
    rows, cols = match_max_cardinality(cost, 0.6)
    assert (len(rows), pytest.approx(cost[rows, cols].sum())) == _brute_max_card(
        np.nan_to_num(cost, nan=np.inf), 0.6
    )


def test_max_cardinality_prefers_more_pairs_over_lower_cost() -> None:
    # Row 0 alone would take column 0 (cost 0.0), leaving row 1 unmatched;
    # two pairs (0.4 + 0.4) are better by cardinality.
    cost = np.array([[0.0, 0.4], [0.4, np.nan]])
    rows, cols = match_max_cardinality(cost, 0.5)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_capped_prefers_cheaper_total_over_more_pairs() -> None:
    # Matching both (0.45 + 0.45 = 0.9) costs more than one pair (0.0) plus
    # two unmatched halves (0.25 + 0.25 = 0.5).
    cost = np.array([[0.0, 0.45], [0.45, np.nan]])
    rows, cols = match_capped(cost, 0.5)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 0)]


def test_components_split_independent_blocks() -> None:
    allowed = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=bool)
    comps = sorted((r.tolist(), c.tolist()) for r, c in connected_components(allowed))
    assert comps == [([0], [0]), ([1, 2], [1, 2])]


@pytest.mark.parametrize(
    ("cost", "message"),
    [(np.zeros(3), "2-D"), (np.array([[np.inf]]), "finite")],
)
def test_solve_dense_rejects_bad_input(cost: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        solve_dense(cost)
