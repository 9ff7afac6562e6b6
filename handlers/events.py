"""S3 notification events → typed object references, and output key derivation.

Keys in S3 events are URL-encoded with ``+`` for a space (``unquote_plus`` undoes both); an
``s3:TestEvent`` (sent when a notification configuration is saved) carries no records and is
acknowledged by returning no references.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from handlers.contract import PART_DIGITS, PART_MARKER
from handlers.errors import EventError


@dataclass(frozen=True)
class ObjectRef:
    """One object named by an S3 event record."""

    bucket: str  # bucket name
    key: str  # decoded object key
    version_id: str | None  # version named by the event; None for unversioned buckets
    size: int | None  # size in bytes from the event
    sequencer: str | None = None  # S3's order of PUTs to this key (hex); None if the event has none


def is_test_event(event: Mapping[str, Any]) -> bool:
    return event.get("Event") == "s3:TestEvent"


def object_refs(event: Mapping[str, Any]) -> Iterator[ObjectRef]:
    """Every ObjectCreated record of an S3 notification; raises EventError on any other shape."""
    if is_test_event(event):
        return
    records = event.get("Records")
    if not isinstance(records, list):
        raise EventError("not an S3 notification: no Records list")
    for index, record in enumerate(records):
        try:
            if record.get("eventSource") != "aws:s3":
                raise EventError(f"Records[{index}] is not from aws:s3: {record.get('eventSource')!r}")
            if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
                raise EventError(f"Records[{index}] is not ObjectCreated: {record.get('eventName')!r}")
            s3 = record["s3"]
            obj = s3["object"]
            yield ObjectRef(
                bucket=s3["bucket"]["name"],
                key=unquote_plus(obj["key"]),
                version_id=obj.get("versionId") or None,
                size=obj.get("size"),
                sequencer=obj.get("sequencer") or None,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise EventError(f"Records[{index}] is malformed: missing {exc}") from exc


def relative_key(key: str, prefix: str, suffix: str = "") -> str:
    """``key`` without the stage's input ``prefix`` and ``suffix`` (either kept if absent)."""
    rel = key[len(prefix) :] if prefix and key.startswith(prefix) else key
    if suffix and rel.endswith(suffix) and len(rel) > len(suffix):
        rel = rel[: -len(suffix)]
    return rel


MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes


def output_key(prefix: str, rel: str, suffix: str) -> str:
    """``prefix + rel + suffix``, shortened to S3's key limit when it would pass it.

    A stage's output key is longer than its input key (``incoming/x`` becomes
    ``records/x.jsonl.gz``), so an input key near the limit would give an output S3 refuses on every
    retry. Such a ``rel`` keeps as much of its start as fits, then ``~`` and 16 hex digits of its
    SHA-256: still recognisable, the same on a redelivery, and distinct for distinct keys.
    """
    key = f"{prefix}{rel}{suffix}"
    if len(key.encode()) <= MAX_KEY_BYTES:
        return key
    tag = "~" + hashlib.sha256(rel.encode()).hexdigest()[:16]
    room = MAX_KEY_BYTES - len(f"{prefix}{tag}{suffix}".encode())
    head = rel.encode()[:room].decode("utf-8", "ignore")  # never half a character
    return f"{prefix}{head}{tag}{suffix}"


SEQUENCER_WIDTH = 64  # hex digits every sequencer is padded to for comparison (S3's are about 16-20)
_HEX = frozenset("0123456789ABCDEF")


def version_tag(ref: ObjectRef) -> str:
    """The raw version's sequencer, upper-case: it names that version in every later stage's keys.

    S3 gives each PUT to a key a sequencer that grows with time, and documents how to order two of
    them: right-pad the shorter with zeros, then compare as strings (``order_key``). A record without
    one is not an S3 object-created event, and no version could be told from the next: EventError.
    """
    tag = (ref.sequencer or "").upper()
    if not tag or len(tag) > SEQUENCER_WIDTH or not _HEX.issuperset(tag):
        raise EventError(f"the event for {ref.key[:256]!r} has no valid sequencer: {ref.sequencer!r}")
    return tag


