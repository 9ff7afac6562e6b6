"""Hostile records through the whole ingestion core: nothing raises, nothing is lost, nothing changes.

``ingest`` is fed records built to break it: huge integers and decimals with extreme exponents in every
field (the timestamp too), every JSON type in every field, deep nesting, duplicate keys, long strings,
invalid UTF-8, byte-order marks and whitespace JSON does not allow. Whatever comes in, it must not
raise, must account for every line (read = valid + quarantined + blank), must give every quarantined
unit a reason, and must write each valid record as exactly its input with only the timestamp
normalised. The same records hold the output to ``output_bound``, from which the configured limit
``MAX_RECORD_BYTES_LIMIT`` is derived.

Also: batches keep line order and conservation, and ``ingest`` over reads of any size equals the same
rules applied line by line.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from handler_support import CHECKER, PROPERTY, THOROUGH, ListSink, reader
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from handlers.config import MAX_RECORD_BYTES_LIMIT, RECORDS_LINE_LIMIT
from handlers.framing import InputFormat
from handlers.ingestion_core import ingest, output_bound
from handlers.records import RecordChecker
from handlers.timestamps import normalise_timestamp

MAX_RECORD_BYTES = 1 << 16


DECODE = msgspec.json.Decoder(float_hook=Decimal).decode


def mostly(common: Any, rare: Any) -> Any:
    """``common``, and about one time in ten ``rare``: extremes stay frequent without drowning the rest."""
    return st.one_of(*[common] * 9, rare)  # the simplest branch first, for shrinking


digits = st.text("0123456789", min_size=1, max_size=30)


big_integers = st.integers(1, 5000).map(lambda n: "9" * n)  # past the 4300 digits CPython reads as an int


integers = mostly(
    st.integers(-(2**70), 2**70).map(str)
    | st.sampled_from(["0", "-0", "1", "-1", "1714566896", "1714566896123", "253402300799999"])
    | st.sampled_from(["253402300800000", "-62135596800", "-62135596801", "100000000000", "99999999999"])
    | digits.filter(lambda d: d == "0" or not d.startswith("0")),
    st.integers(300, 4300).map(lambda n: "9" * n),
)


exponents = mostly(
    st.integers(-30, 30).map(str) | st.sampled_from(["400", "-400", "+0007", "-0000006"]),
    st.sampled_from(["999999999", "-999999999", "999999999999999999", "-1999999999999999997"]),
)


beyond_decimal = st.sampled_from(
    ["1e1000000000000000000", "1e-1999999999999999998", "0E99999999999999999999"]
)


decimals = st.one_of(
    st.sampled_from(["0.1", "1.50", "9E15", "1e-7", "12345678901234567890.123456789", "-0.0", "1e400"]),
    st.sampled_from(["1E+999999999", "1E-999999999", "0e5", "-0e-6", "1e-6", "1714566896.5", "0.000001"]),
    st.builds(
        lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
        st.sampled_from(["", "-"]),
        st.sampled_from(["0", "1", "9", "10", "1714566896", "253402300799999"])
        | digits.filter(lambda d: not d.startswith("0")),
        st.just("") | digits.map(lambda d: "." + d),
        st.just("") | st.builds(lambda e, x: e + x, st.sampled_from(["e", "E"]), exponents),
    ).filter(lambda text: any(c in text for c in ".eE")),
)


numbers = integers | decimals


string_texts = mostly(
    st.text(max_size=20)
    | st.sampled_from(['":', "{", "}]", "\\", '"', "\u2028", "\x00\x1f\x7f", "é", "\U0001f600", "\ufeff"]),
    st.integers(1000, 70_000).map(lambda size: "x" * size),  # long, sometimes past the record limit
)


@st.composite
def json_string(draw: Any) -> str:
    """A JSON string literal for a drawn text, escaped in one of the ways JSON allows."""
    text = draw(string_texts)
    style = draw(st.sampled_from(["plain", "ascii", "escape-all"]))
    if style == "escape-all" and len(text) < 100:
        return (
            '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else json.dumps(c)[1:-1] for c in text) + '"'
        )
    return json.dumps(text, ensure_ascii=style == "ascii")


not_json = st.sampled_from(["NaN", "Infinity", "-Infinity", "01", "1.", ".5", "+1", "'x'", "nul"])


clean_scalars = numbers | json_string() | st.sampled_from(["true", "false", "null"])


keys = (
    st.sampled_from(['"id"', '"timestamp"', '"type"', '"value"', '"\\u0076alue"', '"a"', '""'])
    | json_string()
)


def containers(inner: Any) -> Any:
    return st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]") | st.lists(
        st.tuples(keys, inner), max_size=4
    ).map(lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}")


clean_values = st.recursive(clean_scalars, containers, max_leaves=10)  # JSON, maybe with duplicate keys


values = st.recursive(
    mostly(clean_scalars, not_json | big_integers | beyond_decimal), containers, max_leaves=10
)


def nest(value: str, depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + value + "]" * depth
    return '{"a":' * depth + value + "}" * depth


deep_values = st.builds(
    nest,
    clean_values,
    st.sampled_from([1, 50, 254, 255, 256, 257, 600, 2000, 3000]),  # jsonschema-rs: 256; parser: ~950
    st.sampled_from(["array", "object"]),
)


valid_timestamps = st.sampled_from(
    ['"2024-05-01T12:34:56Z"', '"2024-05-01T14:34:56.123456789+02:00"', "1714566896", "1714566896123"]
)


short_strings = st.text(min_size=1, max_size=20).map(json.dumps) | st.sampled_from(
    ['"\\u00e9\\/\\"\\\\"', '"\\ud83d\\ude00"']
)


@st.composite
def records(draw: Any) -> str:
    """A record with the default schema's shape and hostile contents, or with anything anywhere;
    fields in any order, maybe one missing, of another type, nested deep, or written twice."""
    if draw(st.integers(0, 3)) == 3:
        fields = {
            '"id"': draw(values),
            '"timestamp"': draw(values),
            '"type"': draw(values),
            '"value"': draw(values),
        }
    else:
        attributes = draw(st.lists(st.tuples(keys, clean_values), max_size=4))
        fields = {
            '"id"': draw(short_strings | json_string()),
            '"timestamp"': draw(valid_timestamps | numbers),
            '"type"': draw(short_strings),
            '"value"': draw(numbers),
            '"attributes"': "{" + ",".join(f"{k}:{v}" for k, v in attributes) + "}",
        }
        for key in draw(st.lists(st.sampled_from(['"a"', '"b"', '"\\u0063"', '"latency_ms"']), unique=True)):
            fields[key] = draw(numbers)
    change = draw(st.sampled_from(["none"] * 5 + ["drop", "retype", "deep", "duplicate"]))
    if change == "deep":
        fields['"attributes"'] = '{"d":' + draw(deep_values) + "}"
    pairs = list(fields.items())
    if change == "drop":
        del pairs[draw(st.integers(0, len(pairs) - 1))]
    elif change == "retype":
        at = draw(st.integers(0, len(pairs) - 1))
        pairs[at] = (pairs[at][0], draw(values))
    elif change == "duplicate":
        pairs.append((draw(st.sampled_from([key for key, _ in pairs] + ['"\\u0076alue"'])), draw(numbers)))
    pairs = draw(st.permutations(pairs))
    space = draw(st.sampled_from(["", " ", "\t", "\r\n "]))
    return "{" + ",".join(f"{space}{k}{space}:{space}{v}" for k, v in pairs) + "}"


@st.composite
def lines(draw: Any) -> bytes:
    """One JSON Lines line: a record, maybe damaged; or a blank or whitespace-only line."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.sampled_from([b"", b" ", b"\t", b"\r", b"\v", b"\f", b" \x0b ", b"\x85", b"\xa0"]))
    line = draw(records()).encode("utf-8", "surrogatepass")
    damage = draw(st.sampled_from(["none"] * 12 + ["bom", "invalid-utf8", "truncate", "pad"]))
    if damage == "bom":
        line = b"\xef\xbb\xbf" + line
    elif damage == "invalid-utf8":
        at = draw(st.integers(0, len(line)))
        line = (
            line[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]))
            + line[at:]
        )
    elif damage == "truncate":
        line = line[: draw(st.integers(0, len(line)))]
    elif damage == "pad":
        line = (
            draw(st.sampled_from([b" ", b"\t", b"\v"])) + line + draw(st.sampled_from([b"\r", b" ", b"\f"]))
        )
    return line.replace(b"\n", b"")  # a record written with "\r\n " as its spacing stays one line


