"""Logging for the composition roots: text or JSON lines, with secrets redacted.

``configure_logging("json", "INFO")`` puts one handler on the root logger
that writes one JSON object per line (``time``, ``level``, ``logger``,
``message``, then any ``extra=`` fields, ``exception`` and ``stack``), for a
log shipper; ``"text"`` keeps the human format. Either way a
``RedactionFilter`` on the handler rewrites every record before it is
written, and the formatters redact their output once more, so no secret
reaches a log line, whoever logged it (uvicorn included):

* ``Bearer <token>`` anywhere, and whole ``Authorization:``, ``Cookie:`` and
  ``Set-Cookie:`` header values;
* device keys ``dk_...``;
* values of ``password``-like, ``secret``-like and ``token`` keys, and of the
  ``smartstore_session`` cookie, as ``key=value``, ``key: value``, JSON or
  Python reprs, and in query strings;
* ``extra=`` fields named like those keys, whatever their value.

Uvicorn's access log also loses its query strings (``AccessLogQueryFilter``).

>>> redact("GET /events?token=abc123&x=1 Authorization: Bearer eyJ.hdr.sig")
'GET /events?token=[REDACTED]&x=1 Authorization: [REDACTED]'
>>> redact('{"username": "ann", "password": "hunter2"} key dk_7f3a9c')
'{"username": "ann", "password": "[REDACTED]"} key dk_[REDACTED]'
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any, Literal

__all__ = [
    "REDACTED",
    "AccessLogQueryFilter",
    "JsonFormatter",
    "RedactionFilter",
    "TextFormatter",
    "configure_logging",
    "redact",
]

REDACTED = "[REDACTED]"
LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "smartstore"  # the root handler configure_logging owns (and replaces)

# Keys whose value is a secret wherever it appears (key=value, key: value, "key": "value").
_SECRET_KEY = (
    r"[\w-]*(?:password|passwd|secret)[\w-]*"
    r"|(?:access_|refresh_|id_)?token|api_?key|device_?key|smartstore_session"
)
_DONE = re.escape(REDACTED)  # already redacted: redacting twice changes nothing
_QUOTED = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
_KEY_VALUE = re.compile(
    rf"(?i)(?<![\w-])({_SECRET_KEY})([\"']?\s*[:=]\s*)(?!{_DONE})({_QUOTED}|[^\s&,;}}\])\"']+)"
)
_HEADER = re.compile(
    r"(?i)(?<![\w-])((?:proxy-)?authorization|cookie|set-cookie)([\"']?\s*[:=]\s*[\"']?)"
    r"([^\"'\r\n]*?)(?=[\"'\r\n]|$)"
)
_BEARER = re.compile(rf"(?i)\bbearer\s+(?!{_DONE})[^\s\"',;\]}})]+")
_DEVICE_KEY = re.compile(r"(?<![\w-])dk_[\w\-.~+/=]+")
_SECRET_NAME = re.compile(rf"(?i)^(?:{_SECRET_KEY}|(?:proxy-)?authorization|cookie|set-cookie)$")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
# (uvicorn adds ``color_message``, the message again with terminal colours.)
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def _keep_quotes(match: re.Match[str]) -> str:
    value = match.group(3)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{match.group(2)}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    """``text`` with every secret pattern this module knows replaced by ``[REDACTED]``."""
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _BEARER.sub(f"Bearer {REDACTED}", text)
    text = _DEVICE_KEY.sub(f"dk_{REDACTED}", text)
    return _KEY_VALUE.sub(_keep_quotes, text)


def _redact_value(key: str, value: Any) -> Any:
    """An ``extra=`` value made safe to write: secret-named keys lose it entirely."""
    if _SECRET_NAME.match(key):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value("", v) for v in value]
    return redact(str(value))


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


class RedactionFilter(logging.Filter):
    """Rewrites a record in place so that its message, exception and extras carry no secret.

    Put it on a handler (a logger's own filters do not see its children's records).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad %-format must still be logged, not lost
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in _extras(record).items():
            setattr(record, key, _redact_value(key, value))
        return True


class AccessLogQueryFilter(logging.Filter):
    """Drops the query string from uvicorn access-log records (tokens ride in query strings).

    Uvicorn logs ``(client, method, path with query, http version, status)``;
    the path keeps only what comes before ``?``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


class TextFormatter(logging.Formatter):
    """The human format, redacted once more after formatting."""

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, extras.

    >>> record = logging.makeLogRecord(
    ...     {"name": "checkout.api", "levelname": "INFO", "msg": "hello %s", "args": ("ann",),
    ...      "created": 0.0, "store": "demo"})
    >>> JsonFormatter().format(record)
    '{"time": "1970-01-01T00:00:00.000Z", "level": "INFO", "logger": "checkout.api", \
"message": "hello ann", "store": "demo"}'
    """

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!r} % {record.args!r}"
        out: dict[str, Any] = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(message),
        }
        for key, value in _extras(record).items():
            if key not in out:
                out[key] = _redact_value(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = redact(record.exc_text)
        if record.stack_info:
            out["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(out, default=lambda v: redact(str(v)), ensure_ascii=False)


def _iso_utc(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time, not the one it was made with.

    A test harness (or a daemon) may swap ``sys.stderr``; a handler holding the
    old one would write into a closed stream.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass  # always the current sys.stderr


_FORMATTERS: dict[str, Callable[[], logging.Formatter]] = {
    "text": TextFormatter,
    "json": JsonFormatter,
}


def configure_logging(
    format: LogFormat = "text",
    level: int | str = logging.WARNING,
    *,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """One redacting handler on the root logger, replacing the one a previous call put there.

    Other handlers on the root logger (pytest's, a library's) are left alone.
    Uvicorn's loggers reach this handler when uvicorn is started with
    ``log_config=None``; its access log is stripped of query strings either way.
    """
    if format not in _FORMATTERS:
        raise ValueError(f"log format must be one of {sorted(_FORMATTERS)}, got {format!r}")
    if isinstance(level, str):
        name = level.upper()
        if not isinstance(logging.getLevelName(name), int):
            raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
        level = logging.getLevelName(name)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(_FORMATTERS[format]())
    handler.addFilter(RedactionFilter())
    handler.set_name(_HANDLER_NAME)
    root.addHandler(handler)
    root.setLevel(level)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogQueryFilter) for f in access.filters):
        access.addFilter(AccessLogQueryFilter())
    return handler
