"""Ingestion core: a raw object's bytes → validated, normalised records and quarantine entries.

Pure and streaming: the caller passes a ``read(n)`` function over the (possibly gzip) payload and a
``Sink`` that receives output lines; nothing here touches boto3, the environment or the clock, and
memory is bounded by ``max_record_bytes`` plus the lines of one read chunk plus the lines waiting for
a batch (flushed at ``BATCH_BYTES``), parsed ``BATCH_UNITS`` at a time, whatever the object's size.

Decisions about awkward input, each deliberate:

* JSON is parsed and written with msgspec, chosen by measurement over orjson and the standard
  library (docs/benchmarks.md); JSON Lines are parsed ``BATCH_UNITS`` lines per call.
* Units. JSON Lines (``.jsonl``, ``.ndjson``, and a bare ``.gz``) are read line by line; a ``.json``
  object is one document: an array is streamed element by element, an object is one unit, and
  anything else (a scalar such as ``42`` or ``"x"``) makes the object unreadable (``invalid_json``). The
  quarantine entry's ``line`` is the line number, or the 1-based array element index.
* A UTF-8 byte-order mark at the start of the object is dropped (Windows tools write one); a UTF-16
  or UTF-32 BOM (``FF FE``, ``FE FF``, ``00 00 FE FF``; UTF-32 LE starts with ``FF FE``) makes the
  object unreadable (``unsupported_encoding``). A BOM anywhere else is invalid JSON.
* Blank lines (empty, or only JSON whitespace: space, tab, CR) are counted apart and written nowhere.
  A line holding other whitespace (``\\v``, ``\\f``) is not JSON: ``invalid_json``.
* A unit longer than ``max_record_bytes`` is quarantined unparsed (``record_too_large``) with its first
  1 KiB and its size; the whole unit is in the versioned raw object the entry names.
* A unit that is not UTF-8 is ``invalid_utf8`` and its bytes are kept as base64.
* Numbers are exact, never floats: a metric goes from the file to the database as the decimal its
  literal states. An integer stays an int (``-0`` is written ``0``); a number with a fraction or an
  exponent is read as a ``Decimal`` and written back as the same decimal in Python's notation
  (``1.50`` stays ``1.50``, ``9E15`` is written ``9E+15``, ``1e-6`` is written ``0.000001``, and one
  whose exponent comes out as 0 as the integer it is: ``1.5e1`` is written ``15``). So a number beyond
  float range (``1e400``) is kept; the processing stage enforces the metric range. Not JSON here
  (``invalid_json``): NaN, Infinity, an integer written in more than 4 300 characters (CPython's limit
  on reading an int from text; msgspec counts the sign), an exponent no decimal can hold (above
  10**999999999999999999 or below 10**-1999999999999999997), trailing garbage, and nesting deeper than
  the parser's recursion limit (Python's: about 930-990 levels on 3.11, depending on the caller's
  stack).
* Validation uses jsonschema-rs (Rust; any draft up to 2020-12): 4.6-7.5x faster per record than
  fastjsonschema on the default schema (docs/benchmarks.md). Its first error is the ``detail``, except
  for an error in a value nested 256 or more levels deep, which jsonschema-rs 0.61 cannot describe (the
  verdict is the same). It compares Decimals exactly, at any exponent (``minimum``, ``multipleOf``,
  ``integer``: tests/handlers).
* Duplicate keys are ``duplicate_key``: JSON parsers silently keep the last value, so a record with
  two ``value`` fields would be aggregated from half its data. Checked exactly, but only when cheap
  counts over a whole batch (quotes in the input and in the re-encoded records, or key-like tokens
  against parsed keys) leave room for a duplicate (``_no_duplicate_keys``).
* A unit that is not an object is ``not_an_object``; the schema's verdict is ``schema_violation``
  (numbers given as strings fail here: the schema asks for numbers); a timestamp that is not an
  RFC 3339 date-time with an offset, or an epoch out of range, or impossible (Feb 30, hour 24, a leap
  second) is ``invalid_timestamp``. Epoch numbers with ``abs(n) >= 1e11`` are milliseconds (1e11
  seconds is the year 5138), smaller ones seconds, of any size or precision: they are converted in
  integer arithmetic, exactly, over all of years 1-9999.
* Normalised timestamps are RFC 3339 UTC: ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``: sub-microsecond digits
  are truncated, that is the instant is floored to its microsecond (an epoch of ``-0.0000001`` is
  ``1969-12-31T23:59:59.999999Z``). ``datetime`` is the reference; common shapes are assembled from
  parts it has already converted (``normalise_timestamp``), which property tests hold equal to it.
  Every valid record is written re-serialised compactly (msgspec, keys in their input order), so an
  output line has one form whatever the spacing or escapes of its input.
* Output size: a valid unit of ``n`` bytes is written as at most ``output_bound(n)`` = ``9n // 5 + 28``
  bytes, which is how the largest ``MAX_RECORD_BYTES`` is derived from the processing stage's line
  limit (``handlers.config.MAX_RECORD_BYTES_LIMIT``). Why: re-encoding drops whitespace and never
  lengthens a string (msgspec escapes only what JSON requires to be escaped, which the input had to
  escape too), an integer or ``true``/``false``/``null``. A decimal literal of ``k`` bytes is written
  in at most ``(9k + 4) / 5``: ``1e-6`` → ``0.000001`` (4 → 8) is the worst, as Python writes ``0.``
  and up to five zeros before the digits, or in exponent form adds a ``+`` and a point and lengthens
  the exponent by at most the digits of the literal's own length. So a decimal and the ``,``, ``[`` or
  ``:`` it follows grow by at most 9/5 together. The
  timestamp is at most 29 bytes where its input took at least one: ``9/5 (n - 1) + 29 < 9n/5 + 28``.
  tests/handlers/test_handlers_hostile_records.py checks every literal of up to 6 bytes and
  adversarial records.
* A file that cannot be read to its end raises ``UnreadableObjectError``: the caller discards partial
  output and writes one quarantine entry naming the raw object, so a file is either processed whole or
  kept whole. Its reasons: ``unsupported_suffix``, ``empty_object``, ``unsupported_encoding``,
  ``not_gzip``, ``truncated_gzip``, ``corrupt_gzip``, and ``invalid_json`` for a ``.json`` document that
  is not an object or an array, has data after its array, or whose array is not closed.
"""

