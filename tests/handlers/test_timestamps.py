"""handlers.timestamps: RFC 3339 and epoch normalisation, exactly; the fast paths (parts learnt from the
reference, integer arithmetic) against ``_normalise_with_datetime``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from handler_support import PROPERTY, THOROUGH
from hypothesis import given
from hypothesis import strategies as st

from handlers.timestamps import _normalise_with_datetime, normalise_timestamp


@PROPERTY
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-23 * 60, 23 * 60),
    st.sampled_from(["T", "t", " "]),
)
def test_rfc3339_with_any_offset_normalises_to_the_same_instant(
    moment: datetime, minutes: int, sep: str
) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    text = aware.isoformat(sep=sep)
    normalised = normalise_timestamp(text)
    assert normalised.endswith("Z")
    assert datetime.fromisoformat(normalised.replace("Z", "+00:00")) == aware.astimezone(UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1714566896, "2024-05-01T12:34:56Z"),
        (1714566896.5, "2024-05-01T12:34:56.500000Z"),
        (1714566896123, "2024-05-01T12:34:56.123000Z"),
        ("2024-05-01T12:34:56.123456789Z", "2024-05-01T12:34:56.123456Z"),
    ],
)
def test_epochs_and_long_fractions_normalise(value: object, expected: str) -> None:
    assert normalise_timestamp(value) == expected


@pytest.mark.parametrize(
    "value", ["2024-05-01", "2024-05-01T12:34Z", "20240501T123456Z", "2024-13-01T00:00:00Z", None, True]
)
def test_non_rfc3339_timestamps_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        normalise_timestamp(value)


def test_the_last_millisecond_datetime_can_represent_is_exact() -> None:
    # 253402300799999 / 1000 as a float is 253402300799.99899: the float path wrote ...59.998993Z
    assert normalise_timestamp(253402300799999) == "9999-12-31T23:59:59.999000Z"
    assert normalise_timestamp(Decimal("253402300799999")) == "9999-12-31T23:59:59.999000Z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1714566896.123456789"), "2024-05-01T12:34:56.123456Z"),
        (Decimal("1714566896123.4569"), "2024-05-01T12:34:56.123456Z"),
        (Decimal("-0.0000001"), "1969-12-31T23:59:59.999999Z"),
        (Decimal("1E-999999999"), "1970-01-01T00:00:00Z"),
        (Decimal("0E+999999999"), "1970-01-01T00:00:00Z"),
        (Decimal("99999999999.9999999999999999999999999"), "5138-11-16T09:46:39.999999Z"),
        (Decimal("1.7145668961E+9"), "2024-05-01T12:34:56.100000Z"),
    ],
)
def test_decimal_epochs_are_floored_to_the_microsecond_exactly(value: Decimal, expected: str) -> None:
    assert normalise_timestamp(value) == expected


@pytest.mark.parametrize("value", [Decimal("1E+999999999"), Decimal("-1E+16"), 253402300800000, -(10**400)])
def test_epochs_past_the_year_9999_or_before_the_year_1_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="epoch timestamp out of range"):
        normalise_timestamp(value)


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "2024-05-01T00:00:00+24:00"]
)
def test_timestamps_outside_the_utc_range_are_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="impossible timestamp"):
        normalise_timestamp(value)


@PROPERTY
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_fast_and_slow_utc_paths_agree(moment: datetime) -> None:
    text = moment.isoformat() + "Z"
    first = normalise_timestamp(text)  # may take the datetime path and remember the date
    assert normalise_timestamp(text) == first == moment.isoformat() + "Z"


def outcome(function: Any, value: object) -> tuple[str, str]:
    try:
        return ("ok", function(value))
    except ValueError as exc:
        return ("error", str(exc))


digits = st.text("0123456789", min_size=2, max_size=2)


timestamp_texts = st.builds(
    lambda year, month, day, sep, hour, minute, second, fraction, zone: (
        f"{year:04d}-{month}-{day}{sep}{hour}:{minute}:{second}{fraction}{zone}"
    ),
    st.sampled_from([1, 2, 1969, 1970, 2000, 2024, 9998, 9999]) | st.integers(1, 9999),
    st.sampled_from(["01", "02", "12", "13", "00"]) | digits,
    st.sampled_from(["01", "28", "29", "30", "31", "32", "00"]),
    st.sampled_from(["T", "t", " "]),
    st.sampled_from(["00", "01", "23", "24", "99"]) | digits,
    st.sampled_from(["00", "30", "59", "60"]) | digits,
    st.sampled_from(["00", "59", "60"]) | digits,
    st.sampled_from(["", ".0", ".000", ".000000", ".5", ".123", ".1234567", ".000000001"])
    | st.text("0123456789", min_size=1, max_size=9).map(lambda f: "." + f),
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+02:00", "-03:30", "+23:59", "+24:00", "+05:60"])
    | st.builds(lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), digits, digits),
)


EPOCH_EDGES = [0, -1, 10**11 - 1, 10**11, -(10**11) + 1, -(10**11), 1000 << 32, -62135596800, 253402300799]


EPOCH_EDGES += [
    -62135596801,
    253402300800,
    -62135596800000,
    -62135596800001,
    253402300799999,
    253402300800000,
]


integer_epochs = (
    st.integers(-(10**11) + 1, 253402300799999)
    | st.integers(-(10**20), 10**20)
    | st.integers(311, 4300)
    .map(lambda digits: 10 ** (digits - 1))
    .flatmap(lambda n: st.sampled_from([n, -n]))
    | st.sampled_from(EPOCH_EDGES)
)


decimal_epochs = (
    st.builds(
        lambda coefficient, exponent: Decimal(coefficient).scaleb(exponent),
        st.integers(-(10**40), 10**40),
        st.integers(-60, 30),
    )
    | st.sampled_from(EPOCH_EDGES).map(Decimal)
    | st.sampled_from(
        [Decimal("-0.0"), Decimal("0E+999999999"), Decimal("1E-999999999"), Decimal("-1E-999999999")]
    )
    | st.sampled_from([Decimal("1E+999999999"), Decimal("99999999999.99999999999999999999999999")])
)


def floored_moment(value: int | Decimal) -> str | None:
    """The epoch's instant floored to the microsecond, by rational arithmetic; None when out of range."""
    if isinstance(value, Decimal) and not value.is_zero() and not -30 < value.adjusted() < 30:
        return None if value.adjusted() > 0 else floored_moment(Decimal(-1 if value < 0 else 0) / 10**7)
    exact = Fraction(value)
    micros = math.floor(exact * (1000 if abs(exact) >= 10**11 else 1_000_000))
    try:
        moment = datetime(1970, 1, 1) + timedelta(microseconds=micros)
    except OverflowError:
        return None
    return moment.isoformat() + "Z"


