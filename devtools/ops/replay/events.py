"""The S3 notification replay sends, shaped as S3 shapes it; the handler tests build their events with it
too, so that the pipeline is exercised with one event shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from devtools.ops.replay.model import Item, ReplayTarget

REPLAY_SENDER = "devtools-replay"


def object_created_record(
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str | None,
    sequencer: str,
    version_id: str | None,
    region: str,
    event_time: datetime,
    sender: str = REPLAY_SENDER,
    request_id: str = "REPLAY",
) -> dict[str, Any]:
    """One record of the notification S3 sends for a PUT (`ObjectCreated:Put`): the key URL-encoded with
    `+` for a space, `versionId` only where the bucket is versioned. `sender` and `request_id` fill the
    identity and request fields, which the pipeline never reads."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size}
    if etag is not None:
        obj["eTag"] = etag
    obj["sequencer"] = sequencer
    if version_id:
        obj["versionId"] = version_id
    stamp = event_time.astimezone(UTC)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": sender},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": request_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": sender,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": sender},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def s3_event(target: ReplayTarget, item: Item) -> dict[str, Any]:
    """The notification S3 sends for a PUT of `item` (one record)."""
    record = object_created_record(
        target.bucket,
        item.key,
        size=item.size,
        etag=item.etag,
        sequencer=item.tag,
        version_id=item.version_id,
        region=target.region,
        event_time=item.last_modified,
    )
    return {"Records": [record]}
