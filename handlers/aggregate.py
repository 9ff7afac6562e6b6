"""Processing core: ``records/`` lines → exact per-window, per-dimension aggregates, and the aggregates
document.

Memory grows with the number of groups (windows times dimension values), never with the number of
records: each block of lines updates its groups' counters and is dropped (at most ``PENDING_VALUES``
metric values wait, gathered per group, to be summed together).

Numbers are exact (``handlers.exact``): lines are decoded with ``float_hook=Decimal``, so a metric is
the decimal its literal states and an integer stays an ``int``; sums are taken inside
``exact.exact_context()``, where a sum that would round raises instead. Aggregates form a commutative
monoid under ``merge`` (counts and sums add, min and max keep), so aggregating files separately and
merging in any order equals aggregating all records at once, exactly — the property the analytics
stage's database upsert relies on (tested with hypothesis).

A group is a window start and the canonical text of its dimension values (``GroupKey``,
``dimensions_text``): numerically equal numbers are one group (``1``, ``1.0``, ``1e0``; ``0``, ``-0.0``),
while ``true`` is never the number 1 and ``"1"`` never a number. The database stores that text.

The aggregates document (processing → analytics), one JSON object per ``records/`` object, written
with sorted keys and sorted groups so its bytes are a pure function of the input and the config::

    {
      "format": "data-pipeline/aggregates@2",
      "source": {"bucket": str, "key": str, "sha256": str},   # the records/ object's bytes
      "origin": {"rel": str, "sequencer": str, "version_id": str | null},   # the raw version
      "window": "1h", "window_seconds": 3600,
      "dimensions": ["type", "source"], "metrics": ["value"],
      "counts": {"records_read": int, "records_valid": int, "records_quarantined": int, "blank_lines": int},
      "groups": [
        {"window_start": "2024-05-01T12:00:00Z",
         "dimensions": {"source": null, "type": "click"},   # canonical values; a missing field is null
         "records": int,
         "metrics": {"value": {"count": int, "sum": "12.5", "min": "0.5", "max": "7"}}}
      ],
      "rejected": [{"line": int, "reason": str, "detail": str}],
      "rejected_total": int
    }

``origin`` names the raw object version the records came from: ``rel`` and ``sequencer`` from the
``records/<rel>/<sequencer>.jsonl.gz`` key, ``version_id`` from the records object's
``source-version-id`` metadata (null when the raw bucket is not versioned). ``sum``, ``min`` and ``max``
are canonical decimal strings (``exact.canonical``). ``records_valid`` counts aggregated records and
``records_quarantined`` rejected ones. A metric absent from a record (or null) does not count for that
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
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache, partial
from itertools import compress, repeat
from operator import attrgetter, is_not, itemgetter
from typing import Annotated, Any

import msgspec

from handlers import exact
from handlers.config import MAX_FIELD_NAME, RECORDS_LINE_LIMIT, WINDOWS
from handlers.errors import UnreadableObjectError
from handlers.exact import MetricValueError, Number, exact_context, metric_value
from handlers.ingest import CHUNK_BYTES, Read, payload_reader
from handlers.metrics import Counts

FORMAT = "data-pipeline/aggregates@2"
MAX_REJECTED_DETAILS = 1000
RETRY_LINES = 64  # a block that fails is retried in parts of this many lines before going line by line
PENDING_VALUES = 1 << 16  # metric values gathered per group before they are summed (bounds the memory)

GroupKey = tuple[str, str]  # (window start "YYYY-MM-DDTHH:MM:SSZ", canonical dimensions JSON text)

_TEXT = msgspec.json.Encoder(decimal_format="number", order="sorted")
_SCALAR = msgspec.json.Decoder(float_hook=Decimal)
_RAW = msgspec.json.Decoder(msgspec.Raw)
# A normalised timestamp, hours and minutes in range: only the date is left to check (_Starts).
_STAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?Z"
_NORMALISED = re.compile(_STAMP)
_STAMPS = re.compile(f"(?:{_STAMP}\n)*{_STAMP}")  # a block's timestamps, joined by newlines
_BLANK = b" \t\r"  # JSON whitespace; bytes.isspace would also take \v and \f, which are not JSON
_LIMIT = 10**exact.MAX_INTEGER_DIGITS
_NONE = type(None)
_PLAIN_DIMENSIONS = frozenset({str, _NONE, int, Decimal})
_SCALAR_DIMENSIONS = _PLAIN_DIMENSIONS | {bool}
_INTS, _NUMBERS = frozenset({int}), frozenset({int, Decimal})
_present = partial(is_not, None)


def dimensions_text(names: Iterable[str], values: Iterable[object]) -> str:
    """The canonical JSON text of a group's dimensions: ``{name: exact.dimension_value(value)}``,
    keys sorted, compact, decimals as JSON numbers. ValueError for a value that is not a JSON scalar."""
    return _TEXT.encode(
        {name: exact.dimension_value(value) for name, value in zip(names, values, strict=True)}
    ).decode()


def window_start(timestamp: object, window_seconds: int) -> str:
    """The start of the window holding a normalised ``...Z`` timestamp; ValueError otherwise."""
    if type(timestamp) is not str:
        raise ValueError(f"timestamp is a {_json_type(timestamp)}, not an RFC 3339 UTC string")
    if not _NORMALISED.fullmatch(timestamp):
        raise ValueError(f"timestamp is not normalised RFC 3339 UTC: {timestamp[:64]!r}")
    return _minute_window(timestamp[:16], window_seconds)  # ValueError for Feb 30


def _minute_window(head: str, window_seconds: int) -> str:
    epoch = int(datetime.fromisoformat(head + ":00+00:00").timestamp())
    start = epoch - epoch % window_seconds
    return datetime.fromtimestamp(start, UTC).replace(tzinfo=None).isoformat() + "Z"


@dataclass(frozen=True)
class Stats:
    """count/sum/min/max of one metric in one group, exact."""

    count: int  # values seen
    sum: Number  # their exact sum
    min: Number  # smallest value
    max: Number  # largest value

    @classmethod
    def of(cls, value: Number) -> Stats:
        return cls(1, value, value, value)

    def merge(self, other: Stats) -> Stats:
        """Both sides' stats; raises a ``decimal`` signal rather than round a sum."""
        with exact_context():
            total = self.sum + other.sum
        return Stats(self.count + other.count, total, min(self.min, other.min), max(self.max, other.max))


