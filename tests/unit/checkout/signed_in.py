"""Test helper: a TestClient signed in as an account of a given role."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from checkout.auth import AccountBook, Role

PASSWORD = "a long test password"


def signed_in(
    app: FastAPI,
    book: AccountBook,
    username: str,
    *,
    role: Role = "admin",
    stores: Iterable[str] = ("demo",),
) -> TestClient:
    """A new client whose requests carry the bearer token of a new account (no cookie)."""
    book.create_account(username, PASSWORD, role=role, stores=stores if role != "shopper" else ())
    issued = book.sign_in(username, PASSWORD)
    assert issued is not None
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {issued[0]}"
    return client
