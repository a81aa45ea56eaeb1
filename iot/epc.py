"""GS1 EPC binary decoding (SGTIN-96/198, SSCC-96, SGLN-96) and SGTIN-96 encoding.

An RFID reader reports a tag's EPC bank as hex. The GS1 EPC Tag Data
Standard (TDS) lays those bits out as a header that names the scheme, a
3-bit filter value, a 3-bit partition that says how many digits the company
prefix has, the company prefix and a reference, then a serial number or
extension. ``decode_epc`` turns the hex into an ``Epc`` with the
pure-identity URI (``urn:epc:id:...``, what the item *is*), the tag URI
(``urn:epc:tag:...``, the same plus the filter and the binary scheme) and,
for an SGTIN, the GTIN-14 the catalog knows the product by. Anything that
is not a valid encoding raises ``EpcError`` naming what is wrong, so a
caller can count it and keep going.

``encode_sgtin96`` is the inverse for the common item tag; the digital twin
uses it to give simulated items real EPCs.

>>> epc = decode_epc("3074257BF7194E4000001A85")
>>> epc.uri, epc.gtin, epc.serial, epc.filter_value
('urn:epc:id:sgtin:0614141.812345.6789', '80614141123458', '6789', 3)
>>> encode_sgtin96("80614141123458", 6789, filter_value=3)
'3074257BF7194E4000001A85'
"""

from __future__ import annotations

import string
from dataclasses import dataclass

__all__ = ["Epc", "EpcError", "decode_epc", "encode_sgtin96", "gs1_check_digit"]


class EpcError(ValueError):
    """An EPC that is not a valid encoding of a supported scheme; the message says why."""


@dataclass(frozen=True)
class Epc:
    """One decoded EPC.

    ``reference`` is the item reference (indicator digit first) of an SGTIN,
    the serial reference (extension digit first) of an SSCC, the location
    reference of an SGLN. ``serial`` is the SGTIN serial (unescaped) or the
    SGLN extension; empty for an SSCC.
    """

    scheme: str  # binary scheme: "sgtin-96", "sgtin-198", "sscc-96", "sgln-96"
    epc_hex: str  # the input, upper-case
    filter_value: int
    company_prefix: str
    reference: str
    serial: str
    uri: str  # pure identity: urn:epc:id:<kind>:...
    tag_uri: str  # urn:epc:tag:<scheme>:<filter>....
    gtin: str | None  # GTIN-14 with check digit, SGTIN only

    @property
    def kind(self) -> str:
        """The pure-identity type: ``sgtin``, ``sscc`` or ``sgln``."""
        return self.scheme.split("-")[0]


@dataclass(frozen=True)
class _Scheme:
    name: str
    body_bits: int  # company prefix + reference, bits
    body_digits: int  # company prefix + reference, digits
    tail: str  # "int": integer serial/extension, "str": 7-bit string, "zero": reserved
    tail_bits: int

    @property
    def bits(self) -> int:
        return 8 + 3 + 3 + self.body_bits + self.tail_bits


_SCHEMES = {
    0x30: _Scheme("sgtin-96", 44, 13, "int", 38),
    0x36: _Scheme("sgtin-198", 44, 13, "str", 140),
    0x31: _Scheme("sscc-96", 58, 17, "zero", 24),
    0x32: _Scheme("sgln-96", 41, 12, "int", 41),
}

# Company-prefix bits by partition value; the digits are 12 - partition. The
# reference takes the rest of the body. The three schemes share this column.
_COMPANY_BITS = (40, 37, 34, 30, 27, 24, 20)

# TDS table A-1: the 82 characters an SGTIN-198 serial may hold, and the ones
# the pure-identity URI must escape because they mean something in a URI.
_CHARSET_82 = frozenset("!\"%&'()*+,-./:;<=>?_" + string.ascii_letters + string.digits)
_URI_ESCAPES = {c: f"%{ord(c):02X}" for c in '"%&/<>?'}


