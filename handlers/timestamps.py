"""Timestamp normalisation: RFC 3339 strings and epoch numbers → RFC 3339 UTC, exactly.

``normalise_timestamp`` returns ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` or raises ValueError (the rules are in
``handlers.ingestion_core``'s docstring). ``_normalise_with_datetime`` is the reference; the fast paths
assemble a value from parts the reference has already converted, kept in module-level caches that are
emptied at ``_CACHE_LIMIT`` entries (a container lives for many objects, and these parts recur in every
real file). Property tests hold the two equal (tests/handlers/test_timestamps.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import MAX_EMAX, MIN_EMIN, ROUND_FLOOR, Context, Decimal
from typing import Any

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_MINUTE_SECONDS = [f":{m:02d}:{s:02d}" for m in range(60) for s in range(60)]  # by second of the hour
_VALID_MINUTE_SECONDS = frozenset(_MINUTE_SECONDS)
_VALID_SECONDS = frozenset(f":{s:02d}" for s in range(60))
_CLOCKS_Z = [f"{clock}Z" for clock in _MINUTE_SECONDS]
_MILLIS_Z = ["Z", *(f".{n:03d}000Z" for n in range(1, 1000))]  # datetime writes no zero fraction
_MILLIS_INT = 10**11  # an epoch with abs(n) >= 1e11 is in milliseconds (1e11 s is the year 5138)
_EPOCH = datetime(1970, 1, 1)
_MIN_MICROS = (datetime.min - _EPOCH) // timedelta(microseconds=1)
_MAX_MICROS = (datetime.max - _EPOCH) // timedelta(microseconds=1)
_MAX_MILLIS = _MAX_MICROS // 1000
_MICRO, _MILLI = Decimal("1e-6"), Decimal("1e-3")
# Enough digits for any epoch in range at a microsecond (22), so quantize and scaleb never round.
_EXACT = Context(prec=40, Emax=MAX_EMAX, Emin=MIN_EMIN)
# What the fast paths have learnt from the reference conversion. Keys are coarse parts of a timestamp
# (an hour of a date, a fraction, a minute at an offset) that recur in any real file whether or not
# whole values do; a cache is emptied when it reaches _CACHE_LIMIT entries.
_CACHE_LIMIT = 8192
_HOURS: dict[str, str] = {}  # a valid "YYYY-MM-DD?HH" as written -> "YYYY-MM-DDTHH"
_Z_TAILS: dict[str, str] = {}  # "[.digits]Z" after the seconds -> "[.ffffff]Z"
_OFFSET_TAILS: dict[str, tuple[str, str]] = {}  # "[.digits]+hh:mm" -> ("[.ffffff]", "+hh:mm")
_UTC_MINUTES: dict[str, str] = {}  # "YYYY-MM-DD?HH:MM" + "+hh:mm" -> UTC "YYYY-MM-DDTHH:MM"
_EPOCH_HOURS: dict[int, str] = {}  # hours since 1970-01-01T00Z -> "YYYY-MM-DDTHH"


def normalise_timestamp(value: object) -> str:
    """RFC 3339 UTC ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``; raises ValueError for anything else.

    ``_normalise_with_datetime`` is the reference. A string made only of parts the reference has
    already accepted, or an integer epoch whose hour it has converted, is assembled from those parts
    with no parsing; the two agree on every input (tests/handlers).
    """
    if type(value) is str:
        rest = value[19:]
        tail = _Z_TAILS.get(rest)
        if tail is not None:
            head = _HOURS.get(value[:13])
            if head is not None and (clock := value[13:19]) in _VALID_MINUTE_SECONDS:
                return f"{head}{clock}{tail}"
        elif (offset_tail := _OFFSET_TAILS.get(rest)) is not None:
            # A learnt local minute at this offset vouches for its date, hour and minute.
            utc = _UTC_MINUTES.get(value[:16] + offset_tail[1])
            if utc is not None and (second := value[16:19]) in _VALID_SECONDS:
                return f"{utc}{second}{offset_tail[0]}Z"
        return _learn(value)
    # Integer comparisons and floor divisions: each avoids a float conversion or a tuple per call.
    if type(value) is int and -_MILLIS_INT < value <= _MAX_MILLIS:
        if value < _MILLIS_INT:
            head = _EPOCH_HOURS.get(value // 3600) or _epoch_hour(value // 3600)
            if head:
                return head + _CLOCKS_Z[value % 3600]
        else:
            seconds = value // 1000
            head = _EPOCH_HOURS.get(seconds // 3600) or _epoch_hour(seconds // 3600)
            if head:
                return f"{head}{_MINUTE_SECONDS[seconds % 3600]}{_MILLIS_Z[value % 1000]}"
    return _normalise_with_datetime(value)


def _learn(value: str) -> str:
    """The reference conversion of a string, remembering its parts for ``normalise_timestamp``."""
    result = _normalise_with_datetime(value)  # raises for anything but an RFC 3339 date-time
    # The pattern fixes the positions: date [:10], separator [10], clock [11:19], then the rest.
    _remember(_HOURS, value[:13], f"{value[:10]}T{value[11:13]}")
    if value[-1] in "Zz":
        _remember(_Z_TAILS, value[19:], result[19:])
    else:
        offset = value[-6:]
        _remember(_OFFSET_TAILS, value[19:], (result[19:-1], offset))
        _remember(_UTC_MINUTES, value[:16] + offset, result[:16])
    return result


def _epoch_hour(hour: int) -> str:
    """``YYYY-MM-DDTHH`` of an hour since the epoch; empty when datetime cannot represent it."""
    try:
        head = datetime.fromtimestamp(hour * 3600, UTC).isoformat()[:13]
    except (OverflowError, OSError, ValueError):
        return ""
    _remember(_EPOCH_HOURS, hour, head)
    return head


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def _normalise_with_datetime(value: object) -> str:
    """The reference conversion, through ``datetime``."""
    if isinstance(value, bool):
        raise ValueError("timestamp must be a string or a number, not a boolean")
    if isinstance(value, str):
        match = _RFC3339.fullmatch(value)
        if match is None:
            raise ValueError(f"timestamp is not an RFC 3339 date-time with an offset: {value[:64]!r}")
        date, clock, fraction, offset = match.groups()
        fraction = f".{(fraction + '00000')[:6]}" if fraction else ""
        if offset in ("Z", "z"):
            try:
                utc = datetime.fromisoformat(f"{date}T{clock}{fraction}")
            except ValueError as exc:
                raise ValueError(f"impossible timestamp {value[:64]!r}: {exc}") from exc
            return utc.isoformat() + "Z"
        try:
            local = datetime.fromisoformat(f"{date}T{clock}{fraction}{offset}")
            parsed = local.astimezone(UTC)
        except (ValueError, OverflowError) as exc:  # Feb 30, hour 24, leap second, year 0 in UTC
            raise ValueError(f"impossible timestamp {value[:64]!r}: {exc}") from exc
        return parsed.isoformat()[:-6] + "Z"
    if isinstance(value, int | Decimal | float):
        micros = _epoch_micros(value)
        if micros is None or not _MIN_MICROS <= micros <= _MAX_MICROS:
            raise ValueError(f"epoch timestamp out of range: {_shown(value)}")
        return (_EPOCH + timedelta(microseconds=micros)).isoformat() + "Z"
    raise ValueError(f"timestamp must be a string or a number, got {type(value).__name__}")


def _epoch_micros(value: int | Decimal | float) -> int | None:
    """Microseconds since the epoch, floored (sub-microsecond digits dropped), in integer arithmetic.

    None for a number that cannot be in range. A float is taken at its exact binary value.
    """
    if isinstance(value, int):
        return value * (1000 if value >= _MILLIS_INT or value <= -_MILLIS_INT else 1_000_000)
    number = Decimal(value) if isinstance(value, float) else value
    # adjusted() is the power of ten of the leading digit: >= 1e16 is out of range in seconds and in
    # milliseconds, and checking it first keeps 1E+999999999 from being expanded.
    if not number.is_finite() or (number.adjusted() > 15 and not number.is_zero()):
        return None
    # copy_abs, not abs(): abs() rounds to the context's 28 digits, which can carry 99999999999.99...
    # (seconds) over the milliseconds threshold.
    step, digits = (_MILLI, 3) if number.copy_abs() >= _MILLIS_INT else (_MICRO, 6)
    floored = number.quantize(step, rounding=ROUND_FLOOR, context=_EXACT)
    return int(floored.scaleb(digits, context=_EXACT))


def _shown(value: object) -> str:
    """``value`` for an error message, at most about 64 characters."""
    if isinstance(value, int) and value.bit_length() > 200:  # str() refuses ints of over 4300 digits
        return f"an integer of {value.bit_length()} bits"
    text = str(value) if isinstance(value, int | Decimal) else repr(value)
    return text if len(text) <= 64 else text[:61] + "..."
