"""The locked-down Mosquitto: accounts, ACLs and TLS, on a broker this module starts.

``smartstore broker-config`` writes a configuration for the demo store into a
temporary folder; Mosquitto runs it on two free ports (TLS, and the loopback
listener). Under MQTT 3.1.1 Mosquitto drops a publish its ACL forbids without
telling the publisher, so a forbidden message is shown dropped by publishing
it, then an allowed one on the same connection, and seeing only the allowed
one arrive (QoS 1 keeps one connection's messages in order).

Without Mosquitto the tests skip with a message, except under ``CI=true``,
where that is a failure (as for the shared broker in conftest).
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from brokers import listening
from waiting import wait_for

from iot.bus import publish
from iot.mqtt import MqttTransport
from iot.payloads import GateEntry, PlateSamples, ShelfEvent, ShelfSamples
from iot.topics import TOPICS
from smartstore.broker_config import BrokerFiles, write_broker_config

pytestmark = pytest.mark.integration

STORE_FILE = Path(__file__).resolve().parents[2] / "stores" / "demo.yaml"
SID = "demo"
T0 = 1.8e9
QUIET_S = 0.5  # how long "nothing arrives" is watched, after a later message did arrive


def _mosquitto() -> str:
    found = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    missing = [n for n, p in (("mosquitto", found), ("openssl", shutil.which("openssl"))) if not p]
    if missing:
        message = (
            f"{' and '.join(missing)} not installed; apt-get install mosquitto openssl to test "
            "the locked-down broker configuration"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must test the locked-down broker: {message}")
        pytest.skip(message)
    assert found is not None
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Locked:
    """The running broker (its files and ports) and one test's connections to it.

    ``use_username_as_clientid``: a second connection of an account knocks the first
    off, so each test closes its connections before the next one starts.
    """

    def __init__(self, files: BrokerFiles) -> None:
        self.files = files
        self.tls_url = f"mqtts://localhost:{files.tls_port}?ca={files.ca_cert}"
        self.accounts_url = f"{self.tls_url}&accounts={files.credentials}"
        self.local_url = f"mqtt://127.0.0.1:{files.local_port}"
        self.made: list[MqttTransport] = []

    def connect(self, url: str, client_id: str, **options: Any) -> MqttTransport:
        t = MqttTransport(url, client_id, connect_timeout_s=5, **options)
        self.made.append(t)
        return t

    def account(self, name: str, **options: Any) -> MqttTransport:
        """Connected as ``SID-name`` over TLS, its login picked from credentials.json."""
        return self.connect(self.accounts_url, f"{SID}-{name}", **options)

    def password(self, name: str) -> str:
        return self.files.login(f"{SID}-{name}")[1]


@pytest.fixture
def broker(running: Locked) -> Iterator[Locked]:
    """The module's broker; the connections a test makes are closed after it."""
    yield running
    for t in reversed(running.made):
        t.close()
    running.made.clear()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Locked]:
    mosquitto = _mosquitto()
    out = tmp_path_factory.mktemp("broker")
    files = write_broker_config(
        STORE_FILE,
        out,
        hosts=("localhost",),  # not 127.0.0.1: dialling the IP checks the host-name check
        tls_port=_free_port(),
        tls_bind="127.0.0.1",
        local_port=_free_port(),
        run_as=pwd.getpwuid(os.geteuid()).pw_name,  # as root, do not drop to `mosquitto`
    )
    log_path = out / "mosquitto.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [mosquitto, "-c", str(files.conf)], stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        up = wait_for(
            lambda: (
                proc.poll() is not None
                or all(listening(("127.0.0.1", p)) for p in (files.tls_port, files.local_port))
            ),
            10,
        )
        if proc.poll() is not None or not up:
            pytest.fail(f"mosquitto did not start with {files.conf}:\n{log_path.read_text()}")
        yield Locked(files)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _collect(t: MqttTransport, topic_filter: str) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    t.subscribe(topic_filter, lambda topic, data: got.append((topic, data)), 1)
    return got


def _topics(got: list[tuple[str, bytes]]) -> list[str]:
    return [topic for topic, _ in got]


