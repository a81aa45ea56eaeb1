r"""FastAPI's 422 for any refused request, even one whose input JSON cannot carry back.

Python's JSON parser accepts more than JSON: the constants ``NaN`` and
``Infinity`` (and ``1e400``, read as infinity), and ``\ud800``-style escapes
that decode to a lone surrogate, which is not text in any encoding. The
models refuse both (a finite number, a valid string), but FastAPI's own 422
echoes the refused input, and neither can be written as JSON in UTF-8: the
refusal itself failed, as a 500. ``install(app)`` writes them out as text.
It also answers text the store of record cannot hold (a NUL character, on
PostgreSQL: :class:`checkout.database.UnstorableTextError`) with a 422.

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from pydantic import BaseModel, ConfigDict
>>> class Body(BaseModel):
...     model_config = ConfigDict(allow_inf_nan=False)
...     x: float
>>> app = FastAPI()
>>> @app.post("/x")
... def take(body: Body) -> float:
...     return body.x
>>> install(app)
>>> client = TestClient(app, headers={"content-type": "application/json"})
>>> refused = client.post("/x", content=b'{"x": NaN}')
>>> refused.status_code, refused.json()["detail"][0]["input"]
(422, 'nan')
>>> client.post("/x", content=b'{"x": "\\ud800"}').json()["detail"][0]["input"]
'\\ud800'
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from checkout.database import UnstorableTextError

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Answer ``app``'s invalid requests with a 422, whatever numbers or text they hold."""
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(UnstorableTextError, _unstorable)  # type: ignore[arg-type]


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 body, echoing non-finite numbers ("nan") and lone surrogates as text."""
    return JSONResponse(
        status_code=422, content={"detail": _writable(jsonable_encoder(exc.errors()))}
    )


async def _unstorable(request: Request, exc: UnstorableTextError) -> JSONResponse:
    """A NUL character in an id or a name: malformed input, not a server error."""
    return JSONResponse(status_code=422, content={"detail": _writable(str(exc))})


def _writable(value: Any) -> Any:
    """``value`` with what JSON in UTF-8 cannot hold spelled out: ``nan``, ``\\ud800``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_writable(key): _writable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_writable(item) for item in value]
    return value
