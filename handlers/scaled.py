"""Decimal metric literals as scaled integers: a block's column of ``482.125``-like literals read as
``int``s of one scale (``482125`` at scale 3), and statistics of one scale turned back into ``Decimal``s.

The processing stage's block decoder keeps each literal with a fraction or an exponent as its text
(``keep``: ``bytes``, which no JSON value decodes to, so a literal is never taken for a JSON string).
A column whose literals all have the same ``k`` fraction digits (``1 <= k <= MAX_FRACTION_DIGITS``), no
exponent and at most ``MAX_INTEGER_DIGITS`` integer digits holds only supported metrics, each exactly
``n / 10**k``; ``scaled`` reads the ``n`` with C-level passes (one join, one regular expression, one
``replace``, one msgspec decode of the digits as a JSON array of integers), so that sums, minima and
maxima are taken on ``int``s, several times cheaper than on ``Decimal``s. ``to_decimals`` gives the
``Decimal`` of each: ``exact.multiply`` of ``n`` by ``1E-k``, the same digits and exponent as the sum of
the literals' ``Decimal``s would have. Anything else (another shape of literal, a column mixing scales
or integers) is left to ``decimals``: each literal's ``Decimal`` as the line-by-line path reads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from itertools import repeat

import msgspec

from handlers import exact
from handlers.exact import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS

# The block decoder's ``float_hook``: a number literal with a fraction or an exponent, kept as its text.
keep = str.encode

_INTEGERS = msgspec.json.Decoder(list[int])
_UNITS = [Decimal(f"1e-{scale}") for scale in range(MAX_FRACTION_DIGITS + 1)]


_SHAPES = bytes.maketrans(b"0123456789", b"9999999999")  # every digit a 9: one spelling per shape
_TOO_LONG = b"9" * (MAX_INTEGER_DIGITS + 1)
# A number's leading zeros, one expression a sign: the literal prefixes make the search a fast scan.
_LEADING_ZEROS = re.compile(rb",0+(?=[0-9])")
_NEGATIVE_LEADING_ZEROS = re.compile(rb",-0+(?=[0-9])")


def scaled(literals: list[bytes]) -> tuple[int, list[int]] | None:
    """``(k, [n, ...])`` with each literal exactly ``n / 10**k``, if all have ``k`` fraction digits and
    the shape above; None otherwise."""
    first = literals[0]
    scale = len(first) - first.find(b".") - 1  # no point: the length, which the count below refuses
    if not 0 < scale <= MAX_FRACTION_DIGITS:
        return None
    joined = b",".join(literals)
    # Each literal is a JSON number (the decoder checked) with a fraction or an exponent: with no
    # exponent, each has one point, and then as many ".ddd," as literals means k digits after each.
    shapes = (joined + b",").translate(_SHAPES)
    if (
        shapes.count(b"." + b"9" * scale + b",") != len(literals)
        or b"e" in shapes
        or b"E" in shapes
        or _TOO_LONG in shapes
    ):
        return None
    digits = b"," + joined.replace(b".", b"")
    if b",0" in digits:  # 0 < value < 1, or 0: a JSON integer has no leading zeros
        digits = _LEADING_ZEROS.sub(b",", digits)
    if b",-0" in digits:
        digits = _NEGATIVE_LEADING_ZEROS.sub(b",-", digits)
    return scale, _INTEGERS.decode(b"[" + digits[1:] + b"]")


def decimals(column: Iterable[object]) -> list[object] | None:
    """The column with each kept literal as its ``Decimal`` (``exact.literal``), or None if one would
    round or overflow (the line-by-line path then decides, as when the block decoder made them)."""
    try:
        return [exact.literal(value.decode()) if type(value) is bytes else value for value in column]
    except ArithmeticError:
        return None


def to_decimals(values: Iterable[int], scale: int) -> map[Decimal]:
    """Each scaled integer of ``scale`` as its exact ``Decimal``: ``n`` at scale 3 is ``n * 1E-3``,
    whose exponent is -3, as a sum of literals with three fraction digits has."""
    return map(exact.multiply, values, repeat(_UNITS[scale]))