def _shelf_event(device_id: str, n: int) -> ShelfEvent:
    return ShelfEvent(
        id=f"{device_id}.ev{n}",
        event_time_s=T0 + n,
        device_id=device_id,
        plate_id="g01-s1-p1",
        action="pick",
        delta_g=-522.0,
        started_s=T0 + n - 0.5,
        sku="SKU001",
        quantity=1,
        confidence=0.9,
        noise_g=2.0,
    )


def test_a_shelf_publishes_its_events_and_status_over_tls(broker: Locked) -> None:
    brain = broker.account("brain")
    events = _collect(brain, TOPICS["shelf_events"].filter(SID))
    statuses = _collect(brain, TOPICS["status"].filter(SID, kind="shelf"))
    status_topic = TOPICS["status"].topic(SID, "shelf-g01", "shelf")
    shelf = broker.account("shelf-g01", status_topic=status_topic)
    topic = publish(shelf, SID, _shelf_event("shelf-g01", 1))
    assert wait_for(lambda: topic in _topics(events), 5)
    assert wait_for(lambda: status_topic in _topics(statuses), 5)
    assert b'"online"' in dict(statuses)[status_topic]


def test_a_shelf_cannot_publish_on_another_shelfs_topics(broker: Locked) -> None:
    brain = broker.account("brain")
    events = _collect(brain, TOPICS["shelf_events"].filter(SID))
    samples = _collect(brain, "smartstore/demo/shelf/+/samples")  # the brain may not read these
    shelf = broker.account("shelf-g01")
    forged = _shelf_event("shelf-g02", 2)
    publish(shelf, SID, forged)  # on smartstore/demo/shelf/shelf-g02/events: dropped
    shelf.publish(TOPICS["receipts"].topic(SID, "brain"), b"{}", 1)  # a service's channel
    own = publish(shelf, SID, _shelf_event("shelf-g01", 3))
    assert wait_for(lambda: own in _topics(events), 5)
    time.sleep(QUIET_S)
    assert _topics(events) == [own], "a shelf's forged event on another shelf's topic arrived"
    batch = ShelfSamples(
        id="g01.b1",
        event_time_s=T0,
        device_id="shelf-g01",
        sample_rate_hz=20,
        plates=[PlateSamples(plate_id="g01-s1-p1", weights_g=[1.0, 1.0])],
    )
    publish(shelf, SID, batch)
    time.sleep(QUIET_S)
    assert samples == [], "the brain's account read raw load-cell samples it has no use for"


def test_a_reader_publishes_only_its_own_raw_topic(broker: Locked) -> None:
    ops = broker.account("ops")
    raw = _collect(ops, TOPICS["rfid_raw"].filter(SID))
    passages = _collect(ops, TOPICS["tag_passages"].filter(SID))
    reader = broker.account("rfid-exit")
    reader.publish("smartstore/demo/rfid/rfid-entry/raw", b'{"forged": true}', 1)
    reader.publish(TOPICS["tag_passages"].topic(SID, "rfid-exit"), b'{"derived": false}', 1)
    reader.publish(TOPICS["rfid_raw"].topic(SID, "rfid-exit"), b'{"reads": []}', 1)
    assert wait_for(lambda: len(raw) >= 1, 5)
    time.sleep(QUIET_S)
    assert raw == [("smartstore/demo/rfid/rfid-exit/raw", b'{"reads": []}')]
    assert passages == [], "a reader published a passage only the RFID adapter may derive"


def test_services_subscribe_to_what_they_need(broker: Locked) -> None:
    brain = broker.account("brain")
    heard = {
        name: _collect(brain, TOPICS[name].filter(SID))
        for name in ("gate_entries", "tracks", "interactions")
    }
    gate = broker.account("gate-in")
    entry = GateEntry(id="e1", event_time_s=T0, device_id="gate-in", token="t-1")
    publish(gate, SID, entry)
    broker.account("positioning").publish(TOPICS["tracks"].topic(SID, "positioning"), b"{}", 0)
    broker.account("cam-shelf-g01").publish(
        TOPICS["interactions"].topic(SID, "cam-shelf-g01"), b"{}", 1
    )
    assert wait_for(lambda: all(heard.values()), 5), {k: len(v) for k, v in heard.items()}
    assert _topics(heard["gate_entries"]) == ["smartstore/demo/gate/gate-in/entries"]