def exact(value: Any) -> Any:
    """A comparable form that tells 1.50 from 1.5, 1 from 1.0 and keeps the order of keys.

    A decimal with exponent 0 (``1e0``, ``1.5e1``) is written as the integer it equals (``1``, ``15``),
    which reads back as an int: the same number, the only change of form the core makes to a number.
    """
    if type(value) is Decimal:
        digits = value.as_tuple()
        return ("int", int(value)) if digits.exponent == 0 else ("decimal", digits)
    if type(value) is dict:
        return ("object", [(key, exact(item)) for key, item in value.items()])
    if type(value) is list:
        return ("array", [exact(item) for item in value])
    return (type(value).__name__, value)


def run(data: bytes, document: bool) -> tuple[Any, ListSink]:
    sink = ListSink()
    stream = io.BytesIO(data)
    counts = ingest(stream.read, InputFormat(False, document), CHECKER, MAX_RECORD_BYTES, {"key": "k"}, sink)
    return counts, sink


def check_outputs(units: list[bytes], counts: Any, sink: ListSink) -> None:
    """The contract, given the units in order (lines of JSON Lines, or array elements)."""
    assert counts.records_read == counts.records_valid + counts.records_quarantined + counts.blank_lines
    assert (counts.records_valid, counts.records_quarantined) == (len(sink.written), len(sink.quarantined))
    quarantined = [entry["line"] for entry in sink.quarantined]
    assert quarantined == sorted(set(quarantined)), "one entry per unit, in order"
    assert all(entry["reason"] and entry["detail"] for entry in sink.quarantined)
    kept = [
        unit
        for number, unit in enumerate(units, start=1)
        if number not in set(quarantined) and unit.strip(b" \t\r\n")
    ]
    assert len(kept) == len(sink.written)
    for unit, line in zip(kept, sink.written, strict=True):
        expected = DECODE(unit)
        expected["timestamp"] = normalise_timestamp(expected["timestamp"])
        assert exact(DECODE(line)) == exact(expected)
        assert len(line) <= output_bound(len(unit))


