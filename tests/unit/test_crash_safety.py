"""Crash safety's pure parts and the journal replay in one process.

The fault injector (seeded, bounded), the choice of fault moments, the
comparison of a faulty run with a clean one, and the worker's journal: a brain
that dies mid-visit and a new one that replays its journal decide every shelf
event as an uninterrupted brain does. On a broker, with a real ``kill -9`` and
a Mosquitto restart: tests/integration/test_crash_safety_mqtt.py.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from checkout.brain import StoreBrain
from checkout.ids import derived_id
from checkout.ledger import Ledger
from iot.bus import Inbox, LocalTransport, Transport
from iot.mqtt import MqttTransport
from iot.payloads import CartEvent, GateEntry, Receipt, ReceiptLine, ShelfEvent
from iot.store import load_store
from smartstore.bus_traffic import Recorded
from smartstore.fault_run import Traffic, record
from smartstore.faults import (
    FaultInjector,
    Outgoing,
    RunRecord,
    choose_moments,
    compare_runs,
    parse_faults,
)
from smartstore.store_view import StoreView, brain_inputs, event_time_of

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0


# --- the fault injector ---


def _stream(n: int, step_s: float = 0.2) -> list[Outgoing]:
    return [Outgoing(f"t/{i}", f'{{"i": {i}}}'.encode(), 1, T0 + i * step_s) for i in range(n)]


def _inject(msgs: list[Outgoing], **options: float) -> tuple[list[Outgoing], FaultInjector]:
    sent: list[Outgoing] = []
    injector = FaultInjector(sent.append, **options)  # type: ignore[arg-type]
    for m in msgs:
        injector.push(m)
    injector.flush()
    return sent, injector


def test_the_same_seed_injects_the_same_faults_and_another_seed_others() -> None:
    msgs = _stream(500)
    a, _ = _inject(msgs, duplicate_rate=0.1, reorder_rate=0.1, seed=7)
    b, _ = _inject(msgs, duplicate_rate=0.1, reorder_rate=0.1, seed=7)
    c, _ = _inject(msgs, duplicate_rate=0.1, reorder_rate=0.1, seed=8)
    assert a == b
    assert a != c


def test_no_faults_sends_the_stream_as_it_came() -> None:
    msgs = _stream(50)
    sent, injector = _inject(msgs, seed=1)
    assert sent == msgs and injector.duplicates == injector.reordered == 0


def test_duplicates_are_exact_copies_sent_after_their_original() -> None:
    msgs = _stream(400)
    sent, injector = _inject(msgs, duplicate_rate=0.2, seed=3, duplicate_lag=5)
    assert len(sent) == len(msgs) + injector.duplicates and injector.duplicates > 40
    first: dict[str, int] = {}  # topic -> how many originals had gone when it went
    for m in sent:
        if m.topic in first:  # a copy: same bytes, after its original, within the lag
            assert m == msgs[int(m.topic[2:])]
            assert 1 <= len(first) - first[m.topic] <= 1 + 5  # itself, then up to 5 others
        else:
            first[m.topic] = len(first)
    assert len(first) == len(msgs)


def test_reordering_holds_a_message_back_but_never_past_the_attribution_delay() -> None:
    msgs = _stream(600, step_s=0.1)
    sent, injector = _inject(msgs, reorder_rate=0.15, seed=5, reorder_max_s=0.25)
    assert sorted(sent, key=lambda m: m.event_time_s) == msgs  # nothing lost, nothing added
    assert injector.reordered > 50
    out_of_order = 0
    for pos, m in enumerate(sent):
        overtook = [x for x in sent[:pos] if x.event_time_s > m.event_time_s]
        out_of_order += bool(overtook)
        # every message that went before it is stamped less than 0.25 s after it
        assert all(x.event_time_s < m.event_time_s + 0.25 for x in overtook)
    assert out_of_order > 30


def test_the_injector_refuses_bad_shares() -> None:
    with pytest.raises(ValueError, match=r"duplicate_rate=1\.5"):
        FaultInjector(lambda m: None, duplicate_rate=1.5)
    with pytest.raises(ValueError, match="reorder_max_s=0"):
        FaultInjector(lambda m: None, reorder_max_s=0)


@pytest.mark.parametrize(
    ("text", "expected", "error"),
    [
        ("worker-kill", {"worker-kill"}, None),
        (
            "worker-kill, broker-restart,duplicates,reorder",
            {"worker-kill", "broker-restart", "duplicates", "reorder"},
            None,
        ),
        ("worker-kill,power-cut", None, "unknown fault 'power-cut'"),
        ("", None, "unknown fault ''"),
    ],
)
def test_the_faults_list_is_checked(
    text: str, expected: set[str] | None, error: str | None
) -> None:
    if error is None:
        assert parse_faults(text) == expected
    else:
        with pytest.raises(ValueError, match=error):
            parse_faults(text)


# --- moments ---


def test_moments_fall_inside_visits_apart_and_the_same_for_a_seed() -> None:
    spans = [(T0, T0 + 120), (T0 + 300, T0 + 420), (T0 + 600, T0 + 610)]
    moments = choose_moments(spans, 4, seed=11, min_gap_s=20.0, edge_s=10.0)
    assert moments == choose_moments(spans, 4, seed=11, min_gap_s=20.0, edge_s=10.0)
    assert len(moments) == 4 and moments == sorted(moments)
    for t in moments:  # never in the 10 s visit, which leaves no room inside its edges
        assert any(a + 10 <= t <= b - 10 for a, b in spans[:2])
    assert all(b - a >= 20.0 for a, b in itertools.pairwise(moments))
    assert choose_moments([], 3, seed=1) == []
    assert choose_moments([(T0, T0 + 5)], 3, seed=1) == []


# --- comparing runs ---


def _line(cid: str, session: str, sku: str = "SKU001", qty: int = 1) -> CartEvent:
    return CartEvent(
        id=cid,
        event_time_s=T0,
        device_id="w1",
        session_id=session,
        sku=sku,
        quantity_delta=qty,
        confidence=0.9,
        source_event_id=cid[2:],
    )


def _receipt(session: str, qty: int = 1) -> Receipt:
    line = ReceiptLine(
        sku="SKU001", name="x", quantity=qty, unit_price_cents=100, total_cents=100 * qty,
        confidence=0.9,
    )  # fmt: skip
    return Receipt(
        id=f"r-{session}", event_time_s=T0 + 60, device_id="w1", session_id=session,
        token=session[2:], entered_s=T0, exited_s=T0 + 59, currency="EUR", lines=[line],
        total_cents=100 * qty, needs_review=False,
    )  # fmt: skip


def test_identical_runs_lose_nothing_and_match() -> None:
    run = RunRecord.of([_line("c-1", "s-a"), _line("c-2", "s-b")], [_receipt("s-a")])
    out = compare_runs(run, run)
    assert out["lost_lines"] == out["double_counted_lines"] == 0
    assert out["receipts_match_clean_run"] is True


def test_a_missing_line_is_lost_an_extra_one_double_and_a_moved_one_both() -> None:
    clean = RunRecord.of([_line("c-1", "s-a"), _line("c-2", "s-a"), _line("c-3", "s-b")], [])
    faulty = RunRecord.of(
        [_line("c-1", "s-a"), _line("c-3", "s-a"), _line("c-4", "s-b")],  # c-2 gone, c-3 moved
        [],
    )
    out = compare_runs(clean, faulty)
    assert out["lost_lines"] == 2 and out["double_counted_lines"] == 2
    assert out["lost_line_ids"] == ["c-2", "c-3"]
    assert out["double_counted_line_ids"] == ["c-3", "c-4"]


def test_receipts_must_agree_visit_by_visit() -> None:
    clean = RunRecord.of([], [_receipt("s-a"), _receipt("s-b", 2)])
    faulty = RunRecord.of([], [_receipt("s-a", 3), _receipt("s-c")])
    out = compare_runs(clean, faulty)
    assert out["receipts_match_clean_run"] is False
    assert out["receipts_missing"] == ["s-b"] and out["receipts_extra"] == ["s-c"]
    assert out["receipts_differing"] == ["s-a"]
    assert out["lost_units"] == 2 and out["double_counted_units"] == 2 + 1
    with pytest.raises(ValueError, match="two receipts for session s-a"):
        RunRecord.of([], [_receipt("s-a"), _receipt("s-a")])


# --- the worker's journal ---


def test_the_journal_keeps_exactly_what_the_brain_reads() -> None:
    store = load_store(ROOT / "stores" / "demo.yaml")

    class Recording(LocalTransport):
        def __init__(self) -> None:
            super().__init__()
            self.filters: list[str] = []

        def subscribe(self, topic_filter: str, callback, qos: int = 0) -> None:  # type: ignore[no-untyped-def]
            self.filters.append(topic_filter)
            super().subscribe(topic_filter, callback, qos)

    bus = Recording()
    StoreBrain(store, bus, Ledger(":memory:")).start()
    assert sorted(set(bus.filters)) == sorted(brain_inputs(store.store_id))


def test_event_time_is_read_from_the_payload_head() -> None:
    assert event_time_of(b'{"v":1,"id":"x","event_time_s":1800000000.25,"a":1}') == T0 + 0.25
    assert event_time_of(b'{"id": "x"}') == 0.0
    assert event_time_of(b'{"event_time_s": 1e9999}') == float("inf")


def test_a_kept_session_needs_mqtt_5() -> None:
    with pytest.raises(ValueError, match="needs MQTT 5"):
        MqttTransport("mqtt://127.0.0.1:1", "x", session_expiry_s=60)
    with pytest.raises(ValueError, match="give 0"):
        MqttTransport("mqtt://127.0.0.1:1", "x", protocol=5, session_expiry_s=-1)


def test_a_quiet_inbox_counts_refusals_without_dead_letters() -> None:
    bus = LocalTransport()
    letters: list[str] = []
    bus.subscribe("smartstore/demo/brain/+/deadletter", lambda t, d: letters.append(t))
    inbox = Inbox(bus, "demo", service_kind="brain", service_id="b", now=lambda: T0)
    inbox.quiet = True
    inbox.reject("smartstore/demo/gate/gate-in/entries", b"{}", "duplicate id")
    assert inbox.rejected["duplicate id"] == 1 and letters == []
    inbox.quiet = False
    inbox.reject("smartstore/demo/gate/gate-in/entries", b"{}", "duplicate id")
    assert len(letters) == 1


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    """Ten busy visits (the busy scenario, shortened): about 840 messages."""
    text = (ROOT / "scenarios" / "busy.yaml").read_text()
    text = text.replace("../stores/demo.yaml", str(ROOT / "stores" / "demo.yaml"))
    text = text.replace("visits: 60", "visits: 10")
    path = tmp_path_factory.mktemp("crash") / "ten.yaml"
    path.write_text(text)
    return record(path)


class _Store:
    """A brain on an in-process bus whose inputs are journaled first, as the worker does."""

    def __init__(self, traffic: Traffic, ledger: Ledger) -> None:
        self.traffic, self.ledger = traffic, ledger
        self.bus = LocalTransport()
        for topic_filter in brain_inputs(traffic.store_id):
            self.bus.subscribe(topic_filter, self._journal)
        self.view = StoreView(self.bus, self.bus, None)  # type: ignore[arg-type]
        self.brain = StoreBrain(load_store(traffic.store_path), self.view, ledger)

    def _journal(self, topic: str, data: bytes) -> None:
        self.ledger.journal(topic, data, event_time_of(data))

    def send(self, k0: int, k1: int) -> None:
        for m in self.traffic.messages[k0:k1]:
            self.bus.publish(m.topic(self.traffic.store_id), m.data, m.qos, False)


def _ledger_record(ledger: Ledger) -> RunRecord:
    lines = [line for s in ledger.sessions() for line in ledger.cart_events(s.session_id)]
    return RunRecord.of(lines, ledger.receipts())


def _cut(traffic: Traffic) -> int:
    """A message mid-visit after which the brain holds an undecided shelf event."""
    probe = _Store(traffic, Ledger(":memory:"))
    probe.brain.start()
    n = len(traffic.messages)
    for k in range(n // 3, n):
        probe.send(k, k + 1)
        pending = [m.payload for _, _, m in probe.brain._pending]
        if any(isinstance(p, ShelfEvent) for p in pending) and probe.brain.book.sessions:
            return k + 1
    raise AssertionError("no moment with an undecided shelf event")


def test_a_brain_that_replays_the_journal_decides_as_if_nothing_had_happened(
    traffic: Traffic,
) -> None:
    clean = _Store(traffic, Ledger(":memory:"))
    clean.brain.start()
    clean.send(0, len(traffic.messages))
    expected = _ledger_record(clean.ledger)
    assert len(expected.receipts) == len(traffic.visits) and expected.lines

    cut = _cut(traffic)
    ledger = Ledger(":memory:")  # the store's ledger outlives its brain
    dead = _Store(traffic, ledger)
    dead.brain.start()
    dead.send(0, cut)
    assert dead.brain.stats()["pending_events"] > 0  # it dies with undecided events
    # kill -9: the brain and its bus are gone; the ledger and its journal stay
    reborn = _Store(traffic, ledger)
    reborn.brain.start(resume_clock=False)
    with reborn.brain.replaying():
        reborn.view.replay(ledger.journal_rows())
    reborn.send(cut - 5, cut)  # QoS 1 redelivers what the dead one had not acknowledged
    reborn.send(cut, len(traffic.messages))
    out = compare_runs(expected, _ledger_record(ledger))
    assert out["lost_lines"] == 0 and out["double_counted_lines"] == 0, out
    assert out["receipts_match_clean_run"] is True, out
    assert reborn.brain.inbox is not None and reborn.brain.inbox.rejected["duplicate id"] >= 5


def test_without_the_journal_the_undecided_events_of_a_dead_brain_are_lost(
    traffic: Traffic,
) -> None:
    """The control: what the journal is for."""
    clean = _Store(traffic, Ledger(":memory:"))
    clean.brain.start()
    clean.send(0, len(traffic.messages))
    cut = _cut(traffic)
    ledger = Ledger(":memory:")
    dead = _Store(traffic, ledger)
    dead.brain.start()
    dead.send(0, cut)
    reborn = _Store(traffic, ledger)
    reborn.brain.start()  # rebuilt from the ledger alone, as before the journal
    reborn.send(cut, len(traffic.messages))
    out = compare_runs(_ledger_record(clean.ledger), _ledger_record(ledger))
    assert out["lost_lines"] > 0


def test_duplicated_and_reordered_inputs_change_no_cart(traffic: Traffic) -> None:
    clean = _Store(traffic, Ledger(":memory:"))
    clean.brain.start()
    clean.send(0, len(traffic.messages))
    faulty = _Store(traffic, Ledger(":memory:"))
    faulty.brain.start()
    bus: Transport = faulty.bus
    injector = FaultInjector(
        lambda m: bus.publish(m.topic, m.data, m.qos, False),
        duplicate_rate=0.1,
        reorder_rate=0.1,
        seed=traffic.seed,
    )
    for m in traffic.messages:
        injector.push(Outgoing(m.topic(traffic.store_id), m.data, m.qos, m.event_time_s))
    injector.flush()
    assert injector.duplicates > 30 and injector.reordered > 30
    out = compare_runs(_ledger_record(clean.ledger), _ledger_record(faulty.ledger))
    assert out["lost_lines"] == out["double_counted_lines"] == 0, out
    assert out["receipts_match_clean_run"] is True, out


def test_a_repeat_scan_in_after_a_restart_opens_no_second_visit(traffic: Traffic) -> None:
    ledger = Ledger(":memory:")
    first = _Store(traffic, ledger)
    first.brain.start()
    entry = GateEntry(id="e-late", event_time_s=traffic.start_s + 1, device_id="gate-in", token="t")
    first.bus.publish(
        f"smartstore/{traffic.store_id}/gate/gate-in/entries", entry.model_dump_json().encode()
    )
    second = _Store(traffic, ledger)
    second.brain.start(resume_clock=False)
    with second.brain.replaying():
        second.view.replay(ledger.journal_rows())
    assert [s.token for s in ledger.sessions()] == ["t"]
    assert second.brain.stats()["sessions_opened"] == 0


def test_an_edge_cut_off_for_a_while_loses_only_what_visits_that_left_meanwhile_took(
    traffic: Traffic,
) -> None:
    """A network partition of the edge node that settles one gondola's shelves: its shelf
    events (QoS 1, queued by its client) arrive up to 100 s late, in order. The brain
    decides them late from the tracks it kept: every visit still in the store gets its
    lines. A visit that left during the partition was receipted without them; they are
    refused as too late (counted, dead-lettered, never charged twice). See
    docs/reliability.md, "Crash safety"."""
    clean = _Store(traffic, Ledger(":memory:"))
    clean.brain.start()
    clean.send(0, len(traffic.messages))
    cut_off = _Store(traffic, Ledger(":memory:"))
    cut_off.brain.start()
    begin, end = traffic.start_s + 20, traffic.start_s + 120
    queued: list[Recorded] = []
    held: list[str] = []
    for m in traffic.messages:
        if m.tail.startswith("shelf/shelf-g05/") and begin <= m.send_s < end:
            queued.append(m)
            held.append(derived_id("c-", json.loads(m.data)["id"]))
            continue
        if queued and m.send_s >= end:  # the link is back: the queue goes first, in order
            for q in queued:
                cut_off.bus.publish(q.topic(traffic.store_id), q.data, q.qos, False)
            queued = []
        cut_off.bus.publish(m.topic(traffic.store_id), m.data, m.qos, False)
    expected, got = _ledger_record(clean.ledger), _ledger_record(cut_off.ledger)
    out = compare_runs(expected, got)
    assert len(held) >= 10 and out["double_counted_lines"] == 0
    lost = set(out["lost_line_ids"])  # type: ignore[arg-type]
    assert lost <= set(held)
    for line_id in lost:  # only visits that left before the link came back
        assert expected.receipts[expected.lines[line_id][0]].exited_s < end
    decided_late = [i for i in held if i in expected.lines and i not in lost]
    assert decided_late and lost  # both happen in these 100 s of a busy store
    assert all(got.lines[i] == expected.lines[i] for i in decided_late)
    assert cut_off.brain.stats()["late_events"] == len(lost)


class _FakeMqtt:
    """What a store view needs of the connection: tracked publishes, acknowledged on demand."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.acked: set[int] = set()

    def publish_tracked(self, topic: str, data: bytes, qos: int = 1):  # type: ignore[no-untyped-def]
        self.sent.append(topic)
        n = len(self.sent)
        return lambda: n in self.acked


