"""The ingestion core's fast paths give exactly what its reference paths give.

Timestamps: ``normalise_timestamp`` (parts learnt from the reference, integer arithmetic) against
``_normalise_with_datetime``. Records: ``check_lines`` (batch parse and encode, counted duplicate-key
check) against ``check`` one unit at a time; one jsonschema-rs call per batch against one per record;
the first-and-last-byte shape check against scanning the batch. Lines: ``ingest`` over reads of any
size against the same rules applied line by line.
"""

from __future__ import annotations

import io
import json
import math
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from handler_support import ListSink
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from handlers.config import default_record_schema
from handlers.framing import InputFormat
from handlers.ingestion_core import ingest
from handlers.records import RecordChecker, Rejection, _batch_validator, _braced, _repeated_key
from handlers.timestamps import _normalise_with_datetime, normalise_timestamp

CHECKER = RecordChecker(default_record_schema())
PROPERTY = settings(max_examples=150, deadline=None)


def outcome(function: Any, value: object) -> tuple[str, str]:
    try:
        return ("ok", function(value))
    except ValueError as exc:
        return ("error", str(exc))


# --- timestamps -----------------------------------------------------------------------------------

digits = st.text("0123456789", min_size=2, max_size=2)
timestamp_texts = st.builds(
    lambda year, month, day, sep, hour, minute, second, fraction, zone: (
        f"{year:04d}-{month}-{day}{sep}{hour}:{minute}:{second}{fraction}{zone}"
    ),
    st.sampled_from([1, 2, 1969, 1970, 2000, 2024, 9998, 9999]) | st.integers(1, 9999),
    st.sampled_from(["01", "02", "12", "13", "00"]) | digits,
    st.sampled_from(["01", "28", "29", "30", "31", "32", "00"]),
    st.sampled_from(["T", "t", " "]),
    st.sampled_from(["00", "01", "23", "24", "99"]) | digits,
    st.sampled_from(["00", "30", "59", "60"]) | digits,
    st.sampled_from(["00", "59", "60"]) | digits,
    st.sampled_from(["", ".0", ".000", ".000000", ".5", ".123", ".1234567", ".000000001"])
    | st.text("0123456789", min_size=1, max_size=9).map(lambda f: "." + f),
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+02:00", "-03:30", "+23:59", "+24:00", "+05:60"])
    | st.builds(lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), digits, digits),
)


@PROPERTY
@given(timestamp_texts, st.data())
def test_string_timestamps_agree_with_the_reference_before_and_after_learning(
    text: str, data: st.DataObject
) -> None:
    # GIVEN an RFC 3339-shaped string, valid or not
    expected = outcome(_normalise_with_datetime, text)
    # WHEN it is normalised once (learning its parts) and again (assembled from them)
    first, second = outcome(normalise_timestamp, text), outcome(normalise_timestamp, text)
    # THEN both equal the reference, errors included; so does a neighbour sharing learnt parts
    assert first == second == expected
    neighbour = text[:17] + data.draw(digits) + text[19:]
    assert outcome(normalise_timestamp, neighbour) == outcome(_normalise_with_datetime, neighbour)


@PROPERTY
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)), st.data())
def test_parts_learnt_from_one_timestamp_serve_another_exactly(moment: datetime, data: st.DataObject) -> None:
    zone = data.draw(st.sampled_from(["Z", "+01:00", "-11:45"]))
    text = moment.isoformat(timespec=data.draw(st.sampled_from(["seconds", "milliseconds", "microseconds"])))
    outcome(normalise_timestamp, text + zone)  # learn
    other = text[:16] + f":{data.draw(st.integers(0, 59)):02d}" + text[19:] + zone
    assert outcome(normalise_timestamp, other) == outcome(_normalise_with_datetime, other)


EPOCH_EDGES = [0, -1, 10**11 - 1, 10**11, -(10**11) + 1, -(10**11), 1000 << 32, -62135596800, 253402300799]
EPOCH_EDGES += [
    -62135596801,
    253402300800,
    -62135596800000,
    -62135596800001,
    253402300799999,
    253402300800000,
]
integer_epochs = (
    st.integers(-(10**11) + 1, 253402300799999)
    | st.integers(-(10**20), 10**20)
    | st.integers(311, 4300)
    .map(lambda digits: 10 ** (digits - 1))
    .flatmap(lambda n: st.sampled_from([n, -n]))
    | st.sampled_from(EPOCH_EDGES)
)
decimal_epochs = (
    st.builds(
        lambda coefficient, exponent: Decimal(coefficient).scaleb(exponent),
        st.integers(-(10**40), 10**40),
        st.integers(-60, 30),
    )
    | st.sampled_from(EPOCH_EDGES).map(Decimal)
    | st.sampled_from(
        [Decimal("-0.0"), Decimal("0E+999999999"), Decimal("1E-999999999"), Decimal("-1E-999999999")]
    )
    | st.sampled_from([Decimal("1E+999999999"), Decimal("99999999999.99999999999999999999999999")])
)


