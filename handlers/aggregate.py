"""Processing core: records → per-window, per-dimension aggregates, and the aggregates document.

Memory grows with the number of groups (windows times dimension values), never with the number of
records: each record updates its group's counters and is dropped.

Aggregates form a commutative monoid under ``merge`` (counts and sums add, min and max keep), so
aggregating files separately and merging in any order equals aggregating all records at once — the
property the analytics stage's database upsert relies on (tested with hypothesis).

The aggregates document (processing → analytics), one JSON object per ``records/`` object, written
with sorted keys and sorted groups so its bytes are a pure function of the input and the config::

    {
      "format": "data-pipeline/aggregates@1",
      "source": {"bucket": str, "key": str, "sha256": str},   # the records/ object's bytes
      "window": "1h", "window_seconds": 3600,
      "dimensions": ["type", "source"], "metrics": ["value"],
      "counts": {"records_read": int, "records_valid": int, "records_quarantined": int, "blank_lines": int},
      "groups": [
        {"window_start": "2024-05-01T12:00:00Z",
         "dimensions": {"type": "click", "source": null},   # a missing field is null
         "records": int,
         "metrics": {"value": {"count": int, "sum": number, "min": number, "max": number}}}
      ],
      "rejected": [{"line": int, "reason": str, "detail": str}],
      "rejected_total": int
    }

``records_valid`` counts aggregated records and ``records_quarantined`` rejected ones. A metric absent
from a record (or null) does not count for that metric; a group lists only metrics it has seen.
``rejected`` keeps the first ``MAX_REJECTED_DETAILS`` entries (``rejected_total`` counts them all):
every rejected line is still in the ``records/`` object, which the document names. Reasons:
``invalid_json``, ``invalid_utf8``, ``not_an_object``, ``invalid_timestamp``, ``dimension_not_scalar``,
``metric_not_numeric``, ``metric_out_of_range`` (a value, or the group's sum with it, beyond float
range), ``record_too_large``, and for a ``records/`` object that cannot be read at all
(line 0) ``not_gzip``, ``truncated_gzip``, ``corrupt_gzip``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from handlers.config import MAX_FIELD_NAME, WINDOWS
from handlers.errors import UnreadableObjectError
from handlers.ingest import Oversize, Read, iter_lines, payload_reader
from handlers.metrics import Counts

FORMAT = "data-pipeline/aggregates@1"
MAX_REJECTED_DETAILS = 1000
MAX_LINE_BYTES = 16 << 20  # records/ lines are at most MAX_RECORD_BYTES plus normalisation
FLOAT_MAX = sys.float_info.max  # metrics, their sums included, must fit the database's double columns

Scalar = str | int | float | bool | None
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
GroupKey = tuple[str, tuple[Scalar, ...]]  # (window start, dimension values in config order)

_NORMALISED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(?:\.\d{1,6})?Z", re.ASCII)


@dataclass(frozen=True)
class Stats:
    """count/sum/min/max of one metric in one group."""

    count: int  # values seen
    sum: float  # their sum (ints stay exact ints)
    min: float  # smallest value
    max: float  # largest value

    @classmethod
    def of(cls, value: float) -> Stats:
        return cls(1, value, value, value)

    def merge(self, other: Stats) -> Stats:
        return Stats(
            self.count + other.count, self.sum + other.sum, min(self.min, other.min), max(self.max, other.max)
        )


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


def window_start(timestamp: object, window_seconds: int) -> str:
    """The start of the window holding a normalised ``...Z`` timestamp; ValueError otherwise."""
    if not isinstance(timestamp, str) or not _NORMALISED.fullmatch(timestamp):
        raise ValueError(f"timestamp is not normalised RFC 3339 UTC: {str(timestamp)[:64]!r}")
    epoch = int(datetime.fromisoformat(timestamp[:19] + "+00:00").timestamp())
    start = epoch - epoch % window_seconds
    return datetime.fromtimestamp(start, UTC).replace(tzinfo=None).isoformat() + "Z"


class Aggregator:
    """Accumulates records into groups; mutable inside, frozen on ``result``."""

    def __init__(self, window_seconds: int, dimensions: tuple[str, ...], metrics: tuple[str, ...]) -> None:
        self.window_seconds = window_seconds
        self.dimensions = dimensions
        self.metrics = metrics
        # group → [records, {metric: [count, sum, min, max]}]
        self._groups: dict[GroupKey, list[Any]] = {}
        self._windows: dict[str, str] = {}  # minute prefix → window start (windows are whole minutes)
        self._rejected: list[Rejected] = []
        self.rejected_total = 0
        self.valid = 0

    def reject(self, line: int, reason: str, detail: str) -> None:
        self.rejected_total += 1
        if len(self._rejected) < MAX_REJECTED_DETAILS:
            self._rejected.append(Rejected(line, reason, detail))

    def _window(self, timestamp: object) -> str:
        if isinstance(timestamp, str) and _NORMALISED.fullmatch(timestamp):
            minute = timestamp[:16]
            start = self._windows.get(minute)
            if start is None:
                if len(self._windows) >= 100_000:  # a cache, not a record store: keep it bounded
                    self._windows.clear()
                start = self._windows[minute] = window_start(timestamp, self.window_seconds)
            return start
        return window_start(timestamp, self.window_seconds)

    def add_record(self, line: int, record: object) -> None:
        if not isinstance(record, dict):
            self.reject(line, "not_an_object", f"got {type(record).__name__}")
            return
        try:
            start = self._window(record.get("timestamp"))
        except ValueError as exc:
            self.reject(line, "invalid_timestamp", str(exc))
            return
        dims = tuple(record.get(name) for name in self.dimensions)
        for name, value in zip(self.dimensions, dims, strict=True):
            if isinstance(value, dict | list):
                self.reject(line, "dimension_not_scalar", f"{name} is a {type(value).__name__}")
                return
        values = []
        for name in self.metrics:
            value = record.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.reject(line, "metric_not_numeric", f"{name} is a {type(value).__name__}")
                return
            values.append((name, value))
        group = self._groups.get((start, dims))
        stats = group[1] if group is not None else {}
        # Checked before anything changes: a sum past float range would be written as null and fail
        # the database's double columns on every retry, and ints of any size pass ingestion.
        for name, value in values:
            if -FLOAT_MAX <= value <= FLOAT_MAX:
                current = stats.get(name)
                total = value if current is None else current[1] + value
                if -FLOAT_MAX <= total <= FLOAT_MAX:
                    continue
            self.reject(line, "metric_out_of_range", f"{name} or its group's sum is beyond float range")
            return
        if group is None:
            group = self._groups[(start, dims)] = [0, stats]
        group[0] += 1
        for name, value in values:
            current = stats.get(name)
            if current is None:
                stats[name] = [1, value, value, value]
            else:
                current[0] += 1
                current[1] += value
                if value < current[2]:
                    current[2] = value
                if value > current[3]:
                    current[3] = value
        self.valid += 1

    def groups(self) -> dict[GroupKey, GroupStats]:
        return {
            key: GroupStats(records, {name: Stats(*values) for name, values in metrics.items()})
            for key, (records, metrics) in self._groups.items()
        }

    @property
    def rejected(self) -> tuple[Rejected, ...]:
        return tuple(self._rejected)


def aggregate_records(
    records: Iterable[Mapping[str, Any]],
    window_seconds: int,
    dimensions: tuple[str, ...],
    metrics: tuple[str, ...],
) -> dict[GroupKey, GroupStats]:
    """Aggregate already-parsed records (the reference the merge laws are tested against)."""
    aggregator = Aggregator(window_seconds, dimensions, metrics)
    for number, record in enumerate(records, start=1):
        aggregator.add_record(number, record)
    return aggregator.groups()


def aggregate_stream(
    read: Read, window_seconds: int, dimensions: tuple[str, ...], metrics: tuple[str, ...]
) -> AggregateResult:
    """Aggregate a gzip JSON Lines ``records/`` object, streamed; never raises for bad content."""
    aggregator = Aggregator(window_seconds, dimensions, metrics)
    read_count = blank = 0
    try:
        for number, line in enumerate(iter_lines(payload_reader(read, True), MAX_LINE_BYTES), start=1):
            read_count = number
            if isinstance(line, Oversize):
                aggregator.reject(number, "record_too_large", f"{line.size} bytes")
                continue
            if not line or line.isspace():
                blank += 1
                continue
            try:
                record = _decode(line)
            except UnicodeDecodeError as exc:
                aggregator.reject(number, "invalid_utf8", str(exc))
                continue
            except (msgspec.DecodeError, RecursionError) as exc:
                aggregator.reject(number, "invalid_json", str(exc) or "nesting too deep")
                continue
            aggregator.add_record(number, record)
    except UnreadableObjectError as error:
        # Whole or nothing, as in ingestion: a partly readable object contributes no groups.
        aggregator = Aggregator(window_seconds, dimensions, metrics)
        aggregator.reject(0, error.reason, error.detail)
        read_count, blank = 1, 0
    counts = Counts(
        records_read=read_count,
        records_valid=aggregator.valid,
        records_quarantined=aggregator.rejected_total,
        blank_lines=blank,
    )
    return AggregateResult(aggregator.groups(), counts, aggregator.rejected, aggregator.rejected_total)


def _sort_key(item: tuple[GroupKey, GroupStats]) -> tuple[str, bytes]:
    (start, dims), _ = item
    return start, _encode(dims)


def to_document(
    result: AggregateResult,
    source: Mapping[str, Any],
    window: str,
    window_seconds: int,
    dimensions: tuple[str, ...],
    metrics: tuple[str, ...],
) -> bytes:
    """The aggregates document's bytes (see the module docstring)."""
    counts = result.counts
    document = {
        "format": FORMAT,
        "source": dict(source),
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
                "dimensions": dict(zip(dimensions, dims, strict=True)),
                "records": stats.records,
                "metrics": {
                    name: {"count": s.count, "sum": s.sum, "min": s.min, "max": s.max}
                    for name, s in stats.metrics.items()
                },
            }
            for (start, dims), stats in sorted(result.groups.items(), key=_sort_key)
        ],
        "rejected": [{"line": r.line, "reason": r.reason, "detail": r.detail} for r in result.rejected],
        "rejected_total": result.rejected_total,
    }
    return msgspec.json.encode(document, order="sorted")


