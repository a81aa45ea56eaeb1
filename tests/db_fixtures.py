"""Stores of record for the tests: each test that asks for one runs on SQLite and PostgreSQL.

A pytest plugin, loaded by the repository's root conftest.py.

``db`` is a fresh database address for one test: ``":memory:"`` on SQLite,
a schema of its own on PostgreSQL (``?schema=t_...``, dropped afterwards), so
tests stay isolated and can run side by side. ``durable_db`` is one that a
test can close and open again to find its rows: an SQLite file in the test's
folder, or again a fresh schema.

PostgreSQL is at 127.0.0.1:5432 on the developers' and CI machines. Where it
does not answer, its cases skip with a message, except under ``CI=true``:
there a missing server is a failure, as a missing Mosquitto is for the
broker tests. ``SMARTSTORE_TEST_DB`` chooses: ``both`` (the default),
``sqlite``, ``postgresql``, or a ``postgresql://`` URL of another server
(implies ``postgresql``). PostgreSQL cases are marked ``integration``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.db_backends import BACKENDS, POSTGRES_URL

_PARAMS = [
    pytest.param(name, id=name, marks=[pytest.mark.integration] if name == "postgresql" else [])
    for name in BACKENDS
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Any]:
    """An autocommit connection to the test server (skip, or fail under CI, without one)."""
    try:
        import psycopg

        conn = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:  # ImportError or any connection failure: both mean "no server"
        message = (
            f"no PostgreSQL at {POSTGRES_URL} ({type(exc).__name__}: {str(exc).strip()}); start "
            "it (pg_ctlcluster 15 main start) or set SMARTSTORE_TEST_DB=sqlite"
        )
        if _in_ci():
            pytest.fail(f"CI must test against PostgreSQL: {message}")
        pytest.skip(message)
    # A test that leaves a transaction open must not hang the clean-up forever.
    conn.execute("SET lock_timeout = '10s'")
    yield conn
    conn.close()


def _fresh_schema(admin: Any) -> Iterator[str]:
    from psycopg import sql

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    sep = "&" if "?" in POSTGRES_URL else "?"
    # Tests need no durability through a server crash: commits need not wait for the disk.
    # Every connection of the test carries the schema's name, so the ones a test left
    # open (a book it never closed) are ended here: leaked, they would use up the
    # server's max_connections over a whole suite.
    yield (
        f"{POSTGRES_URL}{sep}schema={name}&application_name={name}"
        "&options=-c%20synchronous_commit%3Doff"
    )
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(params=_PARAMS)
def db(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh store-of-record address: ``:memory:`` or a PostgreSQL schema of this test."""
    if request.param == "sqlite":
        yield ":memory:"
        return
    yield from _fresh_schema(request.getfixturevalue("postgres_admin"))


@pytest.fixture
def pg_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL schema, for what only PostgreSQL has (mark such tests integration)."""
    if "postgresql" not in BACKENDS:
        pytest.skip("SMARTSTORE_TEST_DB leaves PostgreSQL out")
    yield from _fresh_schema(request.getfixturevalue("postgres_admin"))


@pytest.fixture(scope="module", params=_PARAMS)
def module_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """As ``db``, shared by one module's tests (for a module-wide app)."""
    if request.param == "sqlite":
        yield ":memory:"
        return
    yield from _fresh_schema(request.getfixturevalue("postgres_admin"))


@pytest.fixture(params=_PARAMS)
def durable_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An address a test can reopen: an SQLite file, or a PostgreSQL schema of this test."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.sqlite")
        return
    yield from _fresh_schema(request.getfixturevalue("postgres_admin"))
