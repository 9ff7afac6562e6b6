"""handlers.bad_lines: where the bad lines of a failed batch are, and the pieces it is retried in."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.bad_lines import split_around, stopped_at, unbraced_units

GOOD = b'{"id":"a","timestamp":0,"type":"t"}'


def pointers(lines: list[bytes]) -> list[int]:
    joined = b"\n".join(lines)
    with pytest.raises(msgspec.DecodeError) as failure:
        msgspec.json.Decoder().decode_lines(joined)
    return stopped_at(joined, failure.value, len(lines))


@pytest.mark.parametrize(
    "bad",
    [b"{oops", b'{"id":"a","value":1', b'{"id":"a\\', b'{"id":"a",', b"}", b'{"n":' + b"9" * 4301 + b"}"],
)
def test_every_bad_line_of_a_failed_parse_is_pointed_at(bad: bytes) -> None:
    # GIVEN good lines with the same bad line at three places
    lines = [GOOD, bad, GOOD, GOOD, bad, GOOD, bad, GOOD]
    # WHEN the parse of the joined lines fails
    found = pointers(lines)
    # THEN the first bad line is found, and the syntax-only scan finds the others (it cannot see a
    # number too long, which only a parse refuses), with at most one good neighbour each
    assert {1} <= set(found) if bad.startswith(b'{"n"') else {1, 4, 6} <= set(found)
    assert len(found) <= 6


def test_a_line_that_does_not_parse_after_a_good_one_is_pointed_at_not_its_neighbour() -> None:
    assert pointers([GOOD, GOOD, b"]", GOOD]) == [1, 2]  # the line before an error at a line's start, then it


@given(st.integers(0, 50), st.integers(2, 50), st.lists(st.integers(0, 49), unique=True))
def test_the_pieces_cover_the_range_in_order_with_each_unit_pointed_at_alone(
    start: int, size: int, offsets: list[int]
) -> None:
    alone = sorted(offset for offset in offsets if offset < size)
    pieces = split_around(start, start + size, alone)[::-1]  # popped from the end: first piece last
    assert [unit for first, end in pieces for unit in range(first, end)] == list(range(start, start + size))
    assert all(first < end for first, end in pieces)
    assert all((start + offset, start + offset + 1) in pieces for offset in alone)
    assert alone or len(pieces) == 2  # nothing pointed at: two halves


def test_units_that_are_not_objects_are_found_whitespace_around_allowed() -> None:
    units = [GOOD, b" " + GOOD + b"\r", b"[1]", b'"x"', b"{} ", b"7"]
    assert unbraced_units(units) == [2, 3, 5]
