"""S3 notification events → typed object references, and output key derivation.

Keys in S3 events are URL-encoded with ``+`` for a space (``unquote_plus`` undoes both); an
``s3:TestEvent`` (sent when a notification configuration is saved) carries no records and is
acknowledged by returning no references.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from handlers.errors import EventError


@dataclass(frozen=True)
class ObjectRef:
    """One object named by an S3 event record."""

    bucket: str  # bucket name
    key: str  # decoded object key
    version_id: str | None  # version named by the event; None for unversioned buckets
    etag: str | None  # ETag from the event (no quotes)
    size: int | None  # size in bytes from the event


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
            etag = obj.get("eTag") or obj.get("etag")
            yield ObjectRef(
                bucket=s3["bucket"]["name"],
                key=unquote_plus(obj["key"]),
                version_id=obj.get("versionId") or None,
                etag=etag.strip('"') if isinstance(etag, str) else None,
                size=obj.get("size"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise EventError(f"Records[{index}] is malformed: missing {exc}") from exc


def relative_key(key: str, prefix: str, suffix: str = "") -> str:
    """``key`` without the stage's input ``prefix`` and ``suffix`` (either kept if absent)."""
    rel = key[len(prefix) :] if prefix and key.startswith(prefix) else key
    if suffix and rel.endswith(suffix) and len(rel) > len(suffix):
        rel = rel[: -len(suffix)]
    return rel
