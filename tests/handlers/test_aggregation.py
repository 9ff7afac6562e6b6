"""The processing core's contracts, as properties: no records/ content can fail an object, sums are exact,
equal numbers are one group, merging is a commutative monoid, and the aggregates document is bytes that
only depend on the input and reads back to the same groups.

The reference here decides every line on its own with the standard library's ``json`` (numbers kept as
their literals), computes each value with ``fractions.Fraction`` from its literal's digits, and floors
windows with ``datetime``: none of it shares code with ``handlers.aggregation``'s block or line paths.
"""

from __future__ import annotations

import gc
import gzip
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from unittest.mock import patch

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import aggregation, contract, exact
from handlers.aggregation import Aggregator, aggregate_records, aggregate_stream
from handlers.config import RECORDS_LINE_LIMIT, WINDOWS
from handlers.documents import Origin, groups_from_document, read_document, to_document
from handlers.groups import (
    FORMAT,
    MAX_REJECTED_DETAILS,
    RETRY_LINES,
    AggregateResult,
    GroupStats,
    Stats,
    dimensions_text,
    merge,
    window_start,
)
from handlers.metrics import Counts

PROPERTY = settings(max_examples=50, deadline=None)
HOSTILE = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
DIMENSIONS, METRICS = ("type", "source"), ("value", "latency")
ORIGIN = Origin(rel="in/file.jsonl", sequencer="0065A1B2C3D4E5F6A7", version_id="v1")
SOURCE = {
    "bucket": "processed",
    "key": f"{contract.RECORDS_PREFIX}in/file.jsonl/0065A1B2C3D4E5F6A7{contract.RECORDS_SUFFIX}",
    "sha256": "0" * 64,
}
REASONS = {
    "invalid_json",
    "invalid_utf8",
    "not_an_object",
    "invalid_timestamp",
    "dimension_not_scalar",
    "dimension_out_of_range",
    "metric_not_numeric",
    "metric_out_of_range",
    "metric_too_precise",
    "record_too_large",
}
LIMIT = 10**exact.MAX_INTEGER_DIGITS


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def stream(payload: bytes, window: int = 3600, line_limit: int = RECORDS_LINE_LIMIT) -> AggregateResult:
    return aggregate_stream(io.BytesIO(gz(payload)).read, window, DIMENSIONS, METRICS, line_limit=line_limit)


def exact_groups(groups: dict[Any, GroupStats]) -> dict[Any, Any]:
    return {
        key: (
            stats.records,
            {
                name: (s.count, Fraction(s.sum), Fraction(s.min), Fraction(s.max))
                for name, s in stats.metrics.items()
            },
        )
        for key, stats in groups.items()
    }


# --- the reference -------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(?:\.\d{1,6})?Z", re.ASCII)
_TEXT = msgspec.json.Encoder(decimal_format="number", order="sorted")
UNREPRESENTABLE = 10**19  # no exponent this far from 0 fits a Decimal (the tests write none in between)


class Literal:
    """A JSON number as written."""

    def __init__(self, text: str) -> None:
        self.text = text

    def parts(self) -> tuple[int, str, int]:
        """(sign, significant digits without trailing zeros, exponent); digits "" for zero."""
        match = _NUMBER.fullmatch(self.text)
        assert match is not None
        sign, integer, fraction, exponent = match.groups()
        digits = (integer + (fraction or "")).lstrip("0")
        power = int(exponent or 0) - len(fraction or "")
        kept = digits.rstrip("0")
        return (1 if sign else 0), kept, power + len(digits) - len(kept)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class Pairs(list):  # type: ignore[type-arg]
    """A JSON object as every (key, value) pair written, repeated keys included."""


def _has_surrogate(value: object) -> bool:
    """Whether any string, even one a repeated key overwrites, holds an unpaired surrogate."""
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, list):  # arrays, and objects as Pairs
        return any(map(_has_surrogate, value))
    if isinstance(value, tuple):
        return any(map(_has_surrogate, value))
    return False


def ref_dimension(value: object) -> object:
    """The canonical dimension value, or None-in-a-tuple for a reason."""
    if isinstance(value, list):  # an array, or an object (Pairs)
        return ("dimension_not_scalar",)
    if not isinstance(value, Literal):
        return value
    sign, digits, power = value.parts()
    if not digits:
        return 0
    if abs(power) >= UNREPRESENTABLE:
        return ("dimension_out_of_range",)
    if power >= 0 and len(digits) + power <= exact.MAX_INTEGER_DIGITS:
        return int(digits) * 10**power * (-1 if sign else 1)
    return Decimal((sign, tuple(map(int, digits)), power))


def ref_metric(value: object) -> Fraction | str:
    if not isinstance(value, Literal):
        return "metric_not_numeric"
    sign, digits, power = value.parts()
    if not digits:
        return Fraction(0)
    if power + len(digits) - 1 >= exact.MAX_INTEGER_DIGITS:
        return "metric_out_of_range"
    if power < -exact.MAX_FRACTION_DIGITS:
        return "metric_too_precise"
    return Fraction(int(digits) * (-1 if sign else 1)) * Fraction(10) ** power


