"""A raw version's valid records cut into ``records/`` parts of bounded size (pure).

Ingestion hands its valid lines to ``Parts`` (an ingestion ``Sink`` for valid lines) in their order;
``Parts`` cuts them into consecutive parts of at most ``limit`` uncompressed bytes (newlines included),
only ever between lines. A single line longer than ``limit`` is a part of its own, so no record is ever
split or dropped. Part 0 is the first; it stays open until ``finish``, because only then is the number
of parts known, and that number is part 0's to carry (``handlers.contract.PARTS_METADATA``). Every
later part is handed to ``ship`` as soon as the next line does not fit in it, so what is held at any
time is part 0 and the part being filled, whatever the raw object's size.

Why parts: each part is one processing invocation and one aggregates document, so the processing
stage's work per invocation is bounded by ``limit`` instead of growing with the raw object
(docs/architecture.md, "Parts").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from handlers.contract import PARTS_METADATA
from handlers.errors import EventError


def parts_of(metadata: Mapping[str, str]) -> int:
    """How many parts part 0's user metadata says its version has (``PARTS_METADATA``; 1 without it: a
    version of one part, or one ingested before parts existed), on its records/ object or its aggregates
    document. The pipeline's own metadata: anything but a count is an EventError."""
    text = metadata.get(PARTS_METADATA, "1")
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise EventError(f"part 0 has {PARTS_METADATA} {text[:32]!r}, not a count")
    return int(text)


class PartSpool(Protocol):
    """Where one part's lines go (``handlers.s3io.LineSpool``)."""

    def write(self, line: bytes) -> None: ...  # one line, without its newline

    def write_lines(self, block: bytes, count: int) -> None: ...  # count lines, each ending in a newline

    def close(self) -> None: ...  # frees what it holds; twice is harmless


class Parts:
    """Valid lines → parts of at most ``limit`` bytes each (see the module docstring)."""

    def __init__(
        self, limit: int, spool: Callable[[], PartSpool], ship: Callable[[int, PartSpool, int], None]
    ) -> None:
        """``spool()`` opens a part; ``ship(index, spool, lines)`` takes a complete part k >= 1."""
        if limit < 1:
            raise ValueError(f"a part holds at least one byte, got a limit of {limit}")
        self.limit = limit
        self._spool = spool
        self._ship = ship
        self.first = spool()  # part 0, never shipped: the caller writes it after ``finish``
        self._current = self.first
        self._size = 0  # bytes of the part being filled
        self.lines: list[int] = [0]  # lines of each part so far, the one being filled last

    def _advance(self) -> None:
        """The part being filled is complete: ship it (unless it is part 0) and open the next."""
        if len(self.lines) > 1:
            self._ship(len(self.lines) - 1, self._current, self.lines[-1])
        self._current = self._spool()
        self._size = 0
        self.lines.append(0)

    def valid(self, line: bytes) -> None:
        size = len(line) + 1
        if self._size and self._size + size > self.limit:
            self._advance()
        self._current.write(line)
        self._size += size
        self.lines[-1] += 1

    def valid_lines(self, block: bytes, count: int) -> None:
        while block:
            room = self.limit - self._size
            if len(block) <= room:
                self._current.write_lines(block, count)
                self._size += len(block)
                self.lines[-1] += count
                return
            cut = block.rfind(b"\n", 0, room) if room > 0 else -1  # the last line ending in the room
            if cut < 0:  # not even the first line fits
                if self._size:
                    self._advance()
                    continue
                cut = block.index(b"\n")  # a line longer than the limit: alone in its part
            head, block = block[: cut + 1], block[cut + 1 :]
            lines = head.count(b"\n")
            self._current.write_lines(head, lines)
            self._size += len(head)
            self.lines[-1] += lines
            count -= lines

    def close(self) -> None:
        """Frees part 0 and the part being filled (a shipped part is the ``ship`` callee's to free)."""
        self.first.close()
        self._current.close()

    def finish(self) -> int:
        """Ships the last part unless it is part 0; returns the number of parts (at least 1: part 0 is
        a part even when it holds nothing)."""
        if len(self.lines) > 1:
            self._ship(len(self.lines) - 1, self._current, self.lines[-1])
        return len(self.lines)
