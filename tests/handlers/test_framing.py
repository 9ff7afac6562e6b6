"""handlers.framing: lines and array elements whatever the chunking, oversize units, formats by suffix,
unreadable documents.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from handler_support import CHECKER, PROPERTY, json_values, reader
from hypothesis import given
from hypothesis import strategies as st

from handlers.errors import UnreadableObjectError
from handlers.framing import Oversize, detect_format, iter_document, iter_lines
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


@pytest.mark.parametrize("document", [b"42", b'"x"', b"true", b"null", b" \n-1.5e3 ", b"\x0b{}"])
def test_a_json_document_that_is_not_an_object_or_an_array_is_unreadable(document: bytes) -> None:
    with pytest.raises(UnreadableObjectError) as caught:
        list(iter_document(reader(document), 1024))
    assert caught.value.reason == "invalid_json"


def test_a_scalar_inside_an_array_is_not_an_object() -> None:
    assert [CHECKER.check(unit) for unit in iter_document(reader(b"[42]"), 1024)] == [
        Rejection("not_an_object", "a record must be a JSON object, got int")
    ]
