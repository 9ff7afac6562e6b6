"""Decimal literals as scaled integers: exactly their values, or None; and back to the same Decimals."""

from __future__ import annotations

import gzip
import io
import json
from decimal import Decimal
from fractions import Fraction

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers import exact, scaled
from handlers.aggregation import aggregate_records, aggregate_stream
from handlers.exact import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, canonical

PROPERTY = settings(max_examples=200, deadline=None)
KEEP = msgspec.json.Decoder(float_hook=scaled.keep)


def spelled(number: int, scale: int, negative_zero: bool = False) -> bytes:
    """``number / 10**scale`` as a JSON literal with ``scale`` fraction digits."""
    sign = "-" if number < 0 or negative_zero else ""
    whole, fraction = divmod(abs(number), 10**scale)
    return f"{sign}{whole}.{fraction:0{scale}d}".encode()


one_scale = st.integers(1, MAX_FRACTION_DIGITS).flatmap(
    lambda scale: st.tuples(
        st.just(scale),
        st.lists(
            st.one_of(
                st.integers(-(10**4), 10**4),  # many below 1: zeros after the point, and 0 itself
                st.integers(
                    -(10 ** (MAX_INTEGER_DIGITS + scale)) + 1, 10 ** (MAX_INTEGER_DIGITS + scale) - 1
                ),
            ),
            min_size=1,
            max_size=30,
        ),
    )
)


@PROPERTY
@given(one_scale, st.booleans())
def test_literals_of_one_scale_are_read_as_exactly_their_values(
    case: tuple[int, list[int]], zero: bool
) -> None:
    scale, numbers = case
    literals = [spelled(number, scale) for number in numbers] + ([spelled(0, scale, True)] if zero else [])
    found = scaled.scaled(literals)
    assert found is not None
    assert found[0] == scale
    assert [Fraction(n, 10**scale) for n in found[1]] == [
        Fraction(Decimal(text.decode())) for text in literals
    ]


@PROPERTY
@given(one_scale)
def test_scaled_integers_give_back_the_literals_decimals(case: tuple[int, list[int]]) -> None:
    scale, numbers = case
    back = list(scaled.to_decimals(numbers, scale))
    assert [value.as_tuple() for value in back] == [
        Decimal(spelled(number, scale).decode()).as_tuple() for number in numbers
    ]


@PROPERTY
@given(one_scale)
def test_a_sum_of_scaled_integers_is_the_sum_of_the_decimals(case: tuple[int, list[int]]) -> None:
    scale, numbers = case
    with exact.exact_context():
        expected = sum(Decimal(spelled(number, scale).decode()) for number in numbers)
    (total,) = scaled.to_decimals([sum(numbers)], scale)
    assert total == expected
    assert canonical(total) == canonical(expected)
    assert total.as_tuple().exponent == expected.as_tuple().exponent


@given(
    st.sampled_from(
        [
            [b"1.5", b"2.25"],  # two scales
            [b"1.5", b"2"],  # a point missing
            [b"1.5e3", b"2.5"],  # an exponent
            [b"1.5", b"2.5E3"],
            [b"1" * (MAX_INTEGER_DIGITS + 1) + b".5"],  # past the supported magnitude
            [b"1." + b"1" * (MAX_FRACTION_DIGITS + 1)],  # past the supported fraction digits
            [b"1.5", b"1." + b"5" * (MAX_FRACTION_DIGITS + 1)],
            [b"1e5"],
        ]
    )
)
def test_anything_but_one_supported_scale_is_left_to_decimals(literals: list[bytes]) -> None:
    assert scaled.scaled(literals) is None


def test_the_kept_literal_is_never_a_json_string() -> None:
    assert KEEP.decode(b'[1.5, "1.5", 2, 1e400]') == [b"1.5", "1.5", 2, b"1e400"]


def test_decimals_are_the_literals_decimals_and_leave_other_values() -> None:
    assert scaled.decimals([b"1.50", 2, None, "x"]) == [Decimal("1.50"), 2, None, "x"]
    assert str(scaled.decimals([b"1.50"])[0]) == "1.50"


values = st.one_of(
    st.none(),
    st.integers(-(10**6), 10**6),
    st.integers(-(10**6), 10**6).map(lambda n: spelled(n, 3).decode()),
    st.integers(-(10**6), 10**6).map(lambda n: spelled(n, 1).decode()),
    st.sampled_from(["0.000", "-0.000", "0.005", "-0.005", "1e3", "1.5e-2", '"1.5"', "true"]),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), values, values), min_size=1, max_size=300))
def test_blocks_mixing_scales_integers_and_other_values_give_the_line_by_line_groups(
    rows: list[tuple[str, str | None, str | None]],
) -> None:
    # GIVEN records whose metrics and dimension mix scales, integers, nulls, exponents and non-numbers
    lines = []
    for kind, value, other in rows:
        fields = [f'"timestamp":"2024-05-01T10:00:00Z","type":"{kind}"']
        fields += [f'"value":{value}'] if value is not None else []
        fields += [f'"source":{other}'] if other is not None else []
        lines.append("{" + ",".join(fields) + "}")
    payload = "\n".join(lines).encode()
    # WHEN aggregated as a stream (blocks) and one decoded record at a time
    result = aggregate_stream(io.BytesIO(gzip.compress(payload)).read, 3600, ("type", "source"), ("value",))
    decoded = [json.loads(line, parse_float=Decimal) for line in lines]
    reference = aggregate_records(decoded, 3600, ("type", "source"), ("value",))
    # THEN the groups are the same, their numbers spelled the same
    assert result.counts.records_read == len(lines)
    assert result.groups == reference
    assert spellings(result.groups) == spellings(reference)


def spellings(groups: dict) -> list[tuple[object, ...]]:
    """Every statistic's canonical string, as the aggregates document has it."""
    found = []
    for key, group in groups.items():
        for name, stats in group.metrics.items():
            found.append((key, name, *map(canonical, (stats.sum, stats.min, stats.max))))
    return sorted(found)
