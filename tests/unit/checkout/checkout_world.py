"""A tiny synthetic world that feeds the brain (shared by the checkout tests).

It publishes what the real devices would: track snapshots at 5 Hz (positions
interpolated along waypoints, with Gaussian noise), scan-ins, shelf events at
their settle time, and exits. Nothing here imports ``sim``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from checkout.brain import StoreBrain
from iot.bus import LocalTransport, publish
from iot.payloads import (
    DeviceStatus,
    Event,
    GateEntry,
    GateExit,
    ShelfEvent,
    TrackBatch,
    TrackPoint,
)
from iot.store import Store

__all__ = ["ENTRY_XY", "EXIT_XY", "T0", "World", "shelf_event"]

T0 = 1_800_000_000.0  # event-time origin of every scenario
ENTRY_XY = (1.8, 0.6)  # just inside the entry gate
EXIT_XY = (14.2, 0.6)  # just inside the exit gate


def shelf_event(
    store: Store,
    event_id: str,
    plate_id: str,
    delta_g: float,
    *,
    started_s: float,
    settled_s: float,
    noise_g: float = 2.0,
) -> ShelfEvent:
    """A shelf event as a controller would send it (sku/quantity read against the planogram)."""
    entry = store.skus_on_plate(plate_id)[0]
    unit = store.items[entry.sku].unit_weight_g
    controller = next(c for c, plates in store.controller_plates.items() if plate_id in plates)
    return ShelfEvent(
        id=event_id,
        event_time_s=settled_s,
        device_id=controller,
        plate_id=plate_id,
        action="pick" if delta_g < 0 else "put",
        delta_g=delta_g,
        started_s=started_s,
        sku=entry.sku,
        quantity=max(1, round(abs(delta_g) / unit)),
        confidence=0.9,
        noise_g=noise_g,
    )


@dataclass
class World:
    """Drives a brain through a LocalTransport with synthetic, noisy, deterministic input."""

    store: Store
    brain: StoreBrain
    transport: LocalTransport
    rng: np.random.Generator
    noise_m: float = 0.1
    paths: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    events: list[tuple[float, int, Event]] = field(default_factory=list)
    now_s: float = T0
    seen: list[tuple[str, bytes]] = field(default_factory=list)
    # track id -> its look at a time (seconds after T0), None while it sends none
    looks: dict[str, Callable[[float], list[float] | None]] = field(default_factory=dict)
    _n: int = 0

    def walk(self, track_id: str, *waypoints: tuple[float, float, float]) -> None:
        """A track through (seconds after T0, x_m, y_m) waypoints; it ends at the last one."""
        self.paths[track_id] = [(T0 + t, x, y) for t, x, y in waypoints]

    def at(self, t_rel_s: float, event: Event) -> None:
        self._n += 1
        self.events.append((T0 + t_rel_s, self._n, event))

    def entry(self, t_rel_s: float, token: str, event_id: str | None = None) -> None:
        self.at(
            t_rel_s,
            GateEntry(
                id=event_id or f"in-{token}",
                event_time_s=T0 + t_rel_s,
                device_id="gate-in",
                token=token,
            ),
        )

    def exit(self, t_rel_s: float, token: str | None = None, event_id: str | None = None) -> None:
        eid = event_id or f"out-{t_rel_s:.2f}"
        self.at(
            t_rel_s, GateExit(id=eid, event_time_s=T0 + t_rel_s, device_id="gate-out", token=token)
        )

    def shelf(
        self, event_id: str, plate_id: str, delta_g: float, start_rel_s: float, settle_rel_s: float
    ) -> ShelfEvent:
        ev = shelf_event(
            self.store,
            event_id,
            plate_id,
            delta_g,
            started_s=T0 + start_rel_s,
            settled_s=T0 + settle_rel_s,
        )
        self.at(settle_rel_s, ev)
        return ev

    def position(self, track_id: str, t: float) -> tuple[float, float] | None:
        path = self.paths[track_id]
        if t < path[0][0] or t > path[-1][0]:
            return None
        for (ta, xa, ya), (tb, xb, yb) in pairwise(path):
            if ta <= t <= tb:
                u = 0.0 if tb == ta else (t - ta) / (tb - ta)
                return xa + u * (xb - xa), ya + u * (yb - ya)
        return path[-1][1], path[-1][2]

    def run(self, until_rel_s: float, step_s: float = 0.2) -> None:
        """Publish everything up to ``until_rel_s`` in time order, ticking the brain each step."""
        end = T0 + until_rel_s
        pending = sorted(e for e in self.events if e[0] > self.now_s - 1e-6)
        self.events = []
        t = self.now_s
        while t <= end + 1e-6:
            while pending and pending[0][0] <= t + 1e-6:
                event = pending.pop(0)[2]
                # a status is on every kind's topics: here only cameras report one
                kind = "camera" if isinstance(event, DeviceStatus) else None
                publish(self.transport, "demo", event, kind=kind)
            self._publish_tracks(t, step_s)
            self.brain.tick(t)
            t = round(t + step_s, 6)
        self.now_s = t
        self.events = pending

    def _publish_tracks(self, t: float, step_s: float) -> None:
        points, ended = [], []
        for track_id, path in self.paths.items():
            xy = self.position(track_id, t)
            if xy is not None:
                x, y = xy + self.rng.normal(0.0, self.noise_m, 2)
                look = self.looks[track_id](t - T0) if track_id in self.looks else None
                points.append(TrackPoint(track_id=track_id, x_m=float(x), y_m=float(y), look=look))
            elif path[-1][0] < t <= path[-1][0] + step_s:
                ended.append(track_id)
        if points or ended:
            self._n += 1
            publish(
                self.transport,
                "demo",
                TrackBatch(
                    id=f"tb-{self._n}",
                    event_time_s=t,
                    device_id="positioning",
                    tracks=points,
                    ended=ended,
                ),
            )
