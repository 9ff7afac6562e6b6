"""Bucket settings: S3's naming rules, the three buckets' names and the buckets a stack adopts
(`adoptBuckets`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from components.config.collector import Collector
from components.config.model import AdoptedBucket
from components.config.schema import (
    ADOPT_KEYS,
    ADOPTABLE_SETTINGS,
    BUCKET_CHARS,
    BUCKET_NAME_MAX,
    BUCKET_RESERVED_PREFIXES,
    BUCKET_RESERVED_SUFFIXES,
    BUCKET_ROLES,
    DEFAULT_IMPORTED_SETTINGS,
    NAMESPACE,
    SUFFIX_HEX_CHARS,
    SUFFIX_PLACEHOLDER,
)


def bucket_name_problems(name: str) -> list[str]:
    """S3 general purpose bucket naming rules, checked on the full name (suffix included)."""
    problems = []
    if not 3 <= len(name) <= BUCKET_NAME_MAX:
        problems.append(f"is {len(name)} characters long; allowed: 3-{BUCKET_NAME_MAX}")
    if not BUCKET_CHARS.match(name):
        problems.append("may contain only lowercase letters, digits, hyphens and dots")
    if name and not (name[0].isalnum() and name[-1].isalnum()):
        problems.append("must begin and end with a lowercase letter or digit")
    if ".." in name or ".-" in name or "-." in name:
        problems.append("must not contain '..', '.-' or '-.'")
    try:
        ipaddress.IPv4Address(name)
        problems.append("must not be formatted as an IP address")
    except ValueError:
        pass
    for prefix in BUCKET_RESERVED_PREFIXES:
        if name.startswith(prefix):
            problems.append(f"must not start with the reserved prefix '{prefix}'")
    for suffix in BUCKET_RESERVED_SUFFIXES:
        if name.endswith(suffix):
            problems.append(f"must not end with the reserved suffix '{suffix}'")
    return problems


def bucket_names(
    c: Collector, value: Any, *, project: str, stack: str, bucket_suffix: bool
) -> dict[str, str]:
    """`buckets.<role>`: each bucket's name without the suffix (default `<project>-<stack>-<role>`)."""
    buckets_raw = c.mapping("buckets", value)
    base_names: dict[str, str] = {}
    for role in BUCKET_ROLES:
        key = f"buckets.{role}"
        name = buckets_raw.get(role, f"{project}-{stack}-{role}")
        if not isinstance(name, str):
            c.fail(key, f"{c.show(key, name)} is not a string")
            continue
        full = name + (SUFFIX_PLACEHOLDER if bucket_suffix else "")
        shown = f"bucket name {c.show(key, name)}" + (
            f" (with the {SUFFIX_HEX_CHARS}-hex suffix)" if bucket_suffix else ""
        )
        for problem in bucket_name_problems(full):
            origin = (
                "" if role in buckets_raw else f" (default from project and stack; set {NAMESPACE}:{key})"
            )
            c.fail(key, f"{shown} {problem}{origin}")
        base_names[role] = name
    if len(set(base_names.values())) != len(base_names):
        c.fail("buckets", "the raw, processed and analytics buckets need three different names")
    return base_names


def adopted_buckets(c: Collector, value: Any) -> dict[str, AdoptedBucket]:
    """`adoptBuckets.<role>`: a bucket name, or `{name, import: [settings]}`."""
    raw = c.mapping("adoptBuckets", value)
    adopted: dict[str, AdoptedBucket] = {}
    for role, entry in raw.items():
        key = f"adoptBuckets.{role}"
        if role not in BUCKET_ROLES:
            continue  # reported by mapping()
        settings: Any = DEFAULT_IMPORTED_SETTINGS
        if isinstance(entry, Mapping):
            c.check_keys(key, entry, ADOPT_KEYS)
            name, settings = entry.get("name"), entry.get("import", DEFAULT_IMPORTED_SETTINGS)
        else:
            name = entry
        if not isinstance(name, str):
            c.fail(key, f"{c.show(key, name)} is not a bucket name (a string, or an object with name)")
            continue
        problems = bucket_name_problems(name)
        for problem in problems:
            c.fail(key, f"bucket name {c.show(key, name)} {problem}")
        if not isinstance(settings, list | tuple) or not all(s in ADOPTABLE_SETTINGS for s in settings):
            c.fail(
                f"{key}.import",
                f"{c.show(key, settings)} is not a list of settings; "
                f"allowed: {', '.join(ADOPTABLE_SETTINGS)}",
            )
            continue
        if not problems:
            adopted[role] = AdoptedBucket(name, tuple(dict.fromkeys(settings)))
    names = [a.name for a in adopted.values()]
    if len(set(names)) != len(names):
        c.fail("adoptBuckets", "each role needs its own bucket: the same bucket is adopted twice")
    return adopted