GROWING = ["1e-6", "-1e-6", "0e-6", "10e-7", "100e-8", "12e9", "1e5", "9E15", "1e-0000006", "1.5e-7"]


growing_values = st.recursive(
    st.sampled_from(GROWING) | decimals | integers | json_string(),
    lambda inner: (
        st.lists(inner, max_size=30).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(keys, inner), max_size=5).map(
            lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
        )
    ),
    max_leaves=60,
)


NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


@PROPERTY
@given(st.lists(lines(), min_size=1, max_size=12), st.booleans())
def test_hostile_json_lines_are_all_accounted_for_and_kept_exactly(
    units: list[bytes], final_newline: bool
) -> None:
    # GIVEN JSON Lines of hostile records, damaged lines and odd whitespace
    data = b"\n".join(units) + (b"\n" if final_newline else b"")
    if not data:
        return  # an empty object is unreadable as a whole (bad-input corpus)
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return  # likewise a UTF-16/32 byte-order mark
    # WHEN the core ingests them
    counts, sink = run(data, document=False)
    # THEN nothing raised, every line is accounted for, and the valid ones are their input exactly
    present = data.split(b"\n")
    if present[-1] == b"":
        present.pop()
    if data.startswith(b"\xef\xbb\xbf"):
        present[0] = present[0][3:]  # the UTF-8 BOM that starts an object is dropped
    assert counts.records_read == len(present)
    assert counts.blank_lines == sum(not unit.strip(b" \t\r\n") for unit in present)
    check_outputs(present, counts, sink)


@PROPERTY
@given(st.lists(records(), min_size=1, max_size=8))
def test_hostile_array_elements_are_all_accounted_for_and_kept_exactly(elements: list[str]) -> None:
    # GIVEN a .json array of hostile records (each still one well-formed JSON value)
    units = [element.encode() for element in elements]
    # WHEN the core ingests it
    counts, sink = run(b"[" + b",".join(units) + b"]", document=True)
    # THEN nothing raised, every element is accounted for, and the valid ones are their input exactly
    assert (counts.records_read, counts.blank_lines) == (len(units), 0)
    check_outputs(units, counts, sink)


@PROPERTY
@given(records())
def test_a_hostile_json_document_is_one_unit(record: str) -> None:
    counts, sink = run(record.encode(), document=True)
    assert counts.records_read == 1
    check_outputs([record.encode()], counts, sink)


@PROPERTY
@given(
    st.sampled_from(["0", "1", "0.5", "1e-6", "1e0", '"2024-05-01 00:00:00.5Z"']) | valid_timestamps,
    st.lists(st.tuples(st.sampled_from(['"a"', '"b"', '"c"']), growing_values), max_size=3),
)
def test_a_valid_record_is_never_written_longer_than_the_bound(timestamp: str, extra: list[Any]) -> None:
    # GIVEN a record made of the literals that grow most when re-encoded, with a numeric timestamp
    attributes = "{" + ",".join(f"{k}:{v}" for k, v in extra) + "}"
    unit = f'{{"id":"a","timestamp":{timestamp},"type":"t","attributes":{attributes}}}'.encode()
    # WHEN it is checked THEN a valid record's line is within output_bound
    result = CHECKER.check(unit)
    if isinstance(result, bytes):
        assert len(result) <= output_bound(len(unit))


def test_the_bound_is_nearly_reached() -> None:
    # GIVEN the worst literal, many times over
    unit = b'{"id":"a","timestamp":0,"type":"t","attributes":{"a":[' + b",".join([b"1e-6"] * 10_000) + b"]}}"
    line = CHECKER.check(unit)
    assert isinstance(line, bytes)
    # THEN the output is within the bound and close to it: the factor 9/5 cannot be lowered
    assert len(line) <= output_bound(len(unit))
    assert len(line) > 1.79 * len(unit)


