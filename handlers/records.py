"""Record checks: a unit's bytes → a valid, re-encoded record or a ``Rejection`` with its reason.

``RecordChecker`` parses (msgspec, exact decimals), checks the object shape, duplicate keys, the schema
(jsonschema-rs, compiled once per container; a batch in one call when the schema allows it,
``_batch_validator``) and the timestamp (``handlers.timestamps``), one unit at a time or a batch of JSON
Lines at a time; the batch paths agree with the one-unit path (property tests in
tests/handlers/test_records.py). The rules and reasons are in ``handlers.ingestion_core``'s docstring.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import repeat
from typing import Any

import jsonschema_rs
import msgspec

from handlers.bad_lines import split_around, stopped_at, unbraced_units
from handlers.duplicate_keys import duplicate_key, may_repeat_a_key, no_duplicate_keys
from handlers.errors import ConfigError
from handlers.timestamps import normalise_timestamp


@dataclass(frozen=True)
class Rejection:
    """Why a unit was quarantined."""

    reason: str  # machine-readable code (see the module docstring)
    detail: str  # human-readable explanation


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
        except _PARSE_ERRORS as exc:  # msgspec's ValidationError too: an integer of over 4300 digits
            return _unparsed(unit, exc)
        return self._parsed(unit, record)

    def _parsed(self, unit: bytes, record: Any) -> bytes | Rejection:
        """``check`` of ``unit``, parsed as ``record``."""
        if type(record) is not dict:
            return Rejection("not_an_object", f"a record must be a JSON object, got {type(record).__name__}")
        duplicate = duplicate_key(unit, record)
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
        results: list[bytes | Rejection] = []
        for segment in self._check_batch(units)[0]:
            if type(segment) is tuple:
                results += segment[0].split(b"\n")[:-1]
            else:
                results.append(segment)  # type: ignore[arg-type]
        return results

    def _check_batch(self, units: list[bytes]) -> tuple[list[Segment], int]:
        """``check_lines`` as segments in unit order, and the number of rejections among them.

        A segment is a block of valid lines ``(lines, count)``, each line ending in a newline (the sink
        takes it in one call, and the encoder's output needs no splitting), one valid line, or a
        Rejection. A batch with only valid units is one block.

        One ``decode_lines`` call parses a piece of the batch and one ``encode_lines`` call writes it
        back; duplicate keys are ruled out by comparing counts (``no_duplicate_keys``). A piece with
        an irregularity (a parse error, a unit that is not ``{...}``, a possible duplicate) is retried
        split: the units the irregularity points at alone (the line a parse error stopped at, the
        units that are not braced, those that may repeat a key), the runs between them as pieces, or
        two halves when nothing points anywhere; a piece of one unit gets ``check``'s verdict. So a bad
        line costs about one more parse of the lines before it, not its whole batch one unit at a time,
        and any split gives ``check``'s verdicts (each piece is a batch of its own).

        Every parse, of a piece or of one unit, is one call below this frame, so how deep a unit may
        nest (msgspec stops at the interpreter's recursion limit) does not depend on the piece it is
        parsed in, that is on its neighbours (a test holds this at the limit).
        """
        segments: list[Segment] = []
        rejected = 0
        pieces = [(0, len(units))]  # ranges of units still to check, the next one last
        while pieces:
            start, end = pieces.pop()
            if end - start == 1:
                unit = units[start]
                try:
                    record = _decode(unit)
                except _PARSE_ERRORS as exc:
                    result = _unparsed(unit, exc)
                else:
                    result = self._parsed(unit, record)
                segments.append(result)
                rejected += type(result) is Rejection
                continue
            piece = units if end - start == len(units) else units[start:end]
            joined = b"\n".join(piece)
            try:
                records = _decode_lines(joined)
            except _PARSE_ERRORS as exc:
                outcome: tuple[list[Segment], int] | list[int] = stopped_at(joined, exc, len(piece))
            else:
                outcome = self._check_piece(piece, records, joined)
            if type(outcome) is tuple:
                segments += outcome[0]
                rejected += outcome[1]
            else:
                pieces += split_around(start, end, outcome)  # type: ignore[arg-type]
        return segments, rejected

    def _check_piece(
        self, units: list[bytes], records: list[Any], joined: bytes
    ) -> tuple[list[Segment], int] | list[int]:
        """``_check_batch`` of ``units``, parsed as ``records``; or the indices of the units to retry
        alone (none: retry in halves) when the batch cannot vouch for its results."""
        # Each unit must be "{...}", maybe padded with whitespace: a unit ending in "}" cannot be
        # continued by a next one starting with "{", so then each unit held exactly one record.
        # Comparing each unit's first and last byte costs the same for any record size; scanning
        # ``joined`` for "}\n{" grows with it (docs/benchmarks.md, "Figures behind the code").
        if not _braced(units):
            unbraced = unbraced_units(units)
            if unbraced:
                return self._around(units, records, unbraced)
        if len(records) != len(units):
            return []
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
            return []
        became_strings = len(timestamps) - list(map(type, timestamps)).count(str)
        if not no_duplicate_keys(joined, records, encoded, became_strings):
            return may_repeat_a_key(units, records)
        return [(encoded, len(units))], 0

    def _around(
        self, units: list[bytes], records: list[Any], unbraced: list[int]
    ) -> tuple[list[Segment], int] | list[int]:
        """``_check_piece`` when the units at ``unbraced`` are not ``{...}``; else those units go alone.

        When each of them parses alone as one value, each unit held one record: the parser is between
        values at every unit's start (a value cannot go on into a unit starting with ``{`` or with a
        whole value of its own), so every unit held at least one, and as many records as units leaves
        one each. Then each unbraced unit is rejected as what it is, no object, and the runs between
        are checked with the records parsed already. (A unit too deep to parse here goes alone, to be
        parsed where ``_check_batch`` parses every unit.)"""
        if len(records) != len(units):
            return unbraced
        values = []
        for index in unbraced:
            try:
                values.append(_decode(units[index]))
            except _PARSE_ERRORS:
                return unbraced
        segments: list[Segment] = []
        rejected, at = 0, 0
        for index, value in zip([*unbraced, len(units)], [*values, None], strict=True):
            if at < index:
                run = units[at:index]
                outcome = self._check_piece(run, records[at:index], b"\n".join(run))
                if type(outcome) is not tuple:  # retry the run's suspects alone too
                    return sorted({*unbraced, *(at + offset for offset in outcome)})  # type: ignore[union-attr]
                segments += outcome[0]
                rejected += outcome[1]
            if index < len(units):
                result = self._parsed(units[index], value)
                segments.append(result)
                rejected += type(result) is Rejection
            at = index + 1
        return segments, rejected

    def _check_mixed(
        self, units: list[bytes], records: list[dict[str, Any]], joined: bytes
    ) -> tuple[list[Segment], int] | list[int]:
        """``_check_piece`` record by record, for a batch with rejections."""
        results: list[bytes | Rejection | None] = []
        append = results.append
        is_valid = self._is_valid
        rejected = became_strings = 0  # numeric timestamps replaced by strings (for no_duplicate_keys)
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
            return []
        if not no_duplicate_keys(joined, records, encoded, became_strings):
            return may_repeat_a_key(units, records)
        lines = encoded.split(b"\n")
        return [lines[index] if result is None else result for index, result in enumerate(results)], rejected

    def _violation(self, record: dict[str, Any]) -> Rejection:
        try:
            error = next(iter(self._validator.iter_errors(record)))
        except ValueError as exc:  # jsonschema-rs 0.61 cannot show a value nested 256 or more levels deep
            return Rejection(
                "schema_violation", f"the record does not match the schema ({exc} describing where)"
            )
        where = "/".join(str(part) for part in error.instance_path)
        return Rejection("schema_violation", f"/{where}: {error.message}")


Segment = tuple[bytes, int] | bytes | Rejection  # see RecordChecker._check_batch
_PARSE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError, InvalidOperation)


def _unparsed(unit: bytes, error: Exception) -> Rejection:
    """Why ``unit`` is rejected when parsing it raised ``error``."""
    if isinstance(error, UnicodeDecodeError):
        return Rejection("invalid_utf8", str(error))
    if isinstance(error, RecursionError):
        return _TOO_DEEP
    if isinstance(error, InvalidOperation):
        return Rejection("invalid_json", "a number with an exponent beyond what a decimal can hold")
    try:
        unit.decode("utf-8")
    except UnicodeDecodeError as utf8:
        return Rejection("invalid_utf8", str(utf8))
    return Rejection("invalid_json", str(error))


_OPEN_BRACE, _CLOSE_BRACE = ord("{"), ord("}")
_first_byte, _last_byte = operator.itemgetter(0), operator.itemgetter(-1)


def _braced(units: list[bytes]) -> bool:
    """True when every unit starts with ``{`` and ends with ``}`` (no whitespace around)."""
    try:
        firsts, lasts = bytes(map(_first_byte, units)), bytes(map(_last_byte, units))
    except IndexError:  # an empty unit
        return False
    return firsts.count(_OPEN_BRACE) == len(units) and lasts.count(_CLOSE_BRACE) == len(units)


# Numbers with a fraction or an exponent become Decimals, written back as the same number: a metric
# keeps the exact value of its literal all the way to the database (a float would round 0.1).
_decoder = msgspec.json.Decoder(float_hook=Decimal)
_decode, _decode_lines = _decoder.decode, _decoder.decode_lines
_encoder = msgspec.json.Encoder(decimal_format="number")
encode, _encode_lines = _encoder.encode, _encoder.encode_lines
BATCH_UNITS = 256
BATCH_BYTES = 1 << 20
