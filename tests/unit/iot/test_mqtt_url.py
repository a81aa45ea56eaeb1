"""Broker URL parsing (pure; no broker needed)."""

from __future__ import annotations

import pytest

from iot.mqtt import parse_broker_url


@pytest.mark.parametrize(
    ("url", "expected", "error"),
    [
        ("mqtt://127.0.0.1:1883", ("127.0.0.1", 1883), None),
        ("mqtt://broker.local", ("broker.local", 1883), None),
        ("mqtt://localhost:18830/", ("localhost", 18830), None),
        ("mqtts://127.0.0.1:8883", None, "only 'mqtt'"),
        ("tcp://127.0.0.1:1883", None, "scheme 'tcp'"),
        ("127.0.0.1:1883", None, "mqtt://HOST:PORT"),
        ("mqtt://:1883", None, "names no host"),
        ("mqtt://127.0.0.1:99999", None, "not valid"),
        ("mqtt://127.0.0.1:12/topic", None, "path"),
        ("mqtt://user:pw@127.0.0.1:1883", None, "credentials"),
    ],
)
def test_parse_broker_url(url: str, expected: tuple[str, int] | None, error: str | None) -> None:
    if error is None:
        assert parse_broker_url(url) == expected
    else:
        with pytest.raises(ValueError, match=error):
            parse_broker_url(url)
