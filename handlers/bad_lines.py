"""Bad lines in a batch of JSON Lines: where they are, and the pieces a batch is retried in around them.

``handlers.records`` parses and checks a batch of lines in one call each; a batch holding a bad line
fails as a whole. These find the lines to check alone (``stopped_at`` after a failed parse,
``unbraced_units`` for the units that are not JSON objects) and split the batch around them
(``split_around``), so that the lines between are still checked in pieces, as batches.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable

import msgspec

from handlers.framing import JSON_WHITESPACE

# Where msgspec says a parse of lines failed: a byte offset for malformed JSON, the value's path
# (which starts with its line's index) for a value it refuses, such as an integer of 4301 digits.
_AT_BYTE = re.compile(r"\(byte ([0-9]+)\)")
_AT_LINE = re.compile(r"`\$\[([0-9]+)\]")
# Syntax only: skipping values without building them is about 7 times cheaper than parsing them.
_scan_lines = msgspec.json.Decoder(msgspec.Raw).decode_lines


def stopped_at(joined: bytes, error: Exception, lines: int) -> list[int]:
    """The indices of the lines of ``joined`` to check alone after its parse raised ``error``: the
    line the error points at, and each line a syntax-only scan of the lines after it stops at; empty
    if the error points nowhere.

    Pointers, not verdicts: an error at a line's first value usually means the line before did not
    close its object, so that line is taken and the scan goes on from the one pointed at. The retry
    checks the lines taken alone and the runs between them as pieces, which finds the bad ones
    whichever were taken. Scanning for all of them first spares parsing the lines between them more
    than once."""
    found: list[int] = []
    start = 0  # the byte where the text that ``error`` comes from starts
    while True:
        if isinstance(error, UnicodeDecodeError):  # its position is within a string, not ``joined``
            try:
                joined[start:].decode("utf-8")
            except UnicodeDecodeError as utf8:
                at = start + utf8.start
            else:
                break
        elif (match := _AT_BYTE.search(str(error))) is not None:
            at = start + int(match[1])
        else:
            match = _AT_LINE.search(str(error))
            if match is not None and not start and int(match[1]) < lines:
                found.append(int(match[1]))
            break
        line = joined.count(b"\n", 0, at)
        if line >= lines:
            break
        line_start = joined.rfind(b"\n", 0, at) + 1
        # At a line's first value the line before is the likely culprit, an object it did not close:
        # it is taken, and the scan goes on from the line pointed at, which is taken if it fails too.
        if line and line - 1 not in found[-1:] and not joined[line_start:at].strip(JSON_WHITESPACE):
            found.append(line - 1)
            start = line_start
        else:
            found.append(line)
            start = joined.find(b"\n", at) + 1
        if not start:
            break
        try:
            _scan_lines(memoryview(joined)[start:])
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            error = exc
        else:
            break
    return found


def split_around(start: int, end: int, alone: list[int]) -> list[tuple[int, int]]:
    """The pieces ``[start, end)`` is retried in, the first one last: the units at the offsets
    ``alone`` one by one and the runs between them, or two halves when ``alone`` is empty."""
    if not alone:
        middle = (start + end) // 2
        return [(middle, end), (start, middle)]
    pieces, at = [], start
    for offset in alone:
        if at < start + offset:
            pieces.append((at, start + offset))
        pieces.append((start + offset, start + offset + 1))
        at = start + offset + 1
    if at < end:
        pieces.append((at, end))
    pieces.reverse()
    return pieces


_NOT_OPEN, _NOT_CLOSE = re.compile(rb"[^{]"), re.compile(rb"[^}]")


def unbraced_units(units: list[bytes]) -> list[int]:
    """The indices of the units that are not ``{...}``, whitespace around allowed; the few candidates
    are found in the units' first and last bytes, in C."""
    try:
        firsts, lasts = bytes(map(_first_byte, units)), bytes(map(_last_byte, units))
    except IndexError:  # an empty unit
        candidates: Iterable[int] = range(len(units))
    else:
        candidates = sorted(
            {
                *(m.start() for m in _NOT_OPEN.finditer(firsts)),
                *(m.start() for m in _NOT_CLOSE.finditer(lasts)),
            }
        )
    unbraced = []
    for index in candidates:
        unit = units[index].strip(JSON_WHITESPACE)
        if unit[:1] != b"{" or unit[-1:] != b"}":
            unbraced.append(index)
    return unbraced


_first_byte, _last_byte = operator.itemgetter(0), operator.itemgetter(-1)
