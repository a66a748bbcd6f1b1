"""Strict, bounded CBOR reading for every CBOR document that arrives from outside (RFC 8949 subset).

Packets (envelope, header, sealed document), central's receipts and update-bundle headers are all
read here and nowhere else. What is accepted is the subset our own encoder (``cbor2`` with
``canonical=True``) produces for these formats, and nothing more:

- major types 0-5 (unsigned and negative integers up to 64 bits, byte and text strings, arrays,
  maps) and the simple values ``false``, ``true`` and ``null``;
- no tag of any kind (no bignums, no dates, no value sharing, no self-describe prefix), no
  indefinite-length item, no float, no ``undefined`` nor other simple value;
- canonical form only: every length and integer in its shortest encoding, map keys text strings
  in canonical order (encoded length first, then bytewise), so duplicate keys cannot occur;
- bounds checked *while* reading, before anything is allocated: total size, nesting depth, the
  number of items, the size of each string, and a declared length never larger than the bytes
  that are left.

Why a small reader and not ``cbor2`` with hooks: ``cbor2`` builds a tagged item before any hook
sees it, so value sharing (tags 28/29) turns a few hundred bytes into an exponential DAG that is
walked, hashed and compared by the time a ``tag_hook`` or the caller could refuse it; its C
decoder also allocates for a declared length before the bytes exist, and it has no item or depth
budget (a deep nesting ends in ``RecursionError``). Our formats use five major types and three
simple values, so a reader over the initial bytes is short enough to read in full and its cost is
provably linear: every item consumes at least one input byte, strings are sliced once, a map key
is compared once with its predecessor, and the number of items is capped. Decoding ``n`` bytes
therefore costs O(n) time and O(n + max_items) memory, whatever the bytes are.

Two ways to read:

- :func:`decode` reads one whole document of free shape (the sealed enrollment document);
- :class:`Reader` reads a fixed shape step by step (``array(4)``, ``key("v")``, ``uint()``...),
  which the envelope, header and receipt parsers use so that nothing but the exact layout of
  their format is ever decoded.

Every failure raises :class:`CborError` (with a dotted ``code``), never another exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packetformat.errors import PacketFormatError

Value = int | bool | str | bytes | list["Value"] | dict[str, "Value"] | None

_MAJOR_UINT, _MAJOR_NINT, _MAJOR_BYTES, _MAJOR_TEXT = 0, 1, 2, 3
_MAJOR_ARRAY, _MAJOR_MAP, _MAJOR_TAG, _MAJOR_SIMPLE = 4, 5, 6, 7
_FALSE, _TRUE, _NULL = 20, 21, 22
_MIN_FOR_WIDTH = {24: 24, 25: 1 << 8, 26: 1 << 16, 27: 1 << 32}
_NAMES = (
    "unsigned integer",
    "negative integer",
    "byte string",
    "text string",
    "array",
    "map",
    "tag",
    "simple value",
)


class CborError(PacketFormatError):
    """Bytes that are not the strict, bounded, canonical CBOR a format accepts.

    ``code`` is a dotted reason (``cbor.tag``, ``cbor.depth``...), ``offset`` the byte where
    reading stopped.
    """

    code = "cbor.invalid"

    def __init__(self, code: str, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})", code=code)
        self.offset = offset


@dataclass(frozen=True)
class Limits:
    """What one document may cost: total bytes, container depth, items, bytes per string."""

    max_bytes: int
    max_depth: int = 16
    max_items: int = 65536
    max_string: int | None = None  # defaults to max_bytes

    @property
    def string_limit(self) -> int:
        return self.max_bytes if self.max_string is None else self.max_string


def canonical_key_order(keys: Sequence[str]) -> tuple[str, ...]:
    """``keys`` in the order a canonical map carries them (encoded length, then bytewise)."""
    return tuple(sorted(keys, key=lambda k: (len(_text_head(k)), _text_head(k))))


def _text_head(key: str) -> bytes:
    raw = key.encode("utf-8")
    n = len(raw)
    if n < 24:
        head = bytes([0x60 | n])
    elif n < 1 << 8:
        head = bytes([0x78, n])
    elif n < 1 << 16:
        head = bytes([0x79]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x7A]) + n.to_bytes(4, "big")
    return head + raw


class Reader:
    """A cursor over one CBOR document; each call reads exactly one item of the expected kind."""

    def __init__(self, data: bytes, limits: Limits) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise CborError("cbor.type", "a CBOR document must be bytes", 0)
        self._data = bytes(data)
        self._limits = limits
        self._pos = 0
        self._items = 0
        if len(self._data) > limits.max_bytes:
            raise CborError(
                "cbor.size", f"the document is {len(self._data)} bytes, over {limits.max_bytes}", 0
            )
        if not self._data:
            raise CborError("cbor.truncated", "the document is empty", 0)

    @property
    def offset(self) -> int:
        return self._pos

    def _fail(self, code: str, message: str, at: int | None = None) -> CborError:
        return CborError(code, message, self._pos if at is None else at)

    def _head(self) -> tuple[int, int, int]:
        """(major type, additional info, argument) of the next item; refuses what we never accept."""
        data, pos = self._data, self._pos
        if pos >= len(data):
            raise self._fail("cbor.truncated", "the document ends in the middle of an item")
        self._items += 1
        if self._items > self._limits.max_items:
            raise self._fail("cbor.items", f"more than {self._limits.max_items} items")
        initial = data[pos]
        major, info = initial >> 5, initial & 0x1F
        if major == _MAJOR_TAG:
            raise self._fail("cbor.tag", "CBOR tags are not accepted")
        if info == 31:
            raise self._fail("cbor.indefinite", "indefinite-length items are not accepted")
        if major == _MAJOR_SIMPLE:
            if info in (_FALSE, _TRUE, _NULL):
                self._pos = pos + 1
                return major, info, info
            raise self._fail("cbor.type", "floats, undefined and other simple values are not accepted")
        if info < 24:
            self._pos = pos + 1
            return major, info, info
        if info > 27:
            raise self._fail("cbor.malformed", "reserved additional information")
        width = 1 << (info - 24)
        if pos + 1 + width > len(data):
            raise self._fail("cbor.truncated", "the document ends in the middle of an item")
        arg = int.from_bytes(data[pos + 1 : pos + 1 + width], "big")
        if arg < _MIN_FOR_WIDTH[info]:
            raise self._fail("cbor.non_canonical", "a length or integer is not in its shortest form")
        self._pos = pos + 1 + width
        return major, info, arg

    def _left(self) -> int:
        return len(self._data) - self._pos

    def _string(self, length: int, limit: int, at: int) -> bytes:
        if length > limit:
            raise self._fail("cbor.string", f"a string of {length} bytes is over the {limit}-byte limit", at)
        if length > self._left():
            raise self._fail("cbor.truncated", "a string runs past the end of the document", at)
        raw = self._data[self._pos : self._pos + length]
        self._pos += length
        return raw

    def _text(self, length: int, limit: int, at: int) -> str:
        raw = self._string(length, limit, at)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("cbor.utf8", "a text string is not valid UTF-8", at) from None

    def _expect(self, major: int, what: str) -> tuple[int, int]:
        at = self._pos
        got, _, arg = self._head()
        if got != major:
            raise self._fail("cbor.shape", f"{what}: expected a {_NAMES[major]}, found a {_NAMES[got]}", at)
        return arg, at

    # -- fixed-shape reading ----------------------------------------------------------------
    def array(self, length: int, what: str = "array") -> None:
        """An array of exactly ``length`` items (read them next)."""
        n, at = self._expect(_MAJOR_ARRAY, what)
        if n != length:
            raise self._fail("cbor.shape", f"{what}: expected {length} items, found {n}", at)

    def map(self, length: int, what: str = "map") -> None:
        """A map of exactly ``length`` entries (read them next with :meth:`key`)."""
        n, at = self._expect(_MAJOR_MAP, what)
        if n != length:
            raise self._fail("cbor.shape", f"{what}: expected {length} fields, found {n}", at)

    def key(self, name: str) -> None:
        """The next map key, which must be exactly ``name``."""
        n, at = self._expect(_MAJOR_TEXT, f"field {name}")
        if self._text(n, 1024, at) != name:
            raise self._fail("cbor.shape", f"expected field {name} here (wrong fields or order)", at)

    def uint(self, what: str, maximum: int = (1 << 64) - 1) -> int:
        """An unsigned integer no larger than ``maximum``."""
        value, at = self._expect(_MAJOR_UINT, what)
        if value > maximum:
            raise self._fail("cbor.range", f"{what}: {value} is over {maximum}", at)
        return value

    def text(self, what: str, max_len: int) -> str:
        """A text string of at most ``max_len`` UTF-8 bytes."""
        n, at = self._expect(_MAJOR_TEXT, what)
        return self._text(n, min(max_len, self._limits.string_limit), at)

    def bytes_(self, what: str, max_len: int) -> bytes:
        """A byte string of at most ``max_len`` bytes."""
        n, at = self._expect(_MAJOR_BYTES, what)
        return self._string(n, min(max_len, self._limits.string_limit), at)

    def finish(self) -> None:
        """Nothing may follow the item that was read."""
        if self._pos != len(self._data):
            raise self._fail("cbor.trailing", f"{self._left()} trailing bytes after the CBOR item")

    # -- free-shape reading -----------------------------------------------------------------
    def value(self) -> Value:
        """Any one accepted item, recursively, within the limits."""
        return self._value(0)

    def _value(self, depth: int) -> Value:
        at = self._pos
        major, info, arg = self._head()
        if major == _MAJOR_UINT:
            return arg
        if major == _MAJOR_NINT:
            return -1 - arg
        if major == _MAJOR_BYTES:
            return self._string(arg, self._limits.string_limit, at)
        if major == _MAJOR_TEXT:
            return self._text(arg, self._limits.string_limit, at)
        if major == _MAJOR_SIMPLE:
            return None if info == _NULL else info == _TRUE
        if depth >= self._limits.max_depth:
            raise self._fail("cbor.depth", f"nested deeper than {self._limits.max_depth}", at)
        # Every item takes at least one byte: a declared count larger than what is left is a lie.
        if (arg if major == _MAJOR_ARRAY else 2 * arg) > self._left():
            raise self._fail("cbor.truncated", "a container declares more items than the bytes left", at)
        if major == _MAJOR_ARRAY:
            return [self._value(depth + 1) for _ in range(arg)]
        result: dict[str, Value] = {}
        previous = b""
        for _ in range(arg):
            key_at = self._pos
            n, _ = self._expect(_MAJOR_TEXT, "map key")
            key = self._text(n, self._limits.string_limit, key_at)
            encoded = self._data[key_at : self._pos]
            if previous:
                order = (len(encoded), encoded) > (len(previous), previous)
                if encoded == previous:
                    raise self._fail("cbor.duplicate_key", "a map has the same key twice", key_at)
                if not order:
                    raise self._fail("cbor.non_canonical", "map keys are not in canonical order", key_at)
            previous = encoded
            result[key] = self._value(depth + 1)
        return result


def decode(data: bytes, limits: Limits) -> Value:
    """The one item that spans ``data`` exactly; :class:`CborError` on anything else."""
    reader = Reader(data, limits)
    value = reader.value()
    reader.finish()
    return value
