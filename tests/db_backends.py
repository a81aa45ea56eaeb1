"""Which stores of record the tests run on (``SMARTSTORE_TEST_DB``); see tests/conftest.py.

A module of its own, so test modules can import it: importing a conftest
from a test confuses pytest's collection of the other conftest files.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["BACKENDS", "DEFAULT_POSTGRES", "POSTGRES_URL"]

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def _choice() -> tuple[list[str], str]:
    raw = os.environ.get("SMARTSTORE_TEST_DB", "both").strip() or "both"
    if raw.startswith(("postgresql://", "postgres://")):
        return ["postgresql"], raw
    wanted = {"both": ["sqlite", "postgresql"], "sqlite": ["sqlite"], "postgresql": ["postgresql"]}
    if raw not in wanted:
        raise pytest.UsageError(
            f"SMARTSTORE_TEST_DB={raw!r}: use both, sqlite, postgresql or a postgresql:// URL"
        )
    return wanted[raw], DEFAULT_POSTGRES


BACKENDS, POSTGRES_URL = _choice()