@dataclass(frozen=True)
class GroupStats:
    """One group's record count and per-metric stats."""

    records: int  # records in the group
    metrics: Mapping[str, Stats] = field(default_factory=dict)  # metric name → stats (seen metrics only)

    def merge(self, other: GroupStats) -> GroupStats:
        metrics = dict(self.metrics)
        for name, stats in other.metrics.items():
            metrics[name] = metrics[name].merge(stats) if name in metrics else stats
        return GroupStats(self.records + other.records, metrics)


Groups = Mapping[GroupKey, GroupStats]


def merge(left: Groups, right: Groups) -> dict[GroupKey, GroupStats]:
    """The monoid operation: groups of both sides, shared groups merged."""
    merged = dict(left)
    for key, stats in right.items():
        merged[key] = merged[key].merge(stats) if key in merged else stats
    return merged


@dataclass(frozen=True)
class Rejected:
    """A records/ line that could not be aggregated."""

    line: int  # 1-based line number in the records/ object (0: the object as a whole)
    reason: str  # machine-readable code
    detail: str  # explanation


@dataclass(frozen=True)
class AggregateResult:
    """Everything aggregated from one records/ object."""

    groups: dict[GroupKey, GroupStats]  # the aggregates
    counts: Counts  # conservation counts
    rejected: tuple[Rejected, ...]  # the first MAX_REJECTED_DETAILS rejections
    rejected_total: int  # all rejections


