"""Accounts, roles and credentials: who may ask the store's API for what.

Five roles. A *shopper* sees only their own visits; a *manager* the stores
they manage; *loss_prevention* the cases of the stores they are assigned;
a *device* (a gate scanner, say) may only publish; an *admin* everything.

Secrets are never kept as given. Passwords are hashed with scrypt and a
salt per account. Sign-in tokens and device keys are long random strings,
so one SHA-256 of them is enough to keep them unreadable in the file;
each carries a prefix (``st_``, ``dk_``) so a leaked one is recognisable
and log redaction can find it. Tokens expire: wall-clock time rules here,
because expiry is about people and keys, not about store events.

A shopper's scan-in QR code carries a *scan token*, the pseudonymous token
of :class:`iot.payloads.GateEntry`. The book keeps which account it was
issued to, by the session id it will open, which is how a shopper's visits,
carts and receipts are found without the visit ever naming the person.

>>> book = AccountBook(":memory:", clock=lambda: 1000.0)
>>> _ = book.create_account("ana", "correct horse battery", role="shopper")
>>> token, expires_s = book.sign_in("ana", "correct horse battery")
>>> book.principal_for(token).role, expires_s
('shopper', 29800.0)
>>> book.sign_in("ana", "wrong") is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from checkout.database import Migration, insert_ignore, open_database
from checkout.sessions import session_id_for

__all__ = [
    "MIGRATIONS",
    "ROLES",
    "AccountBook",
    "AccountError",
    "Principal",
    "Role",
    "ScanToken",
    "ScanTokenError",
    "SignInThrottledError",
    "hash_password",
    "verify_password",
]

Role = Literal["shopper", "manager", "loss_prevention", "device", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

TOKEN_PREFIX = "st_"
DEVICE_KEY_PREFIX = "dk_"
SCAN_PREFIX = "qr-"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
# Control characters: a NUL cannot even be stored on PostgreSQL; none belongs in a name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MIN_PASSWORD = 10
_MAX_FAILURES = 5  # wrong passwords per username ...
_FAILURE_WINDOW_S = 15 * 60.0  # ... within this long, then sign-in waits
_MAX_TRACKED = 10_000  # usernames with recent failures kept in memory
# scrypt's cost: about 50 ms and 16 MiB per hash here, so guessing is slow and memory-bound.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

_V1 = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    stores TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_s REAL NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(account_id),
    issued_s REAL NOT NULL,
    expires_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS device_keys (
    key_hash TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    store_id TEXT NOT NULL,
    created_s REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS scan_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts(account_id),
    store_id TEXT NOT NULL,
    issued_s REAL NOT NULL,
    expires_s REAL NOT NULL,
    used_s REAL
);
CREATE INDEX IF NOT EXISTS scan_tokens_account ON scan_tokens(account_id, issued_s);
"""
MIGRATIONS = (Migration(1, "accounts, sign-in tokens, device keys, scan tokens", _V1),)
_SCAN_COLUMNS = (
    "token_hash", "session_id", "account_id", "store_id", "issued_s", "expires_s", "used_s",
)  # fmt: skip


class AccountError(ValueError):
    """A request to create or change an account that cannot be honoured (says why)."""


class ScanTokenError(ValueError):
    """A scanned QR code that opens no visit: unknown, expired or already used."""


