"""Ingestion core: a raw object's bytes → validated, normalised records and quarantine entries.

The driver (``ingest``) and the quarantine entries; framing is ``handlers.framing``, record checks
``handlers.records`` (with ``handlers.duplicate_keys``, and ``handlers.bad_lines`` for the pieces a batch
with a bad line is retried in), timestamps ``handlers.timestamps``. This docstring states their decisions.

Pure and streaming: the caller passes a ``read(n)`` function over the (possibly gzip) payload and a
``Sink`` that receives output lines; nothing here touches boto3, the environment or the clock, and
memory is bounded by ``max_record_bytes`` plus the lines of one read chunk plus the lines waiting for
a batch (flushed at ``BATCH_BYTES``), parsed ``BATCH_UNITS`` at a time, whatever the object's size.

Decisions about awkward input, each deliberate:

* JSON is parsed and written with msgspec, chosen by measurement over orjson and the standard
  library (docs/benchmarks.md); JSON Lines, and the elements of a ``.json`` array, are parsed
  ``BATCH_UNITS`` units per call. An array is framed by msgspec where it can (``array_elements``,
  the fast path of ``handlers.framing._ArrayScanner``), which frames it as the reference scanner does.
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
* Validation uses jsonschema-rs (Rust; any draft up to 2020-12), chosen by measurement over
  fastjsonschema on the default schema (docs/benchmarks.md, "Figures behind the code"). Its first error
  is the ``detail``, except for an error in a value nested 256 or more levels deep, which jsonschema-rs
  0.61 cannot describe (the verdict is the same). It compares Decimals exactly, at any exponent
  (``minimum``, ``multipleOf``, ``integer``: tests/handlers).
* Duplicate keys are ``duplicate_key``: JSON parsers silently keep the last value, so a record with
  two ``value`` fields would be aggregated from half its data. Checked exactly, but only when cheap
  counts over a whole batch (quotes in the input and in the re-encoded records, or key-like tokens
  against parsed keys) leave room for a duplicate (``duplicate_keys.no_duplicate_keys``).
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
  tests/handlers/test_ingestion_core.py checks every literal of up to 6 bytes and
  adversarial records.
* A file that cannot be read to its end raises ``UnreadableObjectError``: the caller discards partial
  output and writes one quarantine entry naming the raw object, so a file is either processed whole or
  kept whole. Its reasons: ``unsupported_suffix``, ``empty_object``, ``unsupported_encoding``,
  ``not_gzip``, ``truncated_gzip``, ``corrupt_gzip``, and ``invalid_json`` for a ``.json`` document that
  is not an object or an array, has data after its array, or whose array is not closed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from itertools import repeat
from typing import Any, Protocol

import msgspec

from handlers.errors import UnreadableObjectError
from handlers.framing import (
    JSON_WHITESPACE,
    InputFormat,
    Oversize,
    Read,
    iter_document_blocks,
    iter_line_blocks,
    payload_reader,
    strip_bom,
)
from handlers.metrics import Counts
from handlers.records import BATCH_BYTES, BATCH_UNITS, RecordChecker, Rejection, encode


class Sink(Protocol):
    """Where the core puts its output: lines without a newline, or blocks of newline-terminated lines."""

    def valid(self, line: bytes) -> None: ...

    def valid_lines(self, block: bytes, count: int) -> None:
        """``count`` valid lines at once, each ending in a newline."""

    def quarantine(self, line: bytes) -> None: ...


_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])


def array_elements(content: bytes) -> list[bytes] | None:
    """The elements of a JSON array's ``content`` (the text between its brackets), each with the
    whitespace around it, as ``_ArrayScanner`` frames them; None if ``content`` is not JSON values
    separated by commas (msgspec checks it in C, skipping what it does not keep)."""
    try:
        raws = _ELEMENTS.decode(b"[" + content + b"]")
    except (msgspec.DecodeError, RecursionError):
        return None
    units = list(map(bytes, raws))
    if sum(map(len, units)) + len(units) - 1 == len(content):  # compact: no whitespace anywhere
        return units
    return _spaced(content, units) or _found(content, units)


def _spaced(content: bytes, units: list[bytes]) -> list[bytes] | None:
    """``array_elements`` when every comma between elements has the same whitespace around it (as
    in ``[{..},\n{..}]``): pieces split there that are the elements, give or take whitespace, are the
    elements between their commas."""
    if len(units) < 2:
        return None
    end = content.find(units[0]) + len(units[0])
    separator = content[end : content.find(units[1], end)]
    pieces = content.split(separator)
    if len(pieces) != len(units) or list(map(bytes.strip, pieces, repeat(JSON_WHITESPACE))) != units:
        return None
    before, after = separator.split(b",")  # the whitespace before and after the comma
    if not before:
        return [pieces[0], *map(after.__add__, pieces[1:])]
    framed = list(map(b"".join, zip(repeat(after), pieces, repeat(before))))
    framed[0], framed[-1] = pieces[0] + before, after + pieces[-1]
    return framed


def _found(content: bytes, units: list[bytes]) -> list[bytes]:
    framed: list[bytes] = []
    start = 0  # just after the previous comma
    find, index = content.find, content.index
    for unit in units:
        comma = index(b",", find(unit, start) + len(unit)) if len(framed) < len(units) - 1 else len(content)
        framed.append(content[start:comma])
        start = comma + 1
    return framed


def output_bound(unit_bytes: int) -> int:
    """The most bytes a valid unit of ``unit_bytes`` bytes is written as (module docstring, "Output size")."""
    return unit_bytes * 9 // 5 + 28


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
        return encode(entry)
    try:
        entry["original"] = original.decode("utf-8")
    except UnicodeDecodeError:
        entry["original_base64"] = base64.b64encode(original).decode("ascii")
    return encode(entry)


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
    payload = strip_bom(payload_reader(read, fmt.compressed))
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
        elif not unit.strip(JSON_WHITESPACE):  # an empty array element ("[1,,2]", "[1,]") is a syntax error
            reject(number, Rejection("invalid_json", "empty array element"), unit)
        else:
            result = checker.check(unit)
            if type(result) is bytes:
                valid(result)
                counts["valid"] += 1
            else:
                reject(number, result, unit)  # type: ignore[arg-type]

    batch = _Batch(checker, sink, reject, counts)
    number = 0
    if fmt.document:
        for unit in iter_document_blocks(payload, max_record_bytes, elements=array_elements):
            if type(unit) is list:  # elements that each hold a JSON value
                batch.extend(number + 1, unit)
                number += len(unit)
                continue
            number += 1
            if type(unit) is bytes and unit.strip(JSON_WHITESPACE):
                batch.add(number, unit)
            else:
                batch.drain()  # keep quarantine entries in element order
                check_one(number, unit)  # type: ignore[arg-type]
        batch.drain()
    else:
        number = _ingest_lines(payload, max_record_bytes, batch, reject, counts)
    return Counts(
        records_read=number,
        records_valid=counts["valid"],
        records_quarantined=counts["quarantined"],
        blank_lines=counts["blank"],
    )


class _Batch:
    """Units waiting to be checked together (``RecordChecker._check_batch``) with their numbers; each
    ``add`` or ``extend`` flushes full batches, so at most ``BATCH_UNITS`` units or ``BATCH_BYTES``
    bytes wait."""

    def __init__(
        self,
        checker: RecordChecker,
        sink: Sink,
        reject: Callable[[int, Rejection, bytes | Oversize], None],
        counts: dict[str, int],
    ) -> None:
        self.checker, self.sink, self.reject, self.counts = checker, sink, reject, counts
        self.units: list[bytes] = []
        self.numbers: list[int] = []  # each unit's line or element number
        self.size = 0

    def add(self, number: int, unit: bytes) -> None:
        self.units.append(unit)
        self.numbers.append(number)
        self.size += len(unit)
        if len(self.units) >= BATCH_UNITS or self.size >= BATCH_BYTES:
            self.full()

    def extend(self, first: int, units: list[bytes]) -> None:
        self.units += units
        self.numbers += range(first, first + len(units))
        self.size += sum(map(len, units))
        self.full()

    def full(self) -> None:
        while len(self.units) >= BATCH_UNITS or self.size >= BATCH_BYTES:
            self._flush(BATCH_UNITS)

    def drain(self) -> None:
        while self.units:
            self._flush(BATCH_UNITS)

    def _flush(self, size: int) -> None:
        units, numbers = self.units[:size], self.numbers[:size]
        segments, rejected = self.checker._check_batch(units)
        index = 0  # of the segment's first unit
        for segment in segments:
            if type(segment) is tuple:  # a block of valid lines
                self.sink.valid_lines(*segment)
                index += segment[1]
                continue
            if type(segment) is bytes:
                self.sink.valid(segment)
            else:
                self.reject(numbers[index], segment, units[index])  # type: ignore[arg-type]
            index += 1
        self.counts["valid"] += len(units) - rejected
        self.size -= sum(map(len, units))
        del self.units[:size], self.numbers[:size]


def _ingest_lines(
    payload: Read,
    max_record_bytes: int,
    batch: _Batch,
    reject: Callable[[int, Rejection, bytes | Oversize], None],
    counts: dict[str, int],
) -> int:
    """JSON Lines through ``batch`` (checked together), in line order; returns the line count."""
    number = 0
    for lines, plain in iter_line_blocks(payload, max_record_bytes):
        first, number = number + 1, number + len(lines)
        # bytes.isspace is wider than JSON's whitespace, so it only picks the lines to look at closer.
        if plain and b"" not in lines and not any(map(bytes.isspace, lines)):  # type: ignore[arg-type]
            batch.extend(first, lines)  # type: ignore[arg-type]
            continue
        for line_number, unit in enumerate(lines, start=first):
            if type(unit) is not bytes:
                batch.drain()  # keep quarantine entries in line order
                reject(
                    line_number,
                    Rejection("record_too_large", f"{unit.size} bytes > limit {max_record_bytes}"),  # type: ignore[union-attr]
                    unit,
                )
            elif not unit.strip(JSON_WHITESPACE):  # a line of \v or \f is not blank but invalid JSON
                counts["blank"] += 1
            else:
                batch.add(line_number, unit)
    batch.drain()
    return number
