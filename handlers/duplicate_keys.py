"""Duplicate keys in JSON records: exact scans and the cheap counts that rule them out.

JSON parsers silently keep the last value of a repeated key, so ``handlers.records`` rejects a record
that writes a key twice (``duplicate_key``). These are its checks: a bound from counting key-like tokens
against parsed keys (``duplicate_key``), an exact scan without recursion (``repeated_key``), and the
batch-wide counts that rule duplicates out for a whole batch at once (``no_duplicate_keys``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

_KEY_TOKEN = re.compile(rb'"[ \t\r\n]*:')


def key_tokens(unit: bytes) -> int:
    """An upper bound of the number of object keys written in ``unit``."""
    if b'" ' in unit or b'"\t' in unit or b'"\r' in unit or b'"\n' in unit:
        return len(_KEY_TOKEN.findall(unit))
    return unit.count(b'":')


def parsed_keys(record: dict[str, Any]) -> int:
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


def duplicate_key(unit: bytes, record: dict[str, Any]) -> str | None:
    tokens = key_tokens(unit)
    if tokens <= len(record) or tokens <= parsed_keys(record):
        return None
    return repeated_key(unit)


# A string (group 1), and the colon that makes it a key (group 2); or a brace.
_STRING_OR_BRACE = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")([ \t\r\n]*:)?|[{}]', re.DOTALL)


def repeated_key(unit: bytes) -> str | None:
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
            key = msgspec.json.decode(string) if b"\\" in string else string[1:-1].decode()
            if key in objects[-1]:
                return key  # type: ignore[no-any-return]
            objects[-1].add(key)
    return None


def no_duplicate_keys(joined: bytes, records: list[Any], encoded: bytes, became_strings: int) -> bool:
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
    return joined.count(b'":') == sum(parsed_keys(record) for record in records)


_SPACED_COLON = re.compile(rb'"[ \t\r\n]+:')


def may_repeat_a_key(units: list[bytes], records: list[Any]) -> list[int]:
    """The indices of the units whose key tokens outnumber their parsed keys (``duplicate_key``'s
    bound), each unit parsed as the record at its index."""
    return [index for index, unit in enumerate(units) if key_tokens(unit) > parsed_keys(records[index])]