def ref_line(line: bytes, window: int, line_limit: int) -> tuple[str, Any]:
    """("blank", None) | ("rejected", reason) | ("valid", (group key, {metric: Fraction}))."""
    if len(line) > line_limit:
        return "rejected", "record_too_large"
    if not line.strip(b" \t\r"):
        return "blank", None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "rejected", "invalid_utf8"
    try:
        parsed = json.loads(
            text, parse_int=Literal, parse_float=Literal, parse_constant=_no_constant, object_pairs_hook=Pairs
        )
    except (ValueError, RecursionError):
        return "rejected", "invalid_json"
    if _has_surrogate(parsed):  # msgspec, the pipeline's parser, takes no unpaired surrogate escape
        return "rejected", "invalid_json"
    if not isinstance(parsed, Pairs):
        return "rejected", "not_an_object"
    record = dict(parsed)  # a repeated key keeps its last value
    timestamp = record.get("timestamp")
    if not isinstance(timestamp, str) or not _TIMESTAMP.fullmatch(timestamp):
        return "rejected", "invalid_timestamp"
    try:
        epoch = int(datetime.fromisoformat(timestamp[:19] + "+00:00").timestamp())
    except ValueError:
        return "rejected", "invalid_timestamp"
    start = datetime.fromtimestamp(epoch - epoch % window, UTC).replace(tzinfo=None).isoformat() + "Z"
    dimensions = {}
    for name in DIMENSIONS:
        value = ref_dimension(record.get(name))
        if isinstance(value, tuple):
            return "rejected", value[0]
        dimensions[name] = value
    metrics = {}
    for name in METRICS:
        if record.get(name) is None:
            continue
        value = ref_metric(record[name])
        if isinstance(value, str):
            return "rejected", value
        metrics[name] = value
    return "valid", ((start, _TEXT.encode(dimensions).decode()), metrics)


def reference(
    payload: bytes, window: int, line_limit: int
) -> tuple[Counts, list[tuple[int, str]], dict[Any, Any]]:
    lines = payload.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    rejected, groups, valid, blank = [], {}, 0, 0
    for number, line in enumerate(lines, start=1):
        verdict, detail = ref_line(line, window, line_limit)
        if verdict == "blank":
            blank += 1
        elif verdict == "rejected":
            rejected.append((number, detail))
        else:
            valid += 1
            key, metrics = detail
            records, stats = groups.get(key, (0, {}))
            for name, v in metrics.items():
                count, total, low, high = stats.get(name, (0, Fraction(0), v, v))
                stats[name] = (count + 1, total + v, min(low, v), max(high, v))
            groups[key] = (records + 1, stats)
    return Counts(len(lines), valid, len(rejected), blank), rejected, groups


# --- hostile records/ content ----------------------------------------------------------------------------

digits = st.text("0123456789", min_size=1, max_size=30).map(lambda d: d.lstrip("0") or "0")
huge_integers = st.integers(39, 5000).map(lambda n: "9" * n) | st.sampled_from(["9" * 4300, "1" + "0" * 4300])
exponents = (
    st.integers(-60, 60)
    | st.integers(-(10**6), 10**6)
    | st.sampled_from(["99999999999999999999", "-99999999999999999999", "+123456789012345678901234"])
)
decimals = st.builds(
    lambda sign, integer, fraction, exponent: f"{sign}{integer}{fraction}{exponent}",
    st.sampled_from(["", "-"]),
    digits,
    st.sampled_from([""]) | digits.map(lambda d: "." + d) | st.integers(1, 40).map(lambda n: "." + "0" * n),
    st.sampled_from([""]) | exponents.map(lambda e: f"e{e}") | exponents.map(lambda e: f"E{e}"),
)
numbers = (
    st.integers(-(10**40), 10**40).map(str)
    | huge_integers
    | st.just("-").map(lambda s: s + "9" * 4299)
    | decimals
    | st.sampled_from(
        [
            *("-0", "-0.0", "0e99999999999999999999", "1e99999999999999999999", "-1e-99999999999999999999"),
            *("1E+2", "1.50", "0.1", "1e-18", "1e-19", "1." + "0" * 30, "9" * 38),
            "-" + "9" * 38 + ".999999999999999999",
        ]
    )
)
timestamps = st.builds(
    lambda moment, fraction: moment.isoformat() + fraction + "Z",
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.sampled_from(["", ".5", ".123", ".123000", ".999999"]),
) | st.sampled_from(["2024-05-01T12:00:00Z", "2024-05-01T12:59:59.999999Z", "2024-05-01T13:00:00Z"])
bad_timestamps = st.sampled_from(
    [
        "2024-02-30T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z",
        "2024-05-01T12:00:60Z",
        "0000-01-01T00:00:00Z",
        "2024-05-01T12:00:00+00:00",
        "2024-05-01T12:00:00.1234567Z",
        "2024-05-01T12:00:00Z\n",
        "\uff12\uff10\uff12\uff14-05-01T12:00:00Z",  # full-width digits
        "2024-05-01T12:00",
        "",
    ]
)


def string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


