"""Waiting on a real broker: poll until what a test expects has arrived, or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_for"]


def wait_for(pred: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """True as soon as ``pred()`` holds; after ``timeout_s``, whatever it says then."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()
