"""Live updates: who hears which event, the bounded queue, bus messages in, the SSE route."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from checkout.access import Access
from checkout.auth import AccountBook, Principal, Role
from checkout.live import AUDIENCES, LiveEvent, LiveHub, Subscriber, caller_filter, live_router
from iot.bus import LocalTransport, publish
from iot.payloads import (
    Alert,
    CartEvent,
    CaseEvent,
    DeviceStatus,
    GateEntry,
    Receipt,
    SessionEvent,
)
from iot.topics import TOPICS

T0 = 1.8e9
OWNERS = {"s-ana": "a-ana", "s-bo": "a-bo"}
PASSWORD = "a long test password"


def who(role: Role, stores: tuple[str, ...] = ("demo",), account: str = "a-ana") -> Principal:
    return Principal(account, account[2:], account[2:], role, frozenset(stores))


def ev(name: str, store: str = "demo", session: str | None = None) -> LiveEvent:
    return LiveEvent(name, store, {"session_id": session} if session else {}, session)


@pytest.mark.parametrize(
    ("caller", "event", "hears"),
    [
        # a shopper: only the visits they own, and only what a shopper's page uses
        (who("shopper", ()), ev("cart", session="s-ana"), True),
        (who("shopper", ()), ev("receipt", "other-store", session="s-ana"), True),
        (who("shopper", ()), ev("cart", session="s-bo"), False),
        (who("shopper", ()), ev("cart", session="s-nobody"), False),
        (who("shopper", ()), ev("alert"), False),
        (who("shopper", ()), ev("case", session="s-ana"), False),
        (who("shopper", (), account="a-bo"), ev("visit", session="s-bo"), True),
        # a manager: their stores' events, but no cases
        (who("manager"), ev("cart", session="s-bo"), True),
        (who("manager"), ev("footfall"), True),
        (who("manager"), ev("device"), True),
        (who("manager"), ev("alert", "other-store"), False),
        (who("manager"), ev("case"), False),
        # loss prevention: the cases of their stores only
        (who("loss_prevention"), ev("case"), True),
        (who("loss_prevention"), ev("case", "other-store"), False),
        (who("loss_prevention"), ev("cart", session="s-ana"), False),
        # an admin hears everything of every store; a device nothing
        (who("admin", ()), ev("case", "other-store"), True),
        (who("admin", ()), ev("cart", session="s-bo"), True),
        (who("device"), ev("device"), False),
    ],
)
def test_who_hears_what(caller: Principal, event: LiveEvent, hears: bool) -> None:
    assert caller_filter(caller, OWNERS.get)(event) is hears


def test_every_role_has_an_audience_and_a_device_has_none() -> None:
    assert set(AUDIENCES) == {"shopper", "manager", "loss_prevention", "device", "admin"}
    assert AUDIENCES["device"] == frozenset()
    assert AUDIENCES["admin"] >= AUDIENCES["manager"] | AUDIENCES["loss_prevention"]


def test_a_shopper_filter_asks_the_owner_once_per_own_session() -> None:
    asked: list[str] = []

    def owner_of(session_id: str) -> str | None:
        asked.append(session_id)
        return OWNERS.get(session_id)

    hears = caller_filter(who("shopper", ()), owner_of)
    assert [hears(ev("cart", session=s)) for s in ("s-ana", "s-ana", "s-bo", "s-bo")] == [
        True,
        True,
        False,
        False,
    ]
    assert asked == ["s-ana", "s-bo", "s-bo"]  # its own is remembered, others asked again


def test_a_slow_page_loses_its_oldest_events_and_is_told_how_many() -> None:
    woken: list[int] = []
    sub = Subscriber(lambda e: True, max_queue=3, wake=lambda: woken.append(1))
    for i in range(5):
        sub.offer(LiveEvent("cart", "demo", {"n": i}))
    events, dropped = sub.take()
    assert [e.data["n"] for e in events] == [2, 3, 4]
    assert dropped == 2 and sub.dropped_total == 2 and len(woken) == 5
    assert sub.take() == ([], 0)


def test_a_failing_filter_drops_the_event_not_the_bus_thread() -> None:
    def broken(event: LiveEvent) -> bool:
        raise RuntimeError("database gone")

    hub = LiveHub()
    hub.subscribe(broken)
    ok = hub.subscribe(lambda e: True)
    assert hub.publish(ev("footfall")) == 1
    assert [e.name for e in ok.take()[0]] == ["footfall"]


def test_bad_settings_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="max_queue=0"):
        Subscriber(lambda e: True, max_queue=0)
    with pytest.raises(ValueError, match="keepalive_s=0"):
        LiveHub(keepalive_s=0)


def test_bus_messages_become_small_events() -> None:
    bus = LocalTransport()
    hub = LiveHub()
    inbox = hub.attach(bus, "demo", now=lambda: T0)
    sub = hub.subscribe(lambda e: True)
    common = {"event_time_s": T0, "device_id": "brain"}
    publish(
        bus, "demo", SessionEvent(id="se1", session_id="s-1", token="t", state="open", **common)
    )
    publish(
        bus,
        "demo",
        CartEvent(
            id="c1",
            session_id="s-1",
            sku="SKU001",
            quantity_delta=1,
            confidence=0.9,
            source_event_id="sh1",
            **common,
        ),
    )
    publish(
        bus,
        "demo",
        Receipt(
            id="r1",
            session_id="s-1",
            token="t",
            entered_s=T0,
            exited_s=T0,
            currency="EUR",
            lines=[],
            total_cents=0,
            needs_review=False,
            **common,
        ),
    )
    ops = {"event_time_s": T0, "device_id": "ops"}
    publish(bus, "demo", Alert(id="al1", alert_id="A1", kind="stockout", state="raised", **ops))
    publish(
        bus,
        "demo",
        CaseEvent(
            id="ce1",
            case_id="case-1",
            rule="tailgating",
            category="theft",
            state="new",
            incident_s=T0,
            confidence=0.7,
            summary="secret words about a person",
            **ops,
        ),
    )
    publish(bus, "demo", GateEntry(id="g1", event_time_s=T0, device_id="gate-in", token="t"))
    status = DeviceStatus(id="d1", event_time_s=T0, device_id="cam-1", state="offline")
    publish(bus, "demo", status, kind="camera")
    bus.publish(TOPICS["cart_events"].topic("demo", "brain"), b"{broken", 1, False)
    bus.publish(TOPICS["cart_events"].topic("other", "brain"), b"{}", 1, False)  # not our store

    events, _ = sub.take()
    assert [(e.name, dict(e.data)) for e in events] == [
        ("visit", {"session_id": "s-1", "state": "open"}),
        ("cart", {"session_id": "s-1"}),
        ("receipt", {"session_id": "s-1", "receipt_id": "r1"}),
        ("alert", {"alert_id": "A1", "kind": "stockout", "state": "raised"}),
        ("case", {"case_id": "case-1", "state": "new", "rule": "tailgating", "store_id": "demo"}),
        ("footfall", {}),
        ("device", {"device_id": "cam-1", "state": "offline"}),
    ]
    assert all(e.store_id == "demo" for e in events)
    assert "secret" not in "".join(e.sse() for e in events)  # summaries never travel
    assert inbox.rejected["malformed JSON"] == 1


# --- the SSE route ---


@pytest.fixture
def served() -> Iterator[tuple[FastAPI, AccountBook, LiveHub]]:
    book = AccountBook(":memory:")
    hub = LiveHub(keepalive_s=0.2)
    app = FastAPI()
    app.include_router(live_router(hub, Access(book, "demo"), book.owner_of))
    yield app, book, hub
    hub.close()
    book.close()


def bearer(book: AccountBook, username: str, role: Role, stores: tuple[str, ...] = ()) -> str:
    book.create_account(username, PASSWORD, role=role, stores=stores)
    issued = book.sign_in(username, PASSWORD)
    assert issued is not None
    return f"Bearer {issued[0]}"


def test_the_stream_says_hello_sends_own_events_keeps_alive_and_ends(
    served: tuple[FastAPI, AccountBook, LiveHub],
) -> None:
    app, book, hub = served
    auth = bearer(book, "ana", "shopper")
    ana = book.principal_for(auth.split()[1])
    assert ana is not None
    mine = book.issue_scan_token(ana.account_id, "demo").session_id
    safety = threading.Timer(10.0, hub.close)  # never hang the suite on a stuck stream
    safety.start()
    lines: list[str] = []
    try:
        with TestClient(app).stream("GET", "/events", headers={"Authorization": auth}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                lines.append(line)
                if line.startswith("data: ") and '"role"' in line:  # the hello: subscribed
                    hub.publish(ev("cart", session="s-someone-else"))
                    hub.publish(ev("cart", session=mine))
                elif line == ": keep-alive":
                    hub.close()
    finally:
        safety.cancel()
    text = "\n".join(lines)
    assert 'event: hello\ndata: {"role":"shopper"}' in text
    assert f'event: cart\ndata: {{"session_id":"{mine}"}}' in text
    assert "s-someone-else" not in text
    assert text.index("event: cart") < text.index(": keep-alive") < text.index("event: bye")
    assert hub.subscribers == 0


def test_a_device_or_a_stranger_gets_no_stream(
    served: tuple[FastAPI, AccountBook, LiveHub],
) -> None:
    app, book, _ = served
    client = TestClient(app)
    key = book.issue_device_key("gate-in", "demo")
    assert client.get("/events", headers={"Authorization": f"Bearer {key}"}).status_code == 403
    assert client.get("/events").status_code == 401
    other = bearer(book, "olga", "manager", ("another-store",))
    assert client.get("/events", headers={"Authorization": other}).status_code == 403


def test_a_page_that_goes_away_is_unsubscribed(
    served: tuple[FastAPI, AccountBook, LiveHub],
) -> None:
    """Over a real server: closing the connection ends the stream at once, not at a keep-alive."""
    app, book, hub = served
    hub.keepalive_s = 60.0
    auth = bearer(book, "mia", "manager", ("demo",))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
            client.stream("GET", "/events", headers={"Authorization": auth}) as r,
        ):
            lines = r.iter_lines()  # held: a dropped line iterator closes the response
            assert next(lines).startswith("retry:")
            assert hub.subscribers == 1
        deadline = time.monotonic() + 5
        while hub.subscribers and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hub.subscribers == 0
    finally:
        hub.close()
        server.should_exit = True
        thread.join(timeout=10)
