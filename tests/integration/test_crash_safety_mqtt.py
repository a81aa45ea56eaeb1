"""Crash safety on a real Mosquitto: kill -9 of a worker mid-visit, a broker restart, the
write-ahead acknowledgement and a session kept through a crash.

The fault-injection run starts Mosquittos of its own (it restarts one) and
worker subprocesses; the transport tests use the shared Mosquitto at
127.0.0.1:1883 with client ids of their own.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from brokers import mosquitto_url
from waiting import wait_for

from iot.mqtt import MqttTransport
from smartstore.fault_run import FaultSettings, run_fault_eval
from smartstore.faults import FAULT_KINDS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _need_mosquitto() -> None:
    if shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI must test crash safety: apt-get install mosquitto")
        pytest.skip("mosquitto is not installed; apt-get install mosquitto")


def _ten_visits(tmp_path: Path) -> Path:
    text = (ROOT / "scenarios" / "busy.yaml").read_text()
    text = text.replace("../stores/demo.yaml", str(ROOT / "stores" / "demo.yaml"))
    path = tmp_path / "ten.yaml"
    path.write_text(text.replace("visits: 60", "visits: 10"))
    return path


def test_kills_mid_visit_and_a_broker_restart_lose_no_line_and_change_no_receipt(
    tmp_path: Path,
) -> None:
    """Ten busy visits: two kill -9s and a Mosquitto restart mid-visit, messages duplicated
    and reordered; the same receipts as the clean run (about 10 s)."""
    _need_mosquitto()
    report = run_fault_eval(
        _ten_visits(tmp_path),
        frozenset(FAULT_KINDS),
        settings=FaultSettings(kills=2),
        keep_dir=tmp_path / "runs",
    )
    assert report["lost_lines"] == 0, report
    assert report["double_counted_lines"] == 0, report
    assert report["receipts_match_clean_run"] is True, report
    assert report["receipts_clean"] == report["visits"] == 10
    injected = report["injected"]
    assert isinstance(injected, dict)
    assert injected["worker_kills"] == 2 and injected["broker_restarts"] == 1
    assert injected["duplicates_sent"] > 0 and injected["reordered"] > 0
    # each restarted worker got its store back from the journal
    replayed = injected["replayed_per_start"]
    assert replayed[0] == 0 and all(n > 0 for n in replayed[1:]) and len(replayed) == 3
    # every receipt reached the bus: what a killed worker had not got out, the next sent
    on_bus = report["receipts_on_bus"]
    assert isinstance(on_bus, dict) and on_bus["faulty"]["not_published"] == 0


def test_a_message_the_hook_could_not_write_is_not_acknowledged_and_comes_again() -> None:
    url = mosquitto_url()
    me = f"t{uuid.uuid4().hex[:10]}"
    attempts: list[bytes] = []
    got: list[bytes] = []

    def write_ahead(topic: str, data: bytes) -> None:
        attempts.append(data)
        if len(attempts) == 1:
            raise OSError("the ledger is down")

    sub = MqttTransport(
        url, f"{me}-sub", protocol=5, session_expiry_s=60, on_receive=write_ahead,
        connect_timeout_s=5,
    )  # fmt: skip
    pub = MqttTransport(url, f"{me}-pub", connect_timeout_s=5)
    try:
        sub.subscribe(f"{me}/events", lambda t, d: got.append(d), 1)
        pub.publish(f"{me}/events", b"one", 1)
        # refused once: not acknowledged, the connection cut, the broker sends it again
        assert wait_for(lambda: got == [b"one"], 10), (attempts, got)
        assert attempts == [b"one", b"one"] and sub.receive_errors == 1
    finally:
        pub.close()
        sub.close()


def test_a_kept_session_hands_a_restarted_client_what_came_while_it_was_dead() -> None:
    url = mosquitto_url()
    me = f"t{uuid.uuid4().hex[:10]}"
    first = MqttTransport(url, f"{me}-worker", protocol=5, session_expiry_s=60)
    first.subscribe(f"{me}/events", lambda t, d: None, 1)
    first.abort()  # kill -9: no DISCONNECT, the session stays with the broker
    pub = MqttTransport(url, f"{me}-pub", connect_timeout_s=5)
    written: list[bytes] = []
    second = None
    try:
        for k in range(3):
            pub.publish(f"{me}/events", f"while-dead-{k}".encode(), 1)
        assert pub.flush(5)
        # the write-ahead hook hears them before any callback is subscribed again
        second = MqttTransport(
            url, f"{me}-worker", protocol=5, session_expiry_s=60,
            on_receive=lambda t, d: written.append(d), connect_timeout_s=5,
        )  # fmt: skip
        assert wait_for(lambda: len(written) == 3, 10), written
        assert written == [b"while-dead-0", b"while-dead-1", b"while-dead-2"]
        # a subscription the last run left in the session is dropped with forget()
        second.forget(f"{me}/events")
        time.sleep(0.3)  # the UNSUBSCRIBE's round trip (forget does not wait)
        pub.publish(f"{me}/events", b"after-forget", 1)
        assert pub.flush(5)
        assert not wait_for(lambda: len(written) > 3, 1.0), written
    finally:
        pub.close()
        if second is not None:
            second.close()
