"""What the browser tests hold of the running store: accounts, plain HTTP calls, screenshots."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checkout.sessions import session_id_for

__all__ = ["ROOT", "SCREENSHOTS", "RunningStore", "Shopper", "holds", "shoot", "sign_in"]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "out" / "screenshots"


@dataclass(frozen=True)
class Shopper:
    username: str
    password: str
    session_id: str
    enters_s: float
    exits_s: float
    basket_units: int


@dataclass
class RunningStore:
    """The demo store the tests click through, and a few plain HTTP calls to it."""

    url: str
    accounts: dict[str, Any]
    truth: dict[str, Any]
    speed: float
    log_path: Path

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """One HTTP call; returns the status and the JSON body (or None)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, _body(answer.read(), answer.headers)
        except urllib.error.HTTPError as err:
            return err.code, _body(err.read(), err.headers)

    def now_s(self) -> float:
        """The store's clock (event time)."""
        status, health = self.call("GET", "/health")
        assert status == 200, health
        return float(health["now_s"])

    def wall_until(self, event_s: float, *, slack_s: float = 20.0) -> float:
        """Wall seconds until the store's clock reaches ``event_s``, plus some slack."""
        return max(0.0, (event_s - self.now_s()) / self.speed) + slack_s

    def wait_until(self, event_s: float) -> None:
        """Sleep until the store's clock has reached ``event_s`` (no wait if it has)."""
        while (left_s := event_s - self.now_s()) > 0:
            time.sleep(min(left_s / self.speed, 2.0) + 0.05)

    def first_entry_s(self) -> float:
        return min(float(v["entered_s"]) for v in self.truth["visits"])

    def first_incident_over_s(self) -> float:
        """When the first theft or operations incident the twin plays has ended."""
        return min(float(i["until_s"]) for i in self.truth["incidents"])

    def shoppers(self) -> list[Shopper]:
        """The demo's shoppers linked to the twin's visitors, with what they will buy."""
        units = {
            session_id_for(v["token"]): sum(v["basket"].values()) for v in self.truth["visits"]
        }
        return [
            Shopper(
                s["username"],
                s["password"],
                s["session_id"],
                float(s["enters_s"]),
                float(s["exits_s"]),
                units.get(s["session_id"], 0),
            )
            for s in self.accounts["shoppers"]
        ]

    def gate_scan(self, token: str) -> tuple[int, Any]:
        """The entry gate scans a QR code (its device key, as a real scanner would)."""
        gate = self.accounts["devices"][0]
        return self.call(
            "POST",
            f"/devices/{gate['device_id']}/scans",
            {"token": token, "party_size": 1},
            token=gate["key"],
        )

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _body(raw: bytes, headers: Any) -> Any:
    """JSON bodies parsed; anything else (a page, an image) as bytes."""
    if raw and "json" in headers.get("Content-Type", ""):
        return json.loads(raw)
    return raw or None


def shoot(page: Any, face: str, step: str) -> Path:
    """A full-page screenshot, kept as a test artefact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{face}-{step}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def holds(page: Any, expression: str, *, timeout_s: float = 20.0) -> None:
    """Wait until a JavaScript expression is true in the page.

    Polled from here: Playwright's own ``wait_for_function`` evaluates strings
    inside the page, which the app's Content-Security-Policy (rightly) refuses.
    """
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout_s:.0f} s: {expression}")
        page.wait_for_timeout(200)


def sign_in(page: Any, username: str, password: str) -> None:
    """Sign in on ``/`` and wait until the face the role lands on is ready."""
    page.goto("/")
    page.fill("#sign-in-username", username)
    page.fill("#sign-in-password", password)
    page.click("#sign-in-submit")
    page.wait_for_selector("body[data-ready='true']")