class _Bool:
    """A boolean dimension value inside the aggregator: ``True == 1`` and ``hash(True) == hash(1)``, so
    a plain ``True`` in a group tuple would join the group of the number 1."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value


_TRUE, _FALSE = _Bool(True), _Bool(False)


class _Unrepresentable:
    """A number literal whose exponent no ``Decimal`` holds (``1e99999999999999999999``)."""

    __slots__ = ("negative_exponent", "zero")

    def __init__(self, literal: str) -> None:
        mantissa, _, exponent = literal.lower().partition("e")
        self.zero = not mantissa.strip("-+0.")
        self.negative_exponent = exponent.startswith("-")


_CONTAINERS = {ord("{"): "object", ord("["): "array"}


def _scalar(raw: msgspec.Raw | None) -> object:
    """A configured field's value from its raw JSON: scalars decoded exactly, a container as an empty
    ``dict``/``list`` (never decoded: it is rejected whatever it holds)."""
    if raw is None:
        return None
    kind = _CONTAINERS.get(memoryview(raw)[0])
    if kind is not None:
        return {} if kind == "object" else []
    try:
        return _SCALAR.decode(raw)
    except (msgspec.ValidationError, ArithmeticError):
        # An integer past Python's int-from-string limit, or an exponent past Decimal's: the literal is
        # still an exact number, or is one no value here can hold.
        literal = bytes(raw).decode("ascii")
        try:
            value = Decimal(literal)
        except ArithmeticError:
            return _Unrepresentable(literal)
        return value if value.is_finite() else _Unrepresentable(literal)


def _json_type(value: object) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, int | Decimal | _Unrepresentable):
        return "number"
    return type(value).__name__


class _Starts(dict[str, str]):
    """The start of the window of a timestamp's first ``length`` characters: up to the hour when the
    window is whole hours, else up to the minute, so that a few thousand entries serve days of records.
    Only for timestamps ``_NORMALISED`` has matched; ValueError for a date that does not exist.

    Equal to ``window_start`` (property-tested): every window divides a day and UTC days start on a
    multiple of it, so the start is the date and the minute of the day rounded down, with no epoch
    arithmetic; only the date needs ``datetime`` to say whether it exists.
    """

    def __init__(self, window_seconds: int) -> None:
        super().__init__()
        self.window_minutes = window_seconds // 60
        self.length = 13 if window_seconds % 3600 == 0 else 16
        self.head = itemgetter(slice(None, self.length))

    def __missing__(self, head: str) -> str:
        day = head[:10]
        try:
            date.fromisoformat(day)
        except ValueError as exc:  # Feb 30, month 13, year 0
            raise ValueError(f"timestamp {day!r}...: {exc}") from None
        minutes = int(head[11:13]) * 60 + (int(head[14:16]) if self.length == 16 else 0)
        minutes -= minutes % self.window_minutes
        start = f"{day}T{minutes // 60:02d}:{minutes % 60:02d}:00Z"
        if len(self) >= 100_000:  # a cache, not a record store: keep it bounded
            self.clear()
        self[head] = start
        return start


@dataclass(frozen=True)
class _Layout:
    """The structs a configuration decodes lines into, and how to read their fields."""

    block: msgspec.json.Decoder  # only the configured fields, decoded (``float_hook=Decimal``)
    line: msgspec.json.Decoder  # the same fields as raw JSON, for the line-by-line path
    timestamp: attrgetter  # type: ignore[type-arg]
    dimensions: tuple[attrgetter, ...]  # type: ignore[type-arg]
    metrics: tuple[attrgetter, ...]  # type: ignore[type-arg]


@lru_cache(maxsize=16)
def _layout(dimensions: tuple[str, ...], metrics: tuple[str, ...]) -> _Layout:
    names = list(dict.fromkeys(("timestamp", *dimensions, *metrics)))
    attribute = {name: f"f{index}" for index, name in enumerate(names)}
    rename = {attribute[name]: name for name in names}  # any JSON key, whatever Python allows in names
    # gc=False: the structs hold only decoded JSON values, which never refer back to them, so they
    # cannot form a cycle; untracked, a block of thousands of them does not trigger collections.
    block = msgspec.defstruct(
        "Fields",
        [
            (attribute[name], str if name == "timestamp" else Any, "" if name == "timestamp" else None)
            for name in names
        ],
        rename=rename,
        gc=False,
    )
    raw = msgspec.defstruct(
        "RawFields", [(attribute[name], msgspec.Raw, None) for name in names], rename=rename, gc=False
    )
    return _Layout(
        block=msgspec.json.Decoder(block, float_hook=Decimal),
        line=msgspec.json.Decoder(raw),
        timestamp=attrgetter(attribute["timestamp"]),
        dimensions=tuple(attrgetter(attribute[name]) for name in dimensions),
        metrics=tuple(attrgetter(attribute[name]) for name in metrics),
    )


class Aggregator:
    """Accumulates records into groups; mutable inside, frozen on ``groups``."""

    def __init__(self, window_seconds: int, dimensions: tuple[str, ...], metrics: tuple[str, ...]) -> None:
        self.window_seconds = window_seconds
        self.dimensions = dimensions
        self.metrics = metrics
        self._layout = _layout(dimensions, metrics)
        # Groups by (window start, dimension values as decoded): numerically equal numbers already share
        # a key (1 == Decimal("1.0"), with equal hashes), booleans are _Bool; ``groups`` merges what
        # canonical texts make equal.
        self._records: Counter[tuple[Any, ...]] = Counter()
        self._stats: list[dict[tuple[Any, ...], list[Any]]] = [{} for _ in metrics]  # [count, sum, min, max]
        # Block values gathered per group, then each group's taken in four C calls (``_flush``): with
        # a few values a group, that beats one Python step per value. When a flush finds most groups
        # with one value, later blocks take the step per value instead.
        self._pending: list[defaultdict[tuple[Any, ...], list[Any]]] = [defaultdict(list) for _ in metrics]
        self._pending_values = 0
        self._gather = True
        self._starts = _Starts(window_seconds)
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
            raise ValueError(f"timestamp is a {_json_type(timestamp)}, not an RFC 3339 UTC string")
        if not _NORMALISED.fullmatch(timestamp):
            raise ValueError(f"timestamp is not normalised RFC 3339 UTC: {timestamp[:64]!r}")
        return self._starts[timestamp[: self._starts.length]]

    # --- one record at a time: the reference every verdict comes from ---------------------------------

    def add_record(self, line: int, record: object) -> None:
        """One already-decoded record (numbers as ``int``/``Decimal``, as ``float_hook=Decimal`` gives)."""
        if not isinstance(record, Mapping):
            self.reject(line, "not_an_object", f"got {_json_type(record)}")
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
            elif kind is _Unrepresentable and value.zero:
                key.append(0)
            elif kind is Decimal or kind is _Unrepresentable:
                self.reject(line, "dimension_out_of_range", f"{name[:64]} is a number no decimal holds")
                return
            else:
                self.reject(line, "dimension_not_scalar", f"{name[:64]}: {_json_type(value)}, not a scalar")
                return
        values = []
        for index, (name, value) in enumerate(zip(self.metrics, metrics, strict=True)):
            if value is None:
                continue
            if type(value) is _Unrepresentable:
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
        group = tuple(key)
        self._records[group] += 1
        for index, value in values:
            stats = self._stats[index]
            current = stats.get(group)
            if current is None:
                stats[group] = [1, value, value, value]
            else:
                current[0] += 1
                current[1] += value
                if value < current[2]:
                    current[2] = value
                elif value > current[3]:
                    current[3] = value
        self.valid += 1

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
                self.reject(number, "not_an_object", f"got {_json_type(_scalar(value))}")
            return
        except (msgspec.DecodeError, RecursionError) as exc:
            self.reject(number, "invalid_json", str(exc) or "nesting too deep")
            return
        layout = self._layout
        self._add_values(
            number,
            _scalar(layout.timestamp(record)),
            [_scalar(get(record)) for get in layout.dimensions],
            [_scalar(get(record)) for get in layout.metrics],
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
        if not _STAMPS.fullmatch(joined) or joined.count("\n") != len(timestamps) - 1:
            return False
        try:
            columns: list[list[Any]] = [
                list(map(self._starts.__getitem__, map(self._starts.head, timestamps)))
            ]
        except ValueError:
            return False
        for get in layout.dimensions:
            column = list(map(get, records))
            kinds = set(map(type, column))
            if not kinds <= _PLAIN_DIMENSIONS:
                if not kinds <= _SCALAR_DIMENSIONS:
                    return False
                column = [(_TRUE if value else _FALSE) if type(value) is bool else value for value in column]
            columns.append(column)
        keys = list(zip(*columns, strict=True))
        metrics = []
        for get in layout.metrics:
            column = list(map(get, records))
            kinds = set(map(type, column))
            if _NONE in kinds:
                kinds.discard(_NONE)
                present = list(filter(_present, column))
                group_keys = list(compress(keys, map(is_not, column, repeat(None))))
            else:
                present, group_keys = column, keys
            if not present:
                metrics.append(None)
                continue
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
            metrics.append((group_keys, present))
        self._records.update(keys)
        for index, prepared in enumerate(metrics):
            if prepared is None:
                continue
            group_keys, present = prepared
            if self._gather:
                pending = self._pending[index]
                deque(map(list.append, map(pending.__getitem__, group_keys), present), maxlen=0)
                self._pending_values += len(present)
            else:
                _accumulate(self._stats[index], group_keys, present)
        if self._pending_values >= PENDING_VALUES:
            self._flush()
        self.valid += len(records)
        return True

    def _flush(self) -> None:
        groups = 0
        with exact_context():
            for stats, pending in zip(self._stats, self._pending, strict=True):
                groups += len(pending)
                _add_gathered(stats, pending)
                pending.clear()
        self._gather = self._pending_values >= 2 * groups
        self._pending_values = 0

    # --- results --------------------------------------------------------------------------------------

    def groups(self) -> dict[GroupKey, GroupStats]:
        self._flush()
        groups: dict[GroupKey, GroupStats] = {}
        texts: dict[tuple[Any, ...], str] = {}
        for group, records in self._records.items():
            values = group[1:]
            text = texts.get(values)
            if text is None:
                text = texts[values] = dimensions_text(
                    self.dimensions, [value.value if type(value) is _Bool else value for value in values]
                )
            metrics = {
                name: Stats(*stats[group])
                for name, stats in zip(self.metrics, self._stats, strict=True)
                if group in stats
            }
            key, found = (group[0], text), GroupStats(records, metrics)
            groups[key] = groups[key].merge(found) if key in groups else found
        return groups

    @property
    def rejected(self) -> tuple[Rejected, ...]:
        return tuple(self._rejected)


def _accumulate(
    stats: dict[tuple[Any, ...], list[Any]], keys: list[tuple[Any, ...]], values: list[Any]
) -> None:
    get = stats.get
    for key, value in zip(keys, values, strict=True):
        current = get(key)
        if current is None:
            stats[key] = [1, value, value, value]
        else:
            current[0] += 1
            current[1] += value
            if value < current[2]:
                current[2] = value
            elif value > current[3]:
                current[3] = value


def _add_gathered(
    stats: dict[tuple[Any, ...], list[Any]], pending: Mapping[tuple[Any, ...], list[Any]]
) -> None:
    get = stats.get
    for key, group in pending.items():
        count, total, low, high = len(group), sum(group), min(group), max(group)
        current = get(key)
        if current is None:
            stats[key] = [count, total, low, high]
        else:
            current[0] += count
            current[1] += total
            if low < current[2]:
                current[2] = low
            if high > current[3]:
                current[3] = high


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


def _blocks(read: Read, line_limit: int) -> Iterator[bytes | int]:
    """The payload as blocks of complete lines (each ending in a newline; a last line without one gets
    one), and for a line longer than ``line_limit`` its size instead (an ``int``), in order."""
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


def aggregate_stream(
    read: Read,
    window_seconds: int,
    dimensions: tuple[str, ...],
    metrics: tuple[str, ...],
    *,
    line_limit: int = RECORDS_LINE_LIMIT,
) -> AggregateResult:
    """Aggregate a gzip JSON Lines ``records/`` object, streamed; never raises for bad content."""
    aggregator = Aggregator(window_seconds, dimensions, metrics)
    lines = 0
    try:
        for block in _blocks(payload_reader(read, True), line_limit):
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
    counts = Counts(
        records_read=lines,
        records_valid=aggregator.valid,
        records_quarantined=aggregator.rejected_total,
        blank_lines=aggregator.blank,
    )
    return AggregateResult(aggregator.groups(), counts, aggregator.rejected, aggregator.rejected_total)


# --- the aggregates document ------------------------------------------------------------------------


class Origin(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The raw object version an aggregates document comes from."""

    rel: Annotated[str, msgspec.Meta(min_length=1)]  # the raw key without the input prefix
    sequencer: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-F]{1,64}$")]  # the raw version's S3 sequencer
    version_id: str | None  # the raw version's id; None when the raw bucket is not versioned


