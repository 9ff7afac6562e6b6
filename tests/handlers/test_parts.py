"""handlers.parts: valid lines cut into parts of bounded size, between lines only."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from handler_support import PROPERTY
from hypothesis import given
from hypothesis import strategies as st

from handlers import contract
from handlers.errors import EventError
from handlers.parts import Parts, parts_of


class Spool:
    """A part's lines, as ``LineSpool`` would write them (each ending in a newline)."""

    def __init__(self) -> None:
        self.data = b""
        self.lines = 0
        self.closed = False

    def write(self, line: bytes) -> None:
        self.data += line + b"\n"
        self.lines += 1

    def write_lines(self, block: bytes, count: int) -> None:
        assert block.endswith(b"\n")
        assert block.count(b"\n") == count
        self.data += block
        self.lines += count

    def close(self) -> None:
        self.closed = True


def cut(limit: int, calls: list[tuple[str, list[bytes]]]) -> tuple[list[Spool], list[int], list[int]]:
    """Feed ``calls`` (one line, or a block of lines) to Parts; returns the parts in index order, the
    order they were shipped in, and ``Parts.lines``."""
    shipped: dict[int, Spool] = {}
    order: list[int] = []

    def ship(index: int, spool: Any, lines: int) -> None:
        assert spool.lines == lines
        shipped[index] = spool
        order.append(index)

    parts = Parts(limit, Spool, ship)
    for kind, lines in calls:
        if kind == "line":
            parts.valid(lines[0])
        else:
            parts.valid_lines(b"".join(line + b"\n" for line in lines), len(lines))
    count = parts.finish()
    assert count == len(parts.lines)
    return [parts.first, *(shipped[i] for i in range(1, count))], order, parts.lines


lines = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" "))
calls = st.lists(
    st.one_of(
        st.tuples(st.just("line"), st.lists(lines, min_size=1, max_size=1)),
        st.tuples(st.just("block"), st.lists(lines, min_size=1, max_size=12)),
    ),
    max_size=12,
)


@PROPERTY
@given(st.integers(min_value=1, max_value=120), calls)
def test_every_line_is_in_exactly_one_part_in_order_and_each_part_is_within_the_bound(
    limit: int, fed: list[tuple[str, list[bytes]]]
) -> None:
    # GIVEN lines handed over one at a time and in blocks
    parts, order, counts = cut(limit, fed)
    sent = [line for _, group in fed for line in group]
    # THEN the parts, in order, hold every line once, in order (none lost, none twice)
    received = [line for part in parts for line in part.data.split(b"\n")[:-1]]
    assert received == sent
    assert counts == [part.lines for part in parts]
    # AND a part passes the bound only when it is a single line longer than the bound
    for part in parts:
        assert len(part.data) <= limit or part.lines == 1
    # AND no part but part 0 is empty, and every part k >= 1 was shipped once, in order; part 0 never
    assert all(part.lines for part in parts[1:])
    assert order == list(range(1, len(parts)))


@PROPERTY
@given(st.integers(min_value=1, max_value=60), st.lists(lines, max_size=30))
def test_parts_are_filled_greedily(limit: int, sent: list[bytes]) -> None:
    # GIVEN lines one at a time
    parts, _, _ = cut(limit, [("line", [line]) for line in sent])
    # THEN each part ends only where the next line would not fit: parts are as few as the bound allows
    for part, following in itertools.pairwise(parts):
        first = following.data.split(b"\n")[0]
        assert len(part.data) + len(first) + 1 > limit


def test_a_line_longer_than_the_bound_is_a_part_of_its_own() -> None:
    # GIVEN a bound of 10 bytes and a 30-byte line between short ones, in one block
    parts, _, counts = cut(10, [("block", [b"a", b"x" * 30, b"b"])])
    # THEN the long line is alone in its part, whole, and the lines around it are in parts of their own
    assert [part.data for part in parts] == [b"a\n", b"x" * 30 + b"\n", b"b\n"]
    assert counts == [1, 1, 1]


def test_nothing_written_is_one_empty_part() -> None:
    parts, order, counts = cut(10, [])
    assert (len(parts), order, counts, parts[0].data) == (1, [], [0], b"")


def test_a_bound_below_one_byte_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one byte"):
        Parts(0, Spool, lambda *args: None)


def test_a_version_without_a_part_count_has_one_part() -> None:
    assert parts_of({}) == 1


@pytest.mark.parametrize("text", ["0", "-1", "two", "\uff13"])
def test_a_part_count_that_is_not_a_count_is_an_event_error(text: str) -> None:
    with pytest.raises(EventError, match=contract.PARTS_METADATA):
        parts_of({contract.PARTS_METADATA: text})