def test_the_api_publishes_scan_ins_for_gates_only(broker: Locked) -> None:
    brain = broker.account("brain")
    entries = _collect(brain, TOPICS["gate_entries"].filter(SID))
    exits = _collect(brain, TOPICS["gate_exits"].filter(SID))
    api = broker.account("api")
    api.publish(TOPICS["gate_exits"].topic(SID, "gate-out"), b"{}", 1)  # only gates see exits
    api.publish(TOPICS["gate_entries"].topic(SID, "gate-in"), b"{}", 1)
    assert wait_for(lambda: len(entries) == 1, 5)
    time.sleep(QUIET_S)
    assert exits == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong password", "Not authorized"),
        ("unknown login", "Not authorized"),
        ("anonymous", "Not authorized"),
        ("anonymous on the loopback listener", "Not authorized"),
        ("no CA", "CERTIFICATE_VERIFY_FAILED"),
        ("host not in the certificate", "IP address mismatch"),
    ],
)
def test_refused_at_connect(
    broker: Locked, case: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = broker.files.tls_port
    ca = broker.files.ca_cert
    secret = broker.password("shelf-g01")
    url = {
        "wrong password": f"mqtts://demo-shelf-g01:{secret}x@localhost:{port}?ca={ca}",
        "unknown login": f"mqtts://demo-intruder:{secret}@localhost:{port}?ca={ca}",
        "anonymous": broker.tls_url,
        "anonymous on the loopback listener": broker.local_url,
        "no CA": f"mqtts://demo-shelf-g01:{secret}@localhost:{port}",
        "host not in the certificate": f"mqtts://demo-shelf-g01:{secret}@127.0.0.1:{port}?ca={ca}",
    }[case]
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConnectionError, match=expected) as refused:
        MqttTransport(url, "demo-shelf-g01", connect_timeout_s=5)
    assert secret not in str(refused.value) and secret not in caplog.text


def test_the_loopback_listener_takes_the_same_logins(broker: Locked) -> None:
    brain = broker.connect(
        broker.local_url, "demo-brain", username="demo-brain", password=broker.password("brain")
    )
    entries = _collect(brain, TOPICS["gate_entries"].filter(SID))
    gate = broker.account("gate-out")
    gate.publish(TOPICS["gate_entries"].topic(SID, "gate-in"), b"{}", 1)  # not its own gate
    gate.publish(TOPICS["gate_entries"].topic(SID, "gate-out"), b"{}", 1)
    assert wait_for(lambda: len(entries) == 1, 5)
    time.sleep(QUIET_S)
    assert _topics(entries) == ["smartstore/demo/gate/gate-out/entries"]


def test_a_device_cannot_take_over_a_services_client_id(broker: Locked) -> None:
    brain = broker.account("brain")
    entries = _collect(brain, TOPICS["gate_entries"].filter(SID))
    # The shelf's login with the brain's client id: the broker names the session after the login.
    broker.connect(
        broker.tls_url,
        "demo-brain",
        username="demo-shelf-g03",
        password=broker.password("shelf-g03"),
    )
    time.sleep(QUIET_S)
    assert brain.connected
    broker.account("gate-in").publish(TOPICS["gate_entries"].topic(SID, "gate-in"), b"{}", 1)
    assert wait_for(lambda: len(entries) == 1, 5)


def test_a_devices_own_file_is_all_it_needs(broker: Locked) -> None:
    own = json.loads((broker.files.out_dir / "accounts" / "demo-rfid-entry.json").read_text())
    ops = broker.account("ops")
    raw = _collect(ops, TOPICS["rfid_raw"].filter(SID))
    reader = broker.connect(
        own["broker"],
        "any-client-id",
        username=own["username"],
        password=own["password"],
        status_topic=own["status_topic"],
    )
    reader.publish(TOPICS["rfid_raw"].topic(SID, "rfid-entry"), b'{"reads": []}', 1)
    assert wait_for(lambda: len(raw) == 1, 5)


def test_every_account_logs_in_with_its_own_credentials(broker: Locked) -> None:
    refused: list[str] = []
    for name, account in broker.files.accounts.items():
        try:
            t = broker.connect(broker.accounts_url, name, status_topic=account.status_topic)
        except ConnectionError as exc:
            refused.append(f"{name}: {exc}")
            continue
        t.close()
    assert refused == []
