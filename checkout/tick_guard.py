"""The composition root's clock, as a service sees it, and events stamped too far past it.

A service's clock is event time: the newest of the times it has received and
the times ``tick`` gave it. A device whose clock runs ahead must not drag that
forward (pending decisions would be taken before their evidence arrived), so
an event stamped more than ``max_future_s`` past the last tick is refused.
Before the first tick nothing is refused: there is no clock to compare with.

>>> guard = TickGuard(max_future_s=5.0)
>>> guard.too_far_ahead_s(1e9) is None
True
>>> guard.tick(1e9); guard.tick(1e9 - 3)
>>> guard.too_far_ahead_s(1e9 + 4) is None, guard.too_far_ahead_s(1e9 + 7)
(True, 7.0)
"""

from __future__ import annotations

__all__ = ["TickGuard"]


class TickGuard:
    """The last tick (never going back) and the refusal of events far past it."""

    def __init__(self, max_future_s: float) -> None:
        self.max_future_s = max_future_s
        self.last_s: float | None = None

    def tick(self, now_s: float) -> None:
        self.last_s = now_s if self.last_s is None else max(self.last_s, now_s)

    def too_far_ahead_s(self, event_time_s: float) -> float | None:
        """How far past the last tick ``event_time_s`` lies, when that is too far; else None."""
        if self.last_s is None:
            return None
        ahead = event_time_s - self.last_s
        return ahead if ahead > self.max_future_s else None