strings = (
    st.text(max_size=12).map(string)
    | st.text(max_size=12).map(lambda s: json.dumps(s))
    | st.sampled_from(["a", "click", "view", "1", "true", "web"]).map(string)
    | st.integers(1000, 20000).map(lambda n: string("x" * n))
    | st.sampled_from(['"\\ud800"', '"a\\udc00b"', '"\\ud83d\\ude00"', '"\\u0063lick"', '"\\/"'])
    | timestamps.map(string)
    | bad_timestamps.map(string)
    | timestamps.map(lambda t: '"\\u0032' + t[1:] + '"')
)
scalars = numbers | strings | st.sampled_from(["true", "false", "null"])
nested = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(strings, inner), max_size=3).map(
            lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
        )
    ),
    max_leaves=6,
)
# Nesting well inside msgspec's limit (which depends on the interpreter's recursion limit and the
# caller's stack) or far past it; nothing in between, where the verdict would depend on the caller.
deep = st.sampled_from([50, 3000]).map(lambda depth: "[" * depth + "1" + "]" * depth) | st.sampled_from(
    [2000, 5000]
).map(lambda depth: '{"a":' * depth + "1" + "}" * depth)
values = st.sampled_from([scalars, scalars, nested, nested, deep]).flatmap(lambda kind: kind)  # weighted
keys = st.sampled_from(
    ["timestamp", "type", "source", "value", "latency", "other", "valu\\u0065", "typ\\u0065"]
)
spaces = st.sampled_from(["", "", "", " ", "\t", "\r", " \r"])


@st.composite
def objects(draw: st.DrawFn) -> bytes:
    """A JSON object line: mostly near-valid records, with any value in any field and repeated keys."""
    pairs = []
    if draw(st.booleans()):
        pairs.append(('"timestamp"', draw(timestamps.map(string))))
    for name in ("type", "source", "value", "latency"):
        if draw(st.integers(0, 3)):
            pairs.append(
                (
                    f'"{name}"',
                    draw(
                        st.sampled_from(['"click"', '"view"', "null", "1", "1.0", "true"])
                        if name in DIMENSIONS
                        else numbers
                    ),
                )
            )
    for _ in range(draw(st.integers(0, 3))):
        pairs.append((f'"{draw(keys)}"', draw(values)))
    order = draw(st.permutations(range(len(pairs))))
    gap = draw(spaces)
    body = f",{gap}".join(f"{pairs[i][0]}{gap}:{gap}{pairs[i][1]}" for i in order)
    return (draw(spaces) + "{" + gap + body + gap + "}" + draw(spaces)).encode()


valid_records = st.builds(
    lambda ts, kind, source, value: json.dumps(
        {"id": "e", "timestamp": ts, "type": kind, "source": source, "value": value}, separators=(",", ":")
    ).encode(),
    timestamps,
    st.sampled_from(["click", "view", 1, 1.5, True, None]),
    st.sampled_from(["web", "app", None, 0]),
    st.integers(-(10**6), 10**6),
).map(lambda line: line.replace(b'"value":7', b'"value":7.000'))
garbage = st.sampled_from(
    [
        b"",
        b"   ",
        b"\t\r",
        b"\r",
        b"\x0b",
        b"\x0c",
        b" \x0b ",
        b"\xff",
        b"\xc3\x28",
        b"\xed\xa0\x80",
        b"\xef\xbb\xbf{}",
        b"{oops",
        b'{"a":1} {"b":2}',
        b'{"timestamp":"2024-05-01T12:00:00Z"} x',
        b"[1, }",
        b"NaN",
        b'{"value": NaN}',
        b"Infinity",
        b"[]",
        b"1",
        b'"text"',
        b"null",
        b"{}",
        b'{"type":"\xff"}',
        b'{"other":"\xfe","timestamp":"2024-05-01T12:00:00Z"}',
    ]
)
mutated_records = st.builds(
    lambda line, position, byte: (
        line[: position % len(line)] + bytes([byte]) + line[position % len(line) + 1 :]
    ),
    valid_records,
    st.integers(0, 200),
    st.integers(0, 255),
)
lines = st.sampled_from(  # weighted: half of the lines are records or near-records
    [objects(), objects(), values.map(str.encode), garbage, st.binary(max_size=30), mutated_records]
    + [valid_records] * 3
).flatmap(lambda kind: kind)


