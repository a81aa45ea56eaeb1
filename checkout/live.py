"""Live updates for the web app: bus events become small server-sent events, per caller.

The web pages never poll. A :class:`LiveHub` listens on the bus (through its
own :class:`~iot.bus.Inbox`, so a bad message is counted and dead-lettered
like anywhere else) and turns what it hears into :class:`LiveEvent` s that
carry only names and ids: ``cart {session_id}``, ``receipt {session_id,
receipt_id}``, ``visit {session_id, state}``, ``alert {alert_id, kind,
state}``, ``case {case_id, state, rule, store_id}``, ``footfall {}`` and
``device {device_id, state}``. A page that hears one refetches through the
ordinary API, whose access rules then apply; nothing personal travels in
the stream beyond ids the caller could already read.

Each connected page is a :class:`Subscriber` with a filter for its caller
(:func:`caller_filter`): a shopper hears only the visits they own, a
manager their store's events except cases, loss prevention the cases of
their stores, an admin everything, a device nothing. Feeding happens on bus
threads; each subscriber holds a bounded queue that drops its oldest event
when the page reads too slowly, and then tells the page to ``resync``
(refetch everything) rather than pretend nothing was missed.

>>> from checkout.auth import Principal
>>> hub = LiveHub()
>>> ana = Principal("a-1", "ana", "Ana", "shopper", frozenset())
>>> sub = hub.subscribe(caller_filter(ana, owner_of={"s-1": "a-1"}.get))
>>> hub.publish(LiveEvent("cart", "demo", {"session_id": "s-1"}, session_id="s-1"))
1
>>> hub.publish(LiveEvent("cart", "demo", {"session_id": "s-2"}, session_id="s-2"))
0
>>> events, dropped = sub.take()
>>> [e.sse() for e in events], dropped
(['event: cart\\ndata: {"session_id":"s-1"}\\n\\n'], 0)
"""

# No `from __future__ import annotations`: FastAPI must see the dependencies of closures.
import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from checkout.access import Access
from checkout.auth import Principal, Role
from iot.bus import Inbox, Message, Transport
from iot.payloads import Alert, CartEvent, CaseEvent, DeviceStatus, Receipt, SessionEvent
from iot.topics import ANY, TOPICS

__all__ = [
    "AUDIENCES",
    "LiveEvent",
    "LiveHub",
    "Subscriber",
    "caller_filter",
    "events_from",
    "live_router",
]

log = logging.getLogger(__name__)

Scalar = str | int | float | bool | None
OwnerOf = Callable[[str], str | None]

# What each role hears; an admin hears everything, a device nothing.
_STORE_EVENTS = frozenset({"cart", "visit", "receipt", "alert", "footfall", "device"})
AUDIENCES: dict[Role, frozenset[str]] = {
    "shopper": frozenset({"cart", "visit", "receipt"}),
    "manager": _STORE_EVENTS,
    "loss_prevention": frozenset({"case"}),
    "admin": _STORE_EVENTS | {"case"},
    "device": frozenset(),
}
# The channels the hub listens to (status is on every kind of device).
_CHANNELS = ("cart_events", "sessions", "receipts", "alerts", "cases", "gate_entries", "gate_exits")
_OWNED_CACHE = 1024  # session ids a shopper's filter remembers as theirs


@dataclass(frozen=True)
class LiveEvent:
    """One thing a page may want to refetch for: a name, a few ids, and whose it is.

    ``store_id`` and ``session_id`` decide who hears it; only ``data`` is sent.
    """

    name: str
    store_id: str
    data: Mapping[str, Scalar] = field(default_factory=dict)
    session_id: str | None = None

    def sse(self) -> str:
        """The event as a server-sent-events frame."""
        body = json.dumps(dict(self.data), separators=(",", ":"), sort_keys=True)
        return f"event: {self.name}\ndata: {body}\n\n"


def events_from(message: Message) -> list[LiveEvent]:
    """What one validated bus message means for the pages (often nothing)."""
    p, store = message.payload, message.store_id
    if isinstance(p, CartEvent):
        return [LiveEvent("cart", store, {"session_id": p.session_id}, p.session_id)]
    if isinstance(p, Receipt):
        data = {"session_id": p.session_id, "receipt_id": p.id}
        return [LiveEvent("receipt", store, data, p.session_id)]
    if isinstance(p, SessionEvent):
        data = {"session_id": p.session_id, "state": p.state}
        return [LiveEvent("visit", store, data, p.session_id)]
    if isinstance(p, Alert):
        return [
            LiveEvent("alert", store, {"alert_id": p.alert_id, "kind": p.kind, "state": p.state})
        ]
    if isinstance(p, CaseEvent):
        data = {"case_id": p.case_id, "state": p.state, "rule": p.rule, "store_id": store}
        return [LiveEvent("case", store, data)]
    if isinstance(p, DeviceStatus):
        return [LiveEvent("device", store, {"device_id": p.device_id, "state": p.state})]
    if message.channel.name in ("gate_entries", "gate_exits"):  # someone came in or left
        return [LiveEvent("footfall", store)]
    return []


