"""The store of record behind an address: migrations, dialect differences, both engines alike.

Cases taking ``db``/``durable_db`` run on SQLite and on PostgreSQL (tests/conftest.py).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from checkout import ledger as ledger_module
from checkout.database import (
    Migration,
    MigrationError,
    beside,
    files_beside,
    insert_ignore,
    open_database,
    parse_address,
    reset_database,
    upsert,
)
from checkout.ledger import Ledger, SessionRecord
from iot.payloads import CartEvent

T0 = 1_800_000_000.0
KV = [Migration(1, "kv", "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")]


def line(eid: str, sid: str = "s-a", delta: int = 1) -> CartEvent:
    return CartEvent(
        id=eid,
        event_time_s=T0,
        device_id="brain",
        session_id=sid,
        sku="SKU001",
        quantity_delta=delta,
        confidence=0.9,
        source_event_id=f"e-{eid}",
    )


# --- addresses ---


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("ledger.sqlite", ("sqlite", "ledger.sqlite")),
        (Path("/var/x.sqlite"), ("sqlite", "/var/x.sqlite")),
        (":memory:", ("sqlite", ":memory:")),
        ("sqlite://", ("sqlite", ":memory:")),
        ("sqlite:///rel/x.db", ("sqlite", "rel/x.db")),
        ("sqlite:////abs/x.db", ("sqlite", "/abs/x.db")),
        ("postgresql://u@h/db", ("postgresql", "postgresql://u@h/db")),
        ("postgres://u@h/db?schema=s", ("postgresql", "postgres://u@h/db?schema=s")),
        ("mysql://u@h/db", ValueError),
        ("redis://h", ValueError),
    ],
)
def test_an_address_picks_the_engine(address: Any, expected: Any) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected, match="postgresql://USER@HOST"):
            parse_address(address)
    else:
        assert parse_address(address) == expected


def test_companion_books_and_files_go_beside_the_ledger() -> None:
    assert beside("run/demo.sqlite", ".prices.sqlite") == "run/demo.prices.sqlite"
    assert beside(":memory:", ".ops.sqlite") == ":memory:"
    url = "postgresql://u:pw@h:5432/chain?schema=s7"
    assert beside(url, ".ops.sqlite") == url  # one database, each book its own tables
    assert files_beside("run/demo.sqlite", ".truth.json") == Path("run/demo.truth.json")
    assert files_beside(url, ".truth.json") == Path("smartstore-chain-s7.truth.json")


# --- migrations ---


def test_an_old_ledger_is_upgraded_without_losing_rows(durable_db: str) -> None:
    old = open_database(durable_db, "ledger", ledger_module.MIGRATIONS[:1])
    assert old.versions("ledger") == [1]
    with old.writer() as c:  # rows as version 1's code wrote them
        for i in range(3):
            c.execute(
                "INSERT INTO cart_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (f"c{i}", "s-a", "SKU001", 1, 0.9, "e", T0 + i, line(f"c{i}").model_dump_json()),
            )
    old.close()

    ledger = Ledger(durable_db)
    try:
        assert ledger._file.versions("ledger") == [1, 2, 3]
        assert ledger.cart("s-a") == {"SKU001": 3}
        assert [e.id for e in ledger.cart_events("s-a")] == ["c0", "c1", "c2"]
        assert not ledger.append(line("c1"))  # the old rows still guard their ids
    finally:
        ledger.close()
    again = Ledger(durable_db)  # nothing left to apply
    assert again._file.migrate("ledger", ledger_module.MIGRATIONS) == []
    again.close()


LEGACY_LEDGER = """
CREATE TABLE cart_events (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, sku TEXT NOT NULL,
    quantity_delta INTEGER NOT NULL, confidence REAL NOT NULL, source_event_id TEXT NOT NULL,
    event_time_s REAL NOT NULL, payload TEXT NOT NULL);
CREATE INDEX cart_events_session ON cart_events (session_id);
CREATE TABLE sessions (session_id TEXT PRIMARY KEY, state TEXT NOT NULL,
    has_receipt INTEGER NOT NULL, entered_s REAL NOT NULL, payload TEXT NOT NULL);
CREATE TABLE receipts (id TEXT PRIMARY KEY, session_id TEXT NOT NULL UNIQUE,
    event_time_s REAL NOT NULL, payload TEXT NOT NULL);
CREATE TABLE shelf_decisions (event_id TEXT PRIMARY KEY, session_id TEXT, outcome TEXT NOT NULL,
    reason TEXT NOT NULL, event_time_s REAL NOT NULL, payload TEXT NOT NULL);
CREATE TABLE plate_foreign (plate_id TEXT NOT NULL, sku TEXT NOT NULL, units INTEGER NOT NULL,
    PRIMARY KEY (plate_id, sku));