@HOSTILE
@given(
    st.lists(lines, max_size=40),
    st.integers(0, RETRY_LINES * 3),
    st.booleans(),
    st.sampled_from(sorted(WINDOWS.values())),
    st.sampled_from([RECORDS_LINE_LIMIT, RECORDS_LINE_LIMIT, 20_000, 300]),
)
def test_no_records_content_can_fail_an_object_and_every_line_is_decided_as_alone(
    hostile: list[bytes], good: int, trailing_newline: bool, window: int, line_limit: int
) -> None:
    # GIVEN hostile lines, among enough good ones that the block path takes whole blocks and parts
    good_lines = [
        json.dumps({"timestamp": "2024-05-01T12:00:00Z", "type": "t", "value": n % 7}).encode()
        for n in range(good)
    ]
    payload = b"\n".join(good_lines + hostile + good_lines) + (b"\n" if trailing_newline else b"")
    # WHEN processed
    result = stream(payload, window, line_limit)
    # THEN nothing raised, every line is accounted for, every rejection has a reason, and the groups are
    # the exact reference's
    counts, rejected, groups = reference(payload, window, line_limit)
    assert result.counts == counts
    assert result.counts.conserved
    assert result.rejected_total == len(rejected)
    assert [(r.line, r.reason) for r in result.rejected] == rejected[:MAX_REJECTED_DETAILS]
    assert all(r.reason in REASONS and r.detail for r in result.rejected)
    assert exact_groups(result.groups) == groups
    # AND the document reads back to the same groups
    name = {seconds: name for name, seconds in WINDOWS.items()}[window]
    document = read_document(to_document(result, SOURCE, name, window, DIMENSIONS, METRICS, origin=ORIGIN))
    assert exact_groups(groups_from_document(document)) == groups


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\x0b", "invalid_json"),
        (b"\x0c", "invalid_json"),
        (b"\x0b\x0c", "invalid_json"),
        (b'{"timestamp":"2024-05-01T12:00:00Z","value":true}', "metric_not_numeric"),
        (b'{"timestamp":"2024-05-01T12:00:00Z","value":"1"}', "metric_not_numeric"),
        (b'{"timestamp":"2024-05-01T12:00:00Z","value":1e38}', "metric_out_of_range"),
        (b'{"timestamp":"2024-05-01T12:00:00Z","value":' + b"9" * 5000 + b"}", "metric_out_of_range"),
        (b'{"timestamp":"2024-05-01T12:00:00Z","value":1e-19}', "metric_too_precise"),
        (b'{"timestamp":"2024-05-01T12:00:00Z","value":1e-99999999999999999999}', "metric_too_precise"),
        (b'{"timestamp":"2024-05-01T12:00:00Z","value":1e99999999999999999999}', "metric_out_of_range"),
        (b'{"timestamp":"2024-05-01T12:00:00Z","type":1e99999999999999999999}', "dimension_out_of_range"),
        (b'{"timestamp":"2024-05-01T12:00:00Z","type":{"a":1}}', "dimension_not_scalar"),
        (b'{"timestamp":"2024-05-01T12:00:00+00:00"}', "invalid_timestamp"),
        (b'{"timestamp":"2024-02-30T12:00:00Z"}', "invalid_timestamp"),
        (b'{"timestamp":1714564800}', "invalid_timestamp"),
        (b"[1,2]", "not_an_object"),
        (b"[1,}", "invalid_json"),
        (b'{"type":"\xff"}', "invalid_utf8"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
    ],
)
def test_a_line_is_rejected_with_its_reason_in_a_block_and_alone(line: bytes, reason: str) -> None:
    good = b'{"timestamp":"2024-05-01T12:00:00Z","type":"t","value":1}'
    for payload in (line, b"\n".join([good] * (RETRY_LINES * 2) + [line] + [good] * RETRY_LINES)):
        result = stream(payload)
        assert [r.reason for r in result.rejected] == [reason]
        assert result.counts.records_valid == len(payload.split(b"\n")) - 1


def test_numbers_past_the_exact_context_give_the_same_groups_in_a_block_and_alone() -> None:
    # The block decoder's float_hook (exact.literal) raises where the exact context would round or
    # overflow, or clamps a zero's exponent; such blocks go line by line, so nothing differs.
    odd = [
        b'{"timestamp":"2024-05-01T12:00:00Z","type":1e81,"source":"s","value":0e500}',
        b'{"timestamp":"2024-05-01T12:00:00Z","type":"t","source":1.' + b"1" * 90 + b',"value":1.5}',
        b'{"timestamp":"2024-05-01T12:00:00Z","type":1e-150,"source":"s","value":-0.0}',
    ]
    good = b'{"timestamp":"2024-05-01T12:00:00Z","type":"t","value":1.25}'
    lines = [good] * RETRY_LINES + odd + [good] * RETRY_LINES
    alone: dict[Any, GroupStats] = {}
    for line in lines:
        alone = merge(alone, stream(line).groups)
    result = stream(b"\n".join(lines))
    assert result.counts.records_valid == len(lines)
    assert exact_groups(result.groups) == exact_groups(alone)


@pytest.mark.parametrize("blank", [b"", b" ", b"\t", b"\r", b" \t\r "])
def test_blank_lines_are_only_json_whitespace(blank: bytes) -> None:
    result = stream(b'{"timestamp":"2024-05-01T12:00:00Z"}\n' + blank + b"\n")
    assert (result.counts.blank_lines, result.rejected) == (1, ())


def test_numerically_equal_dimension_values_are_one_group_and_booleans_and_strings_are_not_numbers() -> None:
    kinds = ["1", "1.0", "1.00", "1e0", "10e-1", "true", '"1"', "0", "0.0", "-0.0", "-0", "false", "null"]
    payload = b"\n".join(
        b'{"timestamp":"2024-05-01T12:00:00Z","type":%s,"value":1}' % kind.encode() for kind in kinds * 3
    )
    groups = stream(payload).groups
    assert {text: stats.records for (_, text), stats in groups.items()} == {
        '{"source":null,"type":1}': 15,
        '{"source":null,"type":true}': 3,
        '{"source":null,"type":"1"}': 3,
        '{"source":null,"type":0}': 12,
        '{"source":null,"type":false}': 3,
        '{"source":null,"type":null}': 3,
    }


def test_decimal_metrics_are_summed_exactly() -> None:
    values = ["0.1", "0.2", "0.3", "1e-18", "12345678901234567890.123456789012345678", "-0.0", "9E15", "1.50"]
    payload = b"\n".join(
        b'{"timestamp":"2024-05-01T12:00:00Z","type":"t","value":%s}' % value.encode()
        for value in values * 50
    )
    [stats] = [group.metrics["value"] for group in stream(payload).groups.values()]
    expected = sum(Fraction(Decimal(v)) for v in values) * 50
    assert (stats.count, Fraction(stats.sum), exact.canonical(stats.min), exact.canonical(stats.max)) == (
        400,
        expected,
        "0",
        "12345678901234567890.123456789012345678",
    )
    assert Fraction(exact.parse(exact.canonical(stats.sum))) == expected


