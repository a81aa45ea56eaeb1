"""Operations metrics (Prometheus): what the bus, the brain and the cameras are doing.

The metric objects are module-level singletons on prometheus_client's default
registry, so every room of one process reports into one ``/metrics`` page
(``checkout.metrics.metrics_router`` serves it). They live here, in ``iot``,
because every room may import ``iot`` and none may import another room.

These are operations figures: wall-clock seconds and counts for dashboards and
alerts. Nothing a store decides reads them.

The page is served without authentication, so a label value is only ever
something bounded and impersonal: a store id, a service id, a channel name, a
dead-letter reason, a camera id from the store file, an outcome, a route
template. Never a session id, token, track id or event id. ``BoundedLabel``
enforces the bound: past ``max_values`` distinct values, new ones read ``other``.

>>> from prometheus_client import CollectorRegistry
>>> rates = CameraRates(window_s=10.0, clock=iter([0.0, 0.5, 1.0, 2.0]).__next__)
>>> rates.frames("demo", ["cam-1", "cam-2"])   # clock 0.0
>>> rates.frames("demo", ["cam-1"])            # clock 0.5
>>> rates.frames("demo", ["cam-1"])            # clock 1.0
>>> rates.fps()                                # clock 2.0: two seconds seen
{('demo', 'cam-1'): 1.5, ('demo', 'cam-2'): 0.5}
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

__all__ = [
    "CAMERA_FPS",
    "DEAD_LETTERS",
    "EVENTS_IN",
    "FUSION_LAG_SECONDS",
    "FUSION_SECONDS",
    "RECEIPTS",
    "RECEIPTS_NEEDING_REVIEW",
    "BoundedLabel",
    "CameraRates",
    "FusionTimer",
    "count_dead_letter",
    "count_event_in",
    "count_receipt",
]

OTHER = "other"  # the label value of everything past a label's bound

EVENTS_IN = Counter(
    "smartstore_events_in",
    "Messages a service's Inbox accepted (valid, known device, not a duplicate, in order).",
    ["store", "service", "channel"],
)
DEAD_LETTERS = Counter(
    "smartstore_dead_letters",
    "Messages a service refused and dead-lettered, by reason.",
    ["store", "service", "reason"],
)
FUSION_SECONDS = Histogram(
    "smartstore_fusion_seconds",
    "Wall seconds from a shelf event reaching the brain to its decision being published "
    "(includes the attribution delay the brain waits on purpose).",
    ["store", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0),
)
FUSION_LAG_SECONDS = Histogram(
    "smartstore_fusion_lag_seconds",
    "Event-time seconds from a shelf event's settle time to the brain's clock when it decided.",
    ["store", "outcome"],
    buckets=(0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 120.0),
)
RECEIPTS = Counter("smartstore_receipts", "Receipts issued.", ["store"])
RECEIPTS_NEEDING_REVIEW = Counter(
    "smartstore_receipts_needing_review",
    "Receipts issued flagged for human review (review rate = this / smartstore_receipts_total).",
    ["store"],
)


class BoundedLabel:
    """Keeps a label's distinct values under ``max_values``; later newcomers read ``other``.

    >>> reasons = BoundedLabel(max_values=2)
    >>> [reasons("a"), reasons("b"), reasons("c"), reasons("a")]
    ['a', 'b', 'other', 'a']
    """

    def __init__(self, max_values: int = 64, max_chars: int = 64) -> None:
        if max_values < 1 or max_chars < 1:
            raise ValueError(
                f"BoundedLabel needs max_values and max_chars >= 1, got {max_values}, {max_chars}"
            )
        self.max_values = max_values
        self.max_chars = max_chars
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        value = value[: self.max_chars]
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self.max_values:
                return OTHER
            self._seen.add(value)
        return value


_stores = BoundedLabel(32)
_services = BoundedLabel(64)
_channels = BoundedLabel(64)
_reasons = BoundedLabel(128)


def count_event_in(store_id: str, service_id: str, channel: str) -> None:
    """One message accepted by ``service_id``'s Inbox on ``channel``."""
    EVENTS_IN.labels(_stores(store_id), _services(service_id), _channels(channel)).inc()


def count_dead_letter(store_id: str, service_id: str, reason: str) -> None:
    """One message refused by ``service_id`` (``reason`` is the short, countable one)."""
    DEAD_LETTERS.labels(_stores(store_id), _services(service_id), _reasons(reason)).inc()


