"""Framing: a stored object's bytes → units (JSON Lines lines, or the elements of one JSON document).

Shared by the ingestion stage (raw objects) and the processing stage (``records/`` objects), so it
imports neither jsonschema-rs nor msgspec: the processing stage's cold start loads only what it uses.
Streaming: ``payload_reader`` decompresses gzip as it reads, ``iter_lines`` / ``iter_line_blocks`` (and,
for ``records/``, ``records_line_blocks``) cut lines, ``iter_document`` streams a ``.json`` array
element by element (``_ArrayScanner``); a unit over the limit is an ``Oversize`` (its first
``PREFIX_BYTES`` and its size), never held whole. How awkward input is framed (byte-order marks, blank
lines, empty objects, gzip faults) is in ``handlers.ingestion_core``'s docstring; a fault that stops an
object being read to its end raises ``UnreadableObjectError``.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from handlers.errors import UnreadableObjectError
from handlers.events import is_gzip

Read = Callable[[int], bytes]
# A parser's split of array content (the text between "[" and "]") into its elements' exact spans, or
# None if the content is not a valid sequence of JSON values (``_ArrayScanner``'s fast path).
Elements = Callable[[bytes], list[bytes] | None]

CHUNK_BYTES = 1 << 20
PREFIX_BYTES = 1024
UTF8_BOM = b"\xef\xbb\xbf"
# UTF-16 LE, UTF-16 BE, UTF-32 BE; UTF-32 LE (FF FE 00 00) starts with the UTF-16 LE mark
_OTHER_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
JSON_WHITESPACE = b" \t\r\n"  # JSON's whitespace; bytes.isspace also takes \v and \f


@dataclass(frozen=True)
class Oversize:
    """A unit longer than the limit: its first bytes and its full size."""

    prefix: bytes  # the first PREFIX_BYTES bytes
    size: int  # the unit's length in bytes


@dataclass(frozen=True)
class InputFormat:
    """How a raw object is to be read, from its key."""

    compressed: bool  # gzip-compressed (``.gz``)
    document: bool  # one JSON document (``.json``) rather than JSON Lines


def detect_format(key: str, suffixes: tuple[str, ...]) -> InputFormat:
    """The format implied by ``key``; raises UnreadableObjectError for a suffix not configured."""
    lowered = key.lower()
    if not any(lowered.endswith(suffix.lower()) for suffix in suffixes):
        raise UnreadableObjectError("unsupported_suffix", f"key does not end in one of {', '.join(suffixes)}")
    compressed = is_gzip(key)
    inner = lowered[:-3] if compressed else lowered
    return InputFormat(compressed=compressed, document=inner.endswith(".json"))


def payload_reader(read: Read, compressed: bool) -> Read:
    """``read`` over the decompressed payload; decompression faults become UnreadableObjectError."""
    if not compressed:
        return read

    class _Raw:
        def read(self, size: int = -1) -> bytes:
            return read(size if size >= 0 else CHUNK_BYTES)

    stream = gzip.GzipFile(fileobj=_Raw(), mode="rb")  # type: ignore[arg-type]

    def read_gzip(size: int) -> bytes:
        try:
            return stream.read(size)
        except gzip.BadGzipFile as exc:  # a bad magic number, or a CRC / length mismatch at the end
            reason = "not_gzip" if "Not a gzipped file" in str(exc) else "corrupt_gzip"
            raise UnreadableObjectError(reason, str(exc)) from exc
        except EOFError as exc:
            raise UnreadableObjectError("truncated_gzip", str(exc)) from exc
        except zlib.error as exc:
            raise UnreadableObjectError("corrupt_gzip", str(exc)) from exc

    return read_gzip


def _checked(unit: bytes, max_bytes: int) -> bytes | Oversize:
    return unit if len(unit) <= max_bytes else Oversize(unit[:PREFIX_BYTES], len(unit))


def iter_lines(read: Read, max_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes | Oversize]:
    """The payload's lines (without ``\\n``); a line longer than ``max_bytes`` is skipped as Oversize."""
    for lines, _ in iter_line_blocks(read, max_bytes, chunk_bytes):
        yield from lines


