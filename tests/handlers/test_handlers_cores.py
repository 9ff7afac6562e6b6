"""Unit and property tests of the ingestion core: splitting, parsing, validation, normalisation.

The processing core's tests are in test_handlers_aggregate_properties.py.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from handler_support import ListSink
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.config import default_record_schema
from handlers.errors import UnreadableObjectError
from handlers.events import MAX_KEY_BYTES, output_key
from handlers.framing import Oversize, detect_format, iter_document, iter_lines
from handlers.records import RecordChecker, Rejection
from handlers.timestamps import normalise_timestamp

CHECKER = RecordChecker(default_record_schema())
# No deadline: two shared cores make single examples slow at times; fewer examples keep the tier fast.
PROPERTY = settings(max_examples=50, deadline=None)
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
)


def reader(data: bytes) -> Any:
    return io.BytesIO(data).read


# --- splitting ---------------------------------------------------------------------------------------


@PROPERTY
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30), st.integers(1, 64))
def test_iter_lines_is_independent_of_chunk_size(lines: list[bytes], chunk: int) -> None:
    data = b"\n".join(lines)
    expected = [line if len(line) <= 20 else Oversize(line[:1024], len(line)) for line in data.split(b"\n")]
    if expected and expected[-1] == b"":
        expected.pop()  # a trailing newline ends the last line; it starts no new one
    assert list(iter_lines(reader(data), 20, chunk)) == expected


@PROPERTY
@given(st.lists(json_values, max_size=8), st.integers(1, 50), st.sampled_from([None, 1, 2]))
def test_array_elements_are_split_exactly_whatever_the_chunking(
    items: list[Any], chunk: int, indent: Any
) -> None:
    data = json.dumps(items, indent=indent).encode()
    units = list(iter_document(reader(data), 1 << 20, chunk))
    assert [json.loads(unit) for unit in units] == items


def test_truncated_array_is_unreadable() -> None:
    with pytest.raises(UnreadableObjectError) as caught:
        list(iter_document(reader(b'[{"a": "]"}, '), 1024))
    assert caught.value.reason == "invalid_json"


def test_oversize_array_element_is_skipped_unparsed() -> None:
    data = b'[{"a": "' + b"x" * 5000 + b'"}, 1]'
    units = list(iter_document(reader(data), 100, 64))
    assert units == [Oversize(data[1:1025], 5009), b" 1"]


@pytest.mark.parametrize(
    ("key", "compressed", "document"),
    [
        ("a.json", False, True),
        ("a.JSONL", False, False),
        ("a.ndjson.gz", True, False),
        ("a.json.gz", True, True),
    ],
)
def test_format_follows_the_suffix(key: str, compressed: bool, document: bool) -> None:
    fmt = detect_format(key, (".json", ".jsonl", ".ndjson", ".gz"))
    assert (fmt.compressed, fmt.document) == (compressed, document)


# --- parsing, validation, normalisation ---------------------------------------------------------------


@PROPERTY
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-23 * 60, 23 * 60),
    st.sampled_from(["T", "t", " "]),
)
def test_rfc3339_with_any_offset_normalises_to_the_same_instant(
    moment: datetime, minutes: int, sep: str
) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    text = aware.isoformat(sep=sep)
    normalised = normalise_timestamp(text)
    assert normalised.endswith("Z")
    assert datetime.fromisoformat(normalised.replace("Z", "+00:00")) == aware.astimezone(UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1714566896, "2024-05-01T12:34:56Z"),
        (1714566896.5, "2024-05-01T12:34:56.500000Z"),
        (1714566896123, "2024-05-01T12:34:56.123000Z"),
        ("2024-05-01T12:34:56.123456789Z", "2024-05-01T12:34:56.123456Z"),
    ],
)
def test_epochs_and_long_fractions_normalise(value: object, expected: str) -> None:
    assert normalise_timestamp(value) == expected


@pytest.mark.parametrize(
    "value", ["2024-05-01", "2024-05-01T12:34Z", "20240501T123456Z", "2024-13-01T00:00:00Z", None, True]
)
def test_non_rfc3339_timestamps_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        normalise_timestamp(value)


@PROPERTY
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_records_without_duplicate_keys_are_never_flagged(attributes: dict[str, Any]) -> None:
    record = {"id": "a", "timestamp": "2024-05-01T00:00:00Z", "type": "t", "attributes": attributes}
    for dumps in (
        json.dumps,
        lambda r: json.dumps(r, separators=(",", ":")),
        lambda r: json.dumps(r, indent=1),
    ):
        result = CHECKER.check(dumps(record).encode())
        assert not isinstance(result, Rejection), result


@PROPERTY
@given(st.text(max_size=6), json_values, json_values)
def test_a_duplicated_attribute_key_is_always_flagged(key: str, first: Any, second: Any) -> None:
    encoded = json.dumps(key)
    unit = (
        '{"id":"a","timestamp":"2024-05-01T00:00:00Z","type":"t","attributes":{'
        f"{encoded}: {json.dumps(first)}, {encoded}: {json.dumps(second)}}}}}"
    ).encode()
    assert CHECKER.check(unit) == Rejection("duplicate_key", f"key {key!r} appears more than once")


def test_valid_canonical_record_is_passed_through_byte_for_byte() -> None:
    unit = b'{"id":"a","timestamp":"2024-05-01T00:00:00Z","type":"t","value":1.5}'
    assert CHECKER.check(unit) == unit


def test_normalised_record_keeps_every_field() -> None:
    unit = b'{"id":"a","timestamp":0,"type":"t","value":1,"attributes":{"x":[1,{"y":null}]}}'
    assert json.loads(CHECKER.check(unit)) == {
        "id": "a",
        "timestamp": "1970-01-01T00:00:00Z",
        "type": "t",
        "value": 1,
        "attributes": {"x": [1, {"y": None}]},
    }


unit_strategy = st.one_of(
    st.builds(
        lambda n, ts, extra: json.dumps({"id": f"e{n}", "timestamp": ts, "type": "t", **extra}).encode(),
        st.integers(0, 99),
        st.sampled_from(
            ["2024-05-01T00:00:00Z", "2024-05-01T02:00:00+02:00", 1714521600, "2024-02-30T00:00:00Z"]
        ),
        st.dictionaries(
            st.sampled_from(["value", "source", "attributes"]), st.integers() | st.text(max_size=3)
        ),
    ),
    st.sampled_from(
        [
            b'{"id":"a","id":"b","timestamp":0,"type":"t"}',
            b'{"id" : "a", "timestamp" : 0, "type" : "t"}',
            b'{"id":"a\\":","timestamp":0,"type":"t"}',
            b"[1]",
            b"{oops",
            b"\xc3\x28",
            b'{"id":"a","timestamp":0,"type":"t"} {"id":"b","timestamp":0,"type":"t"}',
            b'  {"id":"a","timestamp":"2024-05-01T00:00:00Z","type":"t"}\r',
        ]
    ),
)


@pytest.mark.parametrize(
    "unit",
    [
        b'{"id": "a", "timestamp": "2024-05-01T12:00:00Z", "type": "t", "value": 1.5}',
        b'{"id":"a","timestamp":"2024-05-01T12:00:00Z","type":"t","value":1.5}\r',
        b'{"id":"\\u0061","timestamp":"2024-05-01T14:00:00+02:00","type":"t","value":1.5}',
    ],
)
def test_a_valid_record_is_written_in_one_compact_form(unit: bytes) -> None:
    # GIVEN records that differ only in spacing, escapes or offset
    # WHEN each is checked alone and in a batch
    # THEN both give the same compact line, whatever the input looked like
    expected = b'{"id":"a","timestamp":"2024-05-01T12:00:00Z","type":"t","value":1.5}'
    assert CHECKER.check(unit) == expected
    assert CHECKER.check_lines([unit, unit]) == [expected, expected]


@pytest.mark.parametrize(
    ("literal", "written"),
    [
        ("0.1", "0.1"),
        ("1.50", "1.50"),
        ("9E15", "9E+15"),
        ("1e-7", "1E-7"),
        ("1e-6", "0.000001"),
        ("12345678901234567890.123456789", "12345678901234567890.123456789"),
        ("-0.0", "-0.0"),
        ("1e400", "1E+400"),
        ("1E+999999999", "1E+999999999"),
        ("-1E-999999999", "-1E-999999999"),
        ("1.5e1", "15"),
    ],
)
def test_a_decimal_literal_is_written_as_the_same_decimal(literal: str, written: str) -> None:
    # GIVEN a metric written with a fraction or an exponent
    unit = f'{{"id":"a","timestamp":"2024-05-01T12:00:00Z","type":"t","value":{literal}}}'.encode()
    # WHEN checked alone and in a batch
    # THEN the output holds the same decimal, never a float's nearest binary value
    expected = unit.replace(literal.encode(), written.encode())
    assert CHECKER.check(unit) == expected
    assert CHECKER.check_lines([unit, unit]) == [expected, expected]
    assert Decimal(json.loads(expected, parse_float=Decimal)["value"]) == Decimal(literal)


@pytest.mark.parametrize("integer", [b"9" * 4300, b"-" + b"9" * 4299])
def test_integers_of_up_to_4300_characters_are_kept_exactly(integer: bytes) -> None:
    result = CHECKER.check(b'{"id":"a","timestamp":0,"type":"t","value":' + integer + b"}")
    assert isinstance(result, bytes)
    assert result.endswith(b'"value":' + integer + b"}")


@pytest.mark.parametrize("integer", [b"9" * 4301, b"-" + b"9" * 4300])
def test_an_integer_of_more_than_4300_characters_is_invalid_json(integer: bytes) -> None:
    # CPython reads at most 4300 digits into an int (sys.get_int_max_str_digits); msgspec counts the sign
    result = CHECKER.check(b'{"id":"a","timestamp":0,"type":"t","value":' + integer + b"}")
    assert isinstance(result, Rejection)
    assert result.reason == "invalid_json"


@pytest.mark.parametrize("exponent", ["1000000000000000000", "-1999999999999999998"])
def test_an_exponent_no_decimal_can_hold_is_invalid_json(exponent: str) -> None:
    unit = b'{"id":"a","timestamp":0,"type":"t","value":1e' + exponent.encode() + b"}"
    expected = Rejection("invalid_json", "a number with an exponent beyond what a decimal can hold")
    assert CHECKER.check(unit) == expected
    assert CHECKER.check_lines([unit]) == [expected]


def nested_record(levels: int, attributes: bytes = b"") -> bytes:
    head = b'{"id":"a","timestamp":0,"type":"t","attributes":{' + attributes + b'"a":'
    return head + b"[" * levels + b"1" + b"]" * levels + b"}}"


TOO_DEEP = Rejection("invalid_json", "nesting deeper than the parser's recursion limit")


def test_the_deepest_record_the_parser_takes_with_a_duplicate_key_is_a_duplicate_key() -> None:
    # GIVEN the deepest record check() can parse from here, with a key written twice: the standard
    # library's parser, which the duplicate check used, needed a few levels more and raised RecursionError
    levels = next(n for n in range(1200, 0, -1) if CHECKER.check(nested_record(n, b'"a":1,')) != TOO_DEEP)
    # WHEN it is checked THEN the duplicate is found
    assert CHECKER.check(nested_record(levels, b'"a":1,')) == Rejection(
        "duplicate_key", "key 'a' appears more than once"
    )


def test_records_at_the_parsers_depth_limit_are_written_or_quarantined_never_raised() -> None:
    # the encoder needs one level more than the decoder, so a record at the edge decodes but cannot be written
    for levels in range(850, 1100):
        for result in (CHECKER.check(nested_record(levels)), *CHECKER.check_lines([nested_record(levels)])):
            assert isinstance(result, bytes) or result == TOO_DEEP


def test_a_schema_error_in_a_value_too_deep_for_jsonschema_rs_to_show_is_a_schema_violation() -> None:
    # GIVEN a record whose "type" is not a string but a value nested 300 levels deep
    unit = b'{"id":"a","timestamp":0,"type":' + b"[" * 300 + b"]" * 300 + b"}"
    # WHEN checked THEN it is a schema violation, whose place jsonschema-rs cannot describe
    expected = Rejection(
        "schema_violation", "the record does not match the schema (Recursion limit reached describing where)"
    )
    assert CHECKER.check(unit) == expected
    assert CHECKER.check_lines([unit, unit]) == [expected, expected]


@pytest.mark.parametrize("digits", [312, 400, 4300])
def test_an_integer_timestamp_of_hundreds_of_digits_is_an_invalid_timestamp(digits: int) -> None:
    unit = b'{"id":"a","timestamp":' + b"9" * digits + b',"type":"t"}'
    for result in (CHECKER.check(unit), *CHECKER.check_lines([unit])):
        assert isinstance(result, Rejection)
        assert result.reason == "invalid_timestamp"


def test_the_last_millisecond_datetime_can_represent_is_exact() -> None:
    # 253402300799999 / 1000 as a float is 253402300799.99899: the float path wrote ...59.998993Z
    assert normalise_timestamp(253402300799999) == "9999-12-31T23:59:59.999000Z"
    assert normalise_timestamp(Decimal("253402300799999")) == "9999-12-31T23:59:59.999000Z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1714566896.123456789"), "2024-05-01T12:34:56.123456Z"),
        (Decimal("1714566896123.4569"), "2024-05-01T12:34:56.123456Z"),
        (Decimal("-0.0000001"), "1969-12-31T23:59:59.999999Z"),
        (Decimal("1E-999999999"), "1970-01-01T00:00:00Z"),
        (Decimal("0E+999999999"), "1970-01-01T00:00:00Z"),
        (Decimal("99999999999.9999999999999999999999999"), "5138-11-16T09:46:39.999999Z"),
        (Decimal("1.7145668961E+9"), "2024-05-01T12:34:56.100000Z"),
    ],
)
def test_decimal_epochs_are_floored_to_the_microsecond_exactly(value: Decimal, expected: str) -> None:
    assert normalise_timestamp(value) == expected


@pytest.mark.parametrize("value", [Decimal("1E+999999999"), Decimal("-1E+16"), 253402300800000, -(10**400)])
def test_epochs_past_the_year_9999_or_before_the_year_1_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="epoch timestamp out of range"):
        normalise_timestamp(value)


@pytest.mark.parametrize("document", [b"42", b'"x"', b"true", b"null", b" \n-1.5e3 ", b"\x0b{}"])
def test_a_json_document_that_is_not_an_object_or_an_array_is_unreadable(document: bytes) -> None:
    with pytest.raises(UnreadableObjectError) as caught:
        list(iter_document(reader(document), 1024))
    assert caught.value.reason == "invalid_json"


def test_a_scalar_inside_an_array_is_not_an_object() -> None:
    assert [CHECKER.check(unit) for unit in iter_document(reader(b"[42]"), 1024)] == [
        Rejection("not_an_object", "a record must be a JSON object, got int")
    ]


@pytest.mark.parametrize("line", [b"\v", b"\f", b" \x0b\t", b"\r\x0c"])
def test_a_line_of_whitespace_json_does_not_allow_is_invalid_json_not_blank(line: bytes) -> None:
    from handlers.framing import InputFormat
    from handlers.ingestion_core import ingest

    good = json.dumps({"id": "a", "timestamp": 0, "type": "t"}).encode()
    sink = ListSink()
    counts = ingest(
        reader(good + b"\n" + line + b"\n \t\r\n"), InputFormat(False, False), CHECKER, 1024, {}, sink
    )
    assert [(entry["line"], entry["reason"]) for entry in sink.quarantined] == [(2, "invalid_json")]
    assert (counts.records_valid, counts.blank_lines) == (1, 1)


def test_an_array_element_of_whitespace_json_does_not_allow_is_invalid_json() -> None:
    from handlers.framing import InputFormat
    from handlers.ingestion_core import ingest

    sink = ListSink()
    ingest(
        reader(b'[{"id":"a","timestamp":0,"type":"t"},\v]'), InputFormat(False, True), CHECKER, 1024, {}, sink
    )
    assert [(entry["line"], entry["reason"]) for entry in sink.quarantined] == [(2, "invalid_json")]


@PROPERTY
@given(st.lists(unit_strategy, min_size=1, max_size=12))
def test_batched_checking_equals_checking_one_unit_at_a_time(units: list[bytes]) -> None:
    assert CHECKER.check_lines(units) == [CHECKER.check(unit) for unit in units]


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "2024-05-01T00:00:00+24:00"]
)
def test_timestamps_outside_the_utc_range_are_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="impossible timestamp"):
        normalise_timestamp(value)


@PROPERTY
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_fast_and_slow_utc_paths_agree(moment: datetime) -> None:
    text = moment.isoformat() + "Z"
    first = normalise_timestamp(text)  # may take the datetime path and remember the date
    assert normalise_timestamp(text) == first == moment.isoformat() + "Z"


@pytest.mark.parametrize("filler", [10, 300_000])  # many small lines, and lines that fill BATCH_BYTES first
def test_batches_keep_line_order_and_conservation(filler: int) -> None:
    from handlers.framing import InputFormat
    from handlers.ingestion_core import ingest

    good = json.dumps({"id": "a", "timestamp": 0, "type": "t", "attributes": {"pad": "x" * filler}}).encode()
    lines = [good if n % 3 else b'{"id": 1}' for n in range(1, 601 if filler < 1000 else 13)]
    sink = ListSink()
    data = b"\n".join(lines) + b"\n\n"
    counts = ingest(reader(data), InputFormat(False, False), CHECKER, 1 << 20, {"key": "k"}, sink)
    expected_bad = [n for n in range(1, len(lines) + 1) if n % 3 == 0]
    assert [entry["line"] for entry in sink.quarantined] == expected_bad
    assert len(sink.written) == len(lines) - len(expected_bad)
    assert (counts.records_read, counts.blank_lines) == (len(lines) + 1, 1)
    assert counts.conserved


def test_an_output_key_within_the_limit_is_prefix_rel_suffix() -> None:
    assert output_key("records/", "a/b c.jsonl", ".jsonl.gz") == "records/a/b c.jsonl.jsonl.gz"


@PROPERTY
@given(st.text(min_size=1000, max_size=1100), st.text(min_size=0, max_size=40))
def test_an_output_key_past_the_limit_is_shortened_deterministically_and_distinctly(
    rel: str, tail: str
) -> None:
    # GIVEN a relative key that makes prefix + rel + suffix longer than S3 allows
    key = output_key("quarantine/", rel + tail, ".jsonl")
    # THEN the key fits, keeps the prefix, suffix and the start of rel, and names this rel alone
    assert len(key.encode()) <= MAX_KEY_BYTES
    assert key.startswith("quarantine/" + (rel + tail)[:100])
    assert key.endswith(".jsonl")
    assert output_key("quarantine/", rel + tail, ".jsonl") == key
    if len(f"quarantine/{rel}{tail}.jsonl".encode()) > MAX_KEY_BYTES:
        assert output_key("quarantine/", rel + tail + "x", ".jsonl") != key