@PROPERTY
@given(integer_epochs | decimal_epochs)
def test_numeric_epochs_agree_with_the_reference(value: int | Decimal) -> None:
    expected = outcome(_normalise_with_datetime, value)
    assert outcome(normalise_timestamp, value) == outcome(normalise_timestamp, value) == expected


def floored_moment(value: int | Decimal) -> str | None:
    """The epoch's instant floored to the microsecond, by rational arithmetic; None when out of range."""
    if isinstance(value, Decimal) and not value.is_zero() and not -30 < value.adjusted() < 30:
        return None if value.adjusted() > 0 else floored_moment(Decimal(-1 if value < 0 else 0) / 10**7)
    exact = Fraction(value)
    micros = math.floor(exact * (1000 if abs(exact) >= 10**11 else 1_000_000))
    try:
        moment = datetime(1970, 1, 1) + timedelta(microseconds=micros)
    except OverflowError:
        return None
    return moment.isoformat() + "Z"


@PROPERTY
@given(integer_epochs | decimal_epochs)
def test_numeric_epochs_are_the_exact_instant_floored_to_the_microsecond(value: int | Decimal) -> None:
    expected = floored_moment(value)
    assert outcome(normalise_timestamp, value)[0] == ("error" if expected is None else "ok")
    if expected is not None:
        assert normalise_timestamp(value) == expected


@pytest.mark.parametrize("value", [1.5, -0.25, 1714566896123.0, True, False, None, [1], "", "Z"])
def test_other_values_take_the_reference_path(value: object) -> None:
    assert outcome(normalise_timestamp, value) == outcome(_normalise_with_datetime, value)


# --- records --------------------------------------------------------------------------------------


class Literal(str):
    """A number written as this exact text (json.dumps would write a float's shortest form)."""


DECIMAL_LITERALS = ["0.1", "1.50", "9E15", "1e-7", "12345678901234567890.123456789", "-0.0", "1e400"]
DECIMAL_LITERALS += ["1E+999999999", "1E-999999999", "0e0", "1.5e1", "-1e-6", "1e1000000000000000000"]
keys = st.sampled_from(["value", "n", ":", "a:b", 'q"', "\\", "é", "\u2028", "id", "timestamp"]) | st.text(
    max_size=4
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(DECIMAL_LITERALS).map(Literal)
    | st.sampled_from(['":', ":x", '\\"', "a\\u0022:", "\r\n", ""])
    | st.text(max_size=5)
)
nested = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.lists(st.tuples(keys, inner), max_size=3),
    max_leaves=8,
)


def write(value: Any, data: st.DataObject) -> str:
    """JSON text for ``value`` where a list of pairs is an object that may repeat keys."""
    if isinstance(value, list) and value and all(isinstance(item, tuple) for item in value):
        colon = data.draw(st.sampled_from([":", ":", " : ", "\t:"]))
        pairs = (
            f"{json.dumps(key, ensure_ascii=data.draw(st.booleans()))}{colon}{write(item, data)}"
            for key, item in value
        )
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(write(item, data) for item in value) + "]"
    if isinstance(value, Literal):
        return str(value)
    return json.dumps(value, ensure_ascii=data.draw(st.booleans()))


@st.composite
def record_fields(draw: Any) -> list[tuple[str, Any]]:
    """A record's (key, value) pairs: required fields valid or not, extra fields, maybe a duplicate."""
    fields: list[tuple[str, Any]] = [
        ("id", draw(st.sampled_from(["a", "", 1]))),
        (
            "timestamp",
            draw(
                st.sampled_from(
                    [
                        "2024-05-01T00:00:00Z",
                        "2024-05-01T00:00:00.120Z",
                        "2024-05-01T02:00:00+02:00",
                        "2024-02-30T00:00:00Z",
                    ]
                )
                | st.sampled_from([1714521600, 1714521600123, 1.5, -(10**12), "soon", 10**400])
                | st.sampled_from(["1714521600.5", "1.7145216E+12", "1e-7", "1E+999999999", "-0.0"]).map(
                    Literal
                )
            ),
        ),
        ("type", "t"),
    ]
    fields += draw(st.lists(st.tuples(keys, nested), max_size=3))
    if draw(st.booleans()):
        fields.append((draw(st.sampled_from(["id", "type", "value"])), 1))  # a top-level duplicate
    return fields


