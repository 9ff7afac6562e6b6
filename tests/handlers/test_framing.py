"""handlers.framing: lines and array elements whatever the chunking, oversize units, formats by suffix,
unreadable documents.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from handler_support import CHECKER, PROPERTY, THOROUGH, json_values, reader
from hypothesis import given
from hypothesis import strategies as st

from handlers import contract
from handlers.errors import UnreadableObjectError
from handlers.framing import Oversize, detect_format, iter_document, iter_lines
from handlers.ingestion_core import array_elements
from handlers.records import Rejection


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


# Pieces of arrays of objects, most of them valid, some hostile to a framing that looks for "},{":
# braces, brackets, commas and escapes inside strings, nested objects in arrays, stray closers.
_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=4).map(
    lambda value: json.dumps(value, separators=(",", ":"))
)
_hostile = st.sampled_from(
    [
        '{"s":"},{"}',
        '{"s":"\\"},{"}',
        '{"a":[{"b":1},{"c":2}]}',
        '{"a":1}}',
        '{"a":{"b":1},{"c":2}',
        "{",
        "}",
        '"x"',
        "42",
        "",
        " ",
        '{"a":"\\u007d,{"}',
        '{"a":1} {"b":2}',
        "[1,{}]",
        '{"a":"\x0b"}',
        '{"\xff":1}',
    ]
)
_separators = st.sampled_from([",", ",\n", " , ", "},{", ",\n  ", "\t,\r\n"])


@THOROUGH
@given(
    st.lists(st.one_of(_objects, _objects, _objects, _hostile), max_size=12),
    st.lists(_separators, min_size=1, max_size=3),
    st.sampled_from(["]", "]\n", "", "] x", "},{}]"]),
    st.sampled_from([1 << 20, 256]) | st.integers(1, 200),
    st.sampled_from([1 << 20, 40]),
)
def test_array_framing_with_a_parser_equals_the_state_machine_on_any_input(
    pieces: list[str], separators: list[str], end: str, chunk: int, max_bytes: int
) -> None:
    # GIVEN an array, maybe malformed, maybe truncated, read in chunks of any size
    body = "".join(piece + separators[index % len(separators)] for index, piece in enumerate(pieces))
    data = ("[" + body.removesuffix(separators[(len(pieces) - 1) % len(separators)]) + end).encode(
        "utf-8", "surrogatepass"
    )

    def frame(elements: Any) -> tuple[Any, ...]:
        units = []
        try:
            for unit in iter_document(reader(data), max_bytes, chunk, elements):
                units.append(unit)
        except UnreadableObjectError as error:
            return (units, error.reason, error.detail)
        return (units,)

    # THEN the parser's fast path frames it exactly as the state machine alone does
    assert frame(array_elements) == frame(None)


def test_a_parser_frames_an_array_as_the_state_machine_does() -> None:
    data = b'[ {"a":1} ,\n{"b":[{"c":2},{"d":3}]},{"e":"},{"}\n]'
    expected = [b' {"a":1} ', b'\n{"b":[{"c":2},{"d":3}]}', b'{"e":"},{"}\n']
    assert list(iter_document(reader(data), 1 << 20, 1 << 20, array_elements)) == expected
    assert list(iter_document(reader(data), 1 << 20, 1 << 20)) == expected


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
    fmt = detect_format(key, contract.INPUT_SUFFIXES)
    assert (fmt.compressed, fmt.document) == (compressed, document)


@pytest.mark.parametrize("document", [b"42", b'"x"', b"true", b"null", b" \n-1.5e3 ", b"\x0b{}"])
def test_a_json_document_that_is_not_an_object_or_an_array_is_unreadable(document: bytes) -> None:
    with pytest.raises(UnreadableObjectError) as caught:
        list(iter_document(reader(document), 1024))
    assert caught.value.reason == "invalid_json"


def test_a_scalar_inside_an_array_is_not_an_object() -> None:
    assert [CHECKER.check(unit) for unit in iter_document(reader(b"[42]"), 1024)] == [
        Rejection("not_an_object", "a record must be a JSON object, got int")
    ]
