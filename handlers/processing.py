"""Processing stage: processed ``records/<rel>.jsonl.gz`` → analytics ``aggregates/<rel>.json``.

One aggregates document per records object (format in ``handlers.aggregate``), carrying the
conservation counts as user metadata. Bad lines never raise: they are listed as ``rejected``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import boto3

from handlers.aggregate import aggregate_stream, to_document
from handlers.config import ProcessingConfig, load_processing
from handlers.events import ObjectRef, output_key, relative_key
from handlers.metrics import Counts, handle_objects
from handlers.s3io import hashed, open_object

INPUT_PREFIX = "records/"  # the ingestion stage's RECORDS_PREFIX, fixed by the chain
INPUT_SUFFIX = ".jsonl.gz"


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
    read, content_sha256 = hashed(open_object(rt.s3, ref))
    result = aggregate_stream(read, config.window_seconds, config.dimensions, config.metrics)
    # Neither the version id nor the ETag: a redelivered ingestion event rewrites identical records/
    # bytes as a new version, whose ETag is not even an MD5 of the bytes under SSE-KMS. The document
    # must be the same bytes again, so that analytics recognises the duplicate.
    source = {"bucket": ref.bucket, "key": ref.key, "sha256": content_sha256()}
    body = to_document(
        result, source, config.window, config.window_seconds, config.dimensions, config.metrics
    )
    key = output_key(config.aggregates_prefix, relative_key(ref.key, INPUT_PREFIX, INPUT_SUFFIX), ".json")
    rt.s3.put_object(
        Bucket=config.common.dest_bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        Metadata={**result.counts.as_metadata(), "groups": str(len(result.groups))},
    )
    return replace(result.counts, objects_written=1), key


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()

    def process(ref: ObjectRef) -> tuple[Counts, dict[str, Any]]:
        counts, written = process_object(rt, ref)
        return counts, {"written": [written]}

    return handle_objects(rt.config.common.metrics_namespace, "processing", event, context, process)