"""


def test_a_ledger_file_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    record = SessionRecord(
        session_id="s-a", token="a", state="open", entered_s=T0, entry_event_id="in-a"
    )
    with sqlite3.connect(path) as raw:  # as the demo wrote it before schema versions
        raw.executescript(LEGACY_LEDGER)
        raw.execute(
            "INSERT INTO cart_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ("c0", "s-a", "SKU001", 2, 0.9, "e", T0, line("c0", delta=2).model_dump_json()),
        )
        raw.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            ("s-a", "open", 0, T0, record.model_dump_json()),
        )
    raw.close()
    ledger = Ledger(path)
    try:
        assert ledger._file.versions("ledger") == [1, 2, 3]
        assert ledger.cart("s-a") == {"SKU001": 2}
        assert ledger.open_sessions() == [record]
    finally:
        ledger.close()
    with sqlite3.connect(path) as raw:
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    raw.close()
    assert "cart_events_session_time" in indexes and "cart_events_session" not in indexes


def test_a_database_from_newer_code_is_refused(db: str) -> None:
    newer = [*KV, Migration(2, "more", "CREATE TABLE IF NOT EXISTS kv2 (k TEXT)")]
    made = open_database(db, "kv", newer)
    try:
        with pytest.raises(MigrationError, match="newer than the 1 this smartstore knows"):
            made.migrate("kv", KV)
    finally:
        made.close()


def test_a_failing_migration_changes_nothing(db: str) -> None:
    made = open_database(db, "kv", KV)
    try:
        broken = [
            *KV,
            Migration(2, "half", "CREATE TABLE half (k TEXT); CREATE TABLE kv (again TEXT)"),
        ]
        with pytest.raises(Exception, match=r"(?i)exists"):
            made.migrate("kv", broken)
        assert made.versions("kv") == [1]
        with made.reader() as c, pytest.raises(Exception, match="half"):
            c.execute("SELECT * FROM half")
    finally:
        made.close()


def test_migrations_must_be_numbered_in_order() -> None:
    with pytest.raises(MigrationError, match=r"numbered \[2\]"):
        open_database(":memory:", "kv", [Migration(2, "x", "CREATE TABLE x (k TEXT)")])


# --- one SQL for both engines ---


def test_rows_read_by_name_position_and_as_dicts(db: str) -> None:
    made = open_database(db, "kv", KV)
    try:
        with made.writer() as c:
            c.executemany(insert_ignore("kv", ("k", "v")), [("a", 1), ("b", 2), ("a", 9)])
            c.execute(upsert("kv", ("k", "v"), key=("k",)), ("b", 5))
        with made.reader() as c:
            rows = c.execute("SELECT k, v FROM kv ORDER BY k").fetchall()
            (total,) = c.execute("SELECT SUM(v) FROM kv").fetchone()
            (count,) = c.execute("SELECT COUNT(*) FROM kv WHERE k LIKE 'a%'").fetchone()
        assert [(r["k"], r[1]) for r in rows] == [("a", 1), ("b", 5)]
        assert [dict(r) for r in rows] == [{"k": "a", "v": 1}, {"k": "b", "v": 5}]
        assert (total, type(total), count) == (6, int, 1)
    finally:
        made.close()


def test_insert_ignore_counts_only_new_rows(db: str) -> None:
    made = open_database(db, "kv", KV)
    try:
        with made.writer() as c:
            first = c.execute(insert_ignore("kv", ("k", "v")), ("a", 1)).rowcount
            again = c.execute(insert_ignore("kv", ("k", "v")), ("a", 2)).rowcount
            many = c.executemany(insert_ignore("kv", ("k", "v")), [("a", 3), ("b", 4), ("c", 5)])
        assert (first, again, many.rowcount) == (1, 0, 2)
    finally:
        made.close()


@pytest.mark.parametrize("big", [2**63, -(2**63) - 1, 10**30])
def test_an_integer_beyond_64_bits_is_an_overflow_on_both(db: str, big: int) -> None:
    made = open_database(db, "kv", KV)
    try:
        with made.writer() as c, pytest.raises(OverflowError):
            c.execute("INSERT INTO kv (k, v) VALUES (?, ?)", ("a", big))
        with made.writer() as c:
            c.execute("INSERT INTO kv (k, v) VALUES (?, ?)", ("a", 2**63 - 1))  # still usable
            assert c.execute("SELECT v FROM kv").fetchone()[0] == 2**63 - 1
    finally:
        made.close()


def test_autoincrement_ids_come_back_by_returning(db: str) -> None:
    steps = [Migration(1, "seq", "CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, x REAL)")]
    made = open_database(db, "seq", steps)
    try:
        with made.write_tx() as c:
            ids = [
                c.execute("INSERT INTO seq (x) VALUES (?) RETURNING id", (0.5,)).fetchall()[0][0]
                for _ in range(3)
            ]
        assert ids == [1, 2, 3]
    finally:
        made.close()


def test_a_failed_write_transaction_leaves_nothing(db: str) -> None:
    made = open_database(db, "kv", KV)
    try:
        with pytest.raises(ZeroDivisionError), made.write_tx() as c:
            c.execute("INSERT INTO kv (k, v) VALUES (?, ?)", ("a", 1))
            _ = 1 / 0
        with made.reader() as c:
            assert c.execute("SELECT COUNT(*) FROM kv").fetchone()[0] == 0
    finally:
        made.close()


def test_a_read_transaction_sees_one_state(durable_db: str) -> None:
    made = open_database(durable_db, "kv", KV)
    inside, go_on, wrote = threading.Event(), threading.Event(), threading.Event()
    counts: list[int] = []

    def read() -> None:
        with made.read_tx() as c:
            counts.append(c.execute("SELECT COUNT(*) FROM kv").fetchone()[0])
            inside.set()
            wrote.wait(10)
            counts.append(c.execute("SELECT COUNT(*) FROM kv").fetchone()[0])
        with made.reader() as c:
            counts.append(c.execute("SELECT COUNT(*) FROM kv").fetchone()[0])
        go_on.set()

    try:
        reader = threading.Thread(target=read)
        reader.start()
        assert inside.wait(10)
        with made.writer() as c:
            c.execute("INSERT INTO kv (k, v) VALUES (?, ?)", ("a", 1))
        wrote.set()
        assert go_on.wait(10)
        reader.join()
        assert counts == [0, 0, 1]
    finally:
        made.close()


def test_writers_of_one_book_take_turns_across_connections(durable_db: str) -> None:
    """Two processes' books (here two objects): a read-modify-write never interleaves."""
    first, second = open_database(durable_db, "kv", KV), open_database(durable_db, "kv", KV)
    holding = threading.Event()
    order: list[str] = []

    def write_first() -> None:
        with first.write_tx() as c:
            holding.set()
            time.sleep(0.3)  # the second writer arrives meanwhile, and must wait
            c.execute("INSERT INTO kv (k, v) VALUES (?, ?)", ("a", 1))
            order.append("first wrote")

    try:
        writer = threading.Thread(target=write_first)
        writer.start()
        assert holding.wait(10)
        with second.write_tx() as c:
            order.append("second began")
            (seen,) = c.execute("SELECT COUNT(*) FROM kv").fetchone()
        writer.join()
        assert order == ["first wrote", "second began"] and seen == 1
    finally:
        first.close()
        second.close()