class MetricDocument(msgspec.Struct, frozen=True):
    """One metric's stats in a group of an aggregates document."""

    count: Annotated[int, msgspec.Meta(ge=1)]  # values seen
    sum: int | float  # their sum
    min: int | float  # smallest value
    max: int | float  # largest value


class GroupDocument(msgspec.Struct, frozen=True):
    """One group of an aggregates document."""

    window_start: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")]  # window
    dimensions: dict[str, Scalar]  # dimension name → value (a missing one reads as null)
    records: Annotated[int, msgspec.Meta(ge=0)]  # records in the group
    metrics: dict[Annotated[str, msgspec.Meta(max_length=MAX_FIELD_NAME)], MetricDocument]  # seen ones only


class AggregatesDocument(msgspec.Struct, frozen=True):
    """The fields of an aggregates document that analytics uses, checked when it is read."""

    format: str  # FORMAT
    window: str  # one of handlers.config.WINDOWS
    dimensions: list[str]  # dimension names, in config order
    counts: dict[str, int]  # the records/ object's conservation counts
    groups: list[GroupDocument]  # the aggregates
    rejected_total: Annotated[int, msgspec.Meta(ge=0)] = 0  # lines processing could not aggregate


_read = msgspec.json.Decoder(AggregatesDocument).decode


