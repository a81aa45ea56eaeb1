"""The mutable state of one store-level track, shared by the floor fusion and its identity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 (a zero vector stays zero)."""
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def segment_distance(p: np.ndarray, a: Sequence[float], b: Sequence[float]) -> float:
    """Distance in metres from point ``p`` to the segment ``a``-``b`` (a gate line)."""
    pa, ba = p - np.asarray(a), np.asarray(b) - np.asarray(a)
    t = float(np.clip(pa @ ba / max(float(ba @ ba), 1e-12), 0.0, 1.0))
    return float(np.hypot(*(pa - t * ba)))


@dataclass
class StoreTrack:
    """One store track: Kalman state, lifecycle, and the looks that say whom it follows."""

    number: int
    x: np.ndarray  # (x, y, vx, vy)
    P: np.ndarray
    born_s: float
    last_seen_s: float
    born_at_entry: bool
    hits: int = 1
    confirmed: bool = False
    near_since_s: dict[int, float] = field(default_factory=dict)
    cameras: tuple[str, ...] = ()
    look: np.ndarray | None = None  # running mean of the person's colour descriptor
    # identity, for swap repair: who the track's id stands for (frozen after anchor_looks)
    anchor: np.ndarray | None = None
    anchor_n: int = 0
    # what the person under the track looks like now: clear looks since the last crowding
    recent: np.ndarray | None = None
    recent_n: int = 0
    met_s: dict[int, float] = field(default_factory=dict)  # other track number -> last close
    clear_look: np.ndarray | None = None  # this step's look, if clear of others and off the gates

    @property
    def pos(self) -> np.ndarray:
        return self.x[:2]