def test_a_metric_with_more_than_eighteen_decimals_that_are_zeros_is_taken_and_summed() -> None:
    line = b'{"timestamp":"2024-05-01T12:00:00Z","type":"t","value":1.5' + b"0" * 40 + b"}"
    big = b'{"timestamp":"2024-05-01T12:00:00Z","type":"t","value":' + b"9" * 37 + b"}"
    [stats] = [g.metrics["value"] for g in stream(b"\n".join([line, big] * 100)).groups.values()]
    assert Fraction(stats.sum) == (Fraction(3, 2) + 10**37 - 1) * 100


@PROPERTY
@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")), max_size=10),
    st.lists(valid_records, max_size=5),
    st.integers(200, 5000),
)
def test_the_result_does_not_depend_on_how_the_payload_is_cut_into_blocks(
    junk: list[bytes], records: list[bytes], line_limit: int
) -> None:
    # GIVEN lines all shorter than the limit, which also sets how much of the payload each read asks for
    payload = b"\n".join(records + junk + records)
    # THEN reading it in small pieces changes nothing
    whole, pieces = stream(payload), stream(payload, line_limit=line_limit)
    assert (pieces.groups, pieces.counts, pieces.rejected) == (whole.groups, whole.counts, whole.rejected)


def test_an_over_long_line_is_rejected_unparsed_wherever_it_falls() -> None:
    good = b'{"timestamp":"2024-05-01T12:00:00Z","type":"t","value":1}'
    long = b'{"timestamp":"2024-05-01T12:00:00Z","type":"' + b"x" * 5000 + b'"}'
    result = stream(b"\n".join([good, long, good, long]), line_limit=1000)
    assert [(r.line, r.reason, r.detail) for r in result.rejected] == [
        (2, "record_too_large", f"{len(long)} bytes"),
        (4, "record_too_large", f"{len(long)} bytes"),
    ]
    assert result.counts == Counts(4, 2, 2, 0)


@pytest.mark.parametrize("payload", [b"not gzip at all", gz(b'{"a":1}\n')[:-6]])
def test_an_unreadable_records_object_is_one_rejection_and_no_groups(payload: bytes) -> None:
    result = aggregate_stream(io.BytesIO(payload).read, 3600, DIMENSIONS, METRICS)
    assert (result.groups, result.counts, [r.line for r in result.rejected]) == ({}, Counts(1, 0, 1, 0), [0])
    assert result.rejected[0].reason in {"not_gzip", "truncated_gzip", "corrupt_gzip"}


# --- windows -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("1m", "2024-05-01T12:34:00Z"),
        ("5m", "2024-05-01T12:30:00Z"),
        ("15m", "2024-05-01T12:30:00Z"),
        ("1h", "2024-05-01T12:00:00Z"),
        ("1d", "2024-05-01T00:00:00Z"),
    ],
)
def test_window_start_floors_to_the_window(window: str, expected: str) -> None:
    assert window_start("2024-05-01T12:34:56.789000Z", WINDOWS[window]) == expected


@PROPERTY
@given(
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)),
    st.sampled_from(sorted(WINDOWS.values())),
)
def test_the_window_of_a_line_is_the_reference_window_start(moment: datetime, window: int) -> None:
    timestamp = moment.isoformat() + ("" if moment.microsecond else ".000") + "Z"
    line = json.dumps({"timestamp": timestamp}).encode()
    [(start, _)] = stream(b"\n".join([line] * (RETRY_LINES + 1)), window).groups
    epoch = (moment - datetime(1970, 1, 1)) // timedelta(seconds=1)  # floored: int() truncates before 1970
    floor = datetime.fromtimestamp(epoch - epoch % window, UTC).replace(tzinfo=None)
    assert start == window_start(timestamp, window) == floor.isoformat() + "Z"


# --- merge laws, exact ---------------------------------------------------------------------------------

metric_values = (
    st.integers(-(10**6), 10**6)
    | st.integers(-LIMIT + 1, LIMIT - 1)
    | st.builds(
        lambda c, e: Decimal(c).scaleb(-e),
        st.integers(-(10**20), 10**20),
        st.integers(0, exact.MAX_FRACTION_DIGITS),
    )
    | st.sampled_from(
        [Decimal("0.1"), Decimal("0.2"), Decimal("-0.0"), Decimal("1.50"), Decimal("9" * 37 + ".9")]
    )
)
records_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "timestamp": st.integers(1_700_000_000, 1_700_400_000).map(
                lambda s: datetime.fromtimestamp(s, UTC).replace(tzinfo=None).isoformat() + "Z"
            ),
            "type": st.sampled_from(["click", "view", 1, Decimal("1.0"), True]),
            "value": metric_values,
        },
        optional={"source": st.sampled_from(["web", "app", None]), "latency": metric_values},
    ),
    max_size=60,
)


