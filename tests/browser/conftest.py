"""A running store and a real headless Chromium for the browser tests.

The browser is Debian's ``chromium`` package (``/usr/bin/chromium``, or the
path in ``SMARTSTORE_CHROMIUM``) driven by Playwright for Python; no browser
is ever downloaded. Without it, or without the ``playwright`` package, the
tests skip with a message, except under ``CI=true``: there a missing browser
is a failure, so CI can never pass without clicking through the faces.

The store is ``smartstore demo`` in a subprocess on a free port: the theft
scenario with the twin's simulated positions (no camera rendering, so two
cores keep up), at ``SPEED`` times real time. It writes its accounts and the
entry gate's device key to a file the tests read. Screenshots of every page
go to ``out/screenshots/<face>-<step>.png``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.web_store import ROOT, RunningStore

SCENARIO = ROOT / "scenarios" / "theft.yaml"
SPEED = 4.0  # event seconds per wall second: the first shoppers enter ~37 s after the start
WALL_SECONDS = 300  # the demo stops itself after this, even if the tests hang
READY_TIMEOUT_S = 60.0


def _missing(message: str) -> None:
    """Skip (or, under CI, fail) for a missing browser part."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI must run the browser tests: {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> Path:
    """The Chromium executable, or skip (fail under CI) when it or playwright is missing."""
    path = Path(os.environ.get("SMARTSTORE_CHROMIUM", "/usr/bin/chromium"))
    if not path.is_file():
        _missing(
            f"no Chromium at {path}; install Debian's package (apt-get install -y "
            "--no-install-recommends chromium) or point SMARTSTORE_CHROMIUM at one"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright package is missing; pip install -e '.[test]'")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(store: RunningStore, proc: subprocess.Popen[bytes], accounts: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"smartstore demo exited with {proc.returncode}:\n{store.log_tail()}")
        try:
            status, _ = store.call("GET", "/health")
        except OSError:
            status = 0
        if status == 200 and accounts.is_file():
            return
        time.sleep(0.3)
    pytest.fail(f"smartstore demo was not ready in {READY_TIMEOUT_S:.0f} s:\n{store.log_tail()}")


@pytest.fixture(scope="module")
def store(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStore]:
    """``smartstore demo`` on a free port, once for all the browser tests of a module."""
    tmp = tmp_path_factory.mktemp("store")
    port = _free_port()
    db, accounts = tmp / "demo.sqlite", tmp / "accounts.json"
    command = [
        sys.executable,
        "-m",
        "smartstore",
        "demo",
        "--scenario",
        str(SCENARIO),
        "--positioning",
        "simulated",
        "--interactions",
        "none",
        "--speed",
        str(SPEED),
        "--seconds",
        str(WALL_SECONDS),
        "--port",
        str(port),
        "--db",
        str(db),
        "--accounts-out",
        str(accounts),
    ]
    log_path = tmp / "demo.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    running = RunningStore(f"http://127.0.0.1:{port}", {}, {}, SPEED, log_path)
    try:
        _wait_ready(running, proc, accounts)
        running.accounts = json.loads(accounts.read_text())
        running.truth = json.loads(db.with_suffix(".truth.json").read_text())
        status, _ = running.call("GET", "/")
        if status != 200:
            pytest.fail(
                f"the demo does not serve the web app at / (HTTP {status}); "
                "create_app must include checkout.web.web_router()"
            )
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(chromium), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, store: RunningStore) -> Iterator[Any]:
    """A fresh signed-out tab on the store (UTC, so the times typed are the store's own).

    Uncaught JavaScript errors fail the test after it ran.
    """
    context = browser.new_context(
        base_url=store.url,
        viewport={"width": 1366, "height": 900},
        timezone_id="UTC",
        locale="en-GB",
    )
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    errors: list[str] = []
    tab.on("pageerror", lambda err: errors.append(f"uncaught: {err}"))
    tab.on(
        "console",
        lambda msg: (
            errors.append(f"console: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    yield tab
    context.close()
    assert not errors, f"the page had JavaScript errors: {errors}"