from __future__ import annotations

import base64
import gzip
import operator
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import MAX_EMAX, MIN_EMIN, ROUND_FLOOR, Context, Decimal, InvalidOperation
from itertools import repeat
from typing import Any, Protocol

import jsonschema_rs
import msgspec

from handlers.errors import ConfigError, UnreadableObjectError
from handlers.metrics import Counts

Read = Callable[[int], bytes]

CHUNK_BYTES = 1 << 20
PREFIX_BYTES = 1024
UTF8_BOM = b"\xef\xbb\xbf"
# UTF-16 LE, UTF-16 BE, UTF-32 BE; UTF-32 LE (FF FE 00 00) starts with the UTF-16 LE mark
_OTHER_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_WHITESPACE = b" \t\r\n"  # JSON's whitespace; bytes.isspace also takes \v and \f


@dataclass(frozen=True)
class Oversize:
    """A unit longer than the limit: its first bytes and its full size."""

    prefix: bytes  # the first PREFIX_BYTES bytes
    size: int  # the unit's length in bytes


@dataclass(frozen=True)
class Rejection:
    """Why a unit was quarantined."""

    reason: str  # machine-readable code (see the module docstring)
    detail: str  # human-readable explanation


@dataclass(frozen=True)
class InputFormat:
    """How a raw object is to be read, from its key."""

    compressed: bool  # gzip-compressed (``.gz``)
    document: bool  # one JSON document (``.json``) rather than JSON Lines


class Sink(Protocol):
    """Where the core puts its output: lines without a newline, or blocks of newline-terminated lines."""

    def valid(self, line: bytes) -> None: ...

    def valid_lines(self, block: bytes, count: int) -> None:
        """``count`` valid lines at once, each ending in a newline."""

    def quarantine(self, line: bytes) -> None: ...


def output_bound(unit_bytes: int) -> int:
    """The most bytes a valid unit of ``unit_bytes`` bytes is written as (module docstring, "Output size")."""
    return unit_bytes * 9 // 5 + 28


def detect_format(key: str, suffixes: tuple[str, ...]) -> InputFormat:
    """The format implied by ``key``; raises UnreadableObjectError for a suffix not configured."""
    lowered = key.lower()
    if not any(lowered.endswith(suffix.lower()) for suffix in suffixes):
        raise UnreadableObjectError("unsupported_suffix", f"key does not end in one of {', '.join(suffixes)}")
    compressed = lowered.endswith(".gz")
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


