"""Test helper: the whole store API with every service, two shoppers' data and a case per store.

Shared by the role-isolation tests and the schemathesis run, so both look at
the same app the demo serves (every router included). ``db`` is where every
book keeps its rows (see tests/conftest.py: SQLite in memory, or PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from checkout.api import create_app
from checkout.auth import AccountBook, Principal, Role
from checkout.cases import Finding
from checkout.devices import DeviceHealth
from checkout.ledger import Ledger, SessionRecord
from checkout.live import LiveHub
from checkout.pricebook import PriceBook
from iot.bus import LocalTransport
from iot.payloads import CartEvent, GateEntry, Receipt, ReceiptLine
from iot.store import load_store
from smartstore.operations import StoreOperations

ROOT = Path(__file__).resolve().parents[3]
STORE = load_store(ROOT / "stores" / "demo.yaml")
T0 = 1_800_000_000.0
PASSWORD = "a long test password"


@dataclass
class StoreApi:
    """The app, its account book, and the ids of what the test data holds."""

    app: FastAPI
    accounts: AccountBook
    ledger: Ledger
    ops: StoreOperations
    ids: dict[str, str] = field(default_factory=dict)
    entries: list[GateEntry] = field(default_factory=list)
    prices: PriceBook | None = None

    def token(self, username: str) -> str:
        issued = self.accounts.sign_in(username, PASSWORD)
        assert issued is not None, username
        return issued[0]

    def close(self) -> None:
        if self.prices is not None:
            self.prices.close()
        self.ops.close()
        self.ledger.close()
        self.accounts.close()


def _visit(ledger: Ledger, accounts: AccountBook, who: Principal, token: str, sku: str) -> str:
    """A closed visit with a receipt of one line, and an open visit with one cart line."""
    closed = accounts.link_token(token, who.account_id, "demo")
    ledger.save_session(
        SessionRecord(
            session_id=closed,
            token=token,
            state="closed",
            entered_s=T0,
            entry_event_id=f"in-{token}",
            track_id=f"t-{token}",
            exited_s=T0 + 60,
            receipt_id=f"r-{closed}",
        )
    )
    price = STORE.items[sku].price_cents
    line = ReceiptLine(
        sku=sku, name="x", quantity=1, unit_price_cents=price, total_cents=price, confidence=1.0
    )
    ledger.save_receipt(
        Receipt(
            id=f"r-{closed}",
            event_time_s=T0 + 61,
            device_id="brain",
            session_id=closed,
            token=token,
            entered_s=T0,
            exited_s=T0 + 60,
            currency="EUR",
            lines=[line],
            total_cents=price,
            needs_review=False,
        )
    )
    live_token = f"{token}-2"
    live = accounts.link_token(live_token, who.account_id, "demo")
    ledger.save_session(
        SessionRecord(
            session_id=live,
            token=live_token,
            state="bound",
            entered_s=T0 + 80,
            entry_event_id=f"in-{live_token}",
            track_id=f"t-{live_token}",
        )
    )
    ledger.append(
        CartEvent(
            id=f"c-{live}",
            event_time_s=T0 + 85,
            device_id="brain",
            session_id=live,
            sku=sku,
            quantity_delta=1,
            confidence=0.95,
            source_event_id=f"e-{live}",
        )
    )
    return closed


def build_store_api(db: str = ":memory:") -> StoreApi:
    """Accounts of every role (and staff of another store), two shoppers, cases in two stores."""
    accounts = AccountBook(db)
    for username, role, stores in _PEOPLE:
        accounts.create_account(username, PASSWORD, role=role, stores=stores)
    ledger = Ledger(db)
    ops = StoreOperations(STORE, LocalTransport(), db, now=lambda: T0 + 100)
    ops.start()
    devices = DeviceHealth(STORE, LocalTransport(), now=lambda: T0 + 100)
    devices.start()
    by_name = {p.username: p for p in accounts.accounts()}
    ids = {
        "receipt_a": f"r-{_visit(ledger, accounts, by_name['shopper-a'], 'tok-a', 'SKU001')}",
        "receipt_b": f"r-{_visit(ledger, accounts, by_name['shopper-b'], 'tok-b', 'SKU021')}",
    }
    ids["session_a"] = ids["receipt_a"][2:]
    ids["live_a"] = accounts.sessions_of(by_name["shopper-a"].account_id)[0]
    for store_id, key in (("demo", "case_here"), ("other", "case_there")):
        record, _ = ops.cases.report(
            Finding(
                store_id=store_id,
                rule="tailgating",
                category="theft",
                incident_s=T0,
                confidence=0.8,
                summary="someone walked in with no scan-in",
                track_ids=["trk-7"],
                source_event_ids=[f"entry.trk-7.{store_id}"],
            )
        )
        ids[key] = record.case_id
    ids["gate"] = STORE.gates("entry")[0].id
    ids["device_key"] = accounts.issue_device_key(ids["gate"], "demo")
    api = StoreApi(None, accounts, ledger, ops, ids, prices=PriceBook(STORE, db))  # type: ignore[arg-type]
    api.app = create_app(
        ledger,
        STORE,
        accounts,
        inventory=ops.inventory,
        cases=ops.cases,
        footfall=(ops.footfall, ops.heat),
        now=lambda: T0 + 100,
        publish_entry=api.entries.append,
        devices=devices,
        prices=api.prices,
        live=LiveHub(),
    )
    return api


_PEOPLE: list[tuple[str, Role, tuple[str, ...]]] = [
    ("admin", "admin", ()),
    ("manager", "manager", ("demo",)),
    ("manager-elsewhere", "manager", ("other",)),
    ("lp", "loss_prevention", ("demo",)),
    ("lp-elsewhere", "loss_prevention", ("other",)),
    ("shopper-a", "shopper", ()),
    ("shopper-b", "shopper", ()),
]
