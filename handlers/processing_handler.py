"""Processing stage: processed ``records/<rel>/<TAG>[.pNNNNN].jsonl.gz`` → analytics
``aggregates/<rel>/<TAG>[.pNNNNN].json``.

``TAG`` is the raw object version's S3 sequencer (``handlers.events.versioned_key``), ``.pNNNNN`` the
records/ part (``handlers.events.part_key``; none for part 0): one aggregates document per part, so one
invocation's work is bounded by the part size ingestion uses, whatever the raw object's size. The
document (format in ``handlers.documents``) names its raw version and part as its ``origin``: ``rel``,
``TAG`` and the part from the key, the raw version id from the records object's ``source-version-id``
metadata, and on part 0 the number of parts from its ``records-parts`` metadata (1 without it). It
carries the conservation counts as user metadata too, and a part of a version of several parts what
analytics' HEADs read (``handlers.documents.head_metadata``). Bad lines never raise: they are listed as
``rejected``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import boto3

from handlers import contract
from handlers.aggregation import aggregate_stream
from handlers.config import ProcessingConfig, load_processing
from handlers.documents import Origin, head_metadata, to_document
from handlers.events import ObjectRef, part_key, split_part
from handlers.metrics import Counts, handle_objects
from handlers.parts import parts_of
from handlers.s3io import hashed, open_object_with_metadata

INPUT_PREFIX = contract.RECORDS_PREFIX  # the ingestion stage's RECORDS_PREFIX, fixed by the chain
INPUT_SUFFIX = contract.RECORDS_SUFFIX
SOURCE_VERSION_METADATA = contract.SOURCE_VERSION_METADATA  # user metadata ingestion puts on records/


@dataclass(frozen=True)
class Runtime:
    """Everything built once per container."""

    config: ProcessingConfig  # parsed environment
    s3: Any  # boto3 S3 client


@functools.cache
def runtime() -> Runtime:
    return Runtime(config=load_processing(), s3=boto3.client("s3"))


def process_object(rt: Runtime, ref: ObjectRef) -> tuple[Counts, str]:
    """Aggregate one records object; returns its counts and the key written."""
    config = rt.config
    # Before any read: a key this pipeline did not write names no raw version (EventError).
    rel, tag, part = split_part(ref.key, INPUT_PREFIX, INPUT_SUFFIX)
    # The current object, never the version the event names: a key holds one raw version, and its
    # current bytes are that version's latest ingestion. A late event for an earlier ingestion of it (a
    # versioned processed bucket) must not bring older bytes back after newer ones were loaded.
    body_read, metadata = open_object_with_metadata(rt.s3, replace(ref, version_id=None))
    read, content_sha256 = hashed(body_read)
    result = aggregate_stream(read, config.window_seconds, config.dimensions, config.metrics)
    # Neither the version id nor the ETag: a redelivered ingestion event rewrites identical records/
    # bytes as a new version, whose ETag is not even an MD5 of the bytes under SSE-KMS. The document
    # must be the same bytes again, so that analytics recognises the duplicate.
    source = {"bucket": ref.bucket, "key": ref.key, "sha256": content_sha256()}
    origin = Origin(
        rel=rel,
        sequencer=tag,
        version_id=metadata.get(SOURCE_VERSION_METADATA) or None,
        part=part,
        parts=parts_of(metadata) if part == 0 else None,
    )
    body = to_document(
        result, source, config.window, config.window_seconds, config.dimensions, config.metrics, origin=origin
    )
    key = part_key(config.aggregates_prefix, rel, tag, part, contract.AGGREGATES_SUFFIX)
    rt.s3.put_object(
        Bucket=config.common.dest_bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        Metadata={
            **result.counts.as_metadata(),
            "groups": str(len(result.groups)),
            **head_metadata(origin, body),
        },
    )
    return replace(result.counts, objects_written=1), key


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()

    def process(ref: ObjectRef) -> tuple[Counts, dict[str, Any]]:
        counts, written = process_object(rt, ref)
        return counts, {"written": [written]}

    return handle_objects(
        rt.config.common.metrics_namespace, contract.Stage.PROCESSING, event, context, process
    )
