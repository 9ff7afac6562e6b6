"""What the pipeline must produce from a set of input files, computed here from the files alone.

Deliberately independent of ``handlers/``: it re-reads the inputs with the standard library and applies
the record contract of docs/architecture.md and ``handlers/record.schema.json`` as written there (an object
with a non-empty string ``id``, an RFC 3339-with-offset or epoch ``timestamp``, a non-empty string ``type``,
an optional string ``source``, an optional object ``attributes``, every other field a number, JSON without
NaN/Infinity). The sample files use only clear-cut violations, so this checker and the handlers' must agree
on every record; a disagreement is a bug in one of them.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

from handlers import contract

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)
_SPECIAL = {"id", "timestamp", "type", "source", "attributes"}


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _is_number(value: object) -> bool:
    # Numbers with a fraction or exponent are parsed as Decimal: the database total is exact, so is this.
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def parse(unit: str) -> Any:
    return json.loads(unit, parse_float=Decimal, parse_constant=_reject_constant)


def is_valid_record(unit: str | dict[str, Any]) -> bool:
    """Whether a unit (JSON text, or an element already parsed from a ``.json`` array) is a valid record."""
    if isinstance(unit, str):
        try:
            record = parse(unit)
        except ValueError:
            return False
    else:
        record = unit
    if not isinstance(record, dict):
        return False
    if not (isinstance(record.get("id"), str) and record["id"]):
        return False
    if not (isinstance(record.get("type"), str) and record["type"]):
        return False
    timestamp = record.get("timestamp")
    if isinstance(timestamp, str):
        if not _RFC3339.match(timestamp):
            return False
    elif not _is_number(timestamp):
        return False
    if "source" in record and not isinstance(record["source"], str):
        return False
    if "attributes" in record and not isinstance(record["attributes"], dict):
        return False
    return all(_is_number(v) for k, v in record.items() if k not in _SPECIAL)


@dataclass
class Expected:
    """Totals over every input file."""

    valid: int = 0  # records that must reach the database
    bad: set[tuple[str, int]] = field(default_factory=set)  # (relative key, line or 1-based element index)
    blank_lines: int = 0
    value_count: int = 0  # valid records carrying the `value` metric
    value_sum: Decimal = Decimal(0)  # their exact sum: the database total of metric `value`
    groups_by_type: dict[str, int] = field(default_factory=dict)  # valid records per `type`


def _units(path: Path) -> list[tuple[int, Any]]:
    """(line number or element index, unit text or parsed array element; None for a blank line)."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8")
    if path.suffix == ".json":
        document = parse(text)
        items = document if isinstance(document, list) else [document]
        return list(enumerate(items, start=1))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line starts no line
    # Blank is JSON whitespace only: a line of \v or \f is not JSON, and the pipeline quarantines it.
    return [(n, line if line.strip(" \t\r") else None) for n, line in enumerate(lines, start=1)]


def expected_from(files: dict[str, Path]) -> Expected:
    """``files`` maps each object key relative to the input prefix to its local file."""
    expected = Expected()
    for rel, path in sorted(files.items()):
        for number, unit in _units(path):
            if unit is None:
                expected.blank_lines += 1
            elif is_valid_record(unit):
                record = parse(unit) if isinstance(unit, str) else unit
                expected.valid += 1
                expected.groups_by_type[record["type"]] = expected.groups_by_type.get(record["type"], 0) + 1
                if "value" in record:
                    expected.value_count += 1
                    expected.value_sum += record["value"]
            else:
                expected.bad.add((rel, number))
    return expected


def input_files(root: Path) -> dict[str, Path]:
    """Every file under ``root`` by the key the local run gives it (its path relative to ``root``)."""
    return {
        PurePosixPath(*p.relative_to(root).parts).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name.endswith(contract.INPUT_SUFFIXES)
    }