def count_receipt(store_id: str, needs_review: bool) -> None:
    """One receipt issued; the review counter too when it is flagged."""
    store = _stores(store_id)
    RECEIPTS.labels(store).inc()
    review = RECEIPTS_NEEDING_REVIEW.labels(store)  # made even when 0, so the ratio exists
    if needs_review:
        review.inc()


class FusionTimer:
    """One brain's stopwatch from shelf-event arrival to decision (wall and event time).

    ``arrived`` when the brain accepts a shelf event, ``decided`` when it
    publishes the decision. At most ``max_pending`` arrivals are remembered
    (oldest forgotten first), so events never decided cannot grow it.

    >>> timer = FusionTimer("demo", clock=iter([10.0, 10.25]).__next__)
    >>> timer.arrived("e1")
    >>> timer.decided("e1", "cart", event_time_s=100.0, decided_at_s=103.0)
    (0.25, 3.0)
    """

    def __init__(
        self,
        store_id: str,
        *,
        clock: Callable[[], float] = time.perf_counter,
        max_pending: int = 100_000,
    ) -> None:
        self.store = _stores(store_id)
        self.clock = clock
        self.max_pending = max_pending
        self._arrived: OrderedDict[str, float] = OrderedDict()

    def arrived(self, event_id: str) -> None:
        self._arrived[event_id] = self.clock()
        if len(self._arrived) > self.max_pending:
            self._arrived.popitem(last=False)

    def decided(
        self, event_id: str, outcome: str, *, event_time_s: float, decided_at_s: float
    ) -> tuple[float | None, float | None]:
        """Observe both histograms; returns (wall seconds, event-time lag), None where unknown."""
        start = self._arrived.pop(event_id, None)
        wall = None if start is None else max(0.0, self.clock() - start)
        lag = decided_at_s - event_time_s
        lag_or_none = lag if math.isfinite(lag) else None
        if wall is not None:
            FUSION_SECONDS.labels(self.store, outcome).observe(wall)
        if lag_or_none is not None:
            FUSION_LAG_SECONDS.labels(self.store, outcome).observe(max(0.0, lag_or_none))
        return wall, lag_or_none


class CameraRates:
    """Frames processed per wall second, per camera, over the last ``window_s`` seconds.

    A custom collector: the rate is worked out when scraped, so a camera that
    stopped reads 0 rather than its last rate. Counts sit in one-second buckets
    (at most ``window_s`` of them per camera).
    """

    def __init__(self, window_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not window_s >= 1.0:
            raise ValueError(f"CameraRates window_s must be at least 1 s, got {window_s}")
        self.window_s = window_s
        self.clock = clock
        self._buckets: dict[tuple[str, str], deque[list[int]]] = {}  # [second, frames]
        self._first: dict[tuple[str, str], float] = {}
        self._cameras = BoundedLabel(256)
        self._lock = threading.Lock()

    def frames(self, store_id: str, camera_ids: Iterable[str]) -> None:
        """One frame processed from each of ``camera_ids``, now."""
        now = self.clock()
        second = math.floor(now)
        with self._lock:
            for cid in camera_ids:
                key = (_stores(store_id), self._cameras(cid))
                buckets = self._buckets.setdefault(key, deque())
                self._first.setdefault(key, now)
                if buckets and buckets[-1][0] == second:
                    buckets[-1][1] += 1
                else:
                    buckets.append([second, 1])
                    self._trim(buckets, now)

    def fps(self) -> dict[tuple[str, str], float]:
        """(store, camera) -> frames per second over the window (or since first seen)."""
        now = self.clock()
        with self._lock:
            out = {}
            for key, buckets in self._buckets.items():
                self._trim(buckets, now)
                span = min(self.window_s, max(1.0, now - self._first[key]))
                out[key] = round(sum(n for _, n in buckets) / span, 3)
            return out

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "smartstore_camera_fps",
            f"Frames the edge vision pipeline processed per wall second, over the last "
            f"{self.window_s:g} s.",
            labels=["store", "camera"],
        )
        for (store, camera), value in sorted(self.fps().items()):
            family.add_metric([store, camera], value)
        yield family

    def _trim(self, buckets: deque[list[int]], now: float) -> None:
        while buckets and buckets[0][0] < now - self.window_s:
            buckets.popleft()


CAMERA_FPS = CameraRates()
REGISTRY.register(CAMERA_FPS)