class _ArrayScanner:
    """Splits a JSON array into its top-level elements' bytes without parsing them."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
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

    def feed(self, chunk: bytes) -> Iterator[bytes | Oversize]:
        if self.finished:
            if chunk.strip(_WHITESPACE):
                raise UnreadableObjectError("invalid_json", "data after the top-level array")
            return
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
                    if self.elements or self.pending or self.oversize or tail.strip(_WHITESPACE):
                        self.elements += 1
                        yield self._emit(tail)  # type: ignore[misc]
                    self.depth, self.finished = 0, True
                    if chunk[pos:].strip(_WHITESPACE):
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


def iter_document(read: Read, max_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes | Oversize]:
    """A ``.json`` payload's units: each element of a top-level array, else the whole document."""
    first = read(chunk_bytes)
    stripped = first.lstrip(_WHITESPACE)
    while not stripped and first:
        first = read(chunk_bytes)
        stripped = first.lstrip(_WHITESPACE)
    if stripped.startswith(b"["):
        scanner = _ArrayScanner(max_bytes)
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


def _strip_bom(read: Read) -> Read:
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


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_MINUTE_SECONDS = [f":{m:02d}:{s:02d}" for m in range(60) for s in range(60)]  # by second of the hour
_VALID_MINUTE_SECONDS = frozenset(_MINUTE_SECONDS)
_VALID_SECONDS = frozenset(f":{s:02d}" for s in range(60))
_CLOCKS_Z = [f"{clock}Z" for clock in _MINUTE_SECONDS]
_MILLIS_Z = ["Z", *(f".{n:03d}000Z" for n in range(1, 1000))]  # datetime writes no zero fraction
_MILLIS_INT = 10**11  # an epoch with abs(n) >= 1e11 is in milliseconds (1e11 s is the year 5138)
_EPOCH = datetime(1970, 1, 1)
_MIN_MICROS = (datetime.min - _EPOCH) // timedelta(microseconds=1)
_MAX_MICROS = (datetime.max - _EPOCH) // timedelta(microseconds=1)
_MAX_MILLIS = _MAX_MICROS // 1000
_MICRO, _MILLI = Decimal("1e-6"), Decimal("1e-3")
# Enough digits for any epoch in range at a microsecond (22), so quantize and scaleb never round.
_EXACT = Context(prec=40, Emax=MAX_EMAX, Emin=MIN_EMIN)
# What the fast paths have learnt from the reference conversion. Keys are coarse parts of a timestamp
# (an hour of a date, a fraction, a minute at an offset) that recur in any real file whether or not
# whole values do; a cache is emptied when it reaches _CACHE_LIMIT entries.
_CACHE_LIMIT = 8192
_HOURS: dict[str, str] = {}  # a valid "YYYY-MM-DD?HH" as written -> "YYYY-MM-DDTHH"
_Z_TAILS: dict[str, str] = {}  # "[.digits]Z" after the seconds -> "[.ffffff]Z"
_OFFSET_TAILS: dict[str, tuple[str, str]] = {}  # "[.digits]+hh:mm" -> ("[.ffffff]", "+hh:mm")
_UTC_MINUTES: dict[str, str] = {}  # "YYYY-MM-DD?HH:MM" + "+hh:mm" -> UTC "YYYY-MM-DDTHH:MM"
_EPOCH_HOURS: dict[int, str] = {}  # hours since 1970-01-01T00Z -> "YYYY-MM-DDTHH"


