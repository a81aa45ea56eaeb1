"""The HTTP side of the operations metrics: ``GET /metrics`` and a request counter.

``metrics_router()`` serves prometheus_client's default registry, which holds
the bus, brain and camera metrics of ``iot.metrics`` and the HTTP metrics
here, in the Prometheus text format 0.0.4. It is meant to be mounted without
authentication (a scraper has no account), so nothing on it may be personal:
every label value is bounded and impersonal (see ``iot.metrics``).

``HttpMetricsMiddleware`` counts requests by method, *route template* and
status, e.g. ``/receipts/{receipt_id}``, never the concrete path, so ids and
tokens in URLs never become label values. Requests no route matched count
under ``<unmatched>``.

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> app = FastAPI()
>>> app.add_middleware(HttpMetricsMiddleware)
>>> app.include_router(metrics_router())
>>> response = TestClient(app).get("/metrics")
>>> response.status_code, response.headers["content-type"]
(200, 'text/plain; version=0.0.4; charset=utf-8')
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import REGISTRY, Counter, Histogram, generate_latest
from starlette.routing import Match

from iot.metrics import BoundedLabel

__all__ = [
    "CONTENT_TYPE",
    "HTTP_REQUESTS",
    "HTTP_SECONDS",
    "UNMATCHED",
    "HttpMetricsMiddleware",
    "metrics_router",
    "route_template",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "smartstore_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "smartstore_http_request_seconds",
    "Wall seconds to answer an HTTP request (a server-sent event stream counts its whole life).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
_routes = BoundedLabel(200, max_chars=200)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def metrics_router() -> APIRouter:
    """``GET /metrics``: the default registry in the Prometheus text format (no auth)."""
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", response_class=Response, include_in_schema=False)
    def metrics() -> Response:
        """Counters, histograms and gauges of this process, for Prometheus to scrape."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE)

    return router


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``<unmatched>``; never the concrete path."""
    route = scope.get("route")
    if route is None:  # an older Starlette leaves no "route" in the scope: match it here
        app = scope.get("app")
        for candidate in getattr(app, "routes", ()):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return _routes(path) if isinstance(path, str) and path else UNMATCHED


class HttpMetricsMiddleware:
    """Pure ASGI middleware: counts and times each HTTP request under its route template.

    Add it with ``app.add_middleware(HttpMetricsMiddleware)``. An exception
    escaping the app counts as status 500 and is raised on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope.get("method", "")
            method = method if method in _METHODS else "other"
            route = route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)
