"""Linear assignment (rectangular, exact) in numpy only, for trackers and metrics.

Two questions come up when pairing tracks with detections or ground truth
with hypotheses, and they differ:

* :func:`match_capped` -- the tracker's question. A pair may only be matched
  when its cost is at most ``max_cost``; among such matchings take the one of
  least total cost, where leaving a row or a column unmatched costs
  ``max_cost / 2`` each (so a pair is only worth matching when it beats
  leaving both alone). This is the "cost limit" convention of lapjv.
* :func:`match_max_cardinality` -- the CLEAR-MOT question. Among pairs whose
  cost is at most ``max_cost``, match as many as possible, and among those
  matchings take the one of least total cost.

Both split the allowed pairs into connected components first: with IoU
gating nearly every component is one or two boxes, so the cubic solver only
ever sees small matrices and per-frame cost stays low in pure Python.

The core :func:`solve_dense` is the shortest-augmenting-path Hungarian method
with row/column potentials (Jonker-Volgenant style), O(n^2 m) for n <= m.

>>> import numpy as np
>>> rows, cols = solve_dense(np.array([[4.0, 1.0, 6.0], [2.0, 0.0, 5.0]]))
>>> rows.tolist(), cols.tolist()
([0, 1], [1, 0])
"""

from __future__ import annotations

import numpy as np

__all__ = ["connected_components", "match_capped", "match_max_cardinality", "solve_dense"]

_Pairs = tuple[np.ndarray, np.ndarray]


def _empty_pairs() -> _Pairs:
    return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)


def _check_cost(cost: np.ndarray) -> np.ndarray:
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost matrix must be 2-D (rows x columns), got shape {cost.shape}")
    return cost


def solve_dense(cost: np.ndarray) -> _Pairs:
    """Exact minimum-cost matching of size ``min(n, m)`` on a finite cost matrix.

    Returns ``(rows, cols)``, sorted by row. Raises ``ValueError`` when the
    matrix holds NaN or infinite entries (mask them with the ``match_*``
    functions instead).
    """
    cost = _check_cost(cost)
    if not np.isfinite(cost).all():
        raise ValueError("solve_dense needs finite costs; use match_capped to forbid pairs")
    n, m = cost.shape
    if n == 0 or m == 0:
        return _empty_pairs()
    if n > m:
        cols, rows = solve_dense(cost.T)
        order = np.argsort(rows)
        return rows[order], cols[order]
    # Potentials u (rows) and v (columns); column m is the virtual start.
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    row_of_col = np.full(m + 1, -1, dtype=np.intp)  # row matched to each column
    for i in range(n):
        row_of_col[m] = i
        j0 = m
        min_to = np.full(m + 1, np.inf)
        prev_col = np.full(m + 1, -1, dtype=np.intp)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = row_of_col[j0]
            # Reduced costs from row i0 to every column not yet in the tree.
            reduced = cost[i0] - u[i0] - v[:m]
            free = ~used[:m]
            better = free & (reduced < min_to[:m])
            min_to[:m][better] = reduced[better]
            prev_col[:m][better] = j0
            candidates = np.where(free, min_to[:m], np.inf)
            j1 = int(np.argmin(candidates))
            delta = candidates[j1]
            tree_cols = np.flatnonzero(used)
            u[row_of_col[tree_cols]] += delta
            v[tree_cols] -= delta
            min_to[:m][free] -= delta
            j0 = j1
            if row_of_col[j0] == -1:
                break
        # Walk the augmenting path back to the virtual column.
        while j0 != m:
            j1 = int(prev_col[j0])
            row_of_col[j0] = row_of_col[j1]
            j0 = j1
    cols = np.flatnonzero(row_of_col[:m] >= 0)
    rows = row_of_col[cols]
    order = np.argsort(rows)
    return rows[order].astype(np.intp), cols[order].astype(np.intp)