def normalise_timestamp(value: object) -> str:
    """RFC 3339 UTC ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``; raises ValueError for anything else.

    ``_normalise_with_datetime`` is the reference. A string made only of parts the reference has
    already accepted, or an integer epoch whose hour it has converted, is assembled from those parts
    with no parsing; the two agree on every input (tests/handlers).
    """
    if type(value) is str:
        rest = value[19:]
        tail = _Z_TAILS.get(rest)
        if tail is not None:
            head = _HOURS.get(value[:13])
            if head is not None and (clock := value[13:19]) in _VALID_MINUTE_SECONDS:
                return f"{head}{clock}{tail}"
        elif (offset_tail := _OFFSET_TAILS.get(rest)) is not None:
            # A learnt local minute at this offset vouches for its date, hour and minute.
            utc = _UTC_MINUTES.get(value[:16] + offset_tail[1])
            if utc is not None and (second := value[16:19]) in _VALID_SECONDS:
                return f"{utc}{second}{offset_tail[0]}Z"
        return _learn(value)
    # Integer comparisons and floor divisions: each avoids a float conversion or a tuple per call.
    if type(value) is int and -_MILLIS_INT < value <= _MAX_MILLIS:
        if value < _MILLIS_INT:
            head = _EPOCH_HOURS.get(value // 3600) or _epoch_hour(value // 3600)
            if head:
                return head + _CLOCKS_Z[value % 3600]
        else:
            seconds = value // 1000
            head = _EPOCH_HOURS.get(seconds // 3600) or _epoch_hour(seconds // 3600)
            if head:
                return f"{head}{_MINUTE_SECONDS[seconds % 3600]}{_MILLIS_Z[value % 1000]}"
    return _normalise_with_datetime(value)


def _learn(value: str) -> str:
    """The reference conversion of a string, remembering its parts for ``normalise_timestamp``."""
    result = _normalise_with_datetime(value)  # raises for anything but an RFC 3339 date-time
    # The pattern fixes the positions: date [:10], separator [10], clock [11:19], then the rest.
    _remember(_HOURS, value[:13], f"{value[:10]}T{value[11:13]}")
    if value[-1] in "Zz":
        _remember(_Z_TAILS, value[19:], result[19:])
    else:
        offset = value[-6:]
        _remember(_OFFSET_TAILS, value[19:], (result[19:-1], offset))
        _remember(_UTC_MINUTES, value[:16] + offset, result[:16])
    return result


def _epoch_hour(hour: int) -> str:
    """``YYYY-MM-DDTHH`` of an hour since the epoch; empty when datetime cannot represent it."""
    try:
        head = datetime.fromtimestamp(hour * 3600, UTC).isoformat()[:13]
    except (OverflowError, OSError, ValueError):
        return ""
    _remember(_EPOCH_HOURS, hour, head)
    return head


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def _normalise_with_datetime(value: object) -> str:
    """The reference conversion, through ``datetime``."""
    if isinstance(value, bool):
        raise ValueError("timestamp must be a string or a number, not a boolean")
    if isinstance(value, str):
        match = _RFC3339.fullmatch(value)
        if match is None:
            raise ValueError(f"timestamp is not an RFC 3339 date-time with an offset: {value[:64]!r}")
        date, clock, fraction, offset = match.groups()
        fraction = f".{(fraction + '00000')[:6]}" if fraction else ""
        if offset in ("Z", "z"):
            try:
                utc = datetime.fromisoformat(f"{date}T{clock}{fraction}")
            except ValueError as exc:
                raise ValueError(f"impossible timestamp {value[:64]!r}: {exc}") from exc
            return utc.isoformat() + "Z"
        try:
            local = datetime.fromisoformat(f"{date}T{clock}{fraction}{offset}")
            parsed = local.astimezone(UTC)
        except (ValueError, OverflowError) as exc:  # Feb 30, hour 24, leap second, year 0 in UTC
            raise ValueError(f"impossible timestamp {value[:64]!r}: {exc}") from exc
        return parsed.isoformat()[:-6] + "Z"
    if isinstance(value, int | Decimal | float):
        micros = _epoch_micros(value)
        if micros is None or not _MIN_MICROS <= micros <= _MAX_MICROS:
            raise ValueError(f"epoch timestamp out of range: {_shown(value)}")
        return (_EPOCH + timedelta(microseconds=micros)).isoformat() + "Z"
    raise ValueError(f"timestamp must be a string or a number, got {type(value).__name__}")


def _epoch_micros(value: int | Decimal | float) -> int | None:
    """Microseconds since the epoch, floored (sub-microsecond digits dropped), in integer arithmetic.

    None for a number that cannot be in range. A float is taken at its exact binary value.
    """
    if isinstance(value, int):
        return value * (1000 if value >= _MILLIS_INT or value <= -_MILLIS_INT else 1_000_000)
    number = Decimal(value) if isinstance(value, float) else value
    # adjusted() is the power of ten of the leading digit: >= 1e16 is out of range in seconds and in
    # milliseconds, and checking it first keeps 1E+999999999 from being expanded.
    if not number.is_finite() or (number.adjusted() > 15 and not number.is_zero()):
        return None
    # copy_abs, not abs(): abs() rounds to the context's 28 digits, which can carry 99999999999.99...
    # (seconds) over the milliseconds threshold.
    step, digits = (_MILLI, 3) if number.copy_abs() >= _MILLIS_INT else (_MICRO, 6)
    floored = number.quantize(step, rounding=ROUND_FLOOR, context=_EXACT)
    return int(floored.scaleb(digits, context=_EXACT))


def _shown(value: object) -> str:
    """``value`` for an error message, at most about 64 characters."""
    if isinstance(value, int) and value.bit_length() > 200:  # str() refuses ints of over 4300 digits
        return f"an integer of {value.bit_length()} bits"
    text = str(value) if isinstance(value, int | Decimal) else repr(value)
    return text if len(text) <= 64 else text[:61] + "..."


_KEY_TOKEN = re.compile(rb'"[ \t\r\n]*:')


def _key_tokens(unit: bytes) -> int:
    """An upper bound of the number of object keys written in ``unit``."""
    if b'" ' in unit or b'"\t' in unit or b'"\r' in unit or b'"\n' in unit:
        return len(_KEY_TOKEN.findall(unit))
    return unit.count(b'":')


def _parsed_keys(record: dict[str, Any]) -> int:
    """The number of keys in ``record`` and every object inside it."""
    total = len(record)
    for value in record.values():  # the common shape, objects of scalars one level down, without a stack
        kind = type(value)
        if kind is dict:
            total += len(value)
            for inner in value.values():
                if type(inner) in _CONTAINERS:
                    return _walk_keys(record)
        elif kind is list:
            return _walk_keys(record)
    return total


_CONTAINERS = (dict, list)


def _walk_keys(value: object) -> int:
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        values = item.values() if type(item) is dict else item
        if type(item) is dict:
            total += len(item)
        for inner in values:  # only containers are pushed: strings and numbers hold no keys
            if type(inner) in _CONTAINERS:
                stack.append(inner)
    return total


def _duplicate_key(unit: bytes, record: dict[str, Any]) -> str | None:
    tokens = _key_tokens(unit)
    if tokens <= len(record) or tokens <= _parsed_keys(record):
        return None
    return _repeated_key(unit)


# A string (group 1), and the colon that makes it a key (group 2); or a brace.
_STRING_OR_BRACE = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")([ \t\r\n]*:)?|[{}]', re.DOTALL)


def _repeated_key(unit: bytes) -> str | None:
    """The first key written twice in one object of ``unit`` (valid JSON), or None.

    A scan with a stack of its own rather than a parse with an ``object_pairs_hook``: the standard
    library's parser recurses, and raised RecursionError on deep records the core had accepted.
    """
    objects: list[set[str]] = []
    for match in _STRING_OR_BRACE.finditer(unit):
        string, colon = match.groups()
        if string is None:
            if match.group() == b"{":
                objects.append(set())
            else:
                objects.pop()
        elif colon is not None:
            key = _decode(string) if b"\\" in string else string[1:-1].decode()
            if key in objects[-1]:
                return key  # type: ignore[no-any-return]
            objects[-1].add(key)
    return None


# msgspec stops at Python's recursion limit, so how deep it gets depends on the interpreter (3.11
# counts Python and C calls together, 3.12 apart) and on the caller's stack: about 930-990 levels on 3.11.
_TOO_DEEP = Rejection("invalid_json", "nesting deeper than the parser's recursion limit")


_REFERENCES = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})


