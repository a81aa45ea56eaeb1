"""Structured logs: JSON lines that parse, and no secret on any log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from smartstore.cli import _parser
from smartstore.logs import REDACTED, configure_logging, redact

# (what a line might carry, the secret part that must never be written)
SECRETS = [
    ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
    ("calling with bearer abc123DEF456ghi", "abc123DEF456ghi"),
    ("device cam-01 sent key dk_9f8e7d6c5b4a", "9f8e7d6c5b4a"),
    ("key=dk_live-Key_42.x", "live-Key_42.x"),
    ("login failed password=hunter2 user=ann", "hunter2"),
    ('body {"username": "ann", "password": "s3cr et pass"}', "s3cr et pass"),
    ("{'new_password': 'pa55word!'}", "pa55word!"),
    ("headers {'authorization': 'Basic YW5uOmh1bnRlcjI='}", "YW5uOmh1bnRlcjI="),
    ("Cookie: theme=dark; smartstore_session=sess-abc.123", "sess-abc.123"),
    ("set smartstore_session=Zm9vYmFy; HttpOnly; Path=/", "Zm9vYmFy"),
    ("GET /events?token=tok-qs-777&x=1", "tok-qs-777"),
    ('reply {"token": "tok-json-888", "expires_at_s": 1}', "tok-json-888"),
    ("client_secret: verysecretvalue", "verysecretvalue"),
]

# Text that only looks like a secret must survive untouched.
HARMLESS = [
    "shelf event e1 on g01-s1-p1: 2 tokens=3 picked",
    "plate dk-01 settled at 1044.5 g",
    "receipt r-abc: 2 lines, 228 cents, review False",
    "the password rule needs 12 characters",
]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("json", "DEBUG", stream=stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_parse_with_time_level_logger_message_and_extras(json_log) -> None:
    log = logging.getLogger("checkout.brain")
    log.info("receipt %s issued", "r-1", extra={"store": "demo", "lines": 2})
    log.warning("second line")
    first, second = lines(json_log)
    assert first["level"] == "INFO" and first["logger"] == "checkout.brain"
    assert first["message"] == "receipt r-1 issued"
    assert first["store"] == "demo" and first["lines"] == 2
    assert first["time"].endswith("Z") and first["time"][4] == "-"
    assert second["message"] == "second line" and second["level"] == "WARNING"


def test_an_exception_is_one_json_line_with_its_traceback(json_log) -> None:
    try:
        raise RuntimeError("the ledger is locked")
    except RuntimeError:
        logging.getLogger("checkout.ledger").exception("save failed")
    [line] = lines(json_log)
    assert line["message"] == "save failed"
    assert "Traceback" in line["exception"] and "the ledger is locked" in line["exception"]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_redact_removes_every_secret_pattern(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert REDACTED in out
    assert redact(out) == out  # redacting twice changes nothing


@pytest.mark.parametrize("text", HARMLESS)
def test_redact_leaves_harmless_text_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_no_secret_reaches_a_json_line_by_any_route(json_log, text: str, secret: str) -> None:
    log = logging.getLogger("checkout.auth")
    log.warning(text)  # in the message
    log.warning("request: %s", text)  # in the arguments
    log.warning("a request", extra={"detail": text, "nested": {"headers": [text]}})
    try:
        raise ValueError(f"bad request: {text}")
    except ValueError:
        log.exception("handler failed")  # in the exception text
    written = json_log.getvalue()
    assert secret not in written
    assert len(lines(json_log)) == 4


def test_extra_fields_named_like_secrets_lose_their_value(json_log) -> None:
    logging.getLogger("checkout.auth").info(
        "login", extra={"password": "plain-words", "token": "t-1", "cookie": "a=b"}
    )
    [line] = lines(json_log)
    assert line["password"] == line["token"] == line["cookie"] == REDACTED


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_no_secret_reaches_a_text_line(text: str, secret: str) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("text", logging.INFO, stream=stream)
    try:
        log = logging.getLogger("checkout.auth")
        log.info("seen %s", text)
        try:
            raise ValueError(text)
        except ValueError:
            log.exception("failed")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    written = stream.getvalue()
    assert "seen" in written and "Traceback" in written
    assert secret not in written


def test_the_uvicorn_access_log_loses_its_query_string(json_log, monkeypatch) -> None:
    access = logging.getLogger("uvicorn.access")
    # An earlier uvicorn server in this process (another test) may have configured these
    # loggers its own way (levels, no propagation); the demo starts uvicorn with
    # log_config=None, which leaves them alone.
    for logger in (access, logging.getLogger("uvicorn")):
        for name, value in (("level", logging.DEBUG), ("propagate", True), ("disabled", False)):
            monkeypatch.setattr(logger, name, value)
    access.info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", "/events?t=opaque-99", "1.1", 200
    )
    [line] = lines(json_log)
    assert line["message"] == '127.0.0.1:50000 - "GET /events HTTP/1.1" 200'


def test_configuring_again_replaces_the_handler_and_bad_input_is_refused() -> None:
    root = logging.getLogger()
    level = root.level
    first = configure_logging("text", "INFO", stream=io.StringIO())
    second = configure_logging("json", "WARNING", stream=io.StringIO())
    try:
        assert first not in root.handlers and second in root.handlers
        assert root.level == logging.WARNING
        with pytest.raises(ValueError, match="log format"):
            configure_logging("xml", "INFO")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="log level"):
            configure_logging("json", "LOUD")
    finally:
        root.removeHandler(second)
        root.setLevel(level)


@pytest.mark.parametrize("command", [["demo"], ["eval", "scenarios/normal.yaml"]])
def test_demo_and_eval_take_a_log_format(command: list[str]) -> None:
    assert _parser().parse_args(command).log_format == "text"
    assert _parser().parse_args([*command, "--log-format", "json"]).log_format == "json"
    with pytest.raises(SystemExit):
        _parser().parse_args([*command, "--log-format", "yaml"])
