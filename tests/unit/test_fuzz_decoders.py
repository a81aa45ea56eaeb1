"""The decoders beside the bus: readers' JSON, EPCs, store files and scenario files.

Each may raise only its documented error (``EpcError``, ``StoreFileError``,
``ScenarioFileError``; the RFID parser raises nothing and returns
``ReadError``s), never ``KeyError``, ``TypeError``, ``OverflowError`` or
``RecursionError``, and a store or scenario that is refused for a bad field
names that field's dotted path. Inputs: structurally plausible vendor JSON
broken field by field, random hex of every length and header byte, random
YAML structures, and the shipped store and scenario files with one value
replaced, removed or added. The contracts are ``tools/fuzz/targets.py``'s.

Bounded and repeatable (derandomized); ``SMARTSTORE_FUZZ_EXAMPLES`` raises
the number of examples for a longer local run.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iot.epc import EpcError, decode_epc
from iot.rfid import TagRead, impinj_event, parse_impinj, parse_zebra, zebra_event
from iot.store import StoreFileError, load_store, parse_store
from models.registry import ModelManifestError, read_manifest
from sim.scenario import ScenarioFileError, load_scenario, parse_scenario
from tools.fuzz.schema import leaf_paths, mutate
from tools.fuzz.targets import REPO, TARGETS

DEMO = yaml.safe_load((REPO / "stores" / "demo.yaml").read_text(encoding="utf-8"))
NORMAL = yaml.safe_load((REPO / "scenarios" / "normal.yaml").read_text(encoding="utf-8"))
T0 = 1_800_000_000.0
READ = TagRead("r1", "3074257BF7194E4000001A85", 1, -52.5, T0)


def bounded(n: int) -> Any:
    return settings(
        max_examples=max(n, int(os.environ.get("SMARTSTORE_FUZZ_EXAMPLES", "0"))),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- RFID readers' JSON ---


@st.composite
def reader_message(draw: st.DrawFn) -> tuple[int, bytes]:
    """One vendor message of 1-3 events, one of them broken field by field."""
    fmt = draw(st.integers(0, 1))
    event = impinj_event(READ, "r700") if fmt == 0 else zebra_event(READ, "84:24:8d", 7)
    broken = mutate(draw, copy.deepcopy(event)).data
    good = json.dumps(event).encode()
    parts = draw(st.permutations([broken, *[good] * draw(st.integers(0, 2))]))
    glue = draw(st.sampled_from([b"\n", b"", b" ", b","]))
    body = glue.join(parts)
    if draw(st.booleans()):
        body = b"[" + b",".join(parts) + b"]"
    return fmt, body


@bounded(300)
@given(reader_message())
def test_broken_vendor_events_are_read_errors_never_exceptions(message: tuple[int, bytes]) -> None:
    fmt, body = message
    TARGETS["rfid"].check(bytes([fmt]) + body)


@pytest.mark.parametrize("parse", [parse_impinj, parse_zebra])
@pytest.mark.parametrize("digits", [20, 400, 4000])
def test_an_rssi_of_hundreds_of_digits_is_out_of_range_not_an_overflow(
    parse: Any, digits: int
) -> None:
    """Found by the fuzzer: int / 100.0 raised OverflowError out of the parser."""
    huge = "9" * digits
    impinj = json.dumps(impinj_event(READ, "r")).replace(
        '"peakRssiCdbm": -5250', f'"peakRssiCdbm": {huge}'
    )
    zebra = json.dumps(zebra_event(READ, "m", 1)).replace('"peakRssi": -52', f'"peakRssi": {huge}')
    got = parse((impinj if parse is parse_impinj else zebra).encode(), "r1")
    assert got.reads == []
    assert [e.reason for e in got.errors] == ["out of range"]


# --- EPC hex ---

LENGTHS = [0, 1, 2, 15, 16, 23, 24, 25, 26, 28, 49, 50, 51, 52, 54, 64, 65, 66, 200]


@bounded(400)
@given(header=st.integers(0, 255), length=st.sampled_from(LENGTHS), data=st.data())
def test_any_header_byte_and_length_decodes_or_raises_epc_error(
    header: int, length: int, data: st.DataObject
) -> None:
    size = max(0, length - 2)
    body = data.draw(st.text("0123456789abcdefABCDEF", min_size=size, max_size=size))
    text = f"{header:02X}{body}" if length >= 2 else body[:length] or "3"[:length]
    TARGETS["epc"].check(text.encode())


def test_every_header_byte_is_either_a_scheme_or_named_as_unsupported() -> None:
    supported = {0x30: 24, 0x31: 24, 0x32: 24, 0x36: 52}
    for header in range(256):
        for length in (24, 52):
            text = f"{header:02X}" + "0" * (length - 2)
            if supported.get(header) == length:
                assert decode_epc(text).epc_hex == text  # all-zero fields are a valid encoding
            else:
                with pytest.raises(EpcError, match=r"header|hex digits"):
                    decode_epc(text)


@bounded(200)
@given(st.text(max_size=80) | st.binary(max_size=40).map(lambda b: b.hex()))
def test_random_text_is_an_epc_error_or_an_epc(text: str) -> None:
    try:
        epc = decode_epc(text)
    except EpcError as exc:
        assert str(exc)
        return
    assert epc.epc_hex == text.upper() and epc.uri.startswith("urn:epc:id:")


@pytest.mark.parametrize("bad", [None, 42, b"3074257BF7194E4000001A85", ["30"]])
def test_an_epc_that_is_not_text_is_an_epc_error(bad: Any) -> None:
    with pytest.raises(EpcError, match="non-empty hex string"):
        decode_epc(bad)


# --- store and scenario files: structures ---

YAML_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["gate-in", "g01", "SKU001", "2026-01-05"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@bounded(200)
@given(YAML_VALUES)
def test_any_yaml_structure_is_a_store_or_a_store_file_error(value: Any) -> None:
    try:
        parse_store(value, "fuzz.yaml")
    except StoreFileError as exc:
        assert str(exc).startswith("fuzz.yaml: invalid store description")


@bounded(200)
@given(YAML_VALUES)
def test_any_yaml_structure_is_a_scenario_or_a_scenario_file_error(value: Any) -> None:
    try:
        parse_scenario(value, "fuzz.yaml", REPO / "scenarios")
    except ScenarioFileError as exc:
        assert str(exc).startswith("fuzz.yaml: invalid scenario")


@bounded(150)
@given(data=st.data())
def test_the_demo_store_broken_anywhere_is_refused_with_the_field_path(data: st.DataObject) -> None:
    raw = copy.deepcopy(DEMO)
    leaf = data.draw(st.sampled_from(leaf_paths(raw)), label="leaf")
    _set(
        raw, leaf, {"not": "a value"}
    )  # no field of a store file takes a mapping where a value was
    with pytest.raises(StoreFileError) as caught:
        parse_store(raw, "demo.yaml")
    assert f"  - {'.'.join(map(str, leaf))}: " in str(caught.value), str(caught.value)


@bounded(150)
@given(data=st.data())
def test_the_demo_store_mutated_is_a_store_or_a_store_file_error(data: st.DataObject) -> None:
    mutated = mutate(data.draw, copy.deepcopy(DEMO))
    try:
        value = json.loads(mutated.data)
    except (ValueError, RecursionError):
        return  # not JSON any more; the text-level tests below read such files
    try:
        parse_store(value, "demo.yaml")
    except StoreFileError as exc:
        assert "demo.yaml: invalid store description" in str(exc)


@bounded(100)
@given(data=st.data())
def test_the_normal_scenario_broken_anywhere_is_refused_with_the_field_path(
    data: st.DataObject,
) -> None:
    raw = copy.deepcopy(NORMAL)
    leaf = data.draw(st.sampled_from(leaf_paths(raw)), label="leaf")
    _set(raw, leaf, {"not": "a value"})
    with pytest.raises(ScenarioFileError) as caught:
        parse_scenario(raw, "normal.yaml", REPO / "scenarios")
    assert f"  - {'.'.join(map(str, leaf))}: " in str(caught.value), str(caught.value)


def _set(value: Any, path: tuple[str | int, ...], new: Any) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


# --- store and scenario files: text ---


@bounded(25)
@given(
    at=st.integers(0, 12_000),
    junk=st.binary(min_size=1, max_size=24)
    | st.sampled_from(
        [
            b"\n  - ",
            b": [",
            b"&a ",
            b"*a",
            b"!!binary x",
            b"2026-02-30",
            b"9" * 5000,
            b"\t",
            b"\xff",
        ]
    ),
)
def test_the_demo_store_file_with_bytes_spliced_in_loads_or_says_why(at: int, junk: bytes) -> None:
    text = (REPO / "stores" / "demo.yaml").read_bytes()
    TARGETS["store"].check(text[:at] + junk + text[at:])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"a: 2026-02-30\n", "a value cannot be read (day is out of range for month)"),
        (b"a: " + b"1" * 5000 + b"\n", "a value cannot be read (Exceeds the limit"),
        (b"a: !!float x\n", "a value cannot be read (could not convert string to float"),
        (b"[" * 600 + b"]" * 600, "nested too deeply"),
        (b"\xff\xfe a: 1\n", "is not UTF-8 text (byte 0 is 0xFF)"),
    ],
    ids=["no-such-date", "long-int", "bad-float-tag", "deep", "not-utf8"],
)
def test_yaml_pyyaml_cannot_construct_is_a_file_error(
    tmp_path: Path, text: bytes, problem: str
) -> None:
    """Found by fuzzing: these escaped as ValueError, RecursionError or UnicodeDecodeError."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    with pytest.raises(StoreFileError, match=r"bad\.yaml: ") as store:
        load_store(path)
    with pytest.raises(ScenarioFileError) as scenario:
        load_scenario(path)
    with pytest.raises(ModelManifestError):
        read_manifest(path)
    assert problem in str(store.value) and problem in str(scenario.value)


def test_a_store_path_with_a_nul_byte_is_a_file_error() -> None:
    with pytest.raises(StoreFileError, match="embedded null byte"):
        load_store("stores/demo\x00.yaml")


def test_a_scenario_naming_an_impossible_store_path_is_refused_with_the_field(
    tmp_path: Path,
) -> None:
    """Found by fuzzing: a NUL raised ValueError from resolve(), a long name OSError."""
    with pytest.raises(ScenarioFileError, match="store: Value error, the path holds a NUL"):
        parse_scenario({"store": "demo\x00.yaml"}, "s.yaml", tmp_path)
    long = tmp_path / "long.yaml"
    long.write_text("store: /" + "a" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ScenarioFileError, match=r"store: file /aaa.* does not exist"):
        load_scenario(long)