@PROPERTY
@given(records_strategy, st.sampled_from(sorted(WINDOWS.values())), st.data())
def test_merging_per_file_aggregates_in_any_order_equals_aggregating_everything(
    records: list[dict[str, Any]], window: int, data: st.DataObject
) -> None:
    # GIVEN the records cut into files at arbitrary points
    cuts = sorted(data.draw(st.lists(st.integers(0, len(records)), max_size=5)))
    files = [records[a:b] for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True)]
    # WHEN each file is aggregated on its own and the results merged in a random order
    order = data.draw(st.permutations(range(len(files))))
    merged: dict[Any, GroupStats] = {}
    for index in order:
        merged = merge(merged, aggregate_records(files[index], window, DIMENSIONS, METRICS))
    # THEN the result equals aggregating all records at once, exactly
    whole = aggregate_records(records, window, DIMENSIONS, METRICS)
    assert merged == whole
    assert exact_groups(merged) == exact_groups(whole)


@PROPERTY
@given(records_strategy, records_strategy, records_strategy)
def test_merge_is_associative_and_commutative_with_an_identity(a: Any, b: Any, c: Any) -> None:
    x, y, z = (aggregate_records(r, 3600, DIMENSIONS, METRICS) for r in (a, b, c))
    assert exact_groups(merge(merge(x, y), z)) == exact_groups(merge(x, merge(y, z)))
    assert exact_groups(merge(x, y)) == exact_groups(merge(y, x))
    assert merge(x, {}) == x == merge({}, x)


@PROPERTY
@given(records_strategy)
def test_aggregating_records_equals_the_stream_of_their_lines(records: list[dict[str, Any]]) -> None:
    encoder = msgspec.json.Encoder(decimal_format="number")
    payload = b"\n".join(encoder.encode(record) for record in records)
    assert exact_groups(stream(payload).groups) == exact_groups(
        aggregate_records(records, 3600, DIMENSIONS, METRICS)
    )


@PROPERTY
@given(records_strategy, st.integers(1, 8), st.lists(st.integers(0, 3), max_size=4))
def test_gathering_values_per_group_or_taking_them_one_by_one_gives_the_same_groups(
    records: list[dict[str, Any]], pending: int, bad: list[int]
) -> None:
    # GIVEN blocks of lines, some with a line only the line-by-line path takes, and a tiny buffer of
    # gathered values, so that flushes happen mid-stream and switch between gathering and one by one
    encoder = msgspec.json.Encoder(decimal_format="number")
    lines = [encoder.encode(record) for record in records]
    for position in bad:
        lines.insert(min(position * 7, len(lines)), b'{"timestamp":"2024-05-01T12:00:00Z","value":"x"}')
    payload = b"\n".join(lines)
    with patch.object(aggregation, "PENDING_VALUES", pending), patch.object(aggregation, "RETRY_LINES", 2):
        result = stream(payload)
    # THEN the groups are those of the records one at a time
    assert exact_groups(result.groups) == exact_groups(aggregate_records(records, 3600, DIMENSIONS, METRICS))
    assert result.rejected_total == len(bad)


def test_stats_merge_never_rounds() -> None:
    left, right = Stats.of(Decimal(10**37)), Stats.of(Decimal("0.000000000000000001"))
    assert Fraction(left.merge(right).sum) == 10**37 + Fraction(1, 10**18)


def test_missing_metric_counts_the_record_but_not_the_metric() -> None:
    groups = aggregate_records(
        [
            {"timestamp": "2024-05-01T00:00:00Z", "type": "t"},
            {"timestamp": "2024-05-01T00:00:01Z", "type": "t", "value": 4},
        ],
        3600,
        ("type",),
        ("value",),
    )
    assert groups == {("2024-05-01T00:00:00Z", '{"type":"t"}'): GroupStats(2, {"value": Stats(1, 4, 4, 4)})}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"timestamp": "2024-05-01T00:00:00+00:00", "type": "t"}, "invalid_timestamp"),
        ({"timestamp": "2024-05-01T00:00:00Z", "type": {"a": 1}}, "dimension_not_scalar"),
        ({"timestamp": "2024-05-01T00:00:00Z", "type": "t", "value": "3"}, "metric_not_numeric"),
        ({"timestamp": "2024-05-01T00:00:00Z", "type": "t", "value": False}, "metric_not_numeric"),
        ({"timestamp": "2024-05-01T00:00:00Z", "type": "t", "value": 0.5}, "metric_not_numeric"),
        ({"timestamp": "2024-05-01T00:00:00Z", "type": "t", "value": 10**38}, "metric_out_of_range"),
        ({"timestamp": "2024-05-01T00:00:00Z", "type": "t", "value": Decimal("1e-19")}, "metric_too_precise"),
        ([1, 2], "not_an_object"),
    ],
)
def test_unaggregatable_records_are_rejected_with_a_reason(record: Any, reason: str) -> None:
    aggregator = Aggregator(3600, ("type",), ("value",))
    aggregator.add_record(7, record)
    assert [(r.line, r.reason) for r in aggregator.rejected] == [(7, reason)]
    assert aggregator.groups() == {}


# --- the document ----------------------------------------------------------------------------------------


def document_of(records: list[dict[str, Any]], window: str = "5m") -> bytes:
    groups = aggregate_records(records, WINDOWS[window], DIMENSIONS, METRICS)
    result = AggregateResult(groups, Counts(len(records), len(records)), (), 0)
    return to_document(result, SOURCE, window, WINDOWS[window], DIMENSIONS, METRICS, origin=ORIGIN)


@PROPERTY
@given(records_strategy)
def test_aggregates_document_round_trips(records: list[dict[str, Any]]) -> None:
    groups = aggregate_records(records, 300, DIMENSIONS, METRICS)
    document = read_document(document_of(records))
    assert exact_groups(groups_from_document(document)) == exact_groups(groups)
    assert (document.format, document.origin, document.dimensions) == (FORMAT, ORIGIN, list(DIMENSIONS))


