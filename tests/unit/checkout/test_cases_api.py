"""The loss-prevention routes: queue, case detail, workflow moves, disputes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from checkout.api import create_app
from checkout.auth import AccountBook
from checkout.cases import CaseBook, CaseRecord, Finding, SnapshotRef
from checkout.ledger import Ledger
from iot.store import load_store
from tests.unit.checkout.signed_in import signed_in

ROOT = Path(__file__).resolve().parents[3]
STORE = load_store(ROOT / "stores" / "demo.yaml")
T0 = 1.8e9


def tailgating_case(book: CaseBook, track_id: str) -> CaseRecord:
    """A new tailgating case in store demo about one track."""
    record, _ = book.report(
        Finding(
            store_id="demo",
            rule="tailgating",
            category="theft",
            incident_s=T0,
            confidence=0.8,
            summary="someone walked in with no scan-in",
            track_ids=[track_id],
            source_event_ids=[f"entry.{track_id}"],
        )
    )
    return record


@pytest.fixture
def client_and_case(db: str) -> tuple[TestClient, str]:
    book = CaseBook(db)
    record = tailgating_case(book, "trk-7")
    accounts = AccountBook(db)
    app = create_app(Ledger(db), STORE, accounts, cases=book, now=lambda: T0 + 100)
    return signed_in(app, accounts, "ana", role="loss_prevention"), record.case_id


def test_the_queue_and_a_case(client_and_case: tuple[TestClient, str]) -> None:
    client, case_id = client_and_case
    [summary] = client.get("/cases", params={"store": "demo", "state": "new"}).json()
    assert summary["case_id"] == case_id and summary["rule"] == "tailgating"
    # Another store's queue is refused outright, not shown empty.
    assert client.get("/cases", params={"store": "other"}).status_code == 403
    assert client.get(f"/cases/{case_id}").json()["track_ids"] == ["trk-7"]
    assert client.get("/cases/nope").status_code == 404
    assert client.get("/cases/counts").json()["new"] == 1


def test_a_case_goes_through_review_and_can_be_reopened(
    client_and_case: tuple[TestClient, str],
) -> None:
    client, case_id = client_and_case
    url = f"/cases/{case_id}/transition"
    assert client.post(url, json={"to_state": "resolved", "reviewer": "ana"}).status_code == 409
    for state in ("in_review", "confirmed_theft", "resolved", "in_review"):
        r = client.post(url, json={"to_state": state, "reviewer": "ana", "note": "seen on camera"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == state
    r = client.post(f"/cases/{case_id}/notes", json={"reviewer": "ben", "text": "second look"})
    history = r.json()["history"]
    assert [h["action"] for h in history][-1] == "note"
    assert r.json()["updated_s"] == T0 + 100  # the store's clock, none given


@pytest.mark.parametrize(
    "body",
    [{"to_state": "stolen"}, {"to_state": "in_review", "extra": 1}, {}],
)
def test_malformed_moves_are_422(client_and_case: tuple[TestClient, str], body: dict) -> None:
    client, case_id = client_and_case
    r = client.post(f"/cases/{case_id}/transition", json=body)
    assert r.status_code == 422


@pytest.mark.parametrize("offset", [2**63, 10**30])
def test_an_offset_beyond_sqlites_integers_is_422(
    client_and_case: tuple[TestClient, str], offset: int
) -> None:
    """Found by probing the API: such an offset overflowed into SQLite and answered 500."""
    client, _ = client_and_case
    r = client.get("/cases", params={"offset": offset})
    assert r.status_code == 422, r.text
    assert f"offset={offset}" in r.json()["detail"] and "offset 0.." in r.json()["detail"]
    assert client.get("/cases", params={"offset": 2**63 - 1}).json() == []


def test_a_disputed_line_opens_one_case(client_and_case: tuple[TestClient, str]) -> None:
    client, _ = client_and_case
    body = {
        "store_id": "demo",
        "session_id": "s-1",
        "receipt_id": "r-1",
        "sku": "SKU001",
        "reason": "I put it back",
        "shopper_ref": "tok-1",
    }
    first = client.post("/disputes", json=body)
    again = client.post("/disputes", json=body)
    assert first.status_code == 201 and first.json()["created"] is True
    assert again.json()["created"] is False
    assert again.json()["case"]["case_id"] == first.json()["case"]["case_id"]
    assert client.get("/cases", params={"rule": "dispute"}).json()[0]["rule"] == "dispute"


def test_evidence_images_are_served_to_the_cases_reviewers(tmp_path: Path) -> None:
    book = CaseBook(":memory:")
    record = tailgating_case(book, "trk-9")
    image = tmp_path / "cam-ceil-01.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0 a blurred frame \xff\xd9")
    book.add_snapshots(
        record.case_id, [SnapshotRef(camera_id="cam-ceil-01", time_s=T0, image_path=str(image))], T0
    )
    accounts = AccountBook(":memory:")
    app = create_app(
        Ledger(":memory:"),
        STORE,
        accounts,
        cases=book,
        now=lambda: T0 + 100,
        evidence_dir=tmp_path,
    )
    url = f"/cases/{record.case_id}/snapshots"
    reviewer = signed_in(app, accounts, "ana", role="loss_prevention")
    got = reviewer.get(f"{url}/0")
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.content == image.read_bytes()
    assert reviewer.get(f"{url}/1").status_code == 404
    elsewhere = signed_in(app, accounts, "bo", role="loss_prevention", stores=["other"])
    assert elsewhere.get(f"{url}/0").status_code == 404  # another store's case: not there
    image.unlink()  # deleted by retention
    assert reviewer.get(f"{url}/0").status_code == 410


def test_a_case_cannot_be_made_to_serve_a_file_outside_the_evidence_folder(
    tmp_path: Path,
) -> None:
    book = CaseBook(":memory:")
    record = tailgating_case(book, "trk-9")
    secret = tmp_path / "secret.jpg"  # a readable file a forged Snapshot names
    secret.write_bytes(b"not evidence")
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "link.jpg").symlink_to(secret)  # inside by name, outside in fact
    book.add_snapshots(
        record.case_id,
        [
            SnapshotRef(camera_id="cam-ceil-01", time_s=T0, image_path=str(secret)),
            SnapshotRef(camera_id="cam-ceil-01", time_s=T0, image_path=f"{evidence}/link.jpg"),
        ],
        T0,
    )
    accounts = AccountBook(":memory:")
    app = create_app(
        Ledger(":memory:"), STORE, accounts, cases=book, now=lambda: T0, evidence_dir=evidence
    )
    reviewer = signed_in(app, accounts, "ana", role="loss_prevention")
    for index in (0, 1):
        got = reviewer.get(f"/cases/{record.case_id}/snapshots/{index}")
        assert got.status_code == 404 and b"not evidence" not in got.content
