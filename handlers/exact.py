"""Exact metric arithmetic: a metric is the decimal its JSON literal states, and no sum ever rounds.

Records are decoded with ``float_hook=Decimal``, so a literal with a fraction or an exponent arrives
as a ``Decimal`` holding exactly its digits and an integer as an ``int``. Python's ``Decimal`` operators
round to the thread's context (28 digits by default, silently), so every sum is taken inside
``exact_context()``: a context wide enough for any sum of supported values, with rounding trapped, so a
result that would not be exact raises instead of being stored.

Supported values (anything else is refused with a reason, see ``metric_value``):

* magnitude below ``10**MAX_INTEGER_DIGITS``;
* at most ``MAX_FRACTION_DIGITS`` digits after the decimal point, once trailing zeros are dropped.

Every such value is a PostgreSQL ``NUMERIC`` and fits ``NUMERIC(56, 18)``; a sum of up to ``10**19``
of them needs at most ``SUM_DIGITS`` significant digits, which the context holds.

Values travel between stages and into reports as canonical decimal strings (``canonical``): plain
digits, no exponent, no trailing fractional zeros, no ``-0``; equal values have one spelling, so
documents are the same bytes whatever the order their sums were taken in.
"""

from __future__ import annotations

import decimal
from contextlib import AbstractContextManager
from decimal import Decimal

MAX_INTEGER_DIGITS = 38
MAX_FRACTION_DIGITS = 18
SUM_DIGITS = MAX_INTEGER_DIGITS + 19 + MAX_FRACTION_DIGITS  # 10**19 values of 38 integer digits each

Number = int | Decimal

_LIMIT = 10**MAX_INTEGER_DIGITS
_CONTEXT = decimal.Context(
    prec=SUM_DIGITS + 5,
    Emax=SUM_DIGITS + 5,
    Emin=-(MAX_FRACTION_DIGITS + 5),
    traps=[decimal.Inexact, decimal.Rounded, decimal.Overflow, decimal.InvalidOperation],
)

_LITERALS = _CONTEXT.copy()  # its own flags: Clamped and Subnormal are raised here, and never trapped

# A JSON number literal's Decimal, msgspec's ``float_hook`` for the processing stage's block path:
# ``Decimal(text)`` exactly, for every literal whose digits and exponent the exact context holds (every
# supported metric and more); for the others a decimal signal (ArithmeticError: Inexact, Overflow),
# never a rounded value, and a zero whose exponent is past the context's range keeps its range's end
# (the same number). A third cheaper than ``Decimal(text)`` (docs/benchmarks.md), which parses its
# arguments by keyword and copies the text first.
literal = _LITERALS.create_decimal

# A product of supported values exactly, or a decimal signal (scaled integers back to decimals,
# ``handlers.scaled``); a context's method takes an ``int`` as it is, with no ``Decimal`` made first.
multiply = _CONTEXT.multiply


class MetricValueError(ValueError):
    """A metric value the pipeline does not take; ``reason`` is the rejection code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def exact_context() -> AbstractContextManager[decimal.Context]:
    """A ``with`` block in which Decimal arithmetic on supported values is exact, or raises."""
    return decimal.localcontext(_CONTEXT)


def metric_value(value: object) -> Number:
    """``value`` as an exact number if it is a supported metric; MetricValueError otherwise.

    Reasons: ``metric_not_numeric`` (booleans are not numbers), ``metric_out_of_range`` (magnitude
    ``>= 10**MAX_INTEGER_DIGITS``), ``metric_too_precise`` (more than ``MAX_FRACTION_DIGITS`` digits
    after the point).
    """
    kind = type(value)
    if kind is int:
        if -_LIMIT < value < _LIMIT:  # type: ignore[operator]
            return value  # type: ignore[return-value]
        raise MetricValueError("metric_out_of_range", f"magnitude at or above 1e{MAX_INTEGER_DIGITS}")
    if kind is Decimal:
        return _decimal(value)  # type: ignore[arg-type]
    raise MetricValueError("metric_not_numeric", f"a {kind.__name__}, not a number")


def _decimal(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise MetricValueError("metric_not_numeric", "not a finite number")
    if not value:
        return value
    _sign, digits, exponent = value.as_tuple()
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise MetricValueError("metric_out_of_range", f"magnitude at or above 1e{MAX_INTEGER_DIGITS}")
    if exponent < -MAX_FRACTION_DIGITS:  # type: ignore[operator]
        trailing = len(digits) - len(bytes(digits).rstrip(b"\0"))
        if exponent + trailing < -MAX_FRACTION_DIGITS:  # type: ignore[operator]
            raise MetricValueError(
                "metric_too_precise", f"more than {MAX_FRACTION_DIGITS} digits after the decimal point"
            )
    return value


def canonical(value: Number) -> str:
    """The one spelling of an exact number: ``"1.5"`` for 1.50, ``"9000"`` for 9E3, ``"0"`` for -0.0."""
    if type(value) is int:
        return str(value)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def parse(text: str) -> Number:
    """A canonical string back to its number (an ``int`` when it has no fraction); ValueError if not one."""
    if "." not in text and "e" not in text and "E" not in text:
        return int(text)
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text[:64]!r}")
    return value


def dimension_value(value: object) -> str | int | Decimal | bool | None:
    """The one form of a dimension value, so that numerically equal values form one group.

    Strings, booleans and null are kept as they are (``"1"`` and ``true`` are not the number 1). A
    number is an ``int`` when it is integral with magnitude below ``10**MAX_INTEGER_DIGITS``, otherwise
    a ``Decimal`` without trailing zeros: ``1.0``, ``1e0`` and ``1`` all give ``1``; ``-0.0`` gives
    ``0``; ``1.50`` gives ``Decimal("1.5")``. ValueError for anything else (containers, non-finite).
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value  # type: ignore[return-value]
    if kind is int:
        if -_LIMIT < value < _LIMIT:  # type: ignore[operator]
            return value  # type: ignore[return-value]
        return _reduced(Decimal(value))  # type: ignore[arg-type]
    if kind is Decimal:
        if not value.is_finite():  # type: ignore[attr-defined]
            raise ValueError("not a finite number")
        return _reduced(value)  # type: ignore[arg-type]
    raise ValueError(f"a {kind.__name__} is not a JSON scalar")


def _reduced(value: Decimal) -> int | Decimal:
    # Built from the digits rather than with normalize(), which rounds to the context's precision.
    sign, digits, exponent = value.as_tuple()
    kept = bytes(digits).rstrip(b"\0")
    if not kept:
        return 0
    exponent += len(digits) - len(kept)  # type: ignore[operator]
    reduced = Decimal((sign, tuple(kept), exponent))
    if exponent >= 0 and len(kept) + exponent <= MAX_INTEGER_DIGITS:  # type: ignore[operator]
        return int(reduced)
    return reduced