def test_many_reading_threads_share_a_bounded_pool(durable_db: str) -> None:
    ledger = Ledger(durable_db)
    for i in range(20):
        ledger.append(line(f"c{i}"))
    seen: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(10):
                seen.append(ledger.cart("s-a"))
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger.close()
    assert errors == [] and seen == [{"SKU001": 20}] * 120


@pytest.mark.integration
def test_a_named_schema_is_made_and_reset_drops_it(pg_db: str) -> None:
    url = pg_db.replace("schema=", "schema=x", 1)  # another schema, made on opening
    made = open_database(url, "kv", KV)
    with made.writer() as c:
        c.execute("INSERT INTO kv (k, v) VALUES (?, ?)", ("a", 1))
        (schema,) = c.execute("SELECT current_schema()").fetchone()
    made.close()
    assert url.split("schema=")[1].startswith(schema)
    reset_database(url)
    again = open_database(url, "kv", KV)
    with again.reader() as c:
        assert c.execute("SELECT COUNT(*) FROM kv").fetchone()[0] == 0
    again.close()
    reset_database(url)
    with pytest.raises(ValueError, match=r"names no schema of its own.*\?schema="):
        reset_database(url.split("?")[0])


def test_sqlite_files_are_removed_by_reset(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    Ledger(path).close()
    assert path.exists()
    reset_database(path)
    assert list(tmp_path.iterdir()) == []


def test_postgresql_passwords_never_show_and_a_dead_server_says_where() -> None:
    from checkout.postgres import display_url

    assert display_url("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"
    with pytest.raises(ConnectionError, match=r"cannot reach PostgreSQL at postgresql://u:\*\*\*@"):
        Ledger("postgresql://u:s3cret@127.0.0.1:1/db?connect_timeout=2")


def test_sqlite_only_statements_are_refused_on_postgresql() -> None:
    from checkout.postgres import translate

    with pytest.raises(ValueError, match="insert_ignore or upsert"):
        translate("INSERT OR IGNORE INTO kv VALUES (?, ?)")
    assert translate("SELECT '5%' WHERE k = ?") == "SELECT '5%%' WHERE k = %s"


@pytest.mark.integration
def test_a_lost_postgresql_connection_is_made_again(postgres_admin: Any, pg_db: str) -> None:
    import psycopg

    ledger = Ledger(pg_db)
    try:
        assert ledger.append(line("c1"))
        with ledger._file.writer() as c:
            pid = c.raw.info.backend_pid
        postgres_admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            ledger.append(line("c2"))  # this call fails: the caller's message is redelivered
        assert ledger.append(line("c2"))
        assert ledger.cart("s-a") == {"SKU001": 2}
    finally:
        ledger.close()
