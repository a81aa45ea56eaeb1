"""The demo's people: one account per role, and shopper accounts for the twin's first visitors.

Passwords are made fresh each run and written, with the entry gates' device
keys, to a JSON file only its owner can read (never printed, never logged).
The twin's shoppers scan in with tokens the twin made up; the demo records
the first few of those tokens as issued to shopper accounts, so signing in
as ``shopper1`` shows the first visitor's cart filling live and, after the
exit, the receipt.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from checkout.auth import AccountBook, Role
from iot.store import Store
from sim.truth import VisitTruth

__all__ = ["seed_demo_accounts"]

_STAFF: tuple[tuple[str, Role], ...] = (
    ("admin", "admin"),
    ("manager", "manager"),
    ("loss_prevention", "loss_prevention"),
)


def seed_demo_accounts(
    book: AccountBook,
    store: Store,
    visits: list[VisitTruth],
    out_path: Path,
    *,
    shoppers: int = 3,
) -> dict[str, Any]:
    """Create the accounts and device keys; write and return what signs them in."""
    made: dict[str, Any] = {}
    for username, role in _STAFF:
        password = secrets.token_urlsafe(12)
        book.create_account(username, password, role=role, stores=[store.store_id])
        made[role] = {"username": username, "password": password}
    made["shoppers"] = []
    for n, visit in enumerate(sorted(visits, key=lambda v: v.entered_s)[:shoppers], start=1):
        username, password = f"shopper{n}", secrets.token_urlsafe(12)
        account = book.create_account(username, password, role="shopper")
        session_id = book.link_token(visit.token, account.account_id, store.store_id)
        made["shoppers"].append(
            {
                "username": username,
                "password": password,
                "session_id": session_id,
                "enters_s": visit.entered_s,
                "exits_s": visit.exited_s,
            }
        )
    made["devices"] = [
        {"device_id": gate.id, "key": book.issue_device_key(gate.id, store.store_id)}
        for gate in store.gates("entry")
    ]
    _write_private(out_path, made)
    return made


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON readable by its owner only (created so, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
