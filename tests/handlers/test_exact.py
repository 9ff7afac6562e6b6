"""handlers.exact: the supported metric range, one spelling per number, sums that never round, and one
form per dimension value. Expected values are computed here with ``fractions.Fraction``."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers import exact

PROPERTY = settings(max_examples=200, deadline=None)
LIMIT = 10**exact.MAX_INTEGER_DIGITS


def decimal_of(coefficient: int, exponent: int) -> Decimal:
    return Decimal(coefficient).scaleb(exponent, decimal.Context(prec=5000))


# Any finite decimal, including trailing zeros (1.500), negative zeros and exponents far past the range.
any_decimals = st.builds(decimal_of, st.integers(-(10**60), 10**60), st.integers(-80, 80))
supported_decimals = st.builds(
    decimal_of,
    st.integers(-(10**56) + 1, 10**56 - 1),
    st.integers(-exact.MAX_FRACTION_DIGITS, 0),
) | st.builds(decimal_of, st.integers(-9, 9), st.integers(0, exact.MAX_INTEGER_DIGITS - 1))
supported_ints = st.integers(-LIMIT + 1, LIMIT - 1)
supported = supported_ints | supported_decimals.filter(lambda d: abs(d) < LIMIT)


@PROPERTY
@given(any_decimals | st.integers(-(10**60), 10**60))
def test_metric_value_takes_exactly_the_supported_range(value: int | Decimal) -> None:
    exact_value = Fraction(value)
    in_range = abs(exact_value) < LIMIT
    precise_enough = (exact_value * 10**exact.MAX_FRACTION_DIGITS).denominator == 1
    if in_range and precise_enough:
        assert exact.metric_value(value) == value
        return
    with pytest.raises(exact.MetricValueError) as error:
        exact.metric_value(value)
    assert error.value.reason == ("metric_out_of_range" if not in_range else "metric_too_precise")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "metric_not_numeric"),
        (False, "metric_not_numeric"),
        ("1", "metric_not_numeric"),
        (1.5, "metric_not_numeric"),
        (Decimal("NaN"), "metric_not_numeric"),
        (Decimal("Infinity"), "metric_not_numeric"),
        (LIMIT, "metric_out_of_range"),
        (Decimal("-1E+38"), "metric_out_of_range"),
        (Decimal("1E-19"), "metric_too_precise"),
    ],
)
def test_metric_value_refuses_with_the_reason(value: object, reason: str) -> None:
    with pytest.raises(exact.MetricValueError) as error:
        exact.metric_value(value)
    assert error.value.reason == reason


@pytest.mark.parametrize(
    "value",
    [LIMIT - 1, -LIMIT + 1, Decimal("9" * 38 + "." + "9" * 18), Decimal("1E-18"), Decimal("1.5" + "0" * 40)],
)
def test_values_at_the_limits_are_supported(value: int | Decimal) -> None:
    assert exact.metric_value(value) == value


@PROPERTY
@given(supported)
def test_canonical_spelling_parses_back_to_the_same_number(value: int | Decimal) -> None:
    text = exact.canonical(value)
    assert Fraction(exact.parse(text)) == Fraction(value)
    assert "e" not in text.lower()
    assert text == "0" or not text.lstrip("-").startswith("00")
    if "." in text:
        assert not text.endswith("0")


@PROPERTY
@given(supported, st.integers(0, 20))
def test_equal_numbers_have_one_spelling(value: int | Decimal, zeros: int) -> None:
    # GIVEN the same number written with extra trailing zeros, or as a coefficient and an exponent
    sign, digits, exponent = Decimal(value).as_tuple()
    padded = Decimal((sign, digits + (0,) * zeros, exponent - zeros))  # type: ignore[operator]
    scientific = Decimal(f"{'-' if sign else ''}{''.join(map(str, digits))}E{exponent}")
    # THEN every form spells the same
    assert exact.canonical(padded) == exact.canonical(scientific) == exact.canonical(value)


def test_negative_zero_is_spelled_zero() -> None:
    assert [exact.canonical(v) for v in (Decimal("-0"), Decimal("-0.000"), Decimal("0E+5"), 0)] == ["0"] * 4


@PROPERTY
@given(st.lists(supported, max_size=50))
def test_sums_in_the_exact_context_are_exact(values: list[int | Decimal]) -> None:
    # Python's default context would round a 56-digit sum to 28 digits without a word.
    with exact.exact_context():
        total = sum(values, 0)
    assert Fraction(total) == sum((Fraction(v) for v in values), Fraction(0))


def test_the_default_context_would_round_where_the_exact_context_does_not() -> None:
    big, small = Decimal(10**37), Decimal("0.000000000000000001")
    assert Fraction(big + small) != Fraction(10**37) + Fraction(1, 10**18)  # the trap this module exists for
    with exact.exact_context():
        assert Fraction(big + small) == Fraction(10**37) + Fraction(1, 10**18)


def test_a_sum_that_would_round_raises_in_the_exact_context() -> None:
    with exact.exact_context(), pytest.raises((decimal.Inexact, decimal.Rounded)):
        _ = Decimal(10**79) + Decimal("0.1")


@pytest.mark.parametrize("text", ["1e5", "1.5.5", "NaN", "Infinity", "abc", ""])
def test_parse_refuses_what_is_not_a_finite_number(text: str) -> None:
    if text == "1e5":  # parse reads exponents; canonical never writes them
        assert exact.parse(text) == 100000
        return
    with pytest.raises((ValueError, ArithmeticError)):
        exact.parse(text)


@PROPERTY
@given(supported_decimals)
def test_a_supported_metric_literal_reads_as_its_exact_decimal(value: Decimal) -> None:
    text = str(value)  # a literal as JSON may write it: digits, point, exponent, trailing zeros
    assert exact.literal(text).as_tuple() == Decimal(text).as_tuple()


@PROPERTY
@given(st.builds(decimal_of, st.integers(-(10**120), 10**120), st.integers(-300, 300)))
def test_a_literal_is_its_exact_decimal_or_raises(value: Decimal) -> None:
    # msgspec's float_hook on the block path: a signal sends the block line by line, where Decimal
    # decides; a value may differ from Decimal's only as a zero with its exponent clamped.
    text = str(value)
    try:
        read = exact.literal(text)
    except ArithmeticError:
        _sign, digits, exponent = value.as_tuple()
        assert len(digits) > 80 or value.adjusted() > 80 or exponent < -102  # type: ignore[operator]
        return
    assert read.as_tuple() == Decimal(text).as_tuple() or (read == 0 and not value)


def test_a_literal_past_the_exact_context_raises_rather_than_rounds() -> None:
    for text in ("1" * 81, "1e81", "1e-103", "1." + "1" * 80):
        with pytest.raises((decimal.Inexact, decimal.Overflow)):
            exact.literal(text)
    assert exact.literal("0e500") == 0
    assert exact.literal("-0.000").as_tuple() == Decimal("-0.000").as_tuple()


# --- dimension values --------------------------------------------------------------------------------

numbers = st.integers(-(10**45), 10**45) | any_decimals


@PROPERTY
@given(numbers, numbers)
def test_numerically_equal_dimension_values_have_one_form(a: int | Decimal, b: int | Decimal) -> None:
    same_number = Fraction(a) == Fraction(b)
    text = msgspec.json.Encoder(decimal_format="number").encode
    assert (text(exact.dimension_value(a)) == text(exact.dimension_value(b))) == same_number


@PROPERTY
@given(numbers)
def test_a_dimension_number_is_an_int_exactly_when_integral_and_below_the_limit(value: int | Decimal) -> None:
    form = exact.dimension_value(value)
    assert Fraction(form) == Fraction(value)
    integral_in_range = Fraction(value).denominator == 1 and abs(value) < LIMIT
    assert (type(form) is int) == integral_in_range
    if type(form) is Decimal:
        assert form == 0 or form.as_tuple().digits[-1] != 0  # no trailing zeros
        assert not form.is_signed() or form < 0  # no -0
    assert exact.dimension_value(form) == form  # already canonical


@pytest.mark.parametrize(
    ("value", "form"),
    [
        (Decimal("1.0"), 1),
        (Decimal("1.00"), 1),
        (Decimal("1e0"), 1),
        (Decimal("-0.0"), 0),
        (Decimal("0E-50"), 0),
        (Decimal("1.50"), Decimal("1.5")),
        (Decimal("9E+15"), 9 * 10**15),
        (LIMIT, Decimal("1E+38")),
        (Decimal("1E+999999999999999999"), Decimal("1E+999999999999999999")),
    ],
)
def test_dimension_numbers_take_their_canonical_form(value: object, form: object) -> None:
    result = exact.dimension_value(value)
    assert (type(result), result) == (type(form), form)


@pytest.mark.parametrize("value", [True, False, "1", "1.0", "", None])
def test_strings_booleans_and_null_are_never_numbers(value: object) -> None:
    result = exact.dimension_value(value)
    assert result is value or (type(result) is str and result == value)


@pytest.mark.parametrize("value", [{"a": 1}, [1], 1.5, Decimal("NaN"), Decimal("-Infinity"), b"x"])
def test_anything_but_a_json_scalar_is_not_a_dimension_value(value: object) -> None:
    with pytest.raises(ValueError, match="not"):
        exact.dimension_value(value)