def test_a_store_view_keeps_decisions_in_the_outbox_until_the_broker_has_them() -> None:
    ledger = Ledger(":memory:")
    bus, mqtt = LocalTransport(), _FakeMqtt()
    view = StoreView(bus, mqtt, None, outbox=ledger)  # type: ignore[arg-type]
    view.publish("smartstore/s/brain/w1/receipts", b'{"id": "r-1"}', 1)
    view.publish("smartstore/s/brain/w1/carts", b'{"id": "c-1"}', 1)
    view.publish("smartstore/s/brain/w1/status", b"{}", 1, True)  # retained: not a decision
    assert mqtt.sent == ["smartstore/s/brain/w1/receipts", "smartstore/s/brain/w1/carts"]
    assert len(ledger.outbox_rows()) == 2
    mqtt.acked.add(1)
    view.clear_outbox()
    assert [t for _, t, _ in ledger.outbox_rows()] == ["smartstore/s/brain/w1/carts"]
    # the next brain of the store sends again what the broker never acknowledged
    again = StoreView(bus, mqtt, None, outbox=ledger)  # type: ignore[arg-type]
    assert again.resend() == 1 and mqtt.sent[-1] == "smartstore/s/brain/w1/carts"
    mqtt.acked.update({2, 3})
    assert again.drain_outbox(1.0) and ledger.outbox_rows() == []