def _stats_document(stats: Stats) -> dict[str, Any]:
    return {
        "count": stats.count,
        "sum": exact.canonical(stats.sum),
        "min": exact.canonical(stats.min),
        "max": exact.canonical(stats.max),
    }


def to_document(
    result: AggregateResult,
    source: Mapping[str, Any],
    window: str,
    window_seconds: int,
    dimensions: tuple[str, ...],
    metrics: tuple[str, ...],
    *,
    origin: Origin,
) -> bytes:
    """The aggregates document's bytes (see the module docstring)."""
    counts = result.counts
    document = {
        "format": FORMAT,
        "source": dict(source),
        "origin": origin,
        "window": window,
        "window_seconds": window_seconds,
        "dimensions": list(dimensions),
        "metrics": list(metrics),
        "counts": {
            "records_read": counts.records_read,
            "records_valid": counts.records_valid,
            "records_quarantined": counts.records_quarantined,
            "blank_lines": counts.blank_lines,
        },
        "groups": [
            {
                "window_start": start,
                "dimensions": msgspec.Raw(text.encode()),  # already canonical JSON, keys sorted
                "records": stats.records,
                "metrics": {name: _stats_document(s) for name, s in stats.metrics.items()},
            }
            for (start, text), stats in sorted(result.groups.items())
        ],
        "rejected": [{"line": r.line, "reason": r.reason, "detail": r.detail} for r in result.rejected],
        "rejected_total": result.rejected_total,
    }
    return _TEXT.encode(document)


