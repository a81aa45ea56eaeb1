"""Bus payloads drawn from the payload models' JSON schemas: valid ones, and broken ones.

``valid_payload(Model)`` draws JSON objects that satisfy ``Model``'s JSON
schema (the one the AsyncAPI document publishes), so a model whose
validators and schema disagree, or a service that cannot take a payload the
model allows, shows up in the tests. ``hostile_payload(Model)`` starts from
a valid one and breaks it the ways a device, a bug or an attacker would: a
wrong type, a number out of range or beyond what a float holds, ``NaN``, an
integer of thousands of digits, a field too many or too few, nesting
thousands deep, a string of a hundred thousand characters, a duplicated key,
cut-off text, bytes that are not UTF-8. Each draw says which mutation made
it, so a failure reads as "long number at plates.0.weights_g.3".

Only the parts of JSON Schema that pydantic emits for ``iot.payloads`` are
understood; anything else raises, so a new kind of field cannot be skipped
silently.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

__all__ = [
    "MUTATIONS",
    "TOPIC_SAFE_ID",
    "Hostile",
    "hostile_payload",
    "leaf_paths",
    "mutate",
    "valid_payload",
]

Json = Any
Path = tuple[str | int, ...]

_ID_PATTERN = r"^[A-Za-z0-9._:@/-]+$"  # iot.payloads.Id
_ID_CHARS = string.ascii_letters + string.digits + "._:@/-"
# A device id is also a topic level: no "/" (and Id already excludes the wildcards + and #).
TOPIC_SAFE_ID = st.text(_ID_CHARS.replace("/", ""), min_size=1, max_size=40)
_MARK = "@@raw-json@@"  # a string leaf replaced by raw JSON text after dumping
_MAX_LIST = 4  # items drawn beyond an array's minimum: enough to vary, cheap to validate

MUTATIONS = (
    "wrong type",
    "out of range",
    "not a number",
    "long number",
    "extra field",
    "missing field",
    "deep nesting",
    "long string",
    "duplicate key",
    "not an object",
    "cut short",
    "not UTF-8",
)

_POISON: list[Json] = [None, True, False, 0, -1, 1.5, 1e308, -1e308, 2**64, "", "x", [], {}]
_OUT_OF_RANGE: list[Json] = [-1, 0, 1e-320, 1e308, -1e308, 10**30, -(10**30), 2**63, 4.2e9]


def valid_payload(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Json]]:
    """JSON objects (as Python values) that ``model``'s JSON schema allows."""
    schema = model.model_json_schema()
    return _strategy(schema, schema.get("$defs", {}))


def _strategy(s: dict[str, Json], defs: dict[str, Json]) -> st.SearchStrategy[Json]:
    if "$ref" in s:
        name = s["$ref"].removeprefix("#/$defs/")
        return st.deferred(lambda: _strategy(defs[name], defs))
    if "const" in s:
        return st.just(s["const"])
    if "enum" in s:
        return st.sampled_from(s["enum"])
    if "anyOf" in s:
        return st.one_of([_strategy(part, defs) for part in s["anyOf"]])
    kind = s.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return _integers(s)
    if kind == "number":
        return st.floats(
            min_value=s.get("minimum", s.get("exclusiveMinimum")),
            max_value=s.get("maximum", s.get("exclusiveMaximum")),
            exclude_min="exclusiveMinimum" in s,
            exclude_max="exclusiveMaximum" in s,
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "string":
        return _strings(s)
    if kind == "array":
        least = s.get("minItems", 0)
        most = min(s.get("maxItems", least + _MAX_LIST), least + _MAX_LIST)
        return st.lists(_strategy(s["items"], defs), min_size=least, max_size=most)
    if kind == "object" and "properties" in s:
        required = set(s.get("required", ()))
        props = s["properties"]
        return st.fixed_dictionaries(
            {k: _strategy(v, defs) for k, v in props.items() if k in required},
            optional={k: _strategy(v, defs) for k, v in props.items() if k not in required},
        )
    if kind == "object" and "additionalProperties" in s:  # a dict[str, X] field
        return st.dictionaries(
            st.text(max_size=8), _strategy(s["additionalProperties"], defs), max_size=3
        )
    raise ValueError(f"JSON schema part not understood, teach tools/fuzz/schema.py: {s}")


def _integers(s: dict[str, Json]) -> st.SearchStrategy[int]:
    low = s.get("minimum")
    high = s.get("maximum")
    if "exclusiveMinimum" in s:
        low = int(s["exclusiveMinimum"]) + 1
    if "exclusiveMaximum" in s:
        high = int(s["exclusiveMaximum"]) - 1
    return st.integers(min_value=low, max_value=high)


def _strings(s: dict[str, Json]) -> st.SearchStrategy[str]:
    least, most = s.get("minLength", 0), s.get("maxLength", 60)
    pattern = s.get("pattern")
    if pattern == _ID_PATTERN:
        return st.text(_ID_CHARS, min_size=max(least, 1), max_size=most)
    if pattern is not None:
        regex = str(pattern)
        return st.from_regex(regex, fullmatch=True).filter(lambda t: least <= len(t) <= most)
    return st.text(min_size=least, max_size=most)


# --- breaking a valid payload ---


def leaf_paths(value: Json, at: Path = ()) -> list[Path]:
    """Paths of every scalar (and empty container) inside ``value``."""
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in leaf_paths(v, (*at, k))]
    if isinstance(value, list) and value:
        return [p for i, v in enumerate(value) for p in leaf_paths(v, (*at, i))]
    return [at]


