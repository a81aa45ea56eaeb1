"""Docs that run: the examples in the checkout modules' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "checkout.api",
    "checkout.brain",
    "checkout.fusion",
    "checkout.ids",
    "checkout.ledger",
    "checkout.tracks",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