def test_every_decimal_literal_of_up_to_six_bytes_grows_by_at_most_nine_fifths_with_its_separator() -> None:
    # GIVEN every JSON number of up to 6 bytes with a fraction or an exponent (digits 0, 1, 9 stand
    # for all: only their count and zeroness change how Python writes a decimal)
    checked = 0
    for size in range(1, 7):
        for chars in itertools.product("019-+.eE", repeat=size):
            literal = "".join(chars)
            if not NUMBER.fullmatch(literal) or not any(c in literal for c in ".eE"):
                continue
            # WHEN re-encoded as the core does
            written = msgspec.json.Encoder(decimal_format="number").encode(DECODE(literal.encode()))
            # THEN it and its separator grow by at most 9/5
            assert 5 * (len(written) + 1) <= 9 * (len(literal) + 1), (literal, written)
            checked += 1
    assert checked > 5000


@settings(max_examples=300, deadline=None)
@given(decimals)
def test_long_decimal_literals_grow_by_at_most_nine_fifths_with_their_separator(literal: str) -> None:
    try:
        value = DECODE(literal.encode())
    except ArithmeticError:
        return  # an exponent no decimal can hold is quarantined, never written
    written = msgspec.json.Encoder(decimal_format="number").encode(value)
    assert 5 * (len(written) + 1) <= 9 * (len(literal) + 1)


def test_the_largest_record_limit_is_the_largest_whose_output_fits_a_records_line() -> None:
    assert output_bound(MAX_RECORD_BYTES_LIMIT) <= RECORDS_LINE_LIMIT
    assert output_bound(MAX_RECORD_BYTES_LIMIT + 1) > RECORDS_LINE_LIMIT


@pytest.mark.parametrize(
    "literal", ["1E+999999999", "1E-999999999", "-1E+999999999", "9" * 400, "9" * 400 + ".5"]
)
def test_extreme_numbers_in_every_schema_keyword_are_valid_or_quarantined(literal: str) -> None:
    # GIVEN a schema that compares numbers in every way JSON Schema can
    schema = {
        "type": "object",
        "properties": {
            "a": {"minimum": 0, "maximum": 10**6},
            "b": {"exclusiveMinimum": -1, "exclusiveMaximum": 1e308},
            "c": {"multipleOf": 0.01},
            "d": {"type": "integer"},
            "e": {"enum": [1, 0.5]},
            "timestamp": {"type": "number"},
        },
    }
    checker = RecordChecker(schema)
    for field in "abcde":
        unit = f'{{"timestamp":0,"{field}":{literal}}}'.encode()
        # WHEN checked alone and in a batch THEN the verdicts agree and nothing raised
        result = checker.check(unit)
        assert isinstance(result, bytes) or (result.reason and result.detail)
        assert checker.check_lines([unit, unit]) == [result, result]


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


# One bad line of each kind the batches retry around (records.py: _check_batch), and a record written
# with an unclosed array, which makes the parser complain about the line after it.
BAD_KINDS = [
    b"{oops",
    b'{"id":"a","timestamp":0,"type":"t","attributes":[',
    b'["a","2024-05-01T00:00:00Z"]',
    b"7",
    b'{"id":"a","timestamp":0}',
    b'{"id":"a","id":"b","timestamp":0,"type":"t"}',
    b'{"id":"a","timestamp":"2024-02-30T00:00:00Z","type":"t"}',
]


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 150), st.sampled_from(BAD_KINDS)), max_size=5), st.integers(0, 150))
def test_json_lines_with_bad_lines_of_every_kind_equal_checking_each_line_alone(
    runs: list[tuple[int, bytes]], tail: int
) -> None:
    # GIVEN JSON Lines over several batches: runs of distinct good records, each run ended by a bad line
    good = (b'{"id":"%d","timestamp":%d,"type":"t","value":%d.5}' % (n, n, n) for n in itertools.count())
    lines = [line for count, bad in runs for line in [*itertools.islice(good, count), bad]]
    lines += itertools.islice(good, tail)
    assume(lines)
    sink = ListSink()
    # WHEN ingested
    counts = ingest(reader(b"\n".join(lines)), InputFormat(False, False), CHECKER, 1024, {"key": "k"}, sink)
    # THEN the output bytes, and each quarantined line's number, reason and detail, are those of
    # checking every line alone
    alone = [CHECKER.check(line) for line in lines]
    assert sink.written == [result for result in alone if isinstance(result, bytes)]
    assert [(entry["line"], entry["reason"], entry["detail"]) for entry in sink.quarantined] == [
        (number, result.reason, result.detail)
        for number, result in enumerate(alone, start=1)
        if not isinstance(result, bytes)
    ]
    assert counts.conserved


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


@THOROUGH
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