def _batch_validator(schema: Mapping[str, Any]) -> Callable[[list[Any]], bool] | None:
    """Whether every record of a batch is valid, in one jsonschema-rs call; None when not exact.

    Why: handing records to jsonschema-rs one call at a time costs about 0.3 µs per record more
    than one call for the batch validated as ``{"type": "array", "items": schema}`` (about 40 % of
    validating a small record). ``items`` applies the schema to each element exactly as it applies
    to a record alone, as long as nothing in it is resolved against the root: a schema with
    references gets None (records are then validated one call each). The wrapper keeps the
    schema's ``$schema``, so the draft is the same. Property tests hold it equal to per-record
    validation.
    """

    def keys(value: object) -> Iterator[str]:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                yield key
                yield from keys(inner)
        elif isinstance(value, list):
            for inner in value:
                yield from keys(inner)

    if not _REFERENCES.isdisjoint(keys(schema)):
        return None
    wrapper: dict[str, Any] = {"type": "array", "items": {k: v for k, v in schema.items() if k != "$schema"}}
    if "$schema" in schema:
        wrapper["$schema"] = schema["$schema"]
    try:
        return jsonschema_rs.validator_for(wrapper).is_valid
    except (jsonschema_rs.ValidationError, ValueError):
        return None


class RecordChecker:
    """Parses, validates and normalises units; the compiled schema is built once per container."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        try:
            self._validator = jsonschema_rs.validator_for(dict(schema))
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            raise ConfigError(f"the record schema is not a valid JSON Schema: {exc}") from exc
        self._is_valid = self._validator.is_valid
        self._all_valid = _batch_validator(schema) or self._each_valid

    def _each_valid(self, records: list[Any]) -> bool:
        return all(map(self._is_valid, records))

    def check(self, unit: bytes) -> bytes | Rejection:
        """The record's output line, or why it is rejected (the reference path, one unit at a time)."""
        try:
            record = _decode(unit)
        except UnicodeDecodeError as exc:
            return Rejection("invalid_utf8", str(exc))
        except msgspec.DecodeError as exc:  # ValidationError too: an integer of over 4300 digits
            try:
                unit.decode("utf-8")
            except UnicodeDecodeError as utf8:
                return Rejection("invalid_utf8", str(utf8))
            return Rejection("invalid_json", str(exc))
        except RecursionError:
            return _TOO_DEEP
        except InvalidOperation:
            return Rejection("invalid_json", "a number with an exponent beyond what a decimal can hold")
        if type(record) is not dict:
            return Rejection("not_an_object", f"a record must be a JSON object, got {type(record).__name__}")
        duplicate = _duplicate_key(unit, record)
        if duplicate is not None:
            return Rejection("duplicate_key", f"key {duplicate!r} appears more than once")
        return self._finish(record)

    def _finish(self, record: dict[str, Any]) -> bytes | Rejection:
        if not self._is_valid(record):
            return self._violation(record)
        timestamp = record.get("timestamp")
        try:
            normalised = normalise_timestamp(timestamp)
        except ValueError as exc:
            return Rejection("invalid_timestamp", str(exc))
        record["timestamp"] = normalised
        try:
            return _encode(record)
        except RecursionError:  # the encoder needs a level more than the decoder: a record at its edge
            return _TOO_DEEP

    def check_lines(self, units: list[bytes]) -> list[bytes | Rejection]:
        """``check`` of each unit (single-line, non-blank), amortised over the batch."""
        results = self._check_batch(units)[0]
        if type(results) is bytes:
            return results.split(b"\n")[:-1]  # type: ignore[return-value]
        return results  # type: ignore[return-value]

    def _check_batch(self, units: list[bytes]) -> tuple[bytes | list[bytes | Rejection], int]:
        """``check_lines`` and the number of rejections among the results.

        A batch with only valid units comes back as one block of newline-terminated lines: the
        sink takes it in one call, and the encoder's output needs no splitting.

        One ``decode_lines`` call parses the batch and one ``encode_lines`` call writes it back;
        duplicate keys are ruled out by comparing counts (``_no_duplicate_keys``). Any irregularity
        (a parse error, a unit that is not ``{...}``, a possible duplicate) sends the batch through
        ``check`` one unit at a time, so both paths give identical results.
        """
        joined = b"\n".join(units)
        try:
            records = _decode_lines(joined)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, InvalidOperation):
            return self._check_each(units)
        # Each unit must be "{...}", maybe padded with whitespace: a unit ending in "}" cannot be
        # continued by a next one starting with "{", so then each unit held exactly one record.
        # Comparing each unit's first and last byte costs the same for any record size; scanning
        # ``joined`` for "}\n{" grows with it (3x as long on ~500 B records).
        if not _braced(units):
            stripped = [unit.strip(_WHITESPACE) for unit in units]
            if not all(unit[:1] == b"{" and unit[-1:] == b"}" for unit in stripped):
                return self._check_each(units)
        if len(records) != len(units):
            return self._check_each(units)
        if not self._all_valid(records):
            return self._check_mixed(units, records, joined)
        # The common batch, all valid: C-level loops (map) around the one Python call per record.
        timestamps = list(map(dict.get, records, repeat("timestamp")))
        try:
            normalised = list(map(normalise_timestamp, timestamps))
        except ValueError:
            return self._check_mixed(units, records, joined)
        deque(map(dict.__setitem__, records, repeat("timestamp"), normalised), maxlen=0)
        try:
            encoded = _encode_lines(records)
        except RecursionError:
            return self._check_each(units)
        became_strings = len(timestamps) - list(map(type, timestamps)).count(str)
        if not _no_duplicate_keys(joined, records, encoded, became_strings):
            return self._check_each(units)
        return encoded, 0

    def _check_mixed(
        self, units: list[bytes], records: list[dict[str, Any]], joined: bytes
    ) -> tuple[list[bytes | Rejection], int]:
        """``_check_batch`` record by record, for a batch with rejections."""
        results: list[bytes | Rejection | None] = []
        append = results.append
        is_valid = self._is_valid
        rejected = became_strings = 0  # numeric timestamps replaced by strings (for _no_duplicate_keys)
        for record in records:
            if not is_valid(record):
                append(self._violation(record))
                rejected += 1
                continue
            timestamp = record.get("timestamp")
            try:
                normalised = normalise_timestamp(timestamp)
            except ValueError as exc:
                append(Rejection("invalid_timestamp", str(exc)))
                rejected += 1
                continue
            if type(timestamp) is not str:
                became_strings += 1
            record["timestamp"] = normalised
            append(None)  # filled from the encoded batch below
        try:
            encoded = _encode_lines(records)
        except RecursionError:
            return self._check_each(units)
        if not _no_duplicate_keys(joined, records, encoded, became_strings):
            return self._check_each(units)
        lines = encoded.split(b"\n")
        return [lines[index] if result is None else result for index, result in enumerate(results)], rejected

    def _check_each(self, units: list[bytes]) -> tuple[list[bytes | Rejection], int]:
        results = [self.check(unit) for unit in units]
        return results, sum(type(result) is Rejection for result in results)

    def _violation(self, record: dict[str, Any]) -> Rejection:
        try:
            error = next(iter(self._validator.iter_errors(record)))
        except ValueError as exc:  # jsonschema-rs 0.61 cannot show a value nested 256 or more levels deep
            return Rejection(
                "schema_violation", f"the record does not match the schema ({exc} describing where)"
            )
        where = "/".join(str(part) for part in error.instance_path)
        return Rejection("schema_violation", f"/{where}: {error.message}")


