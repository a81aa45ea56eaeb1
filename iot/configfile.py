"""Reading validated YAML files (store descriptions, scenarios) with errors that name the field.

>>> from pydantic import BaseModel
>>> class Demo(BaseModel):
...     width_m: float
>>> try:
...     Demo.model_validate({"width_m": "wide"})
... except Exception as exc:
...     print(describe_invalid(exc, "demo.yaml", "demo file"))
demo.yaml: invalid demo file (1 problem(s)); fix these fields:
  - width_m: Input should be a valid number, unable to parse string as a number (got 'wide')
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

__all__ = ["describe_invalid", "read_yaml"]


def read_yaml(path: Path, what: str, error: type[ValueError]) -> object:
    """The parsed YAML at ``path``; ``error`` says what was wrong if it can't be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror}); check the path") from None
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise error(
            f"{path}: {what} is not UTF-8 text (byte {exc.start} is 0x{byte:02X}); save it as UTF-8"
        ) from None
    except ValueError as exc:  # a path with a NUL byte in it
        raise error(f"{path!r}: cannot read {what} ({exc}); check the path") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    # PyYAML's constructors raise plain ValueError for a date that does not exist
    # (2026-02-30) or an integer too long to convert, and recurse once per nesting level.
    except ValueError as exc:
        raise error(
            f"{path}: not valid YAML: a value cannot be read ({str(exc)[:200]}); "
            "quote it if it is meant as text"
        ) from None
    except RecursionError:
        raise error(f"{path}: not valid YAML: lists or mappings nested too deeply") from None


def describe_invalid(exc: ValidationError, source: str, what: str) -> str:
    """Every validation problem as a line with the dotted path of the bad field."""
    lines = [f"{source}: invalid {what} ({exc.error_count()} problem(s)); fix these fields:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<top level>"
        value = err.get("input")
        shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
        lines.append(f"  - {where}: {err['msg']} (got {shown[:80]})")
    return "\n".join(lines)