@PROPERTY
@given(st.lists(valid_records, max_size=30), st.randoms())
def test_the_same_records_in_any_order_give_the_same_document_bytes(lines: list[bytes], rng: Any) -> None:
    shuffled = list(lines)
    rng.shuffle(shuffled)

    def document(payload: bytes) -> bytes:
        return to_document(stream(payload), SOURCE, "1h", 3600, DIMENSIONS, METRICS, origin=ORIGIN)

    assert document(b"\n".join(lines)) == document(b"\n".join(shuffled))


def test_the_document_spells_numbers_canonically() -> None:
    payload = b"\n".join(
        [
            b'{"timestamp":"2024-05-01T12:00:00Z","type":1.50,"source":1E+40,"value":0.10}',
            b'{"timestamp":"2024-05-01T12:00:00Z","type":1.5,"source":1e40,"value":9E+3}',
        ]
    )
    raw = to_document(stream(payload), SOURCE, "1h", 3600, DIMENSIONS, METRICS, origin=ORIGIN)
    body = json.loads(raw, parse_float=str)
    [group] = body["groups"]
    assert group["dimensions"] == {"source": "1E+40", "type": "1.5"}
    assert group["metrics"] == {"value": {"count": 2, "sum": "9000.1", "min": "0.1", "max": "9000"}}
    assert body["origin"] == {"rel": "in/file.jsonl", "sequencer": "0065A1B2C3D4E5F6A7", "version_id": "v1"}
    assert b'"dimensions":{"source":1E+40,"type":1.5}' in raw
    key = ("2024-05-01T12:00:00Z", '{"source":1E+40,"type":1.5}')
    assert set(groups_from_document(read_document(raw))) == {key}
    assert dimensions_text(DIMENSIONS, [Decimal("1.50"), 10**40]) == key[1]


GOOD = {"timestamp": "2024-05-01T12:00:00Z", "type": "t", "value": Decimal("1.5")}


def mutated(change: Callable[[dict[str, Any]], None]) -> bytes:
    body = json.loads(document_of([GOOD]))
    change(body)
    return json.dumps(body).encode()


def set_path(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        target = body
        for step in path[:-1]:
            target = target[step]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


METRIC = ("groups", 0, "metrics", "value")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (set_path(("format",), "data-pipeline/aggregates@1"), "not an data-pipeline/aggregates@2"),
        (set_path(("origin",), KeyError), "origin"),
        (set_path(("origin", "sequencer"), "xyz"), "sequencer"),
        (set_path(("origin", "rel"), ""), "rel"),
        (set_path(("window",), "2h"), "$.window"),
        (set_path(("window_seconds",), 60), "$.window_seconds"),
        (set_path(("dimensions",), ["type", "type"]), "$.dimensions"),
        (set_path(("counts", "records_read"), 5), "$.counts"),
        (set_path(("counts", "extra"), 0), "$.counts"),
        (set_path(("rejected_total",), 3), "rejected_total"),
        (set_path(("groups", 0, "window_start"), "2024-02-30T00:00:00Z"), "$.groups[0].window_start"),
        (set_path(("groups", 0, "records"), 0), "records"),
        (set_path(("groups", 0, "dimensions", "source"), KeyError), "$.groups[0].dimensions"),
        (set_path(("groups", 0, "dimensions", "type"), [1]), "$.groups[0].dimensions.type"),
        (set_path(("groups", 0, "dimensions", "type"), 1.0), "$.groups[0].dimensions.type"),
        (
            set_path(("groups", 0, "metrics", "other"), {"count": 1, "sum": "1", "min": "1", "max": "1"}),
            "other",
        ),
        (set_path((*METRIC, "sum"), 1.5), "sum"),
        (set_path((*METRIC, "sum"), "1.50"), "$.groups[0].metrics.value.sum"),
        (set_path((*METRIC, "sum"), "1e5"), "$.groups[0].metrics.value.sum"),
        (set_path((*METRIC, "sum"), "abc"), "$.groups[0].metrics.value.sum"),
        (set_path((*METRIC, "sum"), "1" * 58), "$.groups[0].metrics.value.sum"),
        (set_path((*METRIC, "sum"), "0." + "1" * 19), "$.groups[0].metrics.value.sum"),
        (set_path((*METRIC, "min"), "1" + "0" * 38), "$.groups[0].metrics.value.min"),
        (set_path((*METRIC, "min"), "1e999999999"), "$.groups[0].metrics.value.min"),
        (set_path((*METRIC, "min"), "-0"), "$.groups[0].metrics.value.min"),
        (set_path((*METRIC, "max"), "0." + "1" * 19), "$.groups[0].metrics.value.max"),
        (set_path((*METRIC, "max"), "1"), "min is greater than max"),
        (set_path((*METRIC, "count"), 2), "$.groups[0].metrics.value.count"),
        (set_path((*METRIC, "count"), 0), "count"),
        (lambda body: body["groups"].append(body["groups"][0]), "$.groups[1]"),
    ],
)
def test_a_malformed_document_is_a_value_error_naming_the_field(
    change: Callable[[dict[str, Any]], None], named: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        read_document(mutated(change))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*path, index))
    return found


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**80), 10**80)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["1e999999999", "-0", "1.50", "0." + "1" * 19, "2024-02-30T00:00:00Z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=5,
)