@THOROUGH
@given(timestamp_texts, st.data())
def test_string_timestamps_agree_with_the_reference_before_and_after_learning(
    text: str, data: st.DataObject
) -> None:
    # GIVEN an RFC 3339-shaped string, valid or not
    expected = outcome(_normalise_with_datetime, text)
    # WHEN it is normalised once (learning its parts) and again (assembled from them)
    first, second = outcome(normalise_timestamp, text), outcome(normalise_timestamp, text)
    # THEN both equal the reference, errors included; so does a neighbour sharing learnt parts
    assert first == second == expected
    neighbour = text[:17] + data.draw(digits) + text[19:]
    assert outcome(normalise_timestamp, neighbour) == outcome(_normalise_with_datetime, neighbour)


@THOROUGH
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)), st.data())
def test_parts_learnt_from_one_timestamp_serve_another_exactly(moment: datetime, data: st.DataObject) -> None:
    zone = data.draw(st.sampled_from(["Z", "+01:00", "-11:45"]))
    text = moment.isoformat(timespec=data.draw(st.sampled_from(["seconds", "milliseconds", "microseconds"])))
    outcome(normalise_timestamp, text + zone)  # learn
    other = text[:16] + f":{data.draw(st.integers(0, 59)):02d}" + text[19:] + zone
    assert outcome(normalise_timestamp, other) == outcome(_normalise_with_datetime, other)


@THOROUGH
@given(integer_epochs | decimal_epochs)
def test_numeric_epochs_agree_with_the_reference(value: int | Decimal) -> None:
    expected = outcome(_normalise_with_datetime, value)
    assert outcome(normalise_timestamp, value) == outcome(normalise_timestamp, value) == expected


@THOROUGH
@given(integer_epochs | decimal_epochs)
def test_numeric_epochs_are_the_exact_instant_floored_to_the_microsecond(value: int | Decimal) -> None:
    expected = floored_moment(value)
    assert outcome(normalise_timestamp, value)[0] == ("error" if expected is None else "ok")
    if expected is not None:
        assert normalise_timestamp(value) == expected


@pytest.mark.parametrize("value", [1.5, -0.25, 1714566896123.0, True, False, None, [1], "", "Z"])
def test_other_values_take_the_reference_path(value: object) -> None:
    assert outcome(normalise_timestamp, value) == outcome(_normalise_with_datetime, value)