@st.composite
def unit_bytes(draw: Any) -> bytes:
    fields = draw(record_fields())
    data = draw(st.data())
    text = write(draw(st.permutations(fields)) if draw(st.booleans()) else fields, data)
    if draw(st.integers(0, 5)) == 0:
        text = draw(st.sampled_from([" ", "\t", "\r"])) + text + draw(st.sampled_from(["\r", " ", ""]))
    return text.encode()


odd_units = st.sampled_from(
    [
        b"[1]",
        b'"x"',
        b"{oops",
        b"\xc3\x28",
        b'{"id":"a","timestamp":0,"type":"t"} {"id":"b","timestamp":0,"type":"t"}',
        b'{"id":"a","timestamp":0,"type":"t","x":{',
        b'"y":1}}',
        b"{",
        b"}",
        b'{"id":"a","timestamp":0,"type":"t","v":1,\r"w":2}',
    ]
)


@PROPERTY
@given(st.lists(unit_bytes() | odd_units, min_size=1, max_size=10))
def test_batched_checking_equals_checking_one_unit_at_a_time(batch: list[bytes]) -> None:
    assert CHECKER.check_lines(batch) == [CHECKER.check(unit) for unit in batch]


def test_a_value_spread_over_units_is_not_taken_for_one_record_each() -> None:
    # GIVEN a line with two records, then two lines that are each half a record
    record = b'{"id":"%s","timestamp":"2024-05-01T00:00:00Z","type":"t"}'
    batch = [
        record % b"a" + b" " + record % b"b",
        b"{",
        b'"id":"c","timestamp":"2024-05-01T00:00:00Z","type":"t"}',
    ]
    # WHEN the batch is checked
    results = CHECKER.check_lines(batch)
    # THEN every line is invalid JSON, as it is alone
    assert [result.reason for result in results] == ["invalid_json"] * 3  # type: ignore[union-attr]


def duplicated_keys(unit: bytes) -> set[str]:
    """Every key written twice in one object of ``unit``, by the standard library's parser."""
    found: set[str] = set()

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                found.add(key)
            seen.add(key)
        return dict(pairs)

    json.loads(unit, object_pairs_hook=pairs_hook)
    return found


@PROPERTY
@given(unit_bytes())
def test_the_duplicate_key_scan_finds_what_a_parser_finds(unit: bytes) -> None:
    # GIVEN a record, maybe with a key written twice at any level, in any escaping
    duplicates = duplicated_keys(unit)
    # WHEN scanned without recursion THEN it names a duplicated key exactly when there is one
    key = _repeated_key(unit)
    assert (key is None) == (not duplicates)
    assert key is None or key in duplicates


def test_a_duplicate_key_in_a_record_nested_5000_levels_deep_is_found_without_recursion() -> None:
    unit = b'{"a":' * 5000 + b'{"k":1,"k":2}' + b"}" * 5000
    assert _repeated_key(unit) == "k"


def test_duplicate_hidden_by_a_spaced_colon_is_found() -> None:
    unit = b'{"id":"a","timestamp":0,"type":"t","value":1,"value" :2}'
    assert CHECKER.check_lines([unit]) == [Rejection("duplicate_key", "key 'value' appears more than once")]


def test_duplicate_hidden_by_a_unicode_escape_is_found() -> None:
    unit = b'{"id":"a","timestamp":0,"type":"t","value":1,"\\u0076alue":2,"s":"\\u0022:"}'
    assert CHECKER.check_lines([unit]) == [Rejection("duplicate_key", "key 'value' appears more than once")]


# --- batch validation and the unit shape check ----------------------------------------------------

OTHER_SCHEMAS = [
    {  # draft 7 with $id and unused $defs: no reference, so the array wrapper is exact
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://example.test/r.json",
        "definitions": {"n": {"type": "number"}},
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "string", "minLength": 1}, "value": {"maximum": 10}},
        "additionalProperties": {"type": ["number", "string", "object"]},
    },
    {  # draft 4: a boolean exclusiveMaximum, which later drafts reject
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"value": {"maximum": 11, "exclusiveMaximum": True}},
    },
    {  # no $schema: the default draft in both validators
        "type": "object",
        "properties": {"timestamp": {"type": "integer"}},
        "patternProperties": {"^[a-z]$": {"type": "number"}},
        "unevaluatedProperties": False,
    },
]
REFERRING_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {"s": {"type": "string"}},
    "type": "object",
    "properties": {"id": {"$ref": "#/$defs/s"}},
}