@PROPERTY
@given(st.data())
def test_any_change_to_a_document_is_read_or_a_value_error(data: st.DataObject) -> None:
    # GIVEN a real document with one value anywhere in it replaced by any JSON value, or removed
    body = json.loads(
        document_of([GOOD, {**GOOD, "type": Decimal("2.5"), "latency": 3}]), parse_float=Decimal
    )
    path = data.draw(st.sampled_from(_paths(body)[1:]))
    change = set_path(path, data.draw(st.just(KeyError) | json_values))
    change(body)
    raw = msgspec.json.Encoder(decimal_format="number").encode(body)
    # THEN reading it either succeeds, and its groups can be taken, or raises ValueError: nothing else
    try:
        document = read_document(raw)
    except ValueError:
        return
    groups_from_document(document)


@pytest.mark.parametrize("raw", [b"", b"[]", b"{", b"\xff", b"[" * 100_000, b'{"format": 1}', b"null"])
def test_bytes_that_are_no_document_are_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any message: these are not documents at all
        read_document(raw)


def test_a_dimension_that_is_not_utf8_is_a_value_error_naming_it() -> None:
    raw = document_of([GOOD]).replace(b'"type":"t"', b'"type":"\xff"')
    with pytest.raises(ValueError, match=re.escape("$.groups[0].dimensions.type")):
        read_document(raw)


def test_a_sum_at_the_limit_of_the_database_column_is_read() -> None:
    def at_limit(body: dict[str, Any]) -> None:
        body["groups"][0]["metrics"]["value"]["sum"] = "9" * 57 + "." + "9" * 18

    stats = groups_from_document(read_document(mutated(at_limit)))
    [group] = stats.values()
    assert exact.canonical(group.metrics["value"].sum) == "9" * 57 + "." + "9" * 18


def test_a_huge_integer_dimension_reads_back_as_its_group() -> None:
    big = "9" * 5000
    payload = b'{"timestamp":"2024-05-01T12:00:00Z","type":%s,"value":1}' % big.encode()
    result = stream(payload)
    raw = to_document(result, SOURCE, "1h", 3600, DIMENSIONS, METRICS, origin=ORIGIN)
    assert set(groups_from_document(read_document(raw))) == set(result.groups)
    assert dimensions_text(("type",), [Decimal(big)]) == '{"type":' + big + "}"


@pytest.mark.parametrize("enabled", [True, False])
def test_aggregating_leaves_the_garbage_collector_as_it_found_it(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        good = stream(b'{"timestamp":"2024-05-01T12:00:00Z","type":"a","value":1}\n')
        assert gc.isenabled() is enabled
        bad = aggregate_stream(io.BytesIO(b"not gzip").read, 3600, DIMENSIONS, METRICS)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert good.counts.records_valid == 1
    assert [entry.reason for entry in bad.rejected] == ["not_gzip"]


@PROPERTY
@given(
    st.integers(1, 18).flatmap(
        lambda digits: st.lists(
            st.tuples(
                st.integers(1_700_000_000, 1_700_400_000),
                st.sampled_from(["click", "view"]),
                st.integers(-(10**21), 10**21),
            ).map(
                lambda r, d=digits: (
                    r[0],
                    r[1],
                    f"{'-' if r[2] < 0 else ''}{abs(r[2]) // 10**d}.{abs(r[2]) % 10**d:0{d}d}",
                )
            ),
            min_size=1,
            max_size=40,
        )
    )
)
def test_decimals_of_one_scale_give_the_reference_document(
    rows: list[tuple[int, str, str]],
) -> None:
    # GIVEN blocks whose values all have the same number of fraction digits, up to the most supported
    # (sums with up to 21 + 19 digits), and the same records decoded one at a time
    stamps = [
        datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat() + "Z" for second, *_ in rows
    ]
    lines = [
        f'{{"timestamp":"{stamp}","type":"{kind}","value":{value}}}'
        for stamp, (_, kind, value) in zip(stamps, rows, strict=True)
    ]
    records = [json.loads(line, parse_float=Decimal) for line in lines]
    result = stream("\n".join(lines).encode())
    reference = aggregate_records(records, 3600, DIMENSIONS, METRICS)
    # THEN the sums, minima and maxima are exact, and the document is the same bytes
    assert exact_groups(result.groups) == exact_groups(reference)
    stats = AggregateResult(reference, result.counts, (), 0)
    assert to_document(result, SOURCE, "1h", 3600, DIMENSIONS, METRICS, origin=ORIGIN) == to_document(
        stats, SOURCE, "1h", 3600, DIMENSIONS, METRICS, origin=ORIGIN
    )


@pytest.mark.parametrize("head", ["2024-05-01T24", "2024-02-30T10", "2024-05-01 10", "2024-05-01T1a"])
def test_a_timestamp_whose_head_is_not_normalised_is_rejected_in_a_block_of_good_ones(head: str) -> None:
    good = b'{"timestamp":"2024-05-01T10:00:00Z","type":"a","value":1}'
    bad = f'{{"timestamp":"{head}:00:00Z","type":"a","value":1}}'.encode()
    result = stream(b"\n".join([good] * 100 + [bad] + [good] * 100))
    assert [(entry.line, entry.reason) for entry in result.rejected] == [(101, "invalid_timestamp")]
    assert result.counts.records_valid == 200