def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit of ``digits`` (weights 3, 1, 3, ... from the right).

    >>> gs1_check_digit("8061414112345")
    '8'
    """
    if not digits.isdigit() or not digits.isascii():
        raise EpcError(f"GS1 check digit needs decimal digits, got {digits!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


def decode_epc(epc_hex: str) -> Epc:
    """Decode an EPC bank given as hex (either case); raises ``EpcError`` if it is not valid."""
    value, nbits = _parse_hex(epc_hex)
    header = value >> (nbits - 8)
    scheme = _SCHEMES.get(header)
    if scheme is None:
        raise EpcError(
            f"EPC {epc_hex!r}: header 0x{header:02X} is not a supported scheme "
            "(SGTIN-96 0x30, SGTIN-198 0x36, SSCC-96 0x31, SGLN-96 0x32)"
        )
    value = _trim_to_scheme(epc_hex, value, nbits, scheme)
    fields = _Reader(value, scheme.bits)
    fields.take(8)
    filter_value = fields.take(3)
    partition = fields.take(3)
    if partition >= len(_COMPANY_BITS):
        raise EpcError(f"EPC {epc_hex!r}: partition value {partition} is invalid (0..6)")
    cp_digits = 12 - partition
    cp_bits = _COMPANY_BITS[partition]
    company = _digits(fields.take(cp_bits), cp_digits, "company prefix", epc_hex)
    ref_digits = scheme.body_digits - cp_digits
    reference = _digits(fields.take(scheme.body_bits - cp_bits), ref_digits, "reference", epc_hex)
    tail = fields.take(scheme.tail_bits)
    if scheme.tail == "str":
        serial = _decode_string(tail, scheme.tail_bits, epc_hex)
    elif scheme.tail == "int":
        serial = str(tail)
    else:
        if tail:
            raise EpcError(f"EPC {epc_hex!r}: the {scheme.tail_bits} reserved bits are not zero")
        serial = ""
    return _build(
        scheme,
        epc_hex.upper(),
        filter_value=filter_value,
        company=company,
        ref=reference,
        serial=serial,
    )


def encode_sgtin96(
    gtin14: str, serial: int, filter_value: int = 1, company_prefix_digits: int = 7
) -> str:
    """The SGTIN-96 EPC (upper-case hex) of item ``serial`` of ``gtin14``.

    ``company_prefix_digits`` says where the GS1 company prefix ends inside
    the GTIN (the GTIN alone does not tell); filter 1 is a point-of-sale item.
    """
    if len(gtin14) != 14 or not gtin14.isdigit() or not gtin14.isascii():
        raise EpcError(f"GTIN {gtin14!r} must be 14 decimal digits (pad a GTIN-13 with a 0)")
    if gs1_check_digit(gtin14[:13]) != gtin14[13]:
        raise EpcError(
            f"GTIN {gtin14!r} has check digit {gtin14[13]}, expected {gs1_check_digit(gtin14[:13])}"
        )
    if not 6 <= company_prefix_digits <= 12:
        raise EpcError(f"company_prefix_digits must be 6..12, got {company_prefix_digits!r}")
    if not 0 <= filter_value <= 7:
        raise EpcError(f"filter_value must be 0..7, got {filter_value!r}")
    if not 0 <= serial < 1 << 38:
        raise EpcError(f"SGTIN-96 serial must be 0..{(1 << 38) - 1}, got {serial!r}")
    partition = 12 - company_prefix_digits
    cp_bits = _COMPANY_BITS[partition]
    company = int(gtin14[1 : 1 + company_prefix_digits])
    # The indicator digit leads the item reference in the EPC; the check digit is dropped.
    item = int(gtin14[0] + gtin14[1 + company_prefix_digits : 13])
    value = 0x30
    for field, width in ((filter_value, 3), (partition, 3), (company, cp_bits)):
        value = value << width | field
    value = (value << (44 - cp_bits) | item) << 38 | serial
    return f"{value:024X}"


class _Reader:
    """Takes fixed-width fields off the top of a big integer, most significant first."""

    def __init__(self, value: int, nbits: int) -> None:
        self.value, self.left = value, nbits

    def take(self, width: int) -> int:
        self.left -= width
        return (self.value >> self.left) & ((1 << width) - 1)


def _parse_hex(epc_hex: str) -> tuple[int, int]:
    if not isinstance(epc_hex, str) or not epc_hex:
        raise EpcError(f"EPC must be a non-empty hex string, got {epc_hex!r}")
    if not all(c in string.hexdigits for c in epc_hex):
        raise EpcError(f"EPC {epc_hex!r} is not hex (digits 0-9, A-F only, no prefix or spaces)")
    if len(epc_hex) < 2:
        raise EpcError(f"EPC {epc_hex!r} is too short to hold an 8-bit header")
    return int(epc_hex, 16), 4 * len(epc_hex)


def _trim_to_scheme(epc_hex: str, value: int, nbits: int, scheme: _Scheme) -> int:
    """Drop the zero padding a reader adds up to a 16-bit word; refuse any other length."""
    # A 96-bit scheme fills six words exactly; SGTIN-198 is padded to 13 words (208 bits)
    # by the tag, and some software trims it to whole bytes (200 bits).
    max_bits = -(-scheme.bits // 16) * 16
    if not scheme.bits <= nbits <= max_bits:
        want = f"{-(-scheme.bits // 4)}..{max_bits // 4}" if max_bits > scheme.bits else None
        raise EpcError(
            f"EPC {epc_hex!r}: {scheme.name} needs {want or scheme.bits // 4} hex digits, "
            f"got {len(epc_hex)}"
        )
    pad = nbits - scheme.bits
    if value & ((1 << pad) - 1):
        raise EpcError(f"EPC {epc_hex!r}: the {pad} padding bits after {scheme.name} are not zero")
    return value >> pad


def _digits(value: int, ndigits: int, what: str, epc_hex: str) -> str:
    if value >= 10**ndigits:
        raise EpcError(
            f"EPC {epc_hex!r}: {what} field {value} does not fit the {ndigits} digits "
            "its partition gives it"
        )
    return f"{value:0{ndigits}d}" if ndigits else ""


def _decode_string(value: int, nbits: int, epc_hex: str) -> str:
    """7-bit characters, first at the top, ended by an all-zero character or the field's end."""
    chars = []
    for k in range(nbits // 7):
        code = (value >> (nbits - 7 * (k + 1))) & 0x7F
        if code == 0:
            if value & ((1 << (nbits - 7 * (k + 1))) - 1):
                raise EpcError(f"EPC {epc_hex!r}: bits after the end of the serial are not zero")
            break
        if chr(code) not in _CHARSET_82:
            raise EpcError(
                f"EPC {epc_hex!r}: serial character {k + 1} is 0x{code:02X}, "
                "not in the GS1 82-character set"
            )
        chars.append(chr(code))
    return "".join(chars)


def _build(
    scheme: _Scheme, epc_hex: str, *, filter_value: int, company: str, ref: str, serial: str
) -> Epc:
    kind = scheme.name.split("-")[0]
    escaped = "".join(_URI_ESCAPES.get(c, c) for c in serial)
    parts = [company, ref] if kind == "sscc" else [company, ref, escaped]
    body = ".".join(parts)
    gtin = None
    if kind == "sgtin":
        gtin13 = ref[0] + company + ref[1:]
        gtin = gtin13 + gs1_check_digit(gtin13)
    return Epc(
        scheme=scheme.name,
        epc_hex=epc_hex,
        filter_value=filter_value,
        company_prefix=company,
        reference=ref,
        serial=serial,
        uri=f"urn:epc:id:{kind}:{body}",
        tag_uri=f"urn:epc:tag:{scheme.name}:{filter_value}.{body}",
        gtin=gtin,
    )
