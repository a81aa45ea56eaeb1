"""The store of record behind one address: SQLite by default, PostgreSQL for a chain.

Every book the store keeps (the ledger, the case book, accounts, the price
book, inventory) opens its storage with :func:`open_database` and speaks
the small SQL both engines share; what differs between them lives here and
in the two backends, never in the owners:

* an address picks the engine: a plain path, ``":memory:"`` or
  ``sqlite:///PATH`` is an SQLite file (:mod:`checkout.sqlite_file`);
  ``postgresql://USER@HOST:PORT/DB`` is PostgreSQL (:mod:`checkout.postgres`),
  optionally ``?schema=NAME`` to keep the store's tables in a schema of its own;
* each owner's schema is a list of numbered :class:`Migration` steps. Opening
  applies the ones the database lacks, in one transaction, and records them in
  ``schema_migrations(component, version)``; a database made by newer code is
  refused rather than misread;
* owners write portable SQL: ``?`` placeholders, :func:`upsert` and
  :func:`insert_ignore` instead of SQLite's ``INSERT OR ...``, ``RETURNING``
  instead of ``lastrowid``; the PostgreSQL backend rewrites placeholders and
  column types, and turns its integer overflow into :class:`OverflowError`
  as SQLite raises it;
* :meth:`Database.read_tx` is one consistent snapshot over several
  statements and :meth:`Database.write_tx` one atomic write that excludes
  other writers of the same book (SQLite's ``BEGIN IMMEDIATE``; an advisory
  lock on PostgreSQL, so two processes cannot interleave a read-modify-write).

>>> db = open_database(":memory:", "demo", [Migration(1, "t", "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")])
>>> with db.write_tx() as c:
...     _ = c.execute(upsert("t", ("k", "v"), key=("k",)), ("a", 1))
...     _ = c.execute(upsert("t", ("k", "v"), key=("k",)), ("a", 2))
>>> with db.reader() as c:
...     c.execute("SELECT v FROM t WHERE k = ?", ("a",)).fetchone()["v"]
2
>>> db.close()
>>> parse_address("sqlite:////var/lib/smartstore/ledger.sqlite")
('sqlite', '/var/lib/smartstore/ledger.sqlite')
>>> beside("postgresql://store@db.example/chain?schema=s42", ".prices.sqlite")
'postgresql://store@db.example/chain?schema=s42'
"""  # noqa: E501

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "Connection",
    "Cursor",
    "Database",
    "Dialect",
    "Migration",
    "MigrationError",
    "UnstorableTextError",
    "beside",
    "files_beside",
    "insert_ignore",
    "is_postgres",
    "open_database",
    "parse_address",
    "reset_database",
    "upsert",
]

Dialect = Literal["sqlite", "postgresql"]
_PG_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEME = "sqlite://"
_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (component, version)
)"""


class Cursor(Protocol):
    """What a statement returns: rows readable by position and by column name."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the owners use (``sqlite3.Connection`` is one)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any: ...

    @property
    def in_transaction(self) -> bool: ...


class MigrationError(RuntimeError):
    """A database whose schema this code cannot use (made by newer code, or migrations bad)."""


class UnstorableTextError(ValueError):
    """Text the engine cannot store or even compare: a NUL character, on PostgreSQL.

    SQLite keeps such text; PostgreSQL refuses it in any statement. The API
    answers it with a 422 (:mod:`checkout.http_errors`), whichever the engine.
    """


@dataclass(frozen=True)
class Migration:
    """One step of a component's schema: portable DDL, statements separated by ``;``.

    Write it for SQLite (``INTEGER``, ``REAL``, ``TEXT``, ``INTEGER PRIMARY KEY
    AUTOINCREMENT``); the PostgreSQL backend maps those types. Use ``IF NOT
    EXISTS`` in version 1, so files made before migrations existed adopt it.
    """

    version: int
    summary: str
    sql: str

    def statements(self) -> list[str]:
        return [s.strip() for s in self.sql.split(";") if s.strip()]


