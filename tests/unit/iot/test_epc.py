"""EPC decoding against the GS1 TDS worked examples, bad encodings, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot.epc import EpcError, decode_epc, encode_sgtin96, gs1_check_digit


def _sgtin96(partition: int, company: int, item: int) -> str:
    """SGTIN-96 with filter 3 and serial 1 from raw field values, built bit by bit here."""
    cp_bits = (40, 37, 34, 30, 27, 24, 20)[partition]
    bits = "00110000" + "011" + f"{partition:03b}" + f"{company:0{cp_bits}b}"
    bits += f"{item:0{44 - cp_bits}b}" + f"{1:038b}"
    return f"{int(bits, 2):024X}"


def _sgtin198(codes: list[int]) -> str:
    """SGTIN-198 of 0614141.712345 with a serial of raw 7-bit codes, built bit by bit here."""
    bits = "00110110" + "011" + "101" + f"{614141:024b}" + f"{712345:020b}"
    bits += "".join(f"{c:07b}" for c in codes).ljust(140, "0") + "00"
    return f"{int(bits, 2):050X}"


# (hex, scheme, pure-identity URI, tag URI, GTIN, serial) from the GS1 TDS examples.
VECTORS = [
    (
        "3074257BF7194E4000001A85",
        "sgtin-96",
        "urn:epc:id:sgtin:0614141.812345.6789",
        "urn:epc:tag:sgtin-96:3.0614141.812345.6789",
        "80614141123458",
        "6789",
    ),
    (
        "3674257BF6B7A659B2C2BF1000000000000000000000000000",
        "sgtin-198",
        "urn:epc:id:sgtin:0614141.712345.32a%2Fb",
        "urn:epc:tag:sgtin-198:3.0614141.712345.32a%2Fb",
        "70614141123451",
        "32a/b",
    ),
    (
        "3174257BF4499602D2000000",
        "sscc-96",
        "urn:epc:id:sscc:0614141.1234567890",
        "urn:epc:tag:sscc-96:3.0614141.1234567890",
        None,
        "",
    ),
    (
        "3274257BF46072000000162E",
        "sgln-96",
        "urn:epc:id:sgln:0614141.12345.5678",
        "urn:epc:tag:sgln-96:3.0614141.12345.5678",
        None,
        "5678",
    ),
]


@pytest.mark.parametrize("vector", VECTORS, ids=[v[1] for v in VECTORS])
def test_gs1_worked_examples(vector: tuple[str, str, str, str, str | None, str]) -> None:
    hex_, scheme, uri, tag_uri, gtin, serial = vector
    epc = decode_epc(hex_)
    assert (epc.scheme, epc.uri, epc.tag_uri, epc.gtin, epc.serial) == (
        scheme,
        uri,
        tag_uri,
        gtin,
        serial,
    )
    assert epc.filter_value == 3 and epc.company_prefix == "0614141"
    assert decode_epc(hex_.lower()) == epc  # readers differ in case; the result does not


def test_sgtin198_padded_to_a_whole_word_decodes_the_same() -> None:
    short = VECTORS[1][0]
    assert _sgtin198([ord(c) for c in "32a/b"]) == short  # the test's own encoders agree
    assert _sgtin96(5, 614141, 812345)[:-8] == VECTORS[0][0][:-8]
    assert decode_epc(short + "00").uri == decode_epc(short).uri


@pytest.mark.parametrize(
    ("hex_", "problem"),
    [
        ("", "non-empty"),
        ("30 74257BF7194E4000001A85", "not hex"),
        ("0x3074257BF7194E4000001A8", "not hex"),
        ("3", "too short"),
        ("E280689400005003", "header 0xE2"),  # a TID-like value, not an EPC scheme
        ("3074257BF7194E4000001A", "24 hex digits, got 22"),
        ("3074257BF7194E4000001A8500", "24 hex digits, got 26"),
        ("307C257BF7194E4000001A85", "partition value 7"),
        ("3174257BF4499602D2000001", "reserved bits are not zero"),
        ("3674257BF6B7A659B2C2BF1000000000000000000000000001", "padding bits"),
        # Partition 5 gives the company prefix 7 digits in 24 bits; all bits set is 8 digits.
        (_sgtin96(5, (1 << 24) - 1, 812345), "company prefix field 16777215 does not fit the 7"),
        (_sgtin96(5, 614141, (1 << 20) - 1), "reference field 1048575 does not fit the 6"),
        (_sgtin96(0, 614141, 10), "reference field 10 does not fit the 1"),
        (_sgtin198([ord("3"), 0x01]), "character 2 is 0x01, not in the GS1 82-character"),
        (_sgtin198([ord("3"), ord("~")]), "character 2 is 0x7E"),
        (_sgtin198([ord("3"), 0, ord("a")]), "after the end of the serial"),
    ],
)
def test_bad_encodings_name_the_problem(hex_: str, problem: str) -> None:
    with pytest.raises(EpcError, match=problem):
        decode_epc(hex_)


def test_epc_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode_epc("zz")


def test_check_digit_of_gs1_examples() -> None:
    assert gs1_check_digit("8061414112345") == "8"
    assert gs1_check_digit("0400638000001") == "8"  # the demo catalog's SKU001, 04006380000018
    assert gs1_check_digit("0000000000000") == "0"
    with pytest.raises(EpcError, match="decimal digits"):
        gs1_check_digit("12a")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"gtin14": "8061414112345"}, "14 decimal digits"),
        ({"gtin14": "80614141123459"}, "check digit 9, expected 8"),
        ({"gtin14": "80614141123458", "serial": -1}, "serial must be"),
        ({"gtin14": "80614141123458", "serial": 1 << 38}, "serial must be"),
        ({"gtin14": "80614141123458", "filter_value": 8}, "filter_value"),
        ({"gtin14": "80614141123458", "company_prefix_digits": 5}, "company_prefix_digits"),
    ],
)
def test_encode_refuses_bad_input(kwargs: dict[str, object], problem: str) -> None:
    args: dict[str, object] = {"serial": 1, **kwargs}
    with pytest.raises(EpcError, match=problem):
        encode_sgtin96(**args)  # type: ignore[arg-type]


@st.composite
def gtins(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=13, max_size=13))
    return body + gs1_check_digit(body)


@given(
    gtin=gtins(),
    serial=st.integers(0, (1 << 38) - 1),
    filter_value=st.integers(0, 7),
    cp_digits=st.integers(6, 12),
)
def test_encode_decode_round_trip(
    gtin: str, serial: int, filter_value: int, cp_digits: int
) -> None:
    hex_ = encode_sgtin96(gtin, serial, filter_value, cp_digits)
    epc = decode_epc(hex_)
    assert len(hex_) == 24 and hex_ == hex_.upper()
    assert epc.gtin == gtin and epc.serial == str(serial) and epc.filter_value == filter_value
    assert len(epc.company_prefix) == cp_digits
    assert epc.uri == f"urn:epc:id:sgtin:{epc.company_prefix}.{epc.reference}.{serial}"


@given(st.integers(0, (1 << 88) - 1))
def test_any_sgtin96_bits_either_decode_and_re_encode_or_fail_cleanly(body: int) -> None:
    hex_ = f"{0x30 << 88 | body:024X}"
    try:
        epc = decode_epc(hex_)
    except EpcError:
        return
    assert epc.gtin is not None
    again = encode_sgtin96(epc.gtin, int(epc.serial), epc.filter_value, len(epc.company_prefix))
    assert again == hex_


def test_cross_check_with_epcpy() -> None:
    epcpy = pytest.importorskip("epcpy")
    from epcpy.epc_schemes.sgtin import SGTIN, SGTINFilterValue

    for hex_, *_ in VECTORS:
        theirs = epcpy.hex_to_tag_encodable(hex_)
        ours = decode_epc(hex_)
        assert theirs.epc_uri == ours.uri
        if ours.gtin is not None:
            assert theirs.gtin() == ours.gtin
    gtin = "04006380000018"
    for serial in (0, 1, 6789, (1 << 38) - 1):
        ours_hex = encode_sgtin96(gtin, serial, filter_value=1, company_prefix_digits=7)
        uri = decode_epc(ours_hex).uri
        sgtin = SGTIN.from_epc_uri(uri)
        assert isinstance(sgtin, SGTIN)
        theirs_hex = sgtin.hex(
            binary_coding_scheme=SGTIN.BinaryCodingScheme.SGTIN_96,
            filter_value=SGTINFilterValue.POS_ITEM,
        )
        assert theirs_hex.upper() == ours_hex
        assert epcpy.hex_to_tag_encodable(ours_hex).gtin() == gtin


@given(
    gtin=gtins(),
    serial=st.integers(0, (1 << 38) - 1),
    cp_digits=st.integers(6, 12),
)
def test_cross_check_with_epcpy_on_random_sgtins(gtin: str, serial: int, cp_digits: int) -> None:
    epcpy = pytest.importorskip("epcpy")
    hex_ = encode_sgtin96(gtin, serial, 1, cp_digits)
    theirs = epcpy.hex_to_tag_encodable(hex_)
    assert theirs.epc_uri == decode_epc(hex_).uri
    assert theirs.gtin() == gtin
