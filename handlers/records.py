"""Record checks: a unit's bytes → a valid, re-encoded record or a ``Rejection`` with its reason.

``RecordChecker`` parses (msgspec, exact decimals), checks the object shape, duplicate keys, the schema
(jsonschema-rs, compiled once per container; a batch in one call when the schema allows it,
``_batch_validator``) and the timestamp (``handlers.timestamps``), one unit at a time or a batch of JSON
Lines at a time; the batch paths agree with the one-unit path (property tests in
tests/handlers/test_records.py). The rules and reasons are in ``handlers.ingestion_core``'s docstring.
"""

from __future__ import annotations

import operator
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import repeat
from typing import Any

import jsonschema_rs
import msgspec

from handlers.errors import ConfigError
from handlers.framing import JSON_WHITESPACE
from handlers.timestamps import normalise_timestamp


@dataclass(frozen=True)
class Rejection:
    """Why a unit was quarantined."""

    reason: str  # machine-readable code (see the module docstring)
    detail: str  # human-readable explanation


_KEY_TOKEN = re.compile(rb'"[ \t\r\n]*:')


def _key_tokens(unit: bytes) -> int:
    """An upper bound of the number of object keys written in ``unit``."""
    if b'" ' in unit or b'"\t' in unit or b'"\r' in unit or b'"\n' in unit:
        return len(_KEY_TOKEN.findall(unit))
    return unit.count(b'":')


def _parsed_keys(record: dict[str, Any]) -> int:
    """The number of keys in ``record`` and every object inside it."""
    total = len(record)
    for value in record.values():  # the common shape, objects of scalars one level down, without a stack
        kind = type(value)
        if kind is dict:
            total += len(value)
            for inner in value.values():
                if type(inner) in _CONTAINERS:
                    return _walk_keys(record)
        elif kind is list:
            return _walk_keys(record)
    return total


_CONTAINERS = (dict, list)


def _walk_keys(value: object) -> int:
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        values = item.values() if type(item) is dict else item
        if type(item) is dict:
            total += len(item)
        for inner in values:  # only containers are pushed: strings and numbers hold no keys
            if type(inner) in _CONTAINERS:
                stack.append(inner)
    return total


def _duplicate_key(unit: bytes, record: dict[str, Any]) -> str | None:
    tokens = _key_tokens(unit)
    if tokens <= len(record) or tokens <= _parsed_keys(record):
        return None
    return _repeated_key(unit)


# A string (group 1), and the colon that makes it a key (group 2); or a brace.
_STRING_OR_BRACE = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")([ \t\r\n]*:)?|[{}]', re.DOTALL)


def _repeated_key(unit: bytes) -> str | None:
    """The first key written twice in one object of ``unit`` (valid JSON), or None.

    A scan with a stack of its own rather than a parse with an ``object_pairs_hook``: the standard
    library's parser recurses, and raised RecursionError on deep records the core had accepted.
    """
    objects: list[set[str]] = []
    for match in _STRING_OR_BRACE.finditer(unit):
        string, colon = match.groups()
        if string is None:
            if match.group() == b"{":
                objects.append(set())
            else:
                objects.pop()
        elif colon is not None:
            key = _decode(string) if b"\\" in string else string[1:-1].decode()
            if key in objects[-1]:
                return key  # type: ignore[no-any-return]
            objects[-1].add(key)
    return None


# msgspec stops at Python's recursion limit, so how deep it gets depends on the interpreter (3.11
# counts Python and C calls together, 3.12 apart) and on the caller's stack: about 930-990 levels on 3.11.
_TOO_DEEP = Rejection("invalid_json", "nesting deeper than the parser's recursion limit")


_REFERENCES = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})


def _batch_validator(schema: Mapping[str, Any]) -> Callable[[list[Any]], bool] | None:
    """Whether every record of a batch is valid, in one jsonschema-rs call; None when not exact.

    Why: handing records to jsonschema-rs one call at a time costs a fixed overhead per call that one
    call for the batch, validated as ``{"type": "array", "items": schema}``, pays once (measured in
    docs/benchmarks.md, "Figures behind the code"). ``items`` applies the schema to each element exactly
    as it applies to a record alone, as long as nothing in it is resolved against the root: a schema with
    references gets None (records are then validated one call each). The wrapper keeps the
    schema's ``$schema``, so the draft is the same. Property tests hold it equal to per-record
    validation.
    """

    def keys(value: object) -> Iterator[str]:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                yield key
                yield from keys(inner)
        elif isinstance(value, list):
            for inner in value:
                yield from keys(inner)

    if not _REFERENCES.isdisjoint(keys(schema)):
        return None
    wrapper: dict[str, Any] = {"type": "array", "items": {k: v for k, v in schema.items() if k != "$schema"}}
    if "$schema" in schema:
        wrapper["$schema"] = schema["$schema"]
    try:
        return jsonschema_rs.validator_for(wrapper).is_valid
    except (jsonschema_rs.ValidationError, ValueError):
        return None