near_valid = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "", 1]), "timestamp": st.sampled_from([0, "2024-05-01T00:00:00Z", None])},
    optional={
        "type": st.sampled_from(["t", ""]),
        "value": st.sampled_from(
            [1, 11, 2.5, Decimal("10.5"), Decimal("1E+400"), Decimal("-0.0"), "x", None, {}]
        ),
        "a": st.sampled_from([1, "x"]),
        "attributes": st.sampled_from([{}, [], {"k": [1]}]),
    },
)


def parsed(value: Any) -> Any:
    """``value`` as the core's decoder gives it: a Literal is a Decimal."""
    if isinstance(value, Literal):
        try:
            return Decimal(value)
        except ArithmeticError:  # an exponent no Decimal holds: such a record never reaches validation
            return Decimal("1E+999999999999999999")
    if isinstance(value, list | tuple):
        return type(value)(map(parsed, value))
    return value


@PROPERTY
@given(st.lists(near_valid | nested.map(parsed), max_size=5))
def test_batch_validation_equals_validating_each_record(records: list[Any]) -> None:
    # GIVEN records near the edge of each schema, and schemas without references (the default one)
    for schema in [default_record_schema(), *OTHER_SCHEMAS]:
        checker = RecordChecker(schema)
        # WHEN the batch is validated in one call
        batch_validator = _batch_validator(schema)
        # THEN it exists and agrees with one call per record
        assert batch_validator is not None
        assert batch_validator(records) == all(map(checker._is_valid, records))


def test_a_schema_with_references_is_validated_one_record_at_a_time() -> None:
    # GIVEN a schema whose "#/..." reference would resolve against an array wrapper
    checker = RecordChecker(REFERRING_SCHEMA)
    # WHEN a batch is checked THEN no batch validator is used, and the results are check's
    assert _batch_validator(REFERRING_SCHEMA) is None
    batch = [b'{"id":"a","timestamp":0}', b'{"id":1,"timestamp":0}']
    assert checker.check_lines(batch) == [checker.check(unit) for unit in batch]
    assert [type(result) for result in checker.check_lines(batch)] == [bytes, Rejection]


@PROPERTY
@given(st.lists(st.text("{} x", max_size=4).map(str.encode), min_size=1, max_size=8))
def test_braced_equals_scanning_the_joined_units(units: list[bytes]) -> None:
    # GIVEN single-line units (maybe empty, maybe without braces) joined as the batch parser sees them
    joined = b"\n".join(units)
    scanned = joined.count(b"}\n{") == len(units) - 1 and joined[:1] == b"{" and joined[-1:] == b"}"
    # THEN checking each unit's first and last byte agrees with scanning the joined text
    assert _braced(units) == scanned


# --- lines ----------------------------------------------------------------------------------------

GOOD = json.dumps({"id": "a", "timestamp": 1714521600, "type": "t", "value": 1}).encode()
line_kinds = st.sampled_from(
    [
        GOOD,
        b'{"id": 1}',
        b"",
        b"  ",
        b"\r",
        b"not json",
        b"x" * 300,
        GOOD.replace(b"1714521600", b'"2024-05-01T00:00:00Z"'),
    ]
)


def trickle(data: bytes, most: int) -> Any:
    stream = io.BytesIO(data)
    return lambda size: stream.read(min(size, most))


@PROPERTY
@given(st.lists(line_kinds, max_size=40), st.integers(1, 700), st.booleans())
def test_ingest_equals_the_line_by_line_rules_whatever_the_read_sizes(
    lines: list[bytes], most: int, final_newline: bool
) -> None:
    # GIVEN JSON Lines with blank, bad and over-long lines, read a few bytes at a time
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    assume(data)  # an empty object is unreadable, not ingested
    sink = ListSink()
    # WHEN ingested with a 200-byte record limit
    counts = ingest(trickle(data, most), InputFormat(False, False), CHECKER, 200, {"key": "k"}, sink)
    # THEN the outputs are those of the rules applied to each line alone
    present = data.split(b"\n")
    if present and present[-1] == b"":
        present.pop()
    expected_valid, expected_bad, blank = [], [], 0
    for number, line in enumerate(present, start=1):
        if len(line) > 200:
            expected_bad.append((number, "record_too_large"))
        elif not line or line.isspace():
            blank += 1
        elif isinstance(result := CHECKER.check(line), bytes):
            expected_valid.append(result)
        else:
            expected_bad.append((number, result.reason))
    assert sink.written == expected_valid
    assert [(entry["line"], entry["reason"]) for entry in sink.quarantined] == expected_bad
    assert (counts.records_read, counts.blank_lines) == (len(present), blank)
    assert counts.conserved
