"""Broker URLs: where the broker is, how to log in, and whether to speak TLS.

A broker URL is user input (``--broker``), and may carry a password, so
every message about one goes through ``redact_url`` first: the password
never reaches an error message, a log line or a ``repr``.

Forms:

- ``mqtt://HOST[:PORT]``: plain MQTT, anonymous (the embedded broker, a
  developer's Mosquitto); port 1883 by default.
- ``mqtt://USER:PASSWORD@HOST[:PORT]``: plain MQTT with a login (a broker's
  loopback listener).
- ``mqtts://USER:PASSWORD@HOST[:PORT][?ca=CA_FILE]``: TLS (port 8883 by
  default), the server's certificate checked against ``CA_FILE`` (else the
  system's trusted CAs) and its host name checked against ``HOST``.
- ``...?accounts=CREDENTIALS.json``: instead of one login in the URL, each
  client picks the account named like its client id from the credentials
  file ``smartstore broker-config`` wrote, so a composition root whose
  services each connect with their own id can be given one URL.

Characters of a password that are special in URLs are %-escaped.

>>> a = parse_broker("mqtts://demo-brain:s3cr%40t@broker.local?ca=/etc/ca.crt")
>>> (a.host, a.port, a.tls, a.username, a.password, a.ca_file)
('broker.local', 8883, True, 'demo-brain', 's3cr@t', '/etc/ca.crt')
>>> a.redacted
'mqtts://demo-brain:***@broker.local?ca=/etc/ca.crt'
>>> redact_url("mqtt://ann:hunter2@[::1")
'mqtt://ann:***@[::1'
"""

from __future__ import annotations

import json
import re
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["BrokerAddress", "parse_broker", "redact_url"]

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_HINT = (
    "use mqtt://HOST:PORT, mqtt://USER:PASSWORD@HOST:PORT or "
    "mqtts://USER:PASSWORD@HOST:PORT?ca=CA_FILE, e.g. mqtt://127.0.0.1:1883"
)
_QUERY_KEYS = frozenset({"ca", "accounts"})
# scheme://user:secret@ -> scheme://user:***@, up to the last '@': a password with a raw
# '/', '?' or '@' in it is hidden too (at worst a path with '@' is hidden with it). Works on
# URLs too broken to parse.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:).*@", re.DOTALL)
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pass|pw|secret|token)=)[^&#]*")


def redact_url(url: str) -> str:
    """``url`` with any password (in the user part or a ``password=`` query) as ``***``."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1***@", url))


@dataclass(frozen=True)
class BrokerAddress:
    """A parsed broker URL; ``password`` is kept out of ``repr`` and of ``redacted``."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    accounts_file: str | None = None
    redacted: str = ""

    def for_client(self, client_id: str) -> BrokerAddress:
        """The address with ``client_id``'s login from ``accounts_file`` (if one is named)."""
        if self.accounts_file is None:
            return self
        username, password = _account(self.accounts_file, client_id, self.redacted)
        return replace(self, username=username, password=password)

    def tls_context(self) -> ssl.SSLContext:
        """A client TLS context: the server's chain checked (``ca_file`` or the system's CAs)
        and its host name checked against ``host``."""
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def parse_broker(url: str) -> BrokerAddress:
    """Parse a broker URL (see the module docstring); ``ValueError`` says what is wrong.

    The error names the URL with its password redacted.
    """
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"broker URL {shown!r} is not valid ({exc}); {_HINT}") from None
    scheme = parts.scheme
    if scheme not in DEFAULT_PORTS:
        raise ValueError(
            f"broker URL {shown!r} has scheme {scheme or '(none)'!r}; only 'mqtt' and "
            f"'mqtts' (TLS) are supported (no websockets); {_HINT}"
        )
    if not parts.hostname:
        raise ValueError(f"broker URL {shown!r} names no host; {_HINT}")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError(f"broker URL {shown!r} has a path or fragment; {_HINT}")
    query = _query(parts.query, shown)
    if parts.username is not None and not parts.username:
        raise ValueError(f"broker URL {shown!r} has an empty user name; {_HINT}")
    if parts.username is not None and parts.password is None:
        raise ValueError(
            f"broker URL {shown!r} names user {unquote(parts.username)!r} but no password; "
            "write USER:PASSWORD@HOST"
        )
    if "accounts" in query and parts.username is not None:
        raise ValueError(
            f"broker URL {shown!r} has both a login and accounts=; give one or the other"
        )
    if "ca" in query and scheme != "mqtts":
        raise ValueError(f"broker URL {shown!r} names a CA file but not TLS; use mqtts://")
    return BrokerAddress(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        tls=scheme == "mqtts",
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        ca_file=query.get("ca"),
        accounts_file=query.get("accounts"),
        redacted=shown,
    )


def _query(query: str, shown: str) -> dict[str, str]:
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(f"broker URL {shown!r} has an unreadable query; {_HINT}") from None
    unknown = sorted(set(values) - _QUERY_KEYS)
    if unknown:
        raise ValueError(
            f"broker URL {shown!r} has unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_QUERY_KEYS))}"
        )
    out: dict[str, str] = {}
    for key, got in values.items():
        if len(got) != 1 or not got[0]:
            raise ValueError(f"broker URL {shown!r}: give {key}= exactly once, with a value")
        out[key] = got[0]
    return out


def _account(path: str, client_id: str, shown: str) -> tuple[str, str]:
    """``client_id``'s (username, password) from a ``smartstore broker-config`` credentials file."""
    where = f"accounts file {path} (from broker URL {shown!r})"
    try:
        data = json.loads(Path(path).read_text())
        accounts = data["accounts"]
    except OSError as exc:
        raise ValueError(f"cannot read the {where}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"the {where} is not a credentials file of `smartstore broker-config` "
            "(JSON with an 'accounts' object)"
        ) from None
    entry = accounts.get(client_id) if isinstance(accounts, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("password"), str):
        raise ValueError(
            f"the {where} has no account {client_id!r}; regenerate it with "
            f"`smartstore broker-config` (with --service for a service id it does not list)"
        )
    return client_id, entry["password"]