def _object_paths(value: Json, at: Path = ()) -> list[Path]:
    if isinstance(value, dict):
        return [at] + [p for k, v in value.items() for p in _object_paths(v, (*at, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _object_paths(v, (*at, i))]
    return []


def _get(value: Json, path: Path) -> Json:
    for step in path:
        value = value[step]
    return value


def _set(value: Json, path: Path, new: Json) -> None:
    _get(value, path[:-1])[path[-1]] = new


def _dump(value: Json, raw: str | None = None) -> bytes:
    text = json.dumps(value)
    if raw is not None:
        text = text.replace(json.dumps(_MARK), raw, 1)
    return text.encode()


class Hostile:
    """A broken payload and how it was broken (shown when a test fails)."""

    def __init__(self, mutation: str, where: str, data: bytes) -> None:
        self.mutation, self.where, self.data = mutation, where, data

    def __repr__(self) -> str:
        return f"Hostile({self.mutation} at {self.where or '<payload>'}, {self.data[:200]!r})"


@st.composite
def hostile_payload(
    draw: st.DrawFn, model: type[BaseModel], device_id: str | None = None
) -> Hostile:
    """A payload of ``model`` broken by one of ``MUTATIONS`` (it may still happen to be valid).

    ``device_id``, when given, is set before the damage (the one the topic will name).
    """
    payload = draw(valid_payload(model))
    if device_id is not None:
        payload["device_id"] = device_id
    return mutate(draw, payload)


def mutate(draw: Callable[..., Any], payload: dict[str, Json]) -> Hostile:
    """Break ``payload`` (changed in place) with one of ``MUTATIONS``.

    ``draw``: a composite's ``draw`` or ``st.data()``'s ``data.draw``.
    """
    mutation = draw(st.sampled_from(MUTATIONS))
    leaf = draw(st.sampled_from(leaf_paths(payload)))
    where = ".".join(str(p) for p in leaf)
    if mutation == "wrong type":
        _set(payload, leaf, draw(st.sampled_from(_POISON)))
        return Hostile(mutation, where, _dump(payload))
    if mutation == "out of range":
        _set(payload, leaf, draw(st.sampled_from(_OUT_OF_RANGE)))
        return Hostile(mutation, where, _dump(payload))
    if mutation in ("not a number", "long number", "deep nesting"):
        _set(payload, leaf, _MARK)
        return Hostile(mutation, where, _dump(payload, draw(_raw_json(mutation))))
    if mutation == "long string":
        _set(payload, leaf, "a" * draw(st.integers(1_000, 200_000)))
        return Hostile(mutation, where, _dump(payload))
    if mutation in ("extra field", "missing field"):
        obj_path = draw(st.sampled_from(_object_paths(payload)))
        obj = _get(payload, obj_path)
        where = ".".join(str(p) for p in obj_path)
        if mutation == "extra field" or not obj:
            obj[draw(st.sampled_from(["unexpected", "v2", "__proto__", "id "]))] = 1
        else:
            del obj[draw(st.sampled_from(sorted(obj)))]
        return Hostile(mutation, where, _dump(payload))
    if mutation == "duplicate key":
        key = draw(st.sampled_from(sorted(payload)))
        text = _dump(payload).decode()
        dup = json.dumps(draw(st.sampled_from(_POISON)))
        return Hostile(mutation, key, f'{text[:-1]}, "{key}": {dup}}}'.encode())
    if mutation == "not an object":
        other = draw(st.sampled_from([[payload], "payload", 1, None, True, []]))
        return Hostile(mutation, "", _dump(other))
    data = _dump(payload)
    at = draw(st.integers(0, len(data)))
    if mutation == "cut short":
        return Hostile(mutation, f"byte {at}", data[:at])
    junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf"]))
    return Hostile(mutation, f"byte {at}", data[:at] + junk + data[at:])


def _raw_json(mutation: str) -> st.SearchStrategy[str]:
    if mutation == "not a number":
        return st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
    if mutation == "long number":
        return st.builds(
            lambda sign, n, frac: sign + "9" * n + frac,
            st.sampled_from(["", "-"]),
            st.integers(300, 6_000),
            st.sampled_from(["", ".5", "e5"]),
        )
    return st.builds(
        lambda depth, kind: kind[0] * depth + "0" + kind[1] * depth,
        st.integers(50, 20_000),
        st.sampled_from([("[", "]"), ('{"a":', "}"), ("[", "")]),
    )