def _no_duplicate_keys(joined: bytes, records: list[Any], encoded: bytes, became_strings: int) -> bool:
    """True when no object in ``joined`` (parsed into ``records``, re-encoded as ``encoded``) repeats a key.

    Without any backslash in the input a string cannot hold a quote, so the input's quote count is
    twice its number of strings; msgspec writes such strings back verbatim between two quotes.
    Parsing keeps every string but a duplicate key (and its value), so the counts agree exactly when
    nothing was dropped, once the timestamps that went from a number to a string are accounted for.
    With backslashes, the reference bound: '":' tokens (at least one per key written) against the
    parsed key count.
    """
    if b"\\" not in joined:
        return joined.count(b'"') + 2 * became_strings == encoded.count(b'"')
    if _SPACED_COLON.search(joined) is not None:
        return False
    return joined.count(b'":') == sum(_parsed_keys(record) for record in records)


_OPEN_BRACE, _CLOSE_BRACE = ord("{"), ord("}")
_first_byte, _last_byte = operator.itemgetter(0), operator.itemgetter(-1)


def _braced(units: list[bytes]) -> bool:
    """True when every unit starts with ``{`` and ends with ``}`` (no whitespace around)."""
    try:
        firsts, lasts = bytes(map(_first_byte, units)), bytes(map(_last_byte, units))
    except IndexError:  # an empty unit
        return False
    return firsts.count(_OPEN_BRACE) == len(units) and lasts.count(_CLOSE_BRACE) == len(units)


