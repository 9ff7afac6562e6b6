"""Groups of the processing stage: keys, exact statistics, and the reading of a record's fields.

A group is a window start and the canonical text of its dimension values (``GroupKey``,
``dimensions_text``): numerically equal numbers are one group (``1``, ``1.0``, ``1e0``; ``0``, ``-0.0``),
while ``true`` is never the number 1 and ``"1"`` never a number. The database stores that text.
``Stats`` and ``GroupStats`` form a commutative monoid under ``merge`` (counts and sums add, min and max
keep). The aggregation itself is ``handlers.aggregation``, the document ``handlers.documents``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

import msgspec

from handlers import exact, scaled
from handlers.exact import Number, exact_context
from handlers.metrics import Counts

FORMAT = "data-pipeline/aggregates@2"
MAX_REJECTED_DETAILS = 1000
RETRY_LINES = 64  # a block that fails is retried in parts of this many lines before going line by line
PENDING_VALUES = 1 << 16  # metric values gathered per group before they are summed (bounds the memory)

GroupKey = tuple[str, str]  # (window start "YYYY-MM-DDTHH:MM:SSZ", canonical dimensions JSON text)

# Canonical JSON text: keys sorted, compact, decimals as JSON numbers (dimensions and documents).
TEXT = msgspec.json.Encoder(decimal_format="number", order="sorted")
_SCALAR = msgspec.json.Decoder(float_hook=Decimal)
# A normalised timestamp, hours and minutes in range: only the date is left to check (Starts).
_HEAD_13 = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3])"
_HEAD_16 = _HEAD_13 + ":[0-5][0-9]"
_STAMP = _HEAD_16 + r":[0-5][0-9](?:Z|\.[0-9]{1,6}Z)"  # the fraction a branch: see Starts
NORMALISED = re.compile(_STAMP)


def dimensions_text(names: Iterable[str], values: Iterable[object]) -> str:
    """The canonical JSON text of a group's dimensions: ``{name: exact.dimension_value(value)}``,
    keys sorted, compact, decimals as JSON numbers. ValueError for a value that is not a JSON scalar."""
    return TEXT.encode(
        {name: exact.dimension_value(value) for name, value in zip(names, values, strict=True)}
    ).decode()


def window_start(timestamp: object, window_seconds: int) -> str:
    """The start of the window holding a normalised ``...Z`` timestamp; ValueError otherwise."""
    if type(timestamp) is not str:
        raise ValueError(f"timestamp is a {json_type(timestamp)}, not an RFC 3339 UTC string")
    if not NORMALISED.fullmatch(timestamp):
        raise ValueError(f"timestamp is not normalised RFC 3339 UTC: {timestamp[:64]!r}")
    return _minute_window(timestamp[:16], window_seconds)  # ValueError for Feb 30


def _minute_window(head: str, window_seconds: int) -> str:
    epoch = int(datetime.fromisoformat(head + ":00+00:00").timestamp())
    start = epoch - epoch % window_seconds
    return datetime.fromtimestamp(start, UTC).replace(tzinfo=None).isoformat() + "Z"


class Stats(msgspec.Struct, frozen=True, gc=False):
    """count/sum/min/max of one metric in one group, exact (a struct: built once per group and metric,
    so its construction is on the processing stage's hot path)."""

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


class GroupStats(msgspec.Struct, frozen=True, gc=False):
    """One group's record count and per-metric stats (a struct, like ``Stats``; untracked by the cyclic
    garbage collector, as its dict of ``Stats`` then is too: neither can refer back to it)."""

    records: int  # records in the group
    metrics: Mapping[str, Stats] = msgspec.field(default_factory=dict)  # metric name → stats (seen only)

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


class Bool:
    """A boolean dimension value inside the aggregator: ``True == 1`` and ``hash(True) == hash(1)``, so
    a plain ``True`` in a group tuple would join the group of the number 1."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value


class Unrepresentable:
    """A number literal whose exponent no ``Decimal`` holds (``1e99999999999999999999``)."""

    __slots__ = ("negative_exponent", "zero")

    def __init__(self, literal: str) -> None:
        mantissa, _, exponent = literal.lower().partition("e")
        self.zero = not mantissa.strip("-+0.")
        self.negative_exponent = exponent.startswith("-")


_CONTAINERS = {ord("{"): "object", ord("["): "array"}


def scalar(raw: msgspec.Raw | None) -> object:
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
            return Unrepresentable(literal)
        return value if value.is_finite() else Unrepresentable(literal)


def json_type(value: object) -> str:
    """The JSON type name of a decoded value, for rejection details."""
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
    if isinstance(value, int | Decimal | Unrepresentable):
        return "number"
    return type(value).__name__


class Starts(dict[str, str]):
    """The start of the window of a timestamp's first ``length`` characters: up to the hour when the
    window is whole hours, else up to the minute, so that a few thousand entries serve days of records.
    ValueError for a head no normalised timestamp has (hour 24) or whose date does not exist; ``stamps``
    checks the rest of a block's timestamps.

    Equal to ``window_start`` (property-tested): every window divides a day and UTC days start on a
    multiple of it, so the start is the date and the minute of the day rounded down, with no epoch
    arithmetic; only the date needs ``datetime`` to say whether it exists.
    """

    def __init__(self, window_seconds: int) -> None:
        super().__init__()
        self.window_minutes = window_seconds // 60
        self.length = 13 if window_seconds % 3600 == 0 else 16
        self.head = itemgetter(slice(None, self.length))
        # A block's timestamps joined by newlines, each head left to __missing__ (checked once a head,
        # not once a record): the rest is as NORMALISED has it. The repeat is possessive (a stamp holds
        # no newline, so nothing is ever given back) and the fraction a branch, not an optional group:
        # the matcher then seldom saves its state, about half the time of "(?:stamp\n)*stamp".
        tail = _STAMP[len(_HEAD_13) :] if self.length == 13 else _STAMP[len(_HEAD_16) :]
        stamp = f"[^\n]{{{self.length}}}{tail}"
        self.stamps = re.compile(f"{stamp}(?:\n{stamp})*+")
        self.heads = re.compile(_HEAD_13 if self.length == 13 else _HEAD_16)

    def __missing__(self, head: str) -> str:
        if not self.heads.fullmatch(head):
            raise ValueError(f"timestamp is not normalised RFC 3339 UTC: {head!r}...")
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

    block: msgspec.json.Decoder  # only the configured fields, decoded (``float_hook=scaled.keep``)
    line: msgspec.json.Decoder  # the same fields as raw JSON, for the line-by-line path
    timestamp: attrgetter  # type: ignore[type-arg]
    dimensions: tuple[attrgetter, ...]  # type: ignore[type-arg]
    metrics: tuple[attrgetter, ...]  # type: ignore[type-arg]


@lru_cache(maxsize=16)
def layout(dimensions: tuple[str, ...], metrics: tuple[str, ...]) -> _Layout:
    """The decoders of a record's configured fields (a block's and one line's) and their getters."""
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
        block=msgspec.json.Decoder(block, float_hook=scaled.keep),
        line=msgspec.json.Decoder(raw),
        timestamp=attrgetter(attribute["timestamp"]),
        dimensions=tuple(attrgetter(attribute[name]) for name in dimensions),
        metrics=tuple(attrgetter(attribute[name]) for name in metrics),
    )
