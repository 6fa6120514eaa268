"""The protobuf binary wire format: just enough to read and write Caffe weight files.

A protobuf message is a sequence of fields, each ``key value`` where ``key = field_number << 3 |
wire_type`` is a varint. Wire types used by caffe.proto: 0 varint (ints, bools, enums),
1 fixed 64-bit (double), 2 length-delimited (strings, bytes, sub-messages, packed repeated
scalars), 5 fixed 32-bit (float). Groups (3, 4) are not used by Caffe and are rejected.

This module knows nothing about Caffe: it splits bytes into fields and joins fields into bytes.
Large payloads (packed float arrays) are returned as ``memoryview`` slices and decoded with
NumPy, so no Python loop ever runs over weights.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message (truncated, bad key, bad length)."""


def read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode the varint at ``buf[pos]``; return (value, position after it)."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise WireError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError(f"varint longer than 10 bytes at byte {pos}")


def _read_varint_value(buf: memoryview, pos: int, number: int) -> tuple[int, int]:
    return read_varint(buf, pos)


def _read_fixed(size: int):
    def read(buf: memoryview, pos: int, number: int) -> tuple[memoryview, int]:
        if pos + size > len(buf):
            raise WireError(f"truncated fixed-size field {number} at byte {pos}")
        return buf[pos:pos + size], pos + size

    return read


def _read_length_delimited(buf: memoryview, pos: int, number: int) -> tuple[memoryview, int]:
    size, pos = read_varint(buf, pos)
    if pos + size > len(buf):
        raise WireError(
            f"field {number} claims {size} bytes at byte {pos} but only {len(buf) - pos} remain "
            f"(truncated file?)"
        )
    return buf[pos:pos + size], pos + size


# wire type -> reader(buf, pos, field_number) -> (value, next position)
_READERS = {
    VARINT: _read_varint_value,
    FIXED64: _read_fixed(8),
    LENGTH: _read_length_delimited,
    FIXED32: _read_fixed(4),
}


def iter_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field_number, wire_type, value) for each field of one message.

    ``value`` is an int for varints, a memoryview of the raw bytes for the other wire types
    (4 or 8 bytes for fixed types, the payload for length-delimited ones).
    """
    buf = memoryview(buf)
    pos, end = 0, len(buf)
    while pos < end:
        start = pos
        tag, pos = read_varint(buf, pos)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise WireError(f"field number 0 at byte {start}")
        reader = _READERS.get(wire_type)
        if reader is None:
            raise WireError(f"unsupported wire type {wire_type} for field {number} at byte {start}")
        value, pos = reader(buf, pos, number)
        yield number, wire_type, value


def group_fields(buf: bytes | memoryview) -> dict[int, list[tuple[int, int | memoryview]]]:
    """The fields of one message grouped by field number: {number: [(wire_type, value), ...]}.

    Occurrences keep their order, so a repeated field reads as the list and an optional one
    as its last element (proto2 semantics).
    """
    fields: dict[int, list[tuple[int, int | memoryview]]] = {}
    for number, wire_type, value in iter_fields(buf):
        fields.setdefault(number, []).append((wire_type, value))
    return fields


def decode_string(value: int | memoryview, what: str) -> str:
    """A length-delimited field as UTF-8 text."""
    if isinstance(value, int):
        raise WireError(f"{what} should be a string, found a varint")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"{what} is not UTF-8 text ({exc})") from exc


def decode_message(wire_type: int, value: int | memoryview, what: str) -> memoryview:
    """A length-delimited field holding a sub-message."""
    if wire_type != LENGTH or isinstance(value, int):
        raise WireError(f"{what} should be a sub-message (wire type 2), found wire type {wire_type}")
    return value


def decode_floats(wire_type: int, value: int | memoryview) -> np.ndarray:
    """A repeated float field occurrence: packed (many little-endian float32) or one fixed32."""
    if wire_type not in (LENGTH, FIXED32) or isinstance(value, int):
        raise WireError(f"a float field has wire type {wire_type}, expected 2 (packed) or 5")
    if len(value) % 4:
        raise WireError(f"packed floats of {len(value)} bytes (not a multiple of 4)")
    return np.frombuffer(value, dtype="<f4")


def decode_doubles(wire_type: int, value: int | memoryview) -> np.ndarray:
    """A repeated double field occurrence: packed or one fixed64."""
    if wire_type not in (LENGTH, FIXED64) or isinstance(value, int):
        raise WireError(f"a double field has wire type {wire_type}, expected 2 (packed) or 1")
    if len(value) % 8:
        raise WireError(f"packed doubles of {len(value)} bytes (not a multiple of 8)")
    return np.frombuffer(value, dtype="<f8")


def decode_varints(wire_type: int, value: int | memoryview) -> list[int]:
    """A repeated integer field occurrence: packed varints or one varint (as signed int64)."""
    if wire_type == VARINT and isinstance(value, int):
        values = [value]
    elif wire_type == LENGTH and not isinstance(value, int):
        values, pos = [], 0
        while pos < len(value):
            v, pos = read_varint(value, pos)
            values.append(v)
    else:
        raise WireError(f"an integer field has wire type {wire_type}, expected 0 or 2 (packed)")
    return [v - (1 << 64) if v >= 1 << 63 else v for v in values]


def decode_float(wire_type: int, value: int | memoryview) -> float:
    """One (optional) float field."""
    return float(decode_floats(wire_type, value)[-1])


# -- writing ----------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """Varint bytes of a non-negative int (negative int64 values use 10 bytes, two's complement)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


def length_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, sub-message or packed array)."""
    return key(number, LENGTH) + encode_varint(len(payload)) + payload


def string_field(number: int, text: str) -> bytes:
    return length_field(number, text.encode("utf-8"))


def varint_field(number: int, value: int) -> bytes:
    return key(number, VARINT) + encode_varint(value)


def packed_floats_field(number: int, values: np.ndarray) -> bytes:
    """A packed repeated float field: little-endian float32, one length prefix."""
    return length_field(number, np.ascontiguousarray(values, dtype="<f4").tobytes())


def packed_varints_field(number: int, values: list[int]) -> bytes:
    return length_field(number, b"".join(encode_varint(int(v)) for v in values))