_SPACED_COLON = re.compile(rb'"[ \t\r\n]+:')
# Numbers with a fraction or an exponent become Decimals, written back as the same number: a metric
# keeps the exact value of its literal all the way to the database (a float would round 0.1).
_decoder = msgspec.json.Decoder(float_hook=Decimal)
_decode, _decode_lines = _decoder.decode, _decoder.decode_lines
_encoder = msgspec.json.Encoder(decimal_format="number")
_encode, _encode_lines = _encoder.encode, _encoder.encode_lines
BATCH_UNITS = 256
BATCH_BYTES = 1 << 20


def quarantine_entry(
    source: Mapping[str, Any], line: int, rejection: Rejection, unit: bytes | Oversize | None
) -> bytes:
    """One quarantine JSON line: where the unit came from, why it was rejected, and the unit itself."""
    entry: dict[str, Any] = {
        "source": source,
        "line": line,
        "reason": rejection.reason,
        "detail": rejection.detail,
    }
    if isinstance(unit, Oversize):
        original, entry["original_bytes"], entry["original_truncated"] = unit.prefix, unit.size, True
    elif unit is not None:
        original, entry["original_bytes"], entry["original_truncated"] = unit, len(unit), False
    else:
        return _encode(entry)
    try:
        entry["original"] = original.decode("utf-8")
    except UnicodeDecodeError:
        entry["original_base64"] = base64.b64encode(original).decode("ascii")
    return _encode(entry)