def connected_components(allowed: np.ndarray) -> list[_Pairs]:
    """Split a boolean row x column adjacency into connected components.

    Returns a list of ``(row_indices, col_indices)``; rows or columns with no
    allowed pair are left out.
    """
    n, m = allowed.shape
    row_seen = np.zeros(n, dtype=bool)
    components: list[_Pairs] = []
    for start in np.flatnonzero(allowed.any(axis=1)):
        if row_seen[start]:
            continue
        rows = np.zeros(n, dtype=bool)
        rows[start] = True
        cols = np.zeros(m, dtype=bool)
        while True:
            new_cols = allowed[rows].any(axis=0)
            new_rows = allowed[:, new_cols].any(axis=1)
            if new_rows.sum() == rows.sum() and new_cols.sum() == cols.sum():
                break
            rows, cols = new_rows | rows, new_cols | cols
        row_seen |= rows
        components.append((np.flatnonzero(rows), np.flatnonzero(cols)))
    return components


def _gather(pieces: list[_Pairs]) -> _Pairs:
    if not pieces:
        return _empty_pairs()
    rows = np.concatenate([p[0] for p in pieces])
    cols = np.concatenate([p[1] for p in pieces])
    order = np.argsort(rows)
    return rows[order], cols[order]


def match_max_cardinality(cost: np.ndarray, max_cost: float) -> _Pairs:
    """Most pairs with ``cost <= max_cost``; least total cost among those.

    NaN entries are forbidden pairs. Returns ``(rows, cols)`` sorted by row.
    """
    cost = _check_cost(cost)
    allowed = np.isfinite(cost) & (cost <= max_cost)
    pieces: list[_Pairs] = []
    for rows, cols in connected_components(allowed):
        sub = cost[np.ix_(rows, cols)]
        ok = allowed[np.ix_(rows, cols)]
        if sub.size == 1:
            pieces.append((rows, cols))
            continue
        # A forbidden pair costs more than any matching of allowed pairs, so
        # the solver only takes it when no larger allowed matching exists.
        finite = np.where(ok, sub, 0.0)
        shift = finite.min() if ok.any() else 0.0
        span = float(np.abs(finite - shift).sum()) + 1.0
        dense = np.where(ok, sub - shift, span * (min(sub.shape) + 1))
        r, c = solve_dense(dense)
        keep = ok[r, c]
        pieces.append((rows[r[keep]], cols[c[keep]]))
    return _gather(pieces)


def match_capped(cost: np.ndarray, max_cost: float) -> _Pairs:
    """Least-cost matching where each unmatched row or column costs ``max_cost / 2``.

    Pairs with ``cost > max_cost`` (or NaN) are never matched. Returns
    ``(rows, cols)`` sorted by row.
    """
    cost = _check_cost(cost)
    allowed = np.isfinite(cost) & (cost <= max_cost)
    pieces: list[_Pairs] = []
    half = max_cost / 2.0
    for rows, cols in connected_components(allowed):
        sub = cost[np.ix_(rows, cols)]
        ok = allowed[np.ix_(rows, cols)]
        n, m = sub.shape
        if n == 1 and m == 1:
            pieces.append((rows, cols))
            continue
        # Augment with a dummy partner per row and per column (cost max_cost/2)
        # so "unmatched" is a choice the exact solver can make.
        big = abs(max_cost) * (n + m + 1) + float(np.abs(np.where(ok, sub, 0.0)).sum()) + 1.0
        dense = np.full((n + m, m + n), big)
        dense[:n, :m] = np.where(ok, sub, big)
        dense[:n, m:][np.arange(n), np.arange(n)] = half
        dense[n:, :m][np.arange(m), np.arange(m)] = half
        dense[n:, m:] = 0.0
        r, c = solve_dense(dense)
        real = (r < n) & (c < m)
        r, c = r[real], c[real]
        keep = ok[r, c]
        pieces.append((rows[r[keep]], cols[c[keep]]))
    return _gather(pieces)
