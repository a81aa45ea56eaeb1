"""People the gates sensed that the tracks did not count: footfall's second witness.

Footfall counts crossings of the gate lines from the ceiling tracks. In a
queue, a shopper can walk in in the shadow of the one ahead: the cameras see
one blob through the doorway, and the second person's own track only starts
metres inside, where it may look like someone lost a moment ago. The gates
sense every passage themselves (a scan-in names its party size; a walk-out
gate reports each passage), so a gate passage that no track crossing matches
within ``window_s`` is a person the tracks missed. Crossings with no gate
passage stay counted: tailgaters pass no scanner.

Matching is greedy in time order: each passage takes up to its party size of
the nearest unmatched crossings at its gate within ``window_s``; a passage is
decided once event time is ``window_s`` past it.

>>> r = GateReconciler(window_s=5.0)
>>> r.passage("gate-in", 100.0, people=2)
>>> r.crossing("gate-in", 101.0)
>>> r.settle(110.0)
>>> r.unseen["gate-in"]
1
"""

from __future__ import annotations

from collections import Counter, deque

__all__ = ["GateReconciler"]

_KEEP_UNSEEN = 20_000


class GateReconciler:
    """Gate passages the track crossings did not account for, per gate."""

    def __init__(self, window_s: float = 6.0) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.window_s = window_s
        self.unseen: Counter[str] = Counter()
        # (passage time, gate, people unseen), for occupancy over time; a day's worth is plenty
        self.unseen_at: deque[tuple[float, str, int]] = deque(maxlen=_KEEP_UNSEEN)
        self._passages: list[tuple[float, str, int]] = []  # undecided (time, gate, people)
        self._crossings: list[tuple[float, str]] = []  # unmatched, still recent

    def passage(self, gate_id: str, t_s: float, people: int = 1) -> None:
        """The gate sensed ``people`` passing at ``t_s`` (a scan-in's party, an exit)."""
        self._passages.append((t_s, gate_id, max(people, 1)))

    def crossing(self, gate_id: str, t_s: float) -> None:
        """The tracks counted one person crossing this gate's line at ``t_s``."""
        self._crossings.append((t_s, gate_id))

    def settle(self, now_s: float) -> None:
        """Decide every passage older than ``window_s``; forget crossings no passage can take."""
        due = sorted(p for p in self._passages if p[0] <= now_s - self.window_s)
        self._passages = [p for p in self._passages if p[0] > now_s - self.window_s]
        for t, gate, people in due:
            near = sorted(
                (abs(c[0] - t), k)
                for k, c in enumerate(self._crossings)
                if c[1] == gate and abs(c[0] - t) <= self.window_s
            )
            taken = {k for _, k in near[:people]}
            self.unseen[gate] += people - len(taken)
            if people > len(taken):
                self.unseen_at.append((t, gate, people - len(taken)))
            self._crossings = [c for k, c in enumerate(self._crossings) if k not in taken]
        oldest = min((p[0] for p in self._passages), default=now_s) - self.window_s
        self._crossings = [c for c in self._crossings if c[0] >= oldest]
