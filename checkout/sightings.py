"""Sightings: the shelf cameras' interaction episodes, kept for the shelf events they explain.

A shelf event (a plate's weight changed) and an interaction (a hand reached
into that plate's zone) are two views of one act. ``Sightings`` keeps recent
interactions per gondola and finds the one that matches a shelf event:

* same gondola; the same plate scores best, a plate of the same shelf next
  (a hand zone can straddle two plates);
* overlapping in event time, give or take ``interaction_slack_s``;
* a matching action (pick with pick, put with put) beats a touch, which beats
  a contradicting one (the scale settles the action; a misread hand still
  says where it reached, hence the SKU).

Each interaction explains at most one shelf event. It also remembers which
shelf cameras reported themselves unhealthy (their retained ``offline``
status), so the brain can say a decision was made from weight alone.

>>> from iot.payloads import Interaction
>>> s = Sightings(retention_s=60)
>>> s.add(Interaction(id="i1", event_time_s=1e9 + 2, device_id="cam", gondola_id="g",
...     plate_id="p", action="pick", started_s=1e9 + 1, sku="A", quantity=1,
...     confidence=0.9, sku_confidence=0.95, hand_x_m=1.0, hand_y_m=2.0))
True
>>> when = dict(shelf_of={"p": "s1"}, action="pick", started_s=1e9 + 1.2, ended_s=1e9 + 2.4)
>>> s.match("g", "p", slack_s=1.0, **when).id
'i1'
>>> s.match("g", "p", slack_s=1.0, **when) is None  # each sighting explains one event
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from iot.payloads import DeviceStatus, Interaction

__all__ = ["Sightings"]


class Sightings:
    """Recent interactions per gondola, and which shelf cameras are down."""

    def __init__(self, retention_s: float = 120.0, max_per_gondola: int = 500) -> None:
        self.retention_s = retention_s
        self._by_gondola: dict[str, deque[Interaction]] = {}
        self._used: set[str] = set()
        self._max = max_per_gondola
        self.cameras_down: dict[str, float] = {}  # camera id -> when it went offline
        self.cameras_up: set[str] = set()  # cameras that said they are online, and since

    def add(self, interaction: Interaction) -> bool:
        """Keep an interaction; False if its id was seen before (a redelivery)."""
        kept = self._by_gondola.setdefault(interaction.gondola_id, deque(maxlen=self._max))
        if any(i.id == interaction.id for i in kept):
            return False
        kept.append(interaction)
        return True

    def camera_status(self, status: DeviceStatus) -> None:
        if status.state == "offline":
            self.cameras_down.setdefault(status.device_id, status.event_time_s)
            self.cameras_up.discard(status.device_id)
        else:
            self.cameras_down.pop(status.device_id, None)
            self.cameras_up.add(status.device_id)

    def match(
        self,
        gondola_id: str,
        plate_id: str,
        *,
        shelf_of: Mapping[str, str],
        action: str,
        started_s: float,
        ended_s: float,
        slack_s: float,
        consume: bool = True,
    ) -> Interaction | None:
        """The unused interaction that best explains a shelf event, marked used
        (``consume`` False: only looked at)."""
        best: tuple[tuple[float, ...], Interaction] | None = None
        for i in self._by_gondola.get(gondola_id, ()):
            if i.id in self._used:
                continue
            overlap = min(ended_s, i.event_time_s) - max(started_s, i.started_s)
            if overlap < -slack_s:
                continue
            if i.plate_id == plate_id:
                where = 2.0
            elif shelf_of.get(i.plate_id) is not None and shelf_of.get(i.plate_id) == shelf_of.get(
                plate_id
            ):
                where = 1.0
            else:
                continue
            agrees = 2.0 if i.action == action else (1.0 if i.action == "touch" else 0.0)
            key = (where, agrees, overlap)
            if best is None or key > best[0]:
                best = (key, i)
        if best is None:
            return None
        if consume:
            self._used.add(best[1].id)
        return best[1]

    def prune(self, now_s: float) -> None:
        horizon = now_s - self.retention_s
        for kept in self._by_gondola.values():
            while kept and kept[0].event_time_s < horizon:
                self._used.discard(kept.popleft().id)