def order_key(tag: str) -> str:
    """A version tag padded as S3 documents, so that later versions compare greater as strings."""
    return tag.ljust(SEQUENCER_WIDTH, "0")


def versioned_key(prefix: str, rel: str, tag: str, suffix: str) -> str:
    """``prefix + rel + "/" + tag + suffix``: one output per raw version, each stage's key derived from
    the last, so a late or redriven event for an overwritten version still reads its own bytes whatever
    the versioning of the processed and analytics buckets. ``rel`` is shortened as ``output_key`` does
    when the whole would pass S3's limit, the same way for every version (as if its tag were the
    widest); the tag is never cut."""
    widest = f"/{'0' * SEQUENCER_WIDTH}{suffix}"  # shortened alike for every version of the key
    short = output_key(prefix, rel, widest)[len(prefix) : -len(widest)]
    return f"{prefix}{short}/{tag}{suffix}"


def split_versioned(key: str, prefix: str, suffix: str) -> tuple[str, str]:
    """``(rel, tag)`` of a key ``versioned_key`` wrote; EventError for any other key."""
    inner = relative_key(key, prefix, suffix)
    rel, _, tag = inner.rpartition("/")
    if (
        not key.startswith(prefix)
        or not key.endswith(suffix)
        or not rel
        or not tag
        or not _HEX.issuperset(tag)
    ):
        raise EventError(f"{key[:256]!r} is not a {prefix}<name>/<version>{suffix} key of this pipeline")
    return rel, tag


def part_key(prefix: str, rel: str, tag: str, part: int, suffix: str) -> str:
    """Part ``part`` of a raw version's output: part 0 is ``versioned_key`` itself; part k >= 1 adds
    ``PART_MARKER`` and k in ``PART_DIGITS`` digits (or more) before the suffix (``<TAG>.p00001<suffix>``).

    ``rel`` is shortened exactly as for part 0, so every part names one ``rel``. The key fits S3's limit:
    ``versioned_key`` leaves room for a tag of ``SEQUENCER_WIDTH`` digits, and S3's sequencers are a
    third of that, which leaves the marker room to spare (a tag too long for it raises EventError)."""
    whole = versioned_key(prefix, rel, tag, suffix)
    if part == 0:
        return whole
    if part < 0:
        raise ValueError(f"a part index is at least 0, got {part}")
    key = f"{whole[: -len(suffix)] if suffix else whole}{PART_MARKER}{part:0{PART_DIGITS}d}{suffix}"
    if len(key.encode()) > MAX_KEY_BYTES:
        raise EventError(f"sequencer {tag[:80]!r} leaves no room for a part marker in {key[:256]!r}")
    return key


def split_part(key: str, prefix: str, suffix: str) -> tuple[str, str, int]:
    """``(rel, tag, part)`` of a key ``part_key`` wrote (part 0 for a ``versioned_key``); EventError for
    any other key, a part 0 spelled with a marker included."""
    stem = key[: -len(suffix)] if suffix and key.endswith(suffix) else key
    head, marker, digits = stem.rpartition(PART_MARKER)
    part = 0
    if marker and "/" not in digits:  # in the version's segment: a tag is hex, so this is a marker
        if (
            len(digits) < PART_DIGITS
            or not digits.isascii()
            or not digits.isdigit()
            or int(digits) == 0
            or digits != f"{int(digits):0{PART_DIGITS}d}"
        ):
            raise EventError(
                f"{key[:256]!r} is not a {prefix}<name>/<version>[{PART_MARKER}<part>]{suffix} key"
            )
        part, key = int(digits), head + suffix
    rel, tag = split_versioned(key, prefix, suffix)
    return rel, tag, part


def is_gzip(key: str) -> bool:
    """Whether ``key`` names a gzip-compressed object (``.gz``, in any case).

    Here rather than in ``handlers.framing``: the deadline guard of every stage asks it, and analytics'
    cold start should not import the framing module for one suffix test.
    """
    return key.lower().endswith(".gz")