class SignInThrottledError(Exception):
    """Too many wrong passwords for one username lately: wait before trying again."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Principal:
    """Who is asking: an account, or a device by its key."""

    account_id: str
    username: str
    display_name: str
    role: Role
    stores: frozenset[str]  # for an admin, empty means every store

    def sees_store(self, store_id: str) -> bool:
        return self.role == "admin" or store_id in self.stores

    def public(self) -> dict[str, object]:
        return {
            "account_id": self.account_id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "stores": sorted(self.stores),
        }


@dataclass(frozen=True)
class ScanToken:
    """A QR scan-in token issued to a shopper (the token is shown once, never stored)."""

    token: str
    session_id: str
    store_id: str
    expires_s: float


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), salted per account."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + f"{b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` hashes to ``stored`` (compared in constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            dklen=32,
            n=int(n),
            r=int(r),
            p=int(p),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# Hashing a password for an unknown user too keeps sign-in time from telling who exists.
_DECOY_HASH = hash_password("no such account, but hash anyway")


class AccountBook:
    """Accounts, sign-in tokens, device keys and scan tokens in one database.

    ``path``: an SQLite file (``":memory:"`` for tests) or a ``postgresql://``
    URL (see :func:`checkout.database.open_database`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        token_ttl_s: float = 8 * 3600.0,
        scan_ttl_s: float = 15 * 60.0,
    ) -> None:
        self._file = open_database(
            path,
            "accounts",
            MIGRATIONS,
            closed_message=lambda use: f"account book {self._file.path} is closed ({use})",
        )
        self.clock = clock
        self.token_ttl_s = token_ttl_s
        self.scan_ttl_s = scan_ttl_s
        # username -> times of recent wrong passwords (kept for _FAILURE_WINDOW_S, bounded)
        self._failures: dict[str, deque[float]] = {}
        self._failures_lock = threading.Lock()

    def close(self) -> None:
        self._file.close()

    # --- accounts ---

    def create_account(
        self,
        username: str,
        password: str,
        *,
        role: Role,
        stores: Iterable[str] = (),
        display_name: str | None = None,
    ) -> Principal:
        """A new account; raises :class:`AccountError` naming what is wrong."""
        if not USERNAME.match(username):
            raise AccountError(
                f"username {username!r}: use 2-64 characters of a-z, 0-9, '.', '_', '@', '-'"
            )
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password: use at least {MIN_PASSWORD} characters")
        if role not in ROLES or role == "device":
            raise AccountError(f"role {role!r}: one of shopper, manager, loss_prevention, admin")
        store_set = frozenset(stores)
        if role in ("manager", "loss_prevention") and not store_set:
            raise AccountError(f"a {role} account needs at least one store")
        account_id = "a-" + secrets.token_hex(8)
        name = (display_name or username).strip()[:64] or username
        if _CONTROL.search(name):
            raise AccountError(f"display name {name!r} holds a control character; use plain text")
        with self._file.writer() as c:
            if c.execute("SELECT 1 FROM accounts WHERE username = ?", (username,)).fetchone():
                raise AccountError(f"username {username!r} is taken; choose another")
            c.execute(
                "INSERT INTO accounts (account_id, username, display_name, role, stores, "
                "password_hash, created_s, disabled) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    account_id,
                    username,
                    name,
                    role,
                    json.dumps(sorted(store_set)),
                    hash_password(password),
                    self.clock(),
                ),
            )
        return Principal(account_id, username, name, role, store_set)

    def accounts(self) -> list[Principal]:
        with self._file.reader() as c:
            rows = c.execute("SELECT * FROM accounts WHERE disabled = 0 ORDER BY username")
            return [_principal(row) for row in rows]

    def disable(self, account_id: str) -> bool:
        """Disable an account and revoke its tokens; False if there is none."""
        with self._file.writer() as c:
            n = c.execute(
                "UPDATE accounts SET disabled = 1 WHERE account_id = ?", (account_id,)
            ).rowcount
            c.execute("DELETE FROM tokens WHERE account_id = ?", (account_id,))
        return n > 0

    # --- sign-in tokens ---

    def sign_in(self, username: str, password: str) -> tuple[str, float] | None:
        """A new token and its expiry, or None for a wrong name or password (no hint which).

        After ``_MAX_FAILURES`` wrong tries for one username within
        ``_FAILURE_WINDOW_S``, raises :class:`SignInThrottledError` until the
        oldest of them ages out, so passwords cannot be guessed at speed.
        """
        self._check_throttle(username)
        found = self._verified(username, password)
        if found is None:
            self._note_failure(username)
            return None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        expires_s = now + self.token_ttl_s
        with self._file.writer() as c:
            c.execute("DELETE FROM tokens WHERE expires_s <= ?", (now,))
            c.execute(
                "INSERT INTO tokens (token_hash, account_id, issued_s, expires_s) "
                "VALUES (?, ?, ?, ?)",
                (_digest(token), found, now, expires_s),
            )
        return token, expires_s

    def _verified(self, username: str, password: str) -> str | None:
        """The account id if the password is right."""
        with self._file.reader() as c:
            row = c.execute(
                "SELECT account_id, password_hash FROM accounts "
                "WHERE username = ? AND disabled = 0",
                (username,),
            ).fetchone()
        if row is None:
            verify_password(password, _DECOY_HASH)
            return None
        if not verify_password(password, row["password_hash"]):
            return None
        return str(row["account_id"])

    def _recent_failures(self, username: str, now: float) -> deque[float]:
        times = self._failures.setdefault(username, deque(maxlen=_MAX_FAILURES))
        while times and times[0] <= now - _FAILURE_WINDOW_S:
            times.popleft()
        return times

    def _check_throttle(self, username: str) -> None:
        now = self.clock()
        with self._failures_lock:
            times = self._recent_failures(username, now)
            if len(times) >= _MAX_FAILURES:
                raise SignInThrottledError(times[0] + _FAILURE_WINDOW_S - now)

    def _note_failure(self, username: str) -> None:
        now = self.clock()
        with self._failures_lock:
            if len(self._failures) >= _MAX_TRACKED and username not in self._failures:
                self._failures.pop(next(iter(self._failures)))  # the oldest name tracked
            self._recent_failures(username, now).append(now)

    def sign_out(self, token: str) -> None:
        with self._file.writer() as c:
            c.execute("DELETE FROM tokens WHERE token_hash = ?", (_digest(token),))

    def principal_for(self, secret: str) -> Principal | None:
        """Whoever ``secret`` (a sign-in token or a device key) belongs to, if still valid."""
        if secret.startswith(DEVICE_KEY_PREFIX):
            return self._device_for(secret)
        if not secret.startswith(TOKEN_PREFIX):
            return None
        with self._file.reader() as c:
            row = c.execute(
                "SELECT a.* FROM tokens t JOIN accounts a USING (account_id) "
                "WHERE t.token_hash = ? AND t.expires_s > ? AND a.disabled = 0",
                (_digest(secret), self.clock()),
            ).fetchone()
        return None if row is None else _principal(row)

    # --- device keys ---

    def issue_device_key(self, device_id: str, store_id: str) -> str:
        """A new key for a device (shown once); the device may then only publish."""
        key = DEVICE_KEY_PREFIX + secrets.token_urlsafe(32)
        with self._file.writer() as c:
            c.execute(
                "INSERT INTO device_keys (key_hash, device_id, store_id, created_s, revoked) "
                "VALUES (?, ?, ?, ?, 0)",
                (_digest(key), device_id, store_id, self.clock()),
            )
        return key

    def revoke_device_keys(self, device_id: str) -> int:
        with self._file.writer() as c:
            return c.execute(
                "UPDATE device_keys SET revoked = 1 WHERE device_id = ?", (device_id,)
            ).rowcount

    def _device_for(self, key: str) -> Principal | None:
        with self._file.reader() as c:
            row = c.execute(
                "SELECT device_id, store_id FROM device_keys WHERE key_hash = ? AND revoked = 0",
                (_digest(key),),
            ).fetchone()
        if row is None:
            return None
        device = row["device_id"]
        return Principal(f"device:{device}", device, device, "device", frozenset({row["store_id"]}))

    # --- scan tokens (the QR code at the entry gate) ---

    def issue_scan_token(self, account_id: str, store_id: str) -> ScanToken:
        """A fresh QR token for the shopper; it opens one visit, once, before it expires."""
        token = SCAN_PREFIX + secrets.token_urlsafe(12)
        now = self.clock()
        session_id = session_id_for(token)
        expires_s = now + self.scan_ttl_s
        with self._file.writer() as c:
            c.execute(
                "INSERT INTO scan_tokens (token_hash, session_id, account_id, store_id, "
                "issued_s, expires_s, used_s) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (_digest(token), session_id, account_id, store_id, now, expires_s),
            )
        return ScanToken(token, session_id, store_id, expires_s)

    def use_scan_token(self, token: str, store_id: str) -> str:
        """Mark a scanned token used and return the session id it opens.

        Raises :class:`ScanTokenError` saying why a gate should refuse it.
        """
        now = self.clock()
        with self._file.writer() as c:
            row = c.execute(
                "SELECT * FROM scan_tokens WHERE token_hash = ?", (_digest(token),)
            ).fetchone()
            if row is None or row["store_id"] != store_id:
                raise ScanTokenError(
                    "unknown QR code: ask the shopper to open a new one in the app"
                )
            if row["used_s"] is not None:
                raise ScanTokenError("this QR code was already used: open a new one in the app")
            if row["expires_s"] <= now:
                raise ScanTokenError("this QR code has expired: open a new one in the app")
            c.execute(
                "UPDATE scan_tokens SET used_s = ? WHERE token_hash = ?", (now, row["token_hash"])
            )
        return str(row["session_id"])

    def link_token(self, token: str, account_id: str, store_id: str) -> str:
        """Record that an existing scan token belongs to an account (the demo's shoppers)."""
        session_id = session_id_for(token)
        now = self.clock()
        with self._file.writer() as c:
            c.execute(
                insert_ignore("scan_tokens", _SCAN_COLUMNS),
                (_digest(token), session_id, account_id, store_id, now, now, now),
            )
        return session_id

    def sessions_of(self, account_id: str) -> list[str]:
        """Session ids of the visits the account's scan tokens opened, newest first."""
        with self._file.reader() as c:
            rows = c.execute(
                "SELECT session_id FROM scan_tokens WHERE account_id = ? AND used_s IS NOT NULL "
                "ORDER BY issued_s DESC",
                (account_id,),
            )
            return [str(r["session_id"]) for r in rows]

    def owner_of(self, session_id: str) -> str | None:
        """The account whose scan token opened ``session_id``, if any."""
        with self._file.reader() as c:
            row = c.execute(
                "SELECT account_id FROM scan_tokens WHERE session_id = ?", (session_id,)
            ).fetchone()
        return None if row is None else str(row["account_id"])


def _principal(row: Any) -> Principal:
    return Principal(
        row["account_id"],
        row["username"],
        row["display_name"],
        row["role"],
        frozenset(json.loads(row["stores"])),
    )