class RecordChecker:
    """Parses, validates and normalises units; the compiled schema is built once per container."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        try:
            self._validator = jsonschema_rs.validator_for(dict(schema))
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            raise ConfigError(f"the record schema is not a valid JSON Schema: {exc}") from exc
        self._is_valid = self._validator.is_valid
        self._all_valid = _batch_validator(schema) or self._each_valid

    def _each_valid(self, records: list[Any]) -> bool:
        return all(map(self._is_valid, records))

    def check(self, unit: bytes) -> bytes | Rejection:
        """The record's output line, or why it is rejected (the reference path, one unit at a time)."""
        try:
            record = _decode(unit)
        except UnicodeDecodeError as exc:
            return Rejection("invalid_utf8", str(exc))
        except msgspec.DecodeError as exc:  # ValidationError too: an integer of over 4300 digits
            try:
                unit.decode("utf-8")
            except UnicodeDecodeError as utf8:
                return Rejection("invalid_utf8", str(utf8))
            return Rejection("invalid_json", str(exc))
        except RecursionError:
            return _TOO_DEEP
        except InvalidOperation:
            return Rejection("invalid_json", "a number with an exponent beyond what a decimal can hold")
        if type(record) is not dict:
            return Rejection("not_an_object", f"a record must be a JSON object, got {type(record).__name__}")
        duplicate = _duplicate_key(unit, record)
        if duplicate is not None:
            return Rejection("duplicate_key", f"key {duplicate!r} appears more than once")
        return self._finish(record)

    def _finish(self, record: dict[str, Any]) -> bytes | Rejection:
        if not self._is_valid(record):
            return self._violation(record)
        timestamp = record.get("timestamp")
        try:
            normalised = normalise_timestamp(timestamp)
        except ValueError as exc:
            return Rejection("invalid_timestamp", str(exc))
        record["timestamp"] = normalised
        try:
            return encode(record)
        except RecursionError:  # the encoder needs a level more than the decoder: a record at its edge
            return _TOO_DEEP

    def check_lines(self, units: list[bytes]) -> list[bytes | Rejection]:
        """``check`` of each unit (single-line, non-blank), amortised over the batch."""
        results = self._check_batch(units)[0]
        if type(results) is bytes:
            return results.split(b"\n")[:-1]  # type: ignore[return-value]
        return results  # type: ignore[return-value]

    def _check_batch(self, units: list[bytes]) -> tuple[bytes | list[bytes | Rejection], int]:
        """``check_lines`` and the number of rejections among the results.

        A batch with only valid units comes back as one block of newline-terminated lines: the
        sink takes it in one call, and the encoder's output needs no splitting.

        One ``decode_lines`` call parses the batch and one ``encode_lines`` call writes it back;
        duplicate keys are ruled out by comparing counts (``_no_duplicate_keys``). Any irregularity
        (a parse error, a unit that is not ``{...}``, a possible duplicate) sends the batch through
        ``check`` one unit at a time, so both paths give identical results.
        """
        joined = b"\n".join(units)
        try:
            records = _decode_lines(joined)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, InvalidOperation):
            return self._check_each(units)
        # Each unit must be "{...}", maybe padded with whitespace: a unit ending in "}" cannot be
        # continued by a next one starting with "{", so then each unit held exactly one record.
        # Comparing each unit's first and last byte costs the same for any record size; scanning
        # ``joined`` for "}\n{" grows with it (docs/benchmarks.md, "Figures behind the code").
        if not _braced(units):
            stripped = [unit.strip(JSON_WHITESPACE) for unit in units]
            if not all(unit[:1] == b"{" and unit[-1:] == b"}" for unit in stripped):
                return self._check_each(units)
        if len(records) != len(units):
            return self._check_each(units)
        if not self._all_valid(records):
            return self._check_mixed(units, records, joined)
        # The common batch, all valid: C-level loops (map) around the one Python call per record.
        timestamps = list(map(dict.get, records, repeat("timestamp")))
        try:
            normalised = list(map(normalise_timestamp, timestamps))
        except ValueError:
            return self._check_mixed(units, records, joined)
        deque(map(dict.__setitem__, records, repeat("timestamp"), normalised), maxlen=0)
        try:
            encoded = _encode_lines(records)
        except RecursionError:
            return self._check_each(units)
        became_strings = len(timestamps) - list(map(type, timestamps)).count(str)
        if not _no_duplicate_keys(joined, records, encoded, became_strings):
            return self._check_each(units)
        return encoded, 0

    def _check_mixed(
        self, units: list[bytes], records: list[dict[str, Any]], joined: bytes
    ) -> tuple[list[bytes | Rejection], int]:
        """``_check_batch`` record by record, for a batch with rejections."""
        results: list[bytes | Rejection | None] = []
        append = results.append
        is_valid = self._is_valid
        rejected = became_strings = 0  # numeric timestamps replaced by strings (for _no_duplicate_keys)
        for record in records:
            if not is_valid(record):
                append(self._violation(record))
                rejected += 1
                continue
            timestamp = record.get("timestamp")
            try:
                normalised = normalise_timestamp(timestamp)
            except ValueError as exc:
                append(Rejection("invalid_timestamp", str(exc)))
                rejected += 1
                continue
            if type(timestamp) is not str:
                became_strings += 1
            record["timestamp"] = normalised
            append(None)  # filled from the encoded batch below
        try:
            encoded = _encode_lines(records)
        except RecursionError:
            return self._check_each(units)
        if not _no_duplicate_keys(joined, records, encoded, became_strings):
            return self._check_each(units)
        lines = encoded.split(b"\n")
        return [lines[index] if result is None else result for index, result in enumerate(results)], rejected

    def _check_each(self, units: list[bytes]) -> tuple[list[bytes | Rejection], int]:
        results = [self.check(unit) for unit in units]
        return results, sum(type(result) is Rejection for result in results)

    def _violation(self, record: dict[str, Any]) -> Rejection:
        try:
            error = next(iter(self._validator.iter_errors(record)))
        except ValueError as exc:  # jsonschema-rs 0.61 cannot show a value nested 256 or more levels deep
            return Rejection(
                "schema_violation", f"the record does not match the schema ({exc} describing where)"
            )
        where = "/".join(str(part) for part in error.instance_path)
        return Rejection("schema_violation", f"/{where}: {error.message}")