FieldName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FIELD_NAME)]
Count = Annotated[int, msgspec.Meta(ge=0)]
COUNT_NAMES = ("records_read", "records_valid", "records_quarantined", "blank_lines")


class MetricDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One metric's stats in a group of an aggregates document, as written."""

    count: Annotated[int, msgspec.Meta(ge=1)]  # values seen
    sum: str  # their exact sum, canonical (exact.canonical)
    min: str  # smallest value, canonical
    max: str  # largest value, canonical


class GroupDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One group of an aggregates document, as written."""

    window_start: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")]
    dimensions: dict[str, msgspec.Raw]  # dimension name → canonical value (every configured name)
    records: Annotated[int, msgspec.Meta(ge=1)]  # records in the group
    metrics: dict[FieldName, MetricDocument]  # seen metrics only


class AggregatesDocument(msgspec.Struct, frozen=True):
    """An aggregates document, checked when it is read (``read_document``)."""

    format: str  # FORMAT
    origin: Origin  # the raw object version the aggregates come from
    window: str  # one of handlers.config.WINDOWS
    window_seconds: int  # WINDOWS[window]
    dimensions: list[FieldName]  # dimension names, in config order
    metrics: list[FieldName]  # metric names, in config order
    counts: dict[str, Count]  # the records/ object's conservation counts (COUNT_NAMES)
    groups: list[GroupDocument]  # the aggregates
    rejected_total: Count = 0  # lines processing could not aggregate


class _Format(msgspec.Struct):
    format: str = ""


_read_format = msgspec.json.Decoder(_Format).decode
_read = msgspec.json.Decoder(AggregatesDocument).decode


def read_document(raw: bytes) -> AggregatesDocument:
    """An aggregates document's bytes, checked; ValueError naming the first problem if it is not one.

    Everything analytics loads into the database is checked here, so a bad document is reported
    rather than failing each retry in the middle of a load: the format, types and required fields, a
    known window, real window starts, canonical numbers with sums within ``exact.SUM_DIGITS`` digits
    (at most ``MAX_FRACTION_DIGITS`` of them after the point) and min/max within the metric range,
    each group's dimensions, and the counts' conservation.
    """
    try:
        found = _read_format(raw).format
        if found != FORMAT:
            raise ValueError(f"not an {FORMAT} document (format {found[:64]!r})")
        document = _read(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # ValidationError included
        raise ValueError(str(exc) or "nesting too deep") from exc
    if document.window not in WINDOWS:
        raise ValueError(f"$.window: {document.window[:16]!r} is not one of {', '.join(WINDOWS)}")
    if document.window_seconds != WINDOWS[document.window]:
        raise ValueError(f"$.window_seconds: {document.window_seconds} is not {document.window}")
    for where, names in (("$.dimensions", document.dimensions), ("$.metrics", document.metrics)):
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: a name is listed twice")
    if sorted(document.counts) != sorted(COUNT_NAMES):
        raise ValueError(f"$.counts: expected exactly {', '.join(COUNT_NAMES)}")
    counts = document.counts
    if (
        counts["records_read"]
        != counts["records_valid"] + counts["records_quarantined"] + counts["blank_lines"]
    ):
        raise ValueError("$.counts: records_read is not records_valid + records_quarantined + blank_lines")
    if counts["records_quarantined"] != document.rejected_total:
        raise ValueError("$.rejected_total: not counts.records_quarantined")
    groups = _groups(document)
    if sum(stats.records for stats in groups.values()) != counts["records_valid"]:
        raise ValueError("$.groups: their records do not add up to counts.records_valid")
    return document


def groups_from_document(document: AggregatesDocument) -> dict[GroupKey, GroupStats]:
    """The groups of a checked aggregates document (``read_document``)."""
    return _groups(document)


def _groups(document: AggregatesDocument) -> dict[GroupKey, GroupStats]:
    names = set(document.dimensions)
    known = set(document.metrics)
    groups: dict[GroupKey, GroupStats] = {}
    for index, group in enumerate(document.groups):
        where = f"$.groups[{index}]"
        try:
            datetime.fromisoformat(group.window_start[:-1])
        except ValueError as exc:
            raise ValueError(f"{where}.window_start: {exc}") from exc
        if set(group.dimensions) != names:
            raise ValueError(f"{where}.dimensions: expected exactly the names in $.dimensions")
        values = [
            _dimension(f"{where}.dimensions.{name[:64]}", group.dimensions[name])
            for name in document.dimensions
        ]
        metrics = {}
        for name, stats in group.metrics.items():
            at = f"{where}.metrics.{name[:64]}"
            if name not in known:
                raise ValueError(f"{at}: not a metric in $.metrics")
            if stats.count > group.records:
                raise ValueError(f"{at}.count: more values than the group's records")
            low, high = _bound(f"{at}.min", stats.min), _bound(f"{at}.max", stats.max)
            if low > high:
                raise ValueError(f"{at}: min is greater than max")
            metrics[name] = Stats(stats.count, _sum(f"{at}.sum", stats.sum), low, high)
        key = (group.window_start, dimensions_text(document.dimensions, values))
        if key in groups:
            raise ValueError(f"{where}: the same window and dimensions as an earlier group")
        groups[key] = GroupStats(group.records, metrics)
    return groups


_CANONICAL = re.compile(r"(?!-0\Z)-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?", re.ASCII)


def _number(where: str, text: str) -> Number:
    # The spelling is checked before the value is built: "1e999999999" is one short string, but a
    # billion digits once written out.
    if len(text) > exact.SUM_DIGITS + 2 or not _CANONICAL.fullmatch(text):
        raise ValueError(f"{where}: {text[:64]!r} is not a canonical decimal (exact.canonical)")
    return exact.parse(text)


def _bound(where: str, text: str) -> Number:
    value = _number(where, text)
    try:
        return metric_value(value)
    except MetricValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


_SUM_INTEGER_DIGITS = exact.SUM_DIGITS - exact.MAX_FRACTION_DIGITS


def _sum(where: str, text: str) -> Number:
    value = _number(where, text)
    integer, _, fraction = text.lstrip("-").partition(".")
    if len(fraction) > exact.MAX_FRACTION_DIGITS or len(integer) > _SUM_INTEGER_DIGITS:
        raise ValueError(
            f"{where}: more than {exact.SUM_DIGITS} digits ({exact.MAX_FRACTION_DIGITS} after the point)"
        )
    return value


def _dimension(where: str, raw: msgspec.Raw) -> object:
    try:
        value = _scalar(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # not checked when the document was read
        raise ValueError(f"{where}: {exc}") from None
    if isinstance(value, dict | list):
        raise ValueError(f"{where}: not a JSON scalar")
    if type(value) is _Unrepresentable:
        raise ValueError(f"{where}: a number no decimal holds")
    canonical = exact.dimension_value(value)
    if type(value) in (int, Decimal) and _TEXT.encode(canonical) != bytes(raw):
        raise ValueError(
            f"{where}: {bytes(raw)[:64]!r} is not the canonical number {_TEXT.encode(canonical)[:64]!r}"
        )
    return canonical
