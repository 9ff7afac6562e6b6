"""handlers.records: parsing, duplicate keys, schema validation and the written form of a record; the batch
paths (``check_lines``, one jsonschema-rs call per batch, the first-and-last-byte shape check) against
checking one unit at a time.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from handler_support import CHECKER, PROPERTY, THOROUGH, json_values
from hypothesis import given
from hypothesis import strategies as st

from handlers.config import default_record_schema
from handlers.duplicate_keys import repeated_key
from handlers.records import RecordChecker, Rejection, _batch_validator, _braced

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


def nested_record(levels: int, attributes: bytes = b"") -> bytes:
    head = b'{"id":"a","timestamp":0,"type":"t","attributes":{' + attributes + b'"a":'
    return head + b"[" * levels + b"1" + b"]" * levels + b"}}"


TOO_DEEP = Rejection("invalid_json", "nesting deeper than the parser's recursion limit")


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


@PROPERTY
@given(st.lists(unit_strategy, min_size=1, max_size=12))
def test_batched_checking_equals_checking_one_unit_at_a_time(units: list[bytes]) -> None:
    assert CHECKER.check_lines(units) == [CHECKER.check(unit) for unit in units]


GOOD_LINE = b'{"id":"g","timestamp":"2024-05-01T00:00:00Z","type":"t","value":1.50}'
# Bad lines of each kind a batch retries around, several written to mislead where a parse stops: an
# unclosed object or array makes the next line the one the parser complains about.
BAD_LINES = {
    "invalid_json": [
        b"{oops",
        b'{"id":"a","timestamp":0,"type":"t","value":1',
        b'{"id":"a","attributes":[',
        b'{"id":"a",',
        b"}",
        b'{"id":"a\xff"}',
        b'{"id":"a","timestamp":0,"type":"t"} {"id":"b","timestamp":0,"type":"t"}',
        b'{"id":"a","timestamp":0,"type":"t","value":1e1000000000000000000}',
        b'{"id":"a","timestamp":0,"type":"t","value":' + b"9" * 4301 + b"}",
        b"\xc3\x28",
    ],
    "not_an_object": [b'["a","2024-05-01T00:00:00Z"]', b"42", b' "x" ', b"[{}]", b"null"],
    "schema_violation": [b'{"id":"a","timestamp":0}', b'{"id":"a","timestamp":0,"type":"t","value":"1"}'],
    "other": [
        b'{"id":"a","id":"b","timestamp":0,"type":"t"}',
        b'{"id":"a","timestamp":"2024-02-30T00:00:00Z","type":"t"}',
        b'{"id" : "a", "timestamp" : 0, "type" : "t"}',
        b'  {"id":"a\\":","timestamp":0,"type":"t"}\r',
    ],
}
bad_lines = st.sampled_from([line for lines in BAD_LINES.values() for line in lines])


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 40), bad_lines), max_size=6), st.integers(0, 40))
def test_batches_with_bad_lines_of_every_kind_equal_checking_one_unit_at_a_time(
    runs: list[tuple[int, bytes]], tail: int
) -> None:
    # GIVEN runs of good lines, each followed by a bad line of any kind
    units = [line for good, bad in runs for line in [GOOD_LINE] * good + [bad]] + [GOOD_LINE] * tail
    # WHEN checked as one batch, which is retried in pieces around the bad lines
    # THEN every verdict is the one the unit gets alone
    assert CHECKER.check_lines(units) == [CHECKER.check(unit) for unit in units]


@pytest.mark.parametrize(
    "units",
    [
        [b"[1,", b"2]", b"3 4"],  # two lines that are one value, and one that is two: as many values as lines
        [b"[", GOOD_LINE, b"]", b"1 2 3"],
        [b"{}", b'"a"', b"[1,", b"2]", b"true false"],
    ],
)
def test_values_spread_over_lines_that_are_not_objects_are_not_taken_for_one_each(units: list[bytes]) -> None:
    assert CHECKER.check_lines(units) == [CHECKER.check(unit) for unit in units]


# As many values as lines, but not one a line: lines that are parts of one value, as many lines that
# hold two, and lines that hold one, in any order (the batch parser then gives a value per line).
single_lines = st.sampled_from([[b"[1]"], [b'"x"'], [b"3"], [b"{}"], [GOOD_LINE]])
split_lines = st.sampled_from(
    [[b"[1,", b"2]"], [b'{"a":', b"1}"], [b"[", GOOD_LINE + b"]"], [b"[{},", b"{}]"]]
)
double_lines = st.sampled_from([[b"1 2"], [b"[] {}"], [b'"a" ' + GOOD_LINE]])
as_many_values_as_lines = (
    st.integers(0, 3)
    .flatmap(
        lambda n: st.tuples(
            st.lists(split_lines, min_size=n, max_size=n),
            st.lists(double_lines, min_size=n, max_size=n),
            st.lists(single_lines, min_size=1, max_size=6),
        )
    )
    .flatmap(lambda parts: st.permutations([*parts[0], *parts[1], *parts[2]]))
    .map(lambda blocks: [line for block in blocks for line in block])
)


@THOROUGH
@given(as_many_values_as_lines)
def test_lines_holding_parts_of_values_or_several_equal_checking_one_at_a_time(units: list[bytes]) -> None:
    # GIVEN lines the batch parser reads as one value each, though some are parts of a value
    # WHEN checked as one batch THEN every verdict is the one the line gets alone
    assert CHECKER.check_lines(units) == [CHECKER.check(unit) for unit in units]


@pytest.mark.parametrize("bad", [b"{oops", b"[1]", b'{"id":"a","id":"b","timestamp":0,"type":"t"}'])
def test_a_bad_line_does_not_change_how_deep_its_batch_mates_may_nest(bad: bytes) -> None:
    # GIVEN records nested around the parser's limit, in a batch alone and beside a bad line
    for levels in range(850, 1100):
        deep = nested_record(levels)
        # WHEN checked THEN the deep record's verdict is the same either way
        assert CHECKER.check_lines([GOOD_LINE, deep])[1] == CHECKER.check_lines([GOOD_LINE, deep, bad])[1]


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


@THOROUGH
@given(st.lists(unit_bytes() | odd_units, min_size=1, max_size=10))
def test_batched_checking_equals_checking_one_unit_at_a_time_on_built_records(batch: list[bytes]) -> None:
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


@THOROUGH
@given(unit_bytes())
def test_the_duplicate_key_scan_finds_what_a_parser_finds(unit: bytes) -> None:
    # GIVEN a record, maybe with a key written twice at any level, in any escaping
    duplicates = duplicated_keys(unit)
    # WHEN scanned without recursion THEN it names a duplicated key exactly when there is one
    key = repeated_key(unit)
    assert (key is None) == (not duplicates)
    assert key is None or key in duplicates


def test_a_duplicate_key_in_a_record_nested_5000_levels_deep_is_found_without_recursion() -> None:
    unit = b'{"a":' * 5000 + b'{"k":1,"k":2}' + b"}" * 5000
    assert repeated_key(unit) == "k"


def test_duplicate_hidden_by_a_spaced_colon_is_found() -> None:
    unit = b'{"id":"a","timestamp":0,"type":"t","value":1,"value" :2}'
    assert CHECKER.check_lines([unit]) == [Rejection("duplicate_key", "key 'value' appears more than once")]


def test_duplicate_hidden_by_a_unicode_escape_is_found() -> None:
    unit = b'{"id":"a","timestamp":0,"type":"t","value":1,"\\u0076alue":2,"s":"\\u0022:"}'
    assert CHECKER.check_lines([unit]) == [Rejection("duplicate_key", "key 'value' appears more than once")]


@THOROUGH
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


@THOROUGH
@given(st.lists(st.text("{} x", max_size=4).map(str.encode), min_size=1, max_size=8))
def test_braced_equals_scanning_the_joined_units(units: list[bytes]) -> None:
    # GIVEN single-line units (maybe empty, maybe without braces) joined as the batch parser sees them
    joined = b"\n".join(units)
    scanned = joined.count(b"}\n{") == len(units) - 1 and joined[:1] == b"{" and joined[-1:] == b"}"
    # THEN checking each unit's first and last byte agrees with scanning the joined text
    assert _braced(units) == scanned
