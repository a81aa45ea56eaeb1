"""The locked-down broker's accounts, ACL, password file and rendered configuration."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from checkout.devices import DEVICE_KINDS as HEALTH_DEVICE_KINDS
from iot.broker_acl import (
    DEFAULT_SERVICES,
    DERIVED,
    DEVICE_KINDS,
    SERVICE_ROLES,
    Account,
    accounts_for,
    acl_text,
    device_ids_by_kind,
    password_line,
)
from iot.store import Store, load_store, parse_store
from iot.topics import ANY, TOPICS, match_topic
from smartstore.broker_config import TEMPLATE, render_conf, write_broker_config
from smartstore.cli import main

ROOT = Path(__file__).resolve().parents[2]
STORE_FILE = ROOT / "stores" / "demo.yaml"
STORE = load_store(STORE_FILE)
ALL_SERVICES = {**DEFAULT_SERVICES, "twin": "twin", "worker-2": "brain"}


def _store_with(**changes: object) -> Store:
    data = yaml.safe_load(STORE_FILE.read_text())
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(leaf) if leaf.isdigit() else leaf] = value
    return parse_store(data, "test")


def _wildcard(topic: str) -> bool:
    return "+" in topic.split("/") or "#" in topic.split("/")


def _devices(accounts: dict[str, Account]) -> list[Account]:
    return [a for a in accounts.values() if a.is_device]


def test_device_kinds_agree_with_device_health() -> None:
    assert frozenset(DEVICE_KINDS) == HEALTH_DEVICE_KINDS


def test_every_declared_device_has_one_account() -> None:
    accounts = accounts_for(STORE)
    declared = {(k, d) for k, ids in device_ids_by_kind(STORE).items() for d in ids}
    assert {(a.kind, a.client) for a in _devices(accounts)} == declared
    assert len(declared) == 30  # 8 shelves, 16 cameras, 2 gates, 2 trackers, 2 readers


def test_a_device_writes_exactly_its_own_topics() -> None:
    for account in _devices(accounts_for(STORE)):
        expected = {
            c.topic("demo", account.client)
            for c in TOPICS.values()
            if c.kind == account.kind and c.name not in DERIVED
        } | {TOPICS["status"].topic("demo", account.client, account.kind)}
        assert set(account.writes) == expected, account.username
        for topic in account.writes:
            assert not _wildcard(topic), f"{account.username} may write a wildcard {topic}"
            found = match_topic(topic)
            assert found is not None and found[1:] == ("demo", account.client), topic


@pytest.mark.parametrize(
    ("username", "writes", "reads"),
    [
        (
            "demo-shelf-g01",
            ["shelf/shelf-g01/samples", "shelf/shelf-g01/events", "shelf/shelf-g01/status"],
            [],
        ),
        ("demo-rfid-exit", ["rfid/rfid-exit/raw", "rfid/rfid-exit/status"], []),
        ("demo-gate-in", ["gate/gate-in/entries", "gate/gate-in/exits", "gate/gate-in/status"], []),
        ("demo-positioning", ["tracker/positioning/tracks", "tracker/positioning/status"], []),
        (
            "demo-cam-shelf-g01",
            [
                "camera/cam-shelf-g01/interactions",
                "camera/cam-shelf-g01/snapshots",
                "camera/cam-shelf-g01/status",
            ],
            ["ops/+/evidence"],
        ),
    ],
)
def test_device_rules_table(username: str, writes: list[str], reads: list[str]) -> None:
    account = accounts_for(STORE)[username]
    assert list(account.writes) == [f"smartstore/demo/{t}" for t in writes]
    assert list(account.reads) == [f"smartstore/demo/{t}" for t in reads]


def test_a_reader_never_writes_passages_the_adapter_derives() -> None:
    reader = accounts_for(STORE)["demo-rfid-entry"]
    assert TOPICS["tag_passages"].topic("demo", "rfid-entry") not in reader.writes
    assert (
        TOPICS["tag_passages"].topic("demo", "rfid-entry") in accounts_for(STORE)["demo-ops"].writes
    )


def test_every_channel_has_a_writer_and_a_reader() -> None:
    accounts = accounts_for(STORE, ALL_SERVICES)
    first = {k: ids[0] for k, ids in device_ids_by_kind(STORE).items()}
    for channel in TOPICS.values():
        kind = "shelf" if channel.kind == ANY else channel.kind  # status, dead letters: a shelf's
        sample = channel.topic("demo", first.get(kind, "any-id"), kind)
        writers = [a for a in accounts.values() if any(_matches(w, sample) for w in a.writes)]
        readers = [a for a in accounts.values() if any(_matches(r, sample) for r in a.reads)]
        assert writers, f"nobody may publish {channel.name} ({sample})"
        assert readers, f"nobody may read {channel.name} ({sample})"


def _matches(acl_topic: str, topic: str) -> bool:
    a, t = acl_topic.split("/"), topic.split("/")
    return len(a) == len(t) and all(x in ("+", y) for x, y in zip(a, t, strict=True))


def test_service_roles_name_registry_channels_and_stay_in_their_store() -> None:
    for name, role in SERVICE_ROLES.items():
        for channel in (*role.reads, *role.writes, *role.on_behalf):
            assert channel in TOPICS, f"role {name} names unknown channel {channel!r}"
        for channel in role.writes:
            assert TOPICS[channel].kind not in DEVICE_KINDS, (
                f"role {name} writes device channel {channel} under any id; use on_behalf"
            )
    for account in accounts_for(STORE, ALL_SERVICES).values():
        for topic in (*account.reads, *account.writes):
            assert topic.startswith("smartstore/demo/") and "#" not in topic, topic


def test_services_write_device_channels_only_for_declared_devices() -> None:
    declared = STORE.device_ids()
    for account in accounts_for(STORE, ALL_SERVICES).values():
        if account.is_device:
            continue
        for topic in account.writes:
            _, _, kind, device, _ = topic.split("/")
            if kind in DEVICE_KINDS and device != account.client:
                assert device in declared, f"{account.username} writes {topic}"


def test_extra_services_get_their_own_account() -> None:
    worker = accounts_for(STORE, ALL_SERVICES)["demo-worker-2"]
    assert worker.role == "brain"
    assert worker.status_topic == "smartstore/demo/brain/worker-2/status"
    assert worker.status_topic in worker.writes
    assert "smartstore/demo/brain/brain/status" not in worker.writes


@pytest.mark.parametrize(
    ("store", "services", "error"),
    [
        (STORE, {"brain": "wizard"}, "known roles"),
        (STORE, {"shelf-g01": "brain"}, "also the id of a shelf device"),
        (STORE, {"a:b": "brain"}, "cannot be a broker login"),
        (_store_with(devices__positioning=["gate-in"]), None, "also the id of a gate device"),
        (_store_with(devices__positioning=["pos/1"]), None, "cannot be a broker login"),
        (_store_with(devices__positioning=["pos+"]), None, "cannot be a broker login"),
    ],
)
def test_accounts_refuse_unsafe_or_shared_ids(
    store: Store, services: dict[str, str] | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        accounts_for(store, services)


def test_acl_file_has_a_user_block_per_account_and_nothing_for_anonymous() -> None:
    accounts = accounts_for(STORE, ALL_SERVICES)
    text = acl_text(accounts, source="stores/demo.yaml")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines[0].startswith("user "), "a topic line before the first user applies to anonymous"
    users: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith("user "):
            users[line.split(" ", 1)[1]] = []
        else:
            users[list(users)[-1]].append(line)
    assert list(users) == list(accounts)
    for name, rules in users.items():
        a = accounts[name]
        assert rules == [f"topic read {t}" for t in a.reads] + [
            f"topic write {t}" for t in a.writes
        ]


def _verify(line: str, password: str) -> bool:
    """Check a ``$7$`` line the way Mosquitto 2 does."""
    _, hashed = line.split(":", 1)
    _, algo, iterations, salt, digest = hashed.split("$")
    raw = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
    return algo == "7" and base64.b64encode(raw).decode() == digest


def test_password_lines_use_mosquittos_pbkdf2_format() -> None:
    line = password_line("demo-brain", "s3cret")
    assert line.startswith("demo-brain:$7$101$")
    assert _verify(line, "s3cret") and not _verify(line, "s3cret!")
    assert password_line("a", "p") != password_line("a", "p"), "the salt must be fresh"
    with pytest.raises(ValueError, match="without ':'"):
        password_line("a:b", "p")


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="no mosquitto_passwd")
def test_password_lines_agree_with_mosquitto_passwd(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "ann", "hunter2"], check=True)
    theirs = path.read_text().strip()
    salt = base64.b64decode(theirs.split("$")[3])
    assert password_line("ann", "hunter2", salt=salt) == theirs


def test_rendered_conf_fills_every_field(tmp_path: Path) -> None:
    template = TEMPLATE.read_text()
    conf = render_conf(
        template, config_dir=tmp_path, tls_port=18883, tls_bind="127.0.0.1", local_port=18830
    )
    assert "{{" not in conf and "template" not in conf and "regenerate it" in conf
    assert "listener 18883 127.0.0.1" in conf and "listener 18830 127.0.0.1" in conf
    assert f"password_file {tmp_path}/passwd" in conf and "allow_anonymous false" in conf
    alone = render_conf(template, config_dir=tmp_path, tls_port=8883, tls_bind=None, local_port=0)
    listeners = [ln for ln in alone.splitlines() if ln.startswith("listener ")]
    assert listeners == ["listener 8883"]
    with pytest.raises(ValueError, match="unknown field"):
        render_conf("x {{nope}}", config_dir=tmp_path, tls_port=1, tls_bind=None, local_port=0)


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl missing")


@needs_openssl
def test_written_files_keep_secrets_owner_only(tmp_path: Path) -> None:
    files = write_broker_config(STORE_FILE, tmp_path / "b", tls_port=18883, local_port=0)
    out = files.out_dir
    for name in ("passwd", "credentials.json", "server.key", "ca.key"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    creds = json.loads(files.credentials.read_text())["accounts"]
    assert set(creds) == set(files.accounts)
    assert len({c["password"] for c in creds.values()}) == len(creds), "passwords must differ"
    lines = dict(ln.split(":", 1) for ln in files.passwd.read_text().splitlines())
    for name, entry in creds.items():
        assert _verify(f"{name}:{lines[name]}", entry["password"]), name
        own = out / "accounts" / f"{name}.json"
        assert stat.S_IMODE(own.stat().st_mode) == 0o600
        text = own.read_text()
        others = [n for n, e in creds.items() if n != name and e["password"] in text]
        assert json.loads(text)["password"] == entry["password"] and not others


@needs_openssl
def test_server_certificate_names_the_hosts_and_chains_to_the_ca(tmp_path: Path) -> None:
    files = write_broker_config(
        STORE_FILE, tmp_path, hosts=("broker.store-7.example", "10.1.2.3"), local_port=0
    )
    text = subprocess.run(
        ["openssl", "x509", "-in", str(files.server_cert), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:broker.store-7.example" in text and "IP Address:10.1.2.3" in text
    assert "TEST CA demo" in text
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(files.ca_cert), str(files.server_cert)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


@needs_openssl
def test_a_given_ca_signs_the_server_certificate(tmp_path: Path) -> None:
    chain = write_broker_config(STORE_FILE, tmp_path / "chain", local_port=0)
    store = write_broker_config(
        STORE_FILE,
        tmp_path / "store",
        ca_cert=chain.ca_cert,
        ca_key=chain.out_dir / "ca.key",
        local_port=0,
    )
    assert store.ca_cert.read_bytes() == chain.ca_cert.read_bytes()
    assert not (store.out_dir / "ca.key").exists(), "a real CA's key must not be copied"
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(chain.ca_cert), str(store.server_cert)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


@needs_openssl
def test_an_earlier_configuration_is_kept_unless_forced(tmp_path: Path) -> None:
    first = write_broker_config(STORE_FILE, tmp_path, local_port=0)
    before = first.credentials.read_text()
    with pytest.raises(ValueError, match="--force"):
        write_broker_config(STORE_FILE, tmp_path, local_port=0)
    assert first.credentials.read_text() == before
    write_broker_config(STORE_FILE, tmp_path, local_port=0, force=True)
    assert first.credentials.read_text() != before


@needs_openssl
def test_cli_writes_a_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["broker-config", str(STORE_FILE), str(tmp_path), "--no-default-services"]
    assert main([*args, "--service", "worker-2=brain", "--local-port", "0"]) == 0
    said = capsys.readouterr().out
    assert "30 device and 1 service accounts" in said and "mosquitto -c" in said
    creds = json.loads((tmp_path / "credentials.json").read_text())["accounts"]
    assert "demo-worker-2" in creds and "demo-brain" not in creds


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--service", "worker-2"], "ID=ROLE"),
        (["--service", "w=wizard"], "known roles"),
        (["--ca", "ca.crt"], "--ca and --ca-key together"),
        (["--tls-port", "0"], "--tls-port 0"),
        (["--local-port", "8883"], "not the TLS port"),
        (["--host", "bad host"], "neither a DNS name"),
    ],
)
def test_cli_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], error: str
) -> None:
    assert main(["broker-config", str(STORE_FILE), str(tmp_path), *extra]) == 2
    assert error in capsys.readouterr().err
    assert not (tmp_path / "passwd").exists()