def caller_filter(who: Principal, owner_of: OwnerOf) -> Callable[[LiveEvent], bool]:
    """Which events ``who`` may hear (runs on bus threads, once per event).

    A shopper's filter asks ``owner_of`` about each session it meets and
    remembers the ones that are theirs: a visit's owner is fixed when its QR
    code is issued, before the visit has any event.
    """
    names = AUDIENCES.get(who.role, frozenset())
    if who.role == "admin":
        return lambda event: event.name in names
    if who.role != "shopper":
        return lambda event: event.name in names and who.sees_store(event.store_id)
    mine: deque[str] = deque(maxlen=_OWNED_CACHE)

    def shopper_hears(event: LiveEvent) -> bool:
        sid = event.session_id
        if event.name not in names or sid is None:
            return False
        if sid in mine:
            return True
        if owner_of(sid) == who.account_id:
            mine.append(sid)
            return True
        return False

    return shopper_hears


class Subscriber:
    """One connected page: a filter and a bounded queue that drops its oldest when full.

    ``wake`` is called (from whichever thread offers) after an event is queued.
    """

    def __init__(
        self,
        accepts: Callable[[LiveEvent], bool],
        *,
        max_queue: int = 256,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue={max_queue}: a subscriber must hold at least one event")
        self.accepts = accepts
        self.wake = wake
        self._queue: deque[LiveEvent] = deque(maxlen=max_queue)
        self._lock = threading.Lock()
        self._dropped = 0
        self.dropped_total = 0

    def offer(self, event: LiveEvent) -> bool:
        """Queue ``event`` if the caller may hear it; True if queued."""
        try:
            if not self.accepts(event):
                return False
        except Exception:  # a failing lookup must not stop the bus thread; the page misses one
            log.exception("live: the filter failed on a %s event", event.name)
            return False
        with self._lock:
            if len(self._queue) == self._queue.maxlen:
                self._dropped += 1
                self.dropped_total += 1
            self._queue.append(event)
        self.wake()
        return True

    def take(self) -> tuple[list[LiveEvent], int]:
        """Everything queued, oldest first, and how many were dropped since the last take."""
        with self._lock:
            events, dropped = list(self._queue), self._dropped
            self._queue.clear()
            self._dropped = 0
        return events, dropped


class LiveHub:
    """Fans bus events out to the connected pages; thread-safe."""

    def __init__(self, *, max_queue: int = 256, keepalive_s: float = 15.0) -> None:
        if keepalive_s <= 0:
            raise ValueError(f"keepalive_s={keepalive_s}: must be positive (15 is usual)")
        self.max_queue = max_queue
        self.keepalive_s = keepalive_s
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.inboxes: list[Inbox] = []
        self.published = 0

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def attach(self, transport: Transport, store_id: str, *, now: Callable[[], float]) -> Inbox:
        """Listen to ``store_id``'s carts, visits, receipts, alerts, cases, gates and devices.

        ``now`` is the store's clock (it only stamps dead letters). Returns the inbox,
        whose ``accepted`` and ``rejected`` counters say what the hub heard.
        """
        inbox = Inbox(transport, store_id, service_kind="web", service_id="web-live", now=now)
        for name in _CHANNELS:
            inbox.on(TOPICS[name], self._hear)
        inbox.on(TOPICS["status"], self._hear, kind=ANY)
        self.inboxes.append(inbox)
        return inbox

    def _hear(self, message: Message) -> None:
        for event in events_from(message):
            self.publish(event)

    def publish(self, event: LiveEvent) -> int:
        """Offer ``event`` to every subscriber; returns how many queued it."""
        with self._lock:
            subscribers = list(self._subscribers)
        self.published += 1
        return sum(s.offer(event) for s in subscribers)

    def subscribe(
        self, accepts: Callable[[LiveEvent], bool], wake: Callable[[], None] = lambda: None
    ) -> Subscriber:
        sub = Subscriber(accepts, max_queue=self.max_queue, wake=wake)
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def close(self) -> None:
        """End every stream (a server cannot stop while an event stream stays open)."""
        self._closed.set()
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.wake()


def live_router(hub: LiveHub, access: Access, owner_of: OwnerOf) -> APIRouter:
    """``GET /events``: the caller's live events as ``text/event-stream``."""
    router = APIRouter(tags=["live"])
    listener = access.require("shopper", "manager", "loss_prevention")

    @router.get("/events", response_class=StreamingResponse)
    async def events(who: Annotated[Principal, Depends(listener)]) -> StreamingResponse:
        """Server-sent events for the caller's pages: refetch what an event names.

        A ``hello`` opens the stream, ``resync`` says events were dropped (refetch
        everything), a comment line every ``keepalive_s`` keeps proxies from closing it.
        """
        return StreamingResponse(
            _stream(hub, who, owner_of),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


async def _stream(hub: LiveHub, who: Principal, owner_of: OwnerOf) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()

    def wake() -> None:
        # A closed loop means the server is going: there is nothing left to wake.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(ready.set)

    sub = hub.subscribe(caller_filter(who, owner_of), wake)
    try:
        yield "retry: 3000\n\n" + LiveEvent("hello", "", {"role": who.role}).sse()
        while not hub.closed:
            try:
                await asyncio.wait_for(ready.wait(), timeout=hub.keepalive_s)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            ready.clear()
            events, dropped = sub.take()
            frames = [LiveEvent("resync", "", {"dropped": dropped}).sse()] if dropped else []
            frames += [e.sse() for e in events]
            if frames:
                yield "".join(frames)
        yield LiveEvent("bye", "").sse()
    finally:
        hub.unsubscribe(sub)
