"""Accounts and credentials: hashing, expiry, revocation, device keys, QR scan tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from checkout.access import COOKIE, Access
from checkout.auth import (
    AccountBook,
    AccountError,
    ScanTokenError,
    SignInThrottledError,
    hash_password,
    verify_password,
)
from checkout.auth_api import auth_router

PW = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(clock: Clock, db: str) -> Iterator[AccountBook]:
    made = AccountBook(db, clock=clock, token_ttl_s=60, scan_ttl_s=30)
    made.create_account("ana", PW, role="shopper")
    made.create_account("mo", PW, role="manager", stores=["demo"])
    yield made
    made.close()


def test_passwords_are_salted_hashes_that_verify() -> None:
    a, b = hash_password(PW), hash_password(PW)
    assert a != b and PW not in a
    assert verify_password(PW, a) and not verify_password(PW + "!", a)
    assert not verify_password(PW, "md5$whatever") and not verify_password(PW, "garbage")


def test_the_file_holds_no_secret_as_given(tmp_path) -> None:
    path = tmp_path / "accounts.sqlite"
    book = AccountBook(path)
    book.create_account("ana", PW, role="shopper")
    token, _ = book.sign_in("ana", PW)  # type: ignore[misc]
    key = book.issue_device_key("gate-in", "demo")
    book.close()
    raw = path.read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.iterdir() if p.name.endswith("-wal")
    )
    for secret in (PW, token, key):
        assert secret.encode() not in raw


def test_no_row_holds_a_secret_as_given(db: str) -> None:
    book = AccountBook(db)
    book.create_account("ana", PW, role="shopper")
    token, _ = book.sign_in("ana", PW)  # type: ignore[misc]
    key = book.issue_device_key("gate-in", "demo")
    with book._file.reader() as c:
        text = "".join(
            repr(list(row))
            for table in ("accounts", "tokens", "device_keys", "scan_tokens")
            for row in c.execute(f"SELECT * FROM {table}").fetchall()
        )
    book.close()
    assert "ana" in text  # the rows were read
    for secret in (PW, token, key):
        assert secret not in text


def test_tokens_expire_and_sign_out_revokes(book: AccountBook, clock: Clock) -> None:
    token, expires_s = book.sign_in("ana", PW)  # type: ignore[misc]
    assert expires_s == clock.t + 60
    assert book.principal_for(token).username == "ana"  # type: ignore[union-attr]
    clock.t += 61
    assert book.principal_for(token) is None
    fresh, _ = book.sign_in("ana", PW)  # type: ignore[misc]
    book.sign_out(fresh)
    assert book.principal_for(fresh) is None


def test_unknown_and_malformed_credentials_are_nobody(book: AccountBook) -> None:
    for secret in ("", "st_", "st_nope", "dk_nope", "Bearer x", "x" * 5000):
        assert book.principal_for(secret) is None
    assert book.sign_in("nobody", PW) is None and book.sign_in("ana", "") is None


def test_disabled_accounts_lose_their_tokens(book: AccountBook) -> None:
    token, _ = book.sign_in("mo", PW)  # type: ignore[misc]
    [mo] = [p for p in book.accounts() if p.username == "mo"]
    assert book.disable(mo.account_id) and not book.disable("a-none")
    assert book.principal_for(token) is None and book.sign_in("mo", PW) is None


@pytest.mark.parametrize(
    ("account", "says"),
    [
        (("A", PW, "shopper", ()), "username"),
        (("ana", PW, "shopper", ()), "taken"),
        (("bo", "short", "shopper", ()), "password"),
        (("bo", PW, "device", ()), "role"),
        (("bo", PW, "manager", ()), "store"),
    ],
)
def test_bad_accounts_are_refused_saying_why(book: AccountBook, account, says: str) -> None:
    username, password, role, stores = account
    with pytest.raises(AccountError, match=says):
        book.create_account(username, password, role=role, stores=stores)


def test_wrong_passwords_throttle_one_username(book: AccountBook, clock: Clock) -> None:
    for _ in range(5):
        assert book.sign_in("ana", "wrong password") is None
    with pytest.raises(SignInThrottledError):
        book.sign_in("ana", PW)  # even the right password waits
    assert book.sign_in("mo", PW) is not None  # others are not held up
    clock.t += 15 * 60 + 1
    assert book.sign_in("ana", PW) is not None


def test_device_keys_are_devices_of_one_store_until_revoked(book: AccountBook) -> None:
    key = book.issue_device_key("gate-in", "demo")
    who = book.principal_for(key)
    assert who is not None and who.role == "device" and who.stores == {"demo"}
    assert book.revoke_device_keys("gate-in") == 1
    assert book.principal_for(key) is None


def test_a_scan_token_opens_one_visit_once_before_it_expires(
    book: AccountBook, clock: Clock
) -> None:
    [ana] = [p for p in book.accounts() if p.username == "ana"]
    issued = book.issue_scan_token(ana.account_id, "demo")
    with pytest.raises(ScanTokenError, match="unknown"):
        book.use_scan_token(issued.token, "other-store")
    assert book.use_scan_token(issued.token, "demo") == issued.session_id
    with pytest.raises(ScanTokenError, match="already used"):
        book.use_scan_token(issued.token, "demo")
    late = book.issue_scan_token(ana.account_id, "demo")
    clock.t += 31
    with pytest.raises(ScanTokenError, match="expired"):
        book.use_scan_token(late.token, "demo")
    assert book.sessions_of(ana.account_id) == [issued.session_id]
    assert book.owner_of(issued.session_id) == ana.account_id
    assert book.owner_of(late.session_id) == ana.account_id  # issued, never used
    assert book.owner_of("s-someone-else") is None


def test_a_closed_book_refuses_to_work(book: AccountBook) -> None:
    book.close()
    with pytest.raises(RuntimeError, match="closed"):
        book.sign_in("ana", PW)


def test_rows_survive_reopening(durable_db: str) -> None:
    first = AccountBook(durable_db)
    first.create_account("ana", PW, role="shopper")
    first.close()
    again = AccountBook(durable_db)
    assert again.sign_in("ana", PW) is not None
    with again._file.reader() as c:
        [(stored,)] = c.execute("SELECT password_hash FROM accounts").fetchall()
    again.close()
    assert stored.startswith("scrypt$")


# --- the HTTP side ---


@pytest.fixture
def client(book: AccountBook) -> TestClient:
    app = FastAPI()
    app.include_router(auth_router(book, Access(book, "demo")))
    return TestClient(app)


def test_login_sets_an_httponly_strict_cookie_and_logout_revokes(client: TestClient) -> None:
    res = client.post("/auth/login", json={"username": "ana", "password": PW})
    assert res.status_code == 200 and res.json()["account"]["role"] == "shopper"
    cookie = res.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    token = res.json()["token"]
    assert client.get("/me").status_code == 200  # by cookie
    assert client.post("/auth/logout").status_code == 204
    client.cookies.clear()
    assert client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_wrong_password_and_an_unknown_user_look_the_same(client: TestClient) -> None:
    wrong = client.post("/auth/login", json={"username": "ana", "password": "nope nope"})
    nobody = client.post("/auth/login", json={"username": "zed", "password": "nope nope"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()


def test_too_many_wrong_passwords_get_429_with_retry_after(client: TestClient) -> None:
    for _ in range(5):
        client.post("/auth/login", json={"username": "ana", "password": "wrong pw!"})
    res = client.post("/auth/login", json={"username": "ana", "password": PW})
    assert res.status_code == 429 and int(res.headers["retry-after"]) > 0


def test_malformed_bodies_name_the_field(client: TestClient) -> None:
    res = client.post("/auth/register", json={"username": "x" * 200, "password": PW})
    assert res.status_code == 422
    assert res.json()["detail"][0]["loc"] == ["body", "username"]
    bad = client.post("/auth/register", json={"username": "Bad Name", "password": PW})
    assert bad.status_code == 422 and "username" in bad.json()["detail"]


def test_staff_accounts_are_made_by_an_admin_only(client: TestClient, book: AccountBook) -> None:
    book.create_account("root", PW, role="admin")
    body = {"username": "lp1", "password": PW, "role": "loss_prevention", "stores": ["demo"]}
    assert client.post("/accounts", json=body).status_code == 401
    client.post("/auth/login", json={"username": "mo", "password": PW})
    assert client.post("/accounts", json=body).status_code == 403
    client.post("/auth/login", json={"username": "root", "password": PW})
    assert client.post("/accounts", json=body).status_code == 201
    assert client.cookies.get(COOKIE, "").startswith("st_")


def test_a_display_name_with_a_control_character_is_422(client: TestClient) -> None:
    """A NUL cannot be stored on PostgreSQL at all (a 500 there): refused alike on both engines."""
    body = {"username": "zoe", "password": PW, "display_name": "Zoe\x00"}
    res = client.post("/auth/register", json=body)
    assert res.status_code == 422 and "control character" in res.json()["detail"]
    assert client.post("/auth/login", json={"username": "zoe", "password": PW}).status_code == 401