def read_document(raw: bytes) -> AggregatesDocument:
    """An aggregates document's bytes, checked; ValueError, with the first problem, if it is not one.

    Everything analytics loads into the database is checked here, so a bad document is reported
    rather than failing each retry in the middle of a load: types and required fields, a known
    window, real window starts, and numbers inside the database's double range.
    """
    try:
        document = _read(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # ValidationError included
        raise ValueError(str(exc) or "nesting too deep") from exc
    if document.format != FORMAT:
        raise ValueError(f"not an aggregates document (format {document.format[:64]!r})")
    if document.window not in WINDOWS:
        raise ValueError(f"window {document.window[:16]!r} is not one of {', '.join(WINDOWS)}")
    for index, group in enumerate(document.groups):
        where = f"$.groups[{index}]"
        try:
            datetime.fromisoformat(group.window_start[:-1])
        except ValueError as exc:
            raise ValueError(f"{where}.window_start: {exc}") from exc
        for name, stats in group.metrics.items():
            if not all(-FLOAT_MAX <= value <= FLOAT_MAX for value in (stats.sum, stats.min, stats.max)):
                raise ValueError(f"{where}.metrics.{name[:64]}: beyond float range")
    return document


def groups_from_document(document: AggregatesDocument) -> dict[GroupKey, GroupStats]:
    """The groups of a checked aggregates document (``read_document``)."""
    groups: dict[GroupKey, GroupStats] = {}
    for group in document.groups:
        key = (group.window_start, tuple(group.dimensions.get(name) for name in document.dimensions))
        metrics = {name: Stats(s.count, s.sum, s.min, s.max) for name, s in group.metrics.items()}
        stats = GroupStats(group.records, metrics)
        groups[key] = groups[key].merge(stats) if key in groups else stats
    return groups