def _no_duplicate_keys(joined: bytes, records: list[Any], encoded: bytes, became_strings: int) -> bool:
    """True when no object in ``joined`` (parsed into ``records``, re-encoded as ``encoded``) repeats a key.

    Without any backslash in the input a string cannot hold a quote, so the input's quote count is
    twice its number of strings; msgspec writes such strings back verbatim between two quotes.
    Parsing keeps every string but a duplicate key (and its value), so the counts agree exactly when
    nothing was dropped, once the timestamps that went from a number to a string are accounted for.
    With backslashes, the reference bound: '":' tokens (at least one per key written) against the
    parsed key count.
    """
    if b"\\" not in joined:
        return joined.count(b'"') + 2 * became_strings == encoded.count(b'"')
    if _SPACED_COLON.search(joined) is not None:
        return False
    return joined.count(b'":') == sum(_parsed_keys(record) for record in records)


_OPEN_BRACE, _CLOSE_BRACE = ord("{"), ord("}")
_first_byte, _last_byte = operator.itemgetter(0), operator.itemgetter(-1)


def _braced(units: list[bytes]) -> bool:
    """True when every unit starts with ``{`` and ends with ``}`` (no whitespace around)."""
    try:
        firsts, lasts = bytes(map(_first_byte, units)), bytes(map(_last_byte, units))
    except IndexError:  # an empty unit
        return False
    return firsts.count(_OPEN_BRACE) == len(units) and lasts.count(_CLOSE_BRACE) == len(units)


_SPACED_COLON = re.compile(rb'"[ \t\r\n]+:')
# Numbers with a fraction or an exponent become Decimals, written back as the same number: a metric
# keeps the exact value of its literal all the way to the database (a float would round 0.1).
_decoder = msgspec.json.Decoder(float_hook=Decimal)
_decode, _decode_lines = _decoder.decode, _decoder.decode_lines
_encoder = msgspec.json.Encoder(decimal_format="number")
encode, _encode_lines = _encoder.encode, _encoder.encode_lines
BATCH_UNITS = 256
BATCH_BYTES = 1 << 20
