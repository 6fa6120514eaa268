"""A small parser (and printer) for the protobuf text format of Caffe ``.prototxt`` files.

Without the schema a text file still says everything Caffe import needs: a message is a list
of ``name: value`` and ``name { ... }`` fields, and a field that appears several times is
repeated. Supported: nested blocks (``{}`` or ``<>``, with or without a colon), list syntax
``name: [1, 2]``, double- or single-quoted strings with C escapes (adjacent strings join),
integers (decimal, hex, octal), floats (``1.``, ``.5``, ``1e-3``, ``2.0f``, ``inf``, ``nan``),
``true``/``false``, enum identifiers, ``#`` comments and optional ``,``/``;`` separators.

Values come back as Python scalars: ``str`` for quoted strings, :class:`Identifier` (a ``str``)
for enum names, ``bool``, ``int``, ``float``, or a nested :class:`Message`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Iterator

from .errors import PrototxtError


class Identifier(str):
    """An unquoted enum value such as ``CAFFE`` or ``CENTER_SIZE`` (compares equal to its text)."""


class Message:
    """One text-format message: its fields as (name, value) pairs, in file order.

    Caffe's schema makes most fields optional (the last occurrence wins) and some repeated
    (every occurrence counts): :meth:`get` and :meth:`get_all` give the two readings.
    """

    def __init__(self, fields: list[tuple[str, Any]] | None = None):
        self.fields: list[tuple[str, Any]] = list(fields or [])

    def get(self, name: str, default: Any = None) -> Any:
        """The last value of field ``name`` (proto2 optional-field semantics), or ``default``."""
        for key, value in reversed(self.fields):
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[Any]:
        """Every value of field ``name``, in order (a repeated field)."""
        return [value for key, value in self.fields if key == name]

    def message(self, name: str) -> "Message":
        """The sub-message ``name``, or an empty message when absent (all fields default)."""
        value = self.get(name)
        return value if isinstance(value, Message) else Message()

    def add(self, name: str, value: Any) -> None:
        self.fields.append((name, value))

    def set(self, name: str, value: Any) -> None:
        """Replace every occurrence of ``name`` by one ``value`` (appended when absent)."""
        index = next((i for i, (key, _) in enumerate(self.fields) if key == name), None)
        self.fields = [(k, v) for k, v in self.fields if k != name]
        self.fields.insert(len(self.fields) if index is None else index, (name, value))

    def remove(self, name: str) -> None:
        self.fields = [(k, v) for k, v in self.fields if k != name]

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self.fields == other.fields

    def __repr__(self) -> str:
        return f"Message({self.fields!r})"


# -- tokenizer ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
      (?P<space>\s+|\#[^\n]*)
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[fF]?)(?![\w.]))
    | (?P<ident>-?[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[{}<>\[\]:,;])
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "?": "?"}
_CLOSING = {"{": "}", "<": ">"}
_FLOAT_WORDS = {"inf": math.inf, "infinity": math.inf, "-inf": -math.inf,
                "-infinity": -math.inf, "nan": math.nan}
_BOOL_WORDS = {"true": True, "false": False, "True": True, "False": False}


class _Token:
    __slots__ = ("kind", "text", "line", "column")

    def __init__(self, kind: str, text: str, line: int, column: int):
        self.kind, self.text, self.line, self.column = kind, text, line, column


def _tokens(text: str, path: str | None) -> list[_Token]:
    out: list[_Token] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise PrototxtError(
                path, f"line {line}, column {pos - line_start + 1}: unexpected character {text[pos]!r}"
            )
        kind = match.lastgroup or ""
        if kind != "space":
            out.append(_Token(kind, match.group(), line, pos - line_start + 1))
        newlines = match.group().count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + match.group().rindex("\n") + 1
        pos = match.end()
    return out


def _unescape(quoted: str) -> str:
    body = quoted[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        octal = re.match(r"[0-7]{1,3}", body[i + 1:])
        hexa = re.match(r"x([0-9a-fA-F]{1,2})", body[i + 1:])
        if octal:
            out.append(chr(int(octal.group(), 8)))
            i += 1 + len(octal.group())
        elif hexa:
            out.append(chr(int(hexa.group(1), 16)))
            i += 1 + len(hexa.group())
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return "".join(out)


def _number(text: str) -> int | float:
    if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", text):
        return int(text, 16)
    body = text.rstrip("fF")  # C-style float suffix: 2.0f
    if re.fullmatch(r"[-+]?0[0-7]+", body):
        return int(body, 8)
    if re.fullmatch(r"[-+]?\d+", body):
        return int(body)
    return float(body)


def _string_value(parser: "_Parser", tok: _Token) -> str:
    parts = [_unescape(tok.text)]
    while (nxt := parser.take(kind="string")) is not None:  # "a" "b" is "ab"
        parts.append(_unescape(nxt.text))
    return "".join(parts)


def _number_value(parser: "_Parser", tok: _Token) -> int | float:
    return _number(tok.text)


def _ident_value(parser: "_Parser", tok: _Token) -> Any:
    lowered = tok.text.lower()
    if lowered in _FLOAT_WORDS:
        return _FLOAT_WORDS[lowered]
    if tok.text in _BOOL_WORDS:
        return _BOOL_WORDS[tok.text]
    if tok.text.startswith("-"):
        return None  # "-foo" is not a value
    return Identifier(tok.text)


# token kind -> reader of a scalar value (None: not a value)
_SCALAR_READERS = {"string": _string_value, "number": _number_value, "ident": _ident_value}


# -- parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Token], path: str | None):
        self.tokens = tokens
        self.pos = 0
        self.path = path

    def error(self, expected: str) -> PrototxtError:
        if self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            where, found = f"line {tok.line}, column {tok.column}", repr(tok.text)
        else:
            last = self.tokens[-1] if self.tokens else None
            where = f"line {last.line}" if last else "line 1"
            found = "the end of the file"
        return PrototxtError(self.path, f"{where}: expected {expected}, found {found}")

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, text: str | None = None, kind: str | None = None) -> _Token | None:
        tok = self.peek()
        if tok is None or (text is not None and tok.text != text) or (kind is not None and tok.kind != kind):
            return None
        self.pos += 1
        return tok

    def message(self, closing: str | None) -> Message:
        msg = Message()
        while True:
            tok = self.peek()
            if tok is None:
                if closing is not None:
                    raise self.error(f"'{closing}' to close a block")
                return msg
            if closing is not None and tok.text == closing:
                self.pos += 1
                return msg
            name = self.take(kind="ident")
            if name is None or name.text.startswith("-"):
                raise self.error("a field name")
            self.field(msg, name.text)
            if not self.take(","):
                self.take(";")

    def field(self, msg: Message, name: str) -> None:
        colon = self.take(":") is not None
        tok = self.peek()
        if tok is not None and tok.text in _CLOSING:
            self.pos += 1
            msg.add(name, self.message(_CLOSING[tok.text]))
            return
        if not colon:
            raise self.error(f"':' or '{{' after field name {name!r}")
        if self.take("["):
            while not self.take("]"):
                msg.add(name, self.list_item())
                if not self.take(","):
                    if not self.take("]"):
                        raise self.error("',' or ']' in a list")
                    break
            return
        msg.add(name, self.scalar(name))

    def list_item(self) -> Any:
        tok = self.peek()
        if tok is not None and tok.text in _CLOSING:
            self.pos += 1
            return self.message(_CLOSING[tok.text])
        return self.scalar("a list")

    def scalar(self, name: str) -> Any:
        tok = self.peek()
        reader = None if tok is None else _SCALAR_READERS.get(tok.kind)
        if tok is None or reader is None:
            raise self.error(f"a value for {name!r}")
        self.pos += 1
        value = reader(self, tok)
        if value is None:
            self.pos -= 1
            raise self.error(f"a value for {name!r}")
        return value


def parse(text: str, path: str | os.PathLike | None = None) -> Message:
    """Parse protobuf text format into a :class:`Message`. Raises :class:`PrototxtError`."""
    where = None if path is None else str(path)
    return _Parser(_tokens(text, where), where).message(closing=None)


def load(path: str | os.PathLike) -> Message:
    """Read and parse a ``.prototxt`` file; every failure is a :class:`PrototxtError` naming it."""
    path = Path(path)
    if not path.exists():
        raise PrototxtError(path, "no such file")
    if path.is_dir():
        raise PrototxtError(path, "is a folder, not a .prototxt file")
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise PrototxtError(
            path,
            "is a binary file, not a protobuf text .prototxt (is it the .caffemodel? the "
            "prototxt comes first)",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PrototxtError(path, f"is not UTF-8 text, so not a .prototxt ({exc.reason} at byte {exc.start})") from exc
    return parse(text, path)


# -- printer -----------------------------------------------------------------------------


def _format_scalar(value: Any) -> str:
    if isinstance(value, Identifier):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    raise TypeError(f"cannot write a {type(value).__name__} in protobuf text format")


def _format_lines(msg: Message, depth: int) -> Iterator[str]:
    pad = "  " * depth
    for name, value in msg.fields:
        if isinstance(value, Message):
            yield f"{pad}{name} {{"
            yield from _format_lines(value, depth + 1)
            yield f"{pad}}}"
        else:
            yield f"{pad}{name}: {_format_scalar(value)}"


def format_message(msg: Message) -> str:
    """Protobuf text format of ``msg`` (two-space indents, one field per line)."""
    return "".join(line + "\n" for line in _format_lines(msg, 0))
