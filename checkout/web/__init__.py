"""The web app's files, served by the store's own process: no CDN, no build step.

Three faces over the one API: shoppers (scan in, live cart, receipts,
disputes), managers (footfall, heatmap, stock, devices, prices) and loss
prevention (the case queue). Each is plain HTML, CSS and JavaScript modules
under ``checkout/web/app``; charts are SVG drawn by the app's own code. The
pages hold no secrets and need no sign-in to load; what they show comes from
the API, which checks the caller on every call (the session cookie).

``GET /`` is the sign-in page, which sends each role to its face;
``GET /app/<file>`` serves the rest; ``GET /app/workflow.json`` hands the
pages the case workflow from :mod:`checkout.cases`, so the buttons a reviewer
sees are the moves the server allows, written in one place.

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> app = FastAPI(); app.include_router(web_router())
>>> client = TestClient(app)
>>> client.get("/").headers["content-type"]
'text/html; charset=utf-8'
>>> client.get("/app/../__init__.py").status_code
404
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from checkout.cases import DISPOSITIONS, TRANSITIONS, SortKey
from iot.payloads import CaseRule, CaseState

__all__ = ["APP_DIR", "web_router"]

APP_DIR = Path(__file__).resolve().parent / "app"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# Scripts and styles only from this origin; images may be data: (the QR code) or blob:
# (the heatmap, fetched so its errors can be shown in words); no framing by other sites.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
_HEADERS = {
    "Content-Security-Policy": _POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def web_router(app_dir: Path = APP_DIR) -> APIRouter:
    """``/`` (sign-in) and ``/app/...`` (the faces) from ``app_dir``."""
    root = app_dir.resolve()
    if not (root / "index.html").is_file():
        raise FileNotFoundError(
            f"the web app is missing: no index.html in {root}; reinstall smartstore "
            "(the files are package data of checkout)"
        )
    router = APIRouter(tags=["web"], include_in_schema=False)

    @router.get("/")
    def sign_in() -> FileResponse:
        return _file(root / "index.html")

    @router.get("/app/workflow.json")
    def workflow() -> dict[str, Any]:
        """The case workflow the loss-prevention page draws its buttons from."""
        return {
            "states": list(get_args(CaseState)),
            "rules": list(get_args(CaseRule)),
            "sorts": list(get_args(SortKey)),
            "transitions": {state: list(moves) for state, moves in TRANSITIONS.items()},
            "dispositions": sorted(DISPOSITIONS),
        }

    @router.get("/app/{path:path}")
    def app_file(path: str) -> FileResponse:
        found = (root / path).resolve()
        if not found.is_relative_to(root) or not found.is_file() or found.suffix not in _TYPES:
            raise HTTPException(404, f"no web app file {path[:200]!r}; start at /")
        return _file(found)

    return router


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)
