"""Processing core: ``records/`` lines → exact per-window, per-dimension aggregates.

Memory grows with the number of groups (windows times dimension values), never with the number of
records: each block of lines updates its groups' counters (``handlers.group_table``) and is dropped (at
most ``PENDING_VALUES`` metric values, and one block's, wait, gathered per group, to be summed together).

Numbers are exact (``handlers.exact``): lines are decoded with ``float_hook=Decimal`` (a block keeps
such literals as text, ``handlers.scaled``: a column of one scale is read as scaled integers, any other
as ``exact.literal`` reads it, which raises where it would have to round, sending the block down the
line-by-line path), so a metric is the decimal its literal states and an integer stays an ``int``; sums
are taken inside ``exact.exact_context()``, where a sum that would round raises instead. Aggregates
form a commutative monoid under ``merge`` (counts and sums add, min and max keep), so aggregating files
separately and merging in any order equals aggregating all records at once, exactly — the property the
analytics stage's database upsert relies on (tested with hypothesis).

A group is a window start and the canonical text of its dimension values (``GroupKey``,
``dimensions_text``): numerically equal numbers are one group (``1``, ``1.0``, ``1e0``; ``0``, ``-0.0``),
while ``true`` is never the number 1 and ``"1"`` never a number. The database stores that text.

In the aggregates document (``handlers.documents``) sums, minima and maxima are canonical decimal
strings (``exact.canonical``). ``records_valid`` counts aggregated records and ``records_quarantined``
rejected ones. A metric absent from a record (or null) does not count for that
metric; a group lists only metrics it has seen. ``rejected`` keeps the first ``MAX_REJECTED_DETAILS``
entries (``rejected_total`` counts them all): every rejected line is still in the ``records/`` object,
which the document names.

No line can fail an object: every line is aggregated, counted blank (empty, or only spaces, tabs and
carriage returns) or rejected with a reason: ``invalid_json`` (a ``\\v`` or ``\\f`` is not JSON
whitespace; nesting past msgspec's limit, which is the interpreter's recursion limit less the caller's
stack: just under 1000 levels on CPython 3.11 (996 from a shallow stack), alike for a line in a block
or alone; ingestion writes nothing deeper than 255), ``invalid_utf8``, ``not_an_object``,
``invalid_timestamp``, ``dimension_not_scalar``, ``dimension_out_of_range`` (a number literal whose
exponent no ``Decimal`` holds), ``metric_not_numeric``, ``metric_out_of_range``, ``metric_too_precise``
(``exact.metric_value``), ``record_too_large``; and for a ``records/`` object that cannot be read at all
(line 0) ``not_gzip``, ``truncated_gzip``, ``corrupt_gzip``. Duplicate keys keep the last value, as
every JSON parser here does (ingestion rejects them before they reach ``records/``).

Speed: a block of lines is decoded in one ``decode_lines`` call into a struct of only the configured
fields, and checked and grouped a column at a time. Any surprise in a block (a line that fails to
decode, or a value that needs a reason) sends that block's lines down the line-by-line path, which
decides every verdict; the block path only ever takes blocks on which both paths agree.

Group keys and statistics are ``handlers.groups``, the groups as they fill ``handlers.group_table``, the
document ``handlers.documents``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import partial
from itertools import compress, repeat
from operator import is_not
from typing import Any

import msgspec

from handlers import exact
from handlers.config import RECORDS_LINE_LIMIT
from handlers.errors import UnreadableObjectError
from handlers.exact import MetricValueError, exact_context, metric_value
from handlers.framing import Read, payload_reader, records_line_blocks
from handlers.group_table import GroupTable
from handlers.groups import (
    MAX_REJECTED_DETAILS,
    NORMALISED,
    PENDING_VALUES,
    RETRY_LINES,
    AggregateResult,
    Bool,
    GroupKey,
    GroupStats,
    Rejected,
    Starts,
    Unrepresentable,
    json_type,
    layout,
    scalar,
)
from handlers.metrics import Counts
from handlers.scaled import decimals, scaled

_RAW = msgspec.json.Decoder(msgspec.Raw)
_BLANK = b" \t\r"  # JSON whitespace; bytes.isspace would also take \v and \f, which are not JSON
_LIMIT = 10**exact.MAX_INTEGER_DIGITS
_NONE = type(None)
_PLAIN_DIMENSIONS = frozenset({str, _NONE, int, Decimal})
_SCALAR_DIMENSIONS = _PLAIN_DIMENSIONS | {bool}
_INTS, _NUMBERS = frozenset({int}), frozenset({int, Decimal})
_present = partial(is_not, None)
_TRUE, _FALSE = Bool(True), Bool(False)


class Aggregator:
    """Accumulates records into groups; mutable inside, frozen on ``groups``."""

    def __init__(self, window_seconds: int, dimensions: tuple[str, ...], metrics: tuple[str, ...]) -> None:
        self.window_seconds = window_seconds
        self.dimensions = dimensions
        self.metrics = metrics
        self._layout = layout(dimensions, metrics)
        self._starts = Starts(window_seconds)
        self._table = GroupTable(len(metrics), self._starts)
        self._rejected: list[Rejected] = []
        self.rejected_total = 0
        self.valid = 0
        self.blank = 0

    def reject(self, line: int, reason: str, detail: str) -> None:
        self.rejected_total += 1
        if len(self._rejected) < MAX_REJECTED_DETAILS:
            self._rejected.append(Rejected(line, reason, detail))

    def _window(self, timestamp: object) -> str:
        if type(timestamp) is not str:
            raise ValueError(f"timestamp is a {json_type(timestamp)}, not an RFC 3339 UTC string")
        if not NORMALISED.fullmatch(timestamp):
            raise ValueError(f"timestamp is not normalised RFC 3339 UTC: {timestamp[:64]!r}")
        return self._starts[timestamp[: self._starts.length]]

    # --- one record at a time: the reference every verdict comes from ---------------------------------

    def add_record(self, line: int, record: object) -> None:
        """One already-decoded record (numbers as ``int``/``Decimal``, as ``float_hook=Decimal`` gives)."""
        if not isinstance(record, Mapping):
            self.reject(line, "not_an_object", f"got {json_type(record)}")
            return
        with exact_context():
            self._add_values(
                line,
                record.get("timestamp"),
                [record.get(name) for name in self.dimensions],
                [record.get(name) for name in self.metrics],
            )

    def _add_values(self, line: int, timestamp: object, dimensions: list[Any], metrics: list[Any]) -> None:
        try:
            start = self._window(timestamp)
        except ValueError as exc:
            self.reject(line, "invalid_timestamp", str(exc))
            return
        key: list[Any] = [start]
        for name, value in zip(self.dimensions, dimensions, strict=True):
            kind = type(value)
            if kind is str or kind is int or value is None:
                key.append(value)
            elif kind is bool:
                key.append(_TRUE if value else _FALSE)
            elif kind is Decimal and value.is_finite():
                key.append(value)
            elif kind is Unrepresentable and value.zero:
                key.append(0)
            elif kind is Decimal or kind is Unrepresentable:
                self.reject(line, "dimension_out_of_range", f"{name[:64]} is a number no decimal holds")
                return
            else:
                self.reject(line, "dimension_not_scalar", f"{name[:64]}: {json_type(value)}, not a scalar")
                return
        values = []
        for index, (name, value) in enumerate(zip(self.metrics, metrics, strict=True)):
            if value is None:
                continue
            if type(value) is Unrepresentable:
                if not value.zero:
                    reason = "metric_too_precise" if value.negative_exponent else "metric_out_of_range"
                    self.reject(line, reason, f"{name[:64]}: an exponent no decimal holds")
                    return
                value = 0
            try:
                number = metric_value(value)
            except MetricValueError as exc:
                self.reject(line, exc.reason, f"{name[:64]}: {exc.detail}")
                return
            if type(number) is Decimal and number.as_tuple().exponent < -exact.MAX_FRACTION_DIGITS:  # type: ignore[operator]
                # Only zeros lie past the supported fraction digits (metric_value checked): dropped, so
                # that sums stay within the exact context's precision.
                number = number.normalize()
            values.append((index, number))
        self._table.add_record(tuple(key), values)
        self.valid += 1
        self._flush_if_full()

    # --- records/ lines -----------------------------------------------------------------------------

    def add_lines(self, data: bytes, first: int) -> int:
        """Complete lines, each ending in a newline, numbered from ``first``; returns how many.

        Every decode of a line happens one call below this frame, in a block or alone, so that how deep
        a line may nest (msgspec stops at the interpreter's recursion limit) never depends on whether
        its block took the fast path.
        """
        count = data.count(b"\n")
        with exact_context():
            if self._add_block(data, count):
                return count
            lines = data.split(b"\n")
            lines.pop()
            for start in range(0, count, RETRY_LINES):
                part = lines[start : start + RETRY_LINES]
                if count > RETRY_LINES and self._add_block(b"\n".join(part) + b"\n", len(part)):
                    continue
                for offset, line in enumerate(part, start=first + start):
                    self._add_line(offset, line)
        return count

    def _add_line(self, number: int, line: bytes) -> None:
        if not line.strip(_BLANK):
            self.blank += 1
            return
        if not line.isascii():
            try:
                line.decode()
            except UnicodeDecodeError as exc:
                self.reject(number, "invalid_utf8", str(exc))
                return
        try:
            record = self._layout.line.decode(line)
        except msgspec.ValidationError:  # the only shape the struct refuses: not an object
            try:
                value = _RAW.decode(line)
            except (msgspec.DecodeError, RecursionError) as exc:
                self.reject(number, "invalid_json", str(exc) or "nesting too deep")
            else:
                self.reject(number, "not_an_object", f"got {json_type(scalar(value))}")
            return
        except (msgspec.DecodeError, RecursionError) as exc:
            self.reject(number, "invalid_json", str(exc) or "nesting too deep")
            return
        layout = self._layout
        self._add_values(
            number,
            scalar(layout.timestamp(record)),
            [scalar(get(record)) for get in layout.dimensions],
            [scalar(get(record)) for get in layout.metrics],
        )

    def _add_block(self, data: bytes, count: int) -> bool:
        """All of a block's lines at once, or nothing (False) if any line needs the line-by-line path."""
        # Each line one object: "{" first, "}" last, no blank line. decode_lines would also take two
        # values on one line, or one value over two lines; neither passes this check, and then equal
        # counts mean one value per line.
        if data[:1] != b"{" or not data.endswith(b"}\n") or data.count(b"}\n{") != count - 1:
            return False
        if not data.isascii():  # skipped fields are not checked for UTF-8 by the struct decoder
            try:
                data.decode()
            except UnicodeDecodeError:
                return False
        try:
            records = self._layout.block.decode_lines(data)
        except (msgspec.DecodeError, RecursionError, ArithmeticError):
            return False
        return len(records) == count and self._add_decoded(records)

    def _add_decoded(self, records: list[Any]) -> bool:
        layout = self._layout
        timestamps = list(map(layout.timestamp, records))
        # One regular-expression pass over the block's timestamps; a newline inside one would make
        # more parts than records.
        joined = "\n".join(timestamps)
        if not self._starts.stamps.fullmatch(joined) or joined.count("\n") != len(timestamps) - 1:
            return False
        columns: list[list[Any]] = [list(map(self._starts.head, timestamps))]
        for get in layout.dimensions:
            column = list(map(get, records))
            kinds = set(map(type, column))
            if bytes in kinds:  # number literals, kept as text: their Decimals, as a line reads them
                if (column := decimals(column)) is None:  # type: ignore[assignment]
                    return False
                kinds = set(map(type, column))
            if not kinds <= _PLAIN_DIMENSIONS:
                if not kinds <= _SCALAR_DIMENSIONS:
                    return False
                column = [(_TRUE if value else _FALSE) if type(value) is bool else value for value in column]
            columns.append(column)
        ids = list(zip(*columns, strict=True))  # the keys (timestamp heads first), until every check passed
        metrics = []
        for get in layout.metrics:
            column = list(map(get, records))
            kinds = set(map(type, column))
            if _NONE in kinds:
                kinds.discard(_NONE)
                present = list(filter(_present, column))
                mask: list[bool] | None = list(map(is_not, column, repeat(None)))
            else:
                present, mask = column, None
            if not present:
                metrics.append(None)
                continue
            if bytes in kinds:  # literals with a fraction or an exponent, kept as text
                found = scaled(present) if len(kinds) == 1 else None
                if found is not None:  # all of one scale: integers
                    metrics.append((mask, found[1], found[0]))
                    continue
                if (present := decimals(present)) is None:  # type: ignore[assignment]
                    return False
                kinds = set(map(type, present))
            if not kinds <= _NUMBERS or not (min(present) > -_LIMIT and max(present) < _LIMIT):
                return False
            if kinds != _INTS:
                # An exact sum's exponent is the least of its terms': all of them within the supported
                # fraction digits, or one of them (maybe only trailing zeros) needs a look of its own.
                try:
                    total = sum(present)
                except ArithmeticError:
                    return False
                if type(total) is Decimal and total.as_tuple().exponent < -exact.MAX_FRACTION_DIGITS:  # type: ignore[operator]
                    return False
            metrics.append((mask, present, 0))
        table = self._table
        try:
            ids = table.ids(ids, heads=True)
        except ValueError:  # a date that does not exist
            return False
        for index, prepared in enumerate(metrics):
            if prepared is not None:
                mask, present, scale = prepared
                table.add_values(index, ids if mask is None else compress(ids, mask), present, scale)
        self.valid += len(records)
        self._flush_if_full()
        return True

    def _flush_if_full(self) -> None:
        if self._table.pending_values >= PENDING_VALUES:
            self._table.flush()

    # --- results --------------------------------------------------------------------------------------

    def groups(self) -> dict[GroupKey, GroupStats]:
        return self._table.groups(self.dimensions, self.metrics)

    @property
    def rejected(self) -> tuple[Rejected, ...]:
        return tuple(self._rejected)


def aggregate_records(
    records: Iterable[object],
    window_seconds: int,
    dimensions: tuple[str, ...],
    metrics: tuple[str, ...],
) -> dict[GroupKey, GroupStats]:
    """Aggregate already-decoded records (numbers as ``int``/``Decimal``) one at a time."""
    aggregator = Aggregator(window_seconds, dimensions, metrics)
    for number, record in enumerate(records, start=1):
        aggregator.add_record(number, record)
    return aggregator.groups()


def aggregate_stream(
    read: Read,
    window_seconds: int,
    dimensions: tuple[str, ...],
    metrics: tuple[str, ...],
    *,
    line_limit: int = RECORDS_LINE_LIMIT,
) -> AggregateResult:
    """Aggregate a gzip JSON Lines ``records/`` object, streamed; never raises for bad content."""
    # The cyclic garbage collector is paused: a block allocates tens of thousands of short-lived
    # tuples and lists, none of them in a cycle (reference counting frees them), and the collector's
    # passes over them and over the groups cost about a tenth of the stage's CPU (docs/benchmarks.md);
    # the groups' structs are built before it resumes, for the same reason.
    collecting = gc.isenabled()
    gc.disable()
    try:
        aggregator, lines = _aggregated(read, window_seconds, dimensions, metrics, line_limit)
        groups = aggregator.groups()
    finally:
        if collecting:
            gc.enable()
    counts = Counts(
        records_read=lines,
        records_valid=aggregator.valid,
        records_quarantined=aggregator.rejected_total,
        blank_lines=aggregator.blank,
    )
    return AggregateResult(groups, counts, aggregator.rejected, aggregator.rejected_total)


def _aggregated(
    read: Read, window_seconds: int, dimensions: tuple[str, ...], metrics: tuple[str, ...], line_limit: int
) -> tuple[Aggregator, int]:
    aggregator = Aggregator(window_seconds, dimensions, metrics)
    lines = 0
    try:
        for block in records_line_blocks(payload_reader(read, True), line_limit):
            if type(block) is int:
                lines += 1
                aggregator.reject(lines, "record_too_large", f"{block} bytes")
            else:
                lines += aggregator.add_lines(block, lines + 1)  # type: ignore[arg-type]
    except UnreadableObjectError as error:
        # Whole or nothing, as in ingestion: a partly readable object contributes no groups.
        aggregator = Aggregator(window_seconds, dimensions, metrics)
        aggregator.reject(0, error.reason, error.detail)
        lines = 1
    return aggregator, lines
