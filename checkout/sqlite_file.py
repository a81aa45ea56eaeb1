"""One SQLite file shared by a writer thread and reading threads: the embedded store of record.

The brain (or the case book) writes from the thread that opened the file,
while HTTP threads read. So a file gets one writer connection behind a lock,
and every other thread that reads gets a connection of its own: in WAL mode
(``synchronous=NORMAL``) those readers see the last committed state and
never block the writer, nor it them. ``":memory:"`` (for tests) cannot be
shared that way, since each connection would open a new empty database, so
there every thread uses the one connection, under the lock. The owners keep
their SQL; their schema comes as migrations (:mod:`checkout.database`, which
opens this for any SQLite address); this module only keeps the connections,
and refuses reads and writes once :meth:`SqliteFile.close` ran.

>>> f = SqliteFile(":memory:", "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);")
>>> with f.writer() as c:
...     _ = c.execute("INSERT INTO t VALUES ('a', 1)")
>>> with f.reader() as c:
...     c.execute("SELECT v FROM t WHERE k = 'a'").fetchone()["v"]
1
>>> f.close(); f.close()  # a second close does nothing
>>> f.closed
True
>>> with f.reader() as c:
...     pass
Traceback (most recent call last):
RuntimeError: :memory: is closed
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from checkout.database import Database

__all__ = ["SqliteFile"]


class SqliteFile(Database):
    """The connections of one SQLite file: ``path`` may be ``":memory:"`` for tests.

    ``schema`` (optional; owners use migrations instead) runs once on opening
    (make it idempotent: ``IF NOT EXISTS``).
    ``closed_message(use)`` words the error of a ``use`` (``"read"`` or
    ``"write"``) after :meth:`close`, so each owner can name itself.
    """

    def __init__(
        self,
        path: str | Path,
        schema: str = "",
        *,
        closed_message: Callable[[str], str] | None = None,
    ) -> None:
        self.path = str(path)
        self.dialect = "sqlite"
        self._closed_message = closed_message or (lambda use: f"{self.path} is closed")
        self._memory = self.path == ":memory:"
        # A memory database lives in one connection, shared by all threads under the lock.
        self._uri = ":memory:" if self._memory else Path(self.path).resolve().as_uri()
        self._lock = threading.RLock()
        # The opening thread is the writer; it reads through the writer's connection too,
        # so it sees its own uncommitted work inside a transaction.
        self._owner = threading.get_ident()
        self._readers = threading.local()
        self._all: list[sqlite3.Connection] = []  # every connection opened, for close()
        self._closed = False
        self._conn = self._connect()
        if schema:
            with self._lock:
                self._conn.executescript(schema)

    @property
    def closed(self) -> bool:
        return self._closed

    def _connect(self) -> sqlite3.Connection:
        # Autocommit (isolation_level=None): the owners say BEGIN themselves where they need one.
        # check_same_thread=False: the memory connection serves every thread, under the lock.
        conn = sqlite3.connect(
            self._uri, uri=not self._memory, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        if not self._memory:
            conn.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL keeps the file consistent through a power loss (only the
            # last commits may roll back) and spares an fsync on every commit.
            conn.execute("PRAGMA synchronous=NORMAL")
        # A reader that meets a checkpoint or a second writer waits instead of failing at once.
        conn.execute("PRAGMA busy_timeout=5000")
        self._all.append(conn)
        return conn

    def _check_open(self, use: str) -> None:
        if self._closed:
            raise RuntimeError(self._closed_message(use))

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """The writer's connection in the writer's thread (or for memory), else a per-thread one."""
        self._check_open("read")
        if self._memory or threading.get_ident() == self._owner:
            with self._lock:
                yield self._conn
            return
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            with self._lock:  # _all is shared with close() and other readers' first reads
                conn = self._connect()
            self._readers.conn = conn
        yield conn

    @contextmanager
    def writer(self) -> Iterator[sqlite3.Connection]:
        """The one writer connection, held under the lock for the body."""
        self._check_open("write")
        with self._lock:
            yield self._conn

    def _begin_read(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")

    def _begin_write(self, conn: sqlite3.Connection, lock: str) -> None:
        # IMMEDIATE takes the file's write lock now, so a read-modify-write cannot interleave.
        conn.execute("BEGIN IMMEDIATE")

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def close(self) -> None:
        """Close every connection this file opened (idempotent)."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
            for conn in self._all:
                conn.close()
            self._all.clear()
