"""Broker URL parsing and redaction (pure; no broker needed)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from iot.mqtt import MqttTransport, parse_broker_url
from iot.mqtt_url import parse_broker, redact_url

SECRET = "hunter2-Zq"


@pytest.mark.parametrize(
    ("url", "expected", "error"),
    [
        ("mqtt://127.0.0.1:1883", ("127.0.0.1", 1883), None),
        ("mqtt://broker.local", ("broker.local", 1883), None),
        ("mqtt://localhost:18830/", ("localhost", 18830), None),
        ("mqtts://127.0.0.1", ("127.0.0.1", 8883), None),
        ("mqtts://127.0.0.1:18883?ca=/etc/ca.crt", ("127.0.0.1", 18883), None),
        ("ws://127.0.0.1:8080", None, "scheme 'ws'"),
        ("tcp://127.0.0.1:1883", None, "scheme 'tcp'"),
        ("127.0.0.1:1883", None, "mqtt://HOST:PORT"),
        ("mqtt://:1883", None, "names no host"),
        ("mqtt://127.0.0.1:99999", None, "not valid"),
        ("mqtt://127.0.0.1:12/topic", None, "path"),
        ("mqtt://user:pw@127.0.0.1:1883", ("127.0.0.1", 1883), None),
        ("mqtt://user@127.0.0.1:1883", None, "no password"),
        ("mqtt://:pw@127.0.0.1:1883", None, "empty user name"),
        ("mqtt://127.0.0.1:1883?ca=/etc/ca.crt", None, "not TLS"),
        ("mqtts://127.0.0.1?cafile=/etc/ca.crt", None, "unknown option"),
        ("mqtts://127.0.0.1?ca=", None, "exactly once"),
        ("mqtts://127.0.0.1?ca=a&ca=b", None, "exactly once"),
        ("mqtts://u:p@127.0.0.1?accounts=c.json", None, "one or the other"),
    ],
)
def test_parse_broker_url(url: str, expected: tuple[str, int] | None, error: str | None) -> None:
    if error is None:
        assert parse_broker_url(url) == expected
    else:
        with pytest.raises(ValueError, match=error):
            parse_broker_url(url)


@pytest.mark.parametrize(
    "url",
    [
        f"mqtt://ann:{SECRET}@127.0.0.1:1883",
        f"mqtts://ann:{SECRET}@broker:99999",  # invalid port
        f"mqtts://ann:{SECRET}@broker:1/path",  # a path
        f"mqtt://ann:{SECRET}@broker:1?ca=/x",  # CA without TLS
        f"tcp://ann:{SECRET}@broker:1",  # unknown scheme
        f"mqtt://ann:ab/{SECRET}@broker:1",  # a raw '/' in the password
        f"mqtt://ann:p@{SECRET}@broker:1",  # a raw '@' in the password
        f"mqtts://ann:{SECRET}@[::1:1",  # unparseable
        f"mqtts://broker?password={SECRET}",
    ],
)
def test_no_password_in_redacted_urls_or_errors(url: str) -> None:
    assert SECRET not in redact_url(url)
    assert "***" in redact_url(url)
    try:
        address = parse_broker(url)
    except ValueError as exc:
        assert SECRET not in str(exc), str(exc)
    else:
        assert SECRET not in address.redacted and SECRET not in repr(address)


def test_redaction_keeps_what_is_not_secret() -> None:
    url = "mqtts://demo-brain:pw@broker.local:8883?ca=/etc/smartstore/ca.crt"
    assert redact_url(url) == "mqtts://demo-brain:***@broker.local:8883?ca=/etc/smartstore/ca.crt"
    assert redact_url("mqtt://127.0.0.1:1883") == "mqtt://127.0.0.1:1883"


def test_percent_escaped_passwords_are_decoded() -> None:
    address = parse_broker("mqtts://ann:p%40ss%2Fw%3Ard@broker")
    assert (address.username, address.password) == ("ann", "p@ss/w:rd")


def _accounts(tmp_path: Path) -> Path:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"accounts": {"demo-brain": {"password": SECRET, "role": "brain"}}}))
    return path


def test_accounts_file_gives_each_client_its_own_login(tmp_path: Path) -> None:
    path = _accounts(tmp_path)
    address = parse_broker(f"mqtts://broker?accounts={path}")
    assert address.username is None
    login = address.for_client("demo-brain")
    assert (login.username, login.password) == ("demo-brain", SECRET)
    with pytest.raises(ValueError, match="no account 'demo-ops'") as missing:
        address.for_client("demo-ops")
    assert SECRET not in str(missing.value)


def test_unreadable_accounts_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(ValueError, match="not a credentials file"):
        parse_broker(f"mqtts://broker?accounts={tmp_path / 'bad.json'}").for_client("x")
    with pytest.raises(ValueError, match="cannot read"):
        parse_broker(f"mqtts://broker?accounts={tmp_path / 'none.json'}").for_client("x")


@pytest.mark.parametrize(
    ("url", "options", "error"),
    [
        (f"mqtts://ann:{SECRET}@127.0.0.1:1", {"tls_ca": "/nonexistent/ca.crt"}, "CA file"),
        ("mqtt://127.0.0.1:1", {"tls_ca": "/etc/ca.crt"}, "needs a TLS broker URL"),
        ("mqtt://127.0.0.1:1", {"username": "ann"}, "together"),
        (f"mqtt://ann:{SECRET}@127.0.0.1:1", {"username": "b", "password": "c"}, "already"),
    ],
)
def test_transport_options_are_checked_before_connecting(
    url: str, options: dict[str, str], error: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValueError, match=error) as refused:
        MqttTransport(url, "c1", connect_timeout_s=1, **options)
    assert SECRET not in str(refused.value) and SECRET not in caplog.text


def test_transport_url_attribute_is_redacted() -> None:
    with pytest.raises(ConnectionError) as refused:
        MqttTransport(f"mqtt://ann:{SECRET}@127.0.0.1:9", "c1", connect_timeout_s=1)
    assert SECRET not in str(refused.value) and "ann:***@" in str(refused.value)