def unreadable_entry(source: Mapping[str, Any], error: UnreadableObjectError) -> bytes:
    """The single quarantine entry for an object that cannot be read at all (``line`` 0)."""
    return quarantine_entry(source, 0, Rejection(error.reason, error.detail), None)


def ingest(
    read: Read,
    fmt: InputFormat,
    checker: RecordChecker,
    max_record_bytes: int,
    source: Mapping[str, Any],
    sink: Sink,
) -> Counts:
    """Stream one raw object's bytes through ``checker`` into ``sink``; returns its conservation counts.

    Raises UnreadableObjectError when the object cannot be read to its end; the caller then discards
    whatever ``sink`` received.
    """
    payload = _strip_bom(payload_reader(read, fmt.compressed))
    valid, quarantine = sink.valid, sink.quarantine
    counts = {"valid": 0, "quarantined": 0, "blank": 0}

    def reject(number: int, rejection: Rejection, unit: bytes | Oversize) -> None:
        quarantine(quarantine_entry(source, number, rejection, unit))
        counts["quarantined"] += 1

    def check_one(number: int, unit: bytes | Oversize) -> None:
        if isinstance(unit, Oversize):
            reject(
                number, Rejection("record_too_large", f"{unit.size} bytes > limit {max_record_bytes}"), unit
            )
        elif not unit.strip(_WHITESPACE):  # an empty array element ("[1,,2]", "[1,]") is a syntax error
            reject(number, Rejection("invalid_json", "empty array element"), unit)
        else:
            result = checker.check(unit)
            if type(result) is bytes:
                valid(result)
                counts["valid"] += 1
            else:
                reject(number, result, unit)  # type: ignore[arg-type]

    number = 0
    if fmt.document:
        for number, unit in enumerate(iter_document(payload, max_record_bytes), start=1):
            check_one(number, unit)
    else:
        number = _ingest_lines(payload, checker, max_record_bytes, sink, reject, counts)
    return Counts(
        records_read=number,
        records_valid=counts["valid"],
        records_quarantined=counts["quarantined"],
        blank_lines=counts["blank"],
    )


def _ingest_lines(
    payload: Read,
    checker: RecordChecker,
    max_record_bytes: int,
    sink: Sink,
    reject: Callable[[int, Rejection, bytes | Oversize], None],
    counts: dict[str, int],
) -> int:
    """JSON Lines through ``checker.check_lines`` in batches, in line order; returns the line count."""
    batch: list[bytes] = []
    numbers: list[int] = []  # each batched unit's line number
    batch_bytes = 0

    def flush(size: int) -> None:
        nonlocal batch_bytes
        units = batch[:size]
        results, rejected = checker._check_batch(units)
        if type(results) is bytes:
            sink.valid_lines(results, len(units))
        else:
            for index, result in enumerate(results):
                if type(result) is bytes:
                    sink.valid(result)
                else:
                    reject(numbers[index], result, units[index])
        counts["valid"] += len(units) - rejected
        batch_bytes -= sum(map(len, units))
        del batch[:size], numbers[:size]

    number = 0
    for lines, plain in iter_line_blocks(payload, max_record_bytes):
        first, number = number + 1, number + len(lines)
        # bytes.isspace is wider than JSON's whitespace, so it only picks the lines to look at closer.
        if plain and b"" not in lines and not any(map(bytes.isspace, lines)):  # type: ignore[arg-type]
            batch += lines  # type: ignore[arg-type]
            numbers += range(first, number + 1)
            batch_bytes += sum(map(len, lines))  # type: ignore[arg-type]
        else:
            for line_number, unit in enumerate(lines, start=first):
                if type(unit) is bytes:
                    if not unit.strip(_WHITESPACE):  # a line of \v or \f is not blank but invalid JSON
                        counts["blank"] += 1
                    else:
                        batch.append(unit)
                        numbers.append(line_number)
                        batch_bytes += len(unit)
                    continue
                while batch:  # keep quarantine entries in line order
                    flush(BATCH_UNITS)
                reject(
                    line_number,
                    Rejection("record_too_large", f"{unit.size} bytes > limit {max_record_bytes}"),  # type: ignore[union-attr]
                    unit,
                )
        while len(batch) >= BATCH_UNITS or batch_bytes >= BATCH_BYTES:
            flush(BATCH_UNITS)
    while batch:
        flush(BATCH_UNITS)
    return number