class Database(ABC):
    """One store of record: a writer connection behind a lock, and connections that read.

    ``path`` names it in messages (a PostgreSQL password is never shown);
    ``dialect`` says which engine it is.
    """

    path: str
    dialect: Dialect
    lock_name: str = "writer"  # what write_tx excludes by default: the book's component

    @property
    @abstractmethod
    def closed(self) -> bool: ...

    @abstractmethod
    def reader(self) -> AbstractContextManager[Any]:
        """A connection to read through (the writer's own inside the writing thread)."""

    @abstractmethod
    def writer(self) -> AbstractContextManager[Any]:
        """The one writer connection, held under the lock for the body (autocommit)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection (idempotent); later use raises ``RuntimeError``."""

    @abstractmethod
    def _begin_read(self, conn: Any) -> None: ...

    @abstractmethod
    def _begin_write(self, conn: Any, lock: str) -> None: ...

    @abstractmethod
    def _rollback(self, conn: Any) -> None: ...

    def ddl(self, statement: str) -> str:
        """A migration statement in this engine's words (SQLite's are the reference)."""
        return statement

    @contextmanager
    def read_tx(self) -> Iterator[Any]:
        """Several reads that see one state of the database (joins a transaction under way)."""
        with self.reader() as conn:
            if conn.in_transaction:
                yield conn
                return
            self._begin_read(conn)
            try:
                yield conn
            finally:
                # Nothing was written: COMMIT just ends the snapshot (a failed one too).
                conn.execute("COMMIT")

    @contextmanager
    def write_tx(self, lock: str | None = None) -> Iterator[Any]:
        """One atomic write, rolled back if the body raises; one writer per ``lock`` at a time.

        ``lock`` defaults to the book's component (``lock_name``).
        """
        with self.writer() as conn:
            self._begin_write(conn, lock or self.lock_name)
            try:
                yield conn
            except BaseException:
                self._rollback(conn)
                raise
            conn.execute("COMMIT")

    def migrate(self, component: str, migrations: Sequence[Migration]) -> list[int]:
        """Apply the steps of ``component`` the database lacks; returns the versions applied."""
        _check_steps(component, migrations)
        with self.write_tx(lock="schema_migrations") as c:
            c.execute(self.ddl(_MIGRATIONS_TABLE))
            rows = c.execute(
                "SELECT version FROM schema_migrations WHERE component = ?", (component,)
            ).fetchall()
            have = {int(r[0]) for r in rows}
            if have and max(have) > len(migrations):
                raise MigrationError(
                    f"{self.path}: {component} is at schema version {max(have)}, newer than the "
                    f"{len(migrations)} this smartstore knows; upgrade smartstore to open it"
                )
            applied = []
            for step in migrations:
                if step.version in have:
                    continue
                for statement in step.statements():
                    c.execute(self.ddl(statement))
                c.execute(
                    "INSERT INTO schema_migrations (component, version, summary) VALUES (?, ?, ?)",
                    (component, step.version, step.summary),
                )
                applied.append(step.version)
        return applied

    def versions(self, component: str) -> list[int]:
        """The schema versions of ``component`` the database has."""
        with self.reader() as c:
            rows = c.execute(
                "SELECT version FROM schema_migrations WHERE component = ? ORDER BY version",
                (component,),
            ).fetchall()
        return [int(r[0]) for r in rows]