def iter_line_blocks(
    read: Read, max_bytes: int, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[tuple[list[bytes | Oversize], bool]]:
    """``iter_lines`` a list at a time: the lines each chunk read completes (never an empty list),
    and whether they are all bytes (no Oversize among them)."""
    carry = b""
    oversize = 0  # bytes of an over-long line consumed so far; 0 when not inside one
    prefix = b""
    while chunk := read(chunk_bytes):
        pieces: list[bytes | Oversize] = chunk.split(b"\n")  # type: ignore[assignment]
        head: bytes = pieces[0]  # type: ignore[assignment]
        if oversize:
            if len(prefix) < PREFIX_BYTES:
                prefix += head[: PREFIX_BYTES - len(prefix)]
            if len(pieces) == 1:
                oversize += len(head)
                continue
            pieces[0] = Oversize(prefix, oversize + len(head))
            oversize, plain = 0, False
        else:
            head = carry + head if carry else head
            if len(pieces) == 1:
                carry = head
                if len(carry) > max_bytes:
                    oversize, prefix, carry = len(carry), carry[:PREFIX_BYTES], b""
                continue
            pieces[0] = _checked(head, max_bytes)
            plain = len(head) <= max_bytes
        carry = pieces.pop()  # type: ignore[assignment]
        if len(carry) > max_bytes:
            oversize, prefix, carry = len(carry), carry[:PREFIX_BYTES], b""
        if len(pieces) > 1 and max(map(len, pieces[1:])) > max_bytes:  # type: ignore[arg-type]
            pieces[1:] = [_checked(line, max_bytes) for line in pieces[1:]]  # type: ignore[arg-type]
            plain = False
        yield pieces, plain
    if oversize:
        yield [Oversize(prefix, oversize)], False
    elif carry:
        yield [_checked(carry, max_bytes)], len(carry) <= max_bytes


_STRUCTURAL = re.compile(rb'[\\"\[\]{},]')
_BACKSLASH, _QUOTE, _COMMA = ord("\\"), ord('"'), ord(",")
_OPENERS, _CLOSERS = (ord("["), ord("{")), (ord("]"), ord("}"))
_FAST_COMMAS, _FAST_TRIES = 4096, 3  # commas looked at, and parses tried, per chunk on the fast path


class _ArrayScanner:
    """Splits a JSON array into its top-level elements' bytes without parsing them.

    The reference is ``_scan``, a state machine stepping over structural characters. With a parser
    (``elements``), the text from the element in progress to a comma between objects goes faster if
    the parser finds it valid (it gives the spans): valid JSON splits the same in both, and that comma
    is then one ``_scan`` takes as a boundary. Any other text goes through ``_scan`` (property-tested).
    """

    def __init__(self, max_bytes: int, elements: Elements | None = None) -> None:
        self.max_bytes = max_bytes
        self.split = elements
        self.depth = 0
        self.in_string = False
        self.skip_next = False  # a backslash ended the previous chunk inside a string
        self.finished = False
        self.elements = 0
        self.pending = bytearray()  # the current element's bytes from earlier chunks
        self.oversize = 0
        self.prefix = b""

    def _emit(self, tail: bytes) -> bytes | Oversize | None:
        if self.oversize:
            self._extend_prefix(tail)
            unit: bytes | Oversize = Oversize(self.prefix, self.oversize + len(tail))
            self.oversize = 0
        else:
            unit = _checked(bytes(self.pending) + tail if self.pending else tail, self.max_bytes)
        self.pending.clear()
        return unit

    def _extend_prefix(self, tail: bytes) -> None:
        if len(self.prefix) < PREFIX_BYTES:
            self.prefix += tail[: PREFIX_BYTES - len(self.prefix)]

    def _keep(self, tail: bytes) -> None:
        if self.oversize:
            self._extend_prefix(tail)
            self.oversize += len(tail)
            return
        self.pending += tail
        if len(self.pending) > self.max_bytes:
            self.oversize, self.prefix = len(self.pending), bytes(self.pending[:PREFIX_BYTES])
            self.pending.clear()

    def feed(self, chunk: bytes) -> Iterator[bytes | Oversize | list[bytes]]:
        """The units ``chunk`` completes; those of the fast path as one list (each unit holds a JSON
        value, none is over the limit)."""
        if self.finished:
            if chunk.strip(JSON_WHITESPACE):
                raise UnreadableObjectError("invalid_json", "data after the top-level array")
            return
        if self.depth == 0 and chunk[:1] == b"[":
            self.depth, chunk = 1, chunk[1:]
        if self.split is not None and self.depth and not self.oversize:
            # pending starts where the element in progress starts, at depth 1 outside any string
            text = bytes(self.pending) + chunk if self.pending else chunk
            cut, units = self._fast(text)
            if units:
                self.elements += len(units)
                if Oversize in set(map(type, units)):
                    yield from units
                else:
                    yield units  # type: ignore[misc]
                self.pending.clear()
                self.depth, self.in_string, self.skip_next = 1, False, False
                chunk = text[cut + 1 :]
        yield from self._scan(chunk)

    def _fast(self, text: bytes) -> tuple[int, list[bytes | Oversize]]:
        """The elements of ``text`` before its last comma between objects, and that comma's index."""
        assert self.split is not None
        cut, tries = len(text), 0
        # From the end: the last unfinished element may hold commas, even between nested objects;
        # a text with no such comma near its end (elements that are not objects) is left to _scan.
        for _ in range(_FAST_COMMAS):
            cut = text.rfind(b",", 0, cut)
            if cut <= 0 or tries == _FAST_TRIES:
                break
            if not _between_objects(text, cut):
                continue
            tries += 1
            units = self.split(text[:cut])
            if units:
                if max(map(len, units)) > self.max_bytes:
                    return cut, [_checked(unit, self.max_bytes) for unit in units]
                return cut, units  # type: ignore[return-value]
        return -1, []

    def _scan(self, chunk: bytes) -> Iterator[bytes | Oversize]:
        pos = 0
        if self.skip_next:
            pos, self.skip_next = 1, False
        start = 0 if self.depth else None  # a skipped escaped byte still belongs to the element
        search = _STRUCTURAL.search
        while (match := search(chunk, pos)) is not None:
            char = chunk[match.start()]
            pos = match.end()
            if self.in_string:
                if char == _BACKSLASH:
                    if pos >= len(chunk):
                        self.skip_next = True
                    pos += 1
                elif char == _QUOTE:
                    self.in_string = False
                continue
            if char == _QUOTE:
                self.in_string = True
            elif self.depth == 0:
                if char != ord("["):
                    raise UnreadableObjectError("invalid_json", "a .json object holds an object or an array")
                self.depth, start = 1, pos
            elif char in _OPENERS:
                self.depth += 1
            elif char in _CLOSERS:
                if self.depth > 1:
                    self.depth -= 1
                elif char == ord("]"):
                    tail = chunk[start : match.start()]
                    if self.elements or self.pending or self.oversize or tail.strip(JSON_WHITESPACE):
                        self.elements += 1
                        yield self._emit(tail)  # type: ignore[misc]
                    self.depth, self.finished = 0, True
                    if chunk[pos:].strip(JSON_WHITESPACE):
                        raise UnreadableObjectError("invalid_json", "data after the top-level array")
                    return
                # a stray '}' at depth 1 stays inside the element, whose parse then fails
            elif char == _COMMA and self.depth == 1:
                self.elements += 1
                yield self._emit(chunk[start : match.start()])  # type: ignore[misc]
                start = pos
        if self.depth and start is not None:
            self._keep(chunk[start:])

    def close(self) -> None:
        if not self.finished:
            raise UnreadableObjectError("invalid_json", "the JSON array is not closed (truncated document)")


def _between_objects(text: bytes, comma: int) -> bool:
    before = text[max(0, comma - 64) : comma].rstrip(JSON_WHITESPACE)
    return before.endswith(b"}") and text[comma + 1 : comma + 65].lstrip(JSON_WHITESPACE)[:1] == b"{"


def iter_document(
    read: Read, max_bytes: int, chunk_bytes: int = CHUNK_BYTES, elements: Elements | None = None
) -> Iterator[bytes | Oversize]:
    """A ``.json`` payload's units: each element of a top-level array, else the whole document.
    ``elements``: a parser that speeds the array's framing up (``_ArrayScanner``)."""
    for unit in iter_document_blocks(read, max_bytes, chunk_bytes, elements):
        yield from unit if type(unit) is list else (unit,)  # type: ignore[misc]


def iter_document_blocks(
    read: Read, max_bytes: int, chunk_bytes: int = CHUNK_BYTES, elements: Elements | None = None
) -> Iterator[bytes | Oversize | list[bytes]]:
    """``iter_document``, with runs of units that each hold a JSON value and are within the limit
    (the array scanner's fast path) as one list."""
    first = read(chunk_bytes)
    stripped = first.lstrip(JSON_WHITESPACE)
    while not stripped and first:
        first = read(chunk_bytes)
        stripped = first.lstrip(JSON_WHITESPACE)
    if stripped.startswith(b"["):
        scanner = _ArrayScanner(max_bytes, elements)
        chunk = stripped
        while chunk:
            yield from scanner.feed(chunk)
            chunk = read(chunk_bytes)
        scanner.close()
        return
    if not stripped:
        return
    if not stripped.startswith(b"{"):
        # A scalar or garbage: no record can come out of it, so the object as a whole is unreadable.
        raise UnreadableObjectError(
            "invalid_json", f"a .json object holds an object or an array, not {stripped[:16]!r}..."
        )
    whole = bytearray(stripped)
    size = len(whole)
    while size <= max_bytes and (chunk := read(chunk_bytes)):
        whole += chunk
        size += len(chunk)
    if size <= max_bytes:
        yield bytes(whole)
        return
    prefix = bytes(whole[:PREFIX_BYTES])
    del whole
    while chunk := read(chunk_bytes):
        size += len(chunk)
    yield Oversize(prefix, size)


def strip_bom(read: Read) -> Read:
    """``read`` without a leading UTF-8 BOM; raises for an empty payload or a UTF-16/32 BOM."""
    first = read(CHUNK_BYTES)
    if not first:
        raise UnreadableObjectError("empty_object", "the object holds no bytes")
    while len(first) < len(_OTHER_BOMS[-1]) and (more := read(CHUNK_BYTES)):  # a read may return less
        first += more
    if first.startswith(_OTHER_BOMS):
        raise UnreadableObjectError("unsupported_encoding", "UTF-16/32 byte-order mark; use UTF-8")
    if first.startswith(UTF8_BOM):
        first = first[len(UTF8_BOM) :]
    pending = [first]

    def read_rest(size: int) -> bytes:
        if pending:
            return pending.pop()
        return read(size)

    return read_rest


def records_line_blocks(read: Read, line_limit: int) -> Iterator[bytes | int]:
    """The processing stage's framing of a ``records/`` payload: blocks of complete lines (each ending
    in a newline; a last line without one gets one), and for a line longer than ``line_limit`` its size
    instead (an ``int``), in order."""
    chunk_bytes = max(1, min(CHUNK_BYTES, line_limit))  # so no line inside a chunk passes the limit
    pending: list[bytes] = []  # the start of a line read so far
    pending_size = 0
    oversize = 0  # bytes of an over-long line consumed so far; 0 when not inside one
    while chunk := read(chunk_bytes):
        first = chunk.find(b"\n")
        if first < 0:
            if oversize:
                oversize += len(chunk)
            else:
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size > line_limit:
                    oversize, pending, pending_size = pending_size, [], 0
            continue
        last = chunk.rfind(b"\n")
        if oversize or pending_size + first > line_limit:
            yield oversize + pending_size + first
            oversize, pending, pending_size = 0, [], 0
            block = chunk[first + 1 : last + 1]
        elif pending:
            block = b"".join(pending) + chunk[: last + 1]
            pending, pending_size = [], 0
        else:
            block = chunk[: last + 1]
        if block:
            yield block
        rest = chunk[last + 1 :]
        if len(rest) > line_limit:
            oversize = len(rest)
        elif rest:
            pending, pending_size = [rest], len(rest)
    if oversize:
        yield oversize
    elif pending:
        yield b"".join(pending) + b"\n"
