"""The aggregates document (processing → analytics), one JSON object per ``records/`` object, written
with sorted keys and sorted groups so its bytes are a pure function of the input and the config::

    {
      "format": "data-pipeline/aggregates@2",
      "source": {"bucket": str, "key": str, "sha256": str},   # the records/ object's bytes
      "origin": {"rel": str, "sequencer": str, "version_id": str | null,   # the raw version
                 "part": int, "parts": int | null},   # which records/ part (absent: 0 of 1)
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
``source-version-id`` metadata (null when the raw bucket is not versioned). ``part`` is the records/
part the document aggregates (``records/<rel>/<sequencer>.p00001.jsonl.gz`` is part 1,
``handlers.events.part_key``) and ``parts`` how many parts the version has, from part 0's
``records-parts`` metadata; a later part does not know it (null). Both are left out for part 0 of a
version of one part, so its document is byte for byte what it was before parts existed. ``sum``, ``min``
and ``max`` are canonical decimal strings (``exact.canonical``). ``records_valid`` counts aggregated
records and ``records_quarantined`` rejected ones. A metric absent from a record (or null) does not count
for that metric; a group lists only metrics it has seen. ``rejected`` keeps the first
``MAX_REJECTED_DETAILS`` entries (``rejected_total`` counts them all): every rejected line is still in the
``records/`` object, which the document names.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from handlers import exact
from handlers.config import MAX_FIELD_NAME, WINDOWS
from handlers.contract import DOCUMENT_SHA256_METADATA, PARTS_METADATA
from handlers.exact import MetricValueError, Number, metric_value
from handlers.groups import (
    FORMAT,
    TEXT,
    AggregateResult,
    GroupKey,
    GroupStats,
    Stats,
    Unrepresentable,
    dimensions_text,
    scalar,
)


class Origin(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The raw object version (and part of it) an aggregates document comes from.

    ``part`` and ``parts`` are written only when they are not 0 and 1, so the document of a version
    of one part is what it was before parts existed."""

    rel: Annotated[str, msgspec.Meta(min_length=1)]  # the raw key without the input prefix
    sequencer: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-F]{1,64}$")]  # the raw version's S3 sequencer
    version_id: str | None  # the raw version's id; None when the raw bucket is not versioned
    part: Annotated[int, msgspec.Meta(ge=0)] = 0  # which records/ part of the version (handlers.parts)
    parts: Annotated[int, msgspec.Meta(ge=1)] | None = 1  # how many: part 0 knows, later parts None


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
                "metrics": {name: metric_document(s) for name, s in stats.metrics.items()},
            }
            for (start, text), stats in sorted(result.groups.items())
        ],
        "rejected": [{"line": r.line, "reason": r.reason, "detail": r.detail} for r in result.rejected],
        "rejected_total": result.rejected_total,
    }
    return TEXT.encode(document)


FieldName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FIELD_NAME)]
Count = Annotated[int, msgspec.Meta(ge=0)]
COUNT_NAMES = ("records_read", "records_valid", "records_quarantined", "blank_lines")


class MetricDocument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One metric's stats in a group of an aggregates document, as written."""

    count: Annotated[int, msgspec.Meta(ge=1)]  # values seen
    sum: str  # their exact sum, canonical (exact.canonical)
    min: str  # smallest value, canonical
    max: str  # largest value, canonical


def metric_document(stats: Stats) -> MetricDocument:
    """One metric's stats as a document (and a report) writes them, exactly."""
    return MetricDocument(
        stats.count, exact.canonical(stats.sum), exact.canonical(stats.min), exact.canonical(stats.max)
    )


def head_metadata(origin: Origin, raw: bytes) -> dict[str, str]:
    """The user metadata a document of a version of several parts carries for analytics' HEADs
    (``handlers.versions``): part 0 the number of parts, every part its bytes' SHA-256. None on the
    document of a version of one part, which stays what it was before parts existed."""
    if origin.part == 0 and origin.parts in (None, 1):
        return {}
    metadata = {DOCUMENT_SHA256_METADATA: hashlib.sha256(raw).hexdigest()}
    if origin.part == 0:
        metadata[PARTS_METADATA] = str(origin.parts)
    return metadata


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
    """An aggregates document's bytes, checked; ValueError naming the first problem if it is not one
    (``read_groups`` checks the same and returns the groups it builds on the way)."""
    return read_groups(raw)[0]


def read_groups(raw: bytes) -> tuple[AggregatesDocument, dict[GroupKey, GroupStats]]:
    """An aggregates document's bytes, checked, and its groups (``groups_from_document``'s, built once);
    ValueError naming the first problem if it is not one.

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
    origin = document.origin
    if (origin.part == 0) != (origin.parts is not None):
        raise ValueError("$.origin: part 0 names the number of parts, and only part 0 does")
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
    return document, groups


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
        value = scalar(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # not checked when the document was read
        raise ValueError(f"{where}: {exc}") from None
    if isinstance(value, dict | list):
        raise ValueError(f"{where}: not a JSON scalar")
    if type(value) is Unrepresentable:
        raise ValueError(f"{where}: a number no decimal holds")
    canonical = exact.dimension_value(value)
    if type(value) in (int, Decimal) and TEXT.encode(canonical) != bytes(raw):
        raise ValueError(
            f"{where}: {bytes(raw)[:64]!r} is not the canonical number {TEXT.encode(canonical)[:64]!r}"
        )
    return canonical