def _check_steps(component: str, migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(
            f"migrations of {component} are numbered {versions}; number them 1, 2, 3, ... in order"
        )


def open_database(
    address: str | Path,
    component: str,
    migrations: Sequence[Migration],
    *,
    closed_message: Callable[[str], str] | None = None,
) -> Database:
    """Open ``address`` (see :func:`parse_address`) and bring ``component``'s schema up to date.

    ``closed_message(use)`` words the error of a ``use`` (``"read"`` or
    ``"write"``) after :meth:`Database.close`, so each owner can name itself.
    """
    dialect, target = parse_address(address)
    db: Database
    if dialect == "postgresql":
        from checkout.postgres import PostgresDatabase

        db = PostgresDatabase(target, closed_message=closed_message)
    else:
        from checkout.sqlite_file import SqliteFile

        db = SqliteFile(target, closed_message=closed_message)
    db.lock_name = component
    try:
        db.migrate(component, migrations)
    except BaseException:
        db.close()
        raise
    return db


def parse_address(address: str | Path) -> tuple[Dialect, str]:
    """``(dialect, target)``: an SQLite path (or ``":memory:"``), or a PostgreSQL URL.

    >>> parse_address("ledger.sqlite"), parse_address("sqlite://")
    (('sqlite', 'ledger.sqlite'), ('sqlite', ':memory:'))
    >>> parse_address("mysql://db/store")
    Traceback (most recent call last):
    ValueError: database address 'mysql://db/store': use a file path, ':memory:', sqlite:///PATH or postgresql://USER@HOST:PORT/DB
    """
    if isinstance(address, Path):
        return "sqlite", str(address)
    if address.startswith(_PG_SCHEMES):
        return "postgresql", address
    if address.startswith(_SQLITE_SCHEME):
        rest = address[len(_SQLITE_SCHEME) :]
        path = rest[1:] if rest.startswith("/") else rest
        return "sqlite", path or ":memory:"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", address):
        raise ValueError(
            f"database address {address!r}: use a file path, ':memory:', sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        )
    return "sqlite", address


def is_postgres(address: str | Path) -> bool:
    return parse_address(address)[0] == "postgresql"


def beside(address: str | Path, suffix: str) -> str:
    """Where a companion book goes: an SQLite file with ``suffix``; the same PostgreSQL database.

    Books keep apart tables, so on PostgreSQL they share one database (and schema).
    """
    dialect, target = parse_address(address)
    if dialect == "postgresql" or target == ":memory:":
        return target
    return str(Path(target).with_suffix(suffix))


def files_beside(address: str | Path, suffix: str) -> Path:
    """Where plain files that go with the store of record are written (truth, exports).

    Beside an SQLite file; in the working directory, named after the database
    (and schema), for PostgreSQL.
    """
    dialect, target = parse_address(address)
    if dialect == "sqlite":
        return Path(target).with_suffix(suffix)
    parts = urlsplit(target)
    name = parts.path.strip("/") or "postgres"
    schema = dict(parse_qsl(parts.query)).get("schema")
    stem = f"smartstore-{name}" + (f"-{schema}" if schema else "")
    return Path(re.sub(r"[^A-Za-z0-9._-]", "_", stem) + suffix)


def reset_database(address: str | Path) -> None:
    """Start a store of record afresh: remove an SQLite file, or drop a PostgreSQL schema.

    On PostgreSQL only a schema named in the address (``?schema=NAME``) is
    dropped, never a database's shared tables: without one this refuses.
    """
    dialect, target = parse_address(address)
    if dialect == "sqlite":
        if target != ":memory:":
            path = Path(target)
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    from checkout.postgres import drop_schema

    drop_schema(target)


def upsert(table: str, columns: Sequence[str], *, key: Sequence[str]) -> str:
    """``INSERT`` that replaces the non-key columns of a row with the same ``key``.

    >>> upsert("piles", ("plate_id", "units"), key=("plate_id",))
    'INSERT INTO piles (plate_id, units) VALUES (?, ?) ON CONFLICT (plate_id) DO UPDATE SET units = excluded.units'
    """  # noqa: E501
    rest = [c for c in columns if c not in key]
    action = (
        "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in rest) if rest else "DO NOTHING"
    )
    return f"{_insert(table, columns)} ON CONFLICT ({', '.join(key)}) {action}"


def insert_ignore(table: str, columns: Sequence[str]) -> str:
    """``INSERT`` that does nothing when the row's key (any unique column) is already there.

    ``rowcount`` then says whether the row was new (1) or not (0), on both engines.
    """
    return f"{_insert(table, columns)} ON CONFLICT DO NOTHING"


def _insert(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
