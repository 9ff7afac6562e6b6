"""Ingestion stage: raw ``incoming/<rel>`` → ``records/<rel>/<TAG>.jsonl.gz`` and ``quarantine/…``.

TAG is the raw version's S3 sequencer (``events.version_tag``): every version of a raw key has outputs
of its own, so each later stage reads that version's bytes even when an overwrite and a late, retried
or redriven event cross, and whatever the versioning of the processed bucket. ``records/`` is written
for every object, empty when no record is valid or the object cannot be read at all, so that in replace
mode every new version takes the place of the key's earlier one in the totals; ``quarantine/`` only
when something was quarantined. Both
carry the conservation counts and the raw version as user metadata. A key near S3's length limit is
shortened (``events.versioned_key``). The core is ``handlers.ingestion_core``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import boto3

from handlers import contract
from handlers.config import IngestionConfig, load_ingestion
from handlers.errors import UnreadableObjectError
from handlers.events import ObjectRef, relative_key, version_tag, versioned_key
from handlers.framing import detect_format
from handlers.ingestion_core import ingest, unreadable_entry
from handlers.metrics import Counts, handle_objects
from handlers.records import RecordChecker
from handlers.s3io import LineSpool, open_object, upload

RECORDS_SUFFIX = contract.RECORDS_SUFFIX  # the processing stage's INPUT_SUFFIX, fixed by the chain
QUARANTINE_SUFFIX = contract.QUARANTINE_SUFFIX


@dataclass(frozen=True)
class Runtime:
    """Everything built once per container."""

    config: IngestionConfig  # parsed environment
    checker: RecordChecker  # compiled record schema
    s3: Any  # boto3 S3 client


@functools.cache
def runtime() -> Runtime:
    config = load_ingestion()
    return Runtime(config=config, checker=RecordChecker(config.record_schema), s3=boto3.client("s3"))


class _Spools:
    def __init__(self) -> None:
        self.records = LineSpool(compress=True)
        self.quarantined = LineSpool(compress=False)

    def valid(self, line: bytes) -> None:
        self.records.write(line)

    def valid_lines(self, block: bytes, count: int) -> None:
        self.records.write_lines(block, count)

    def quarantine(self, line: bytes) -> None:
        self.quarantined.write(line)

    def close(self) -> None:
        self.records.close()
        self.quarantined.close()


def ingest_object(rt: Runtime, ref: ObjectRef) -> tuple[Counts, list[str]]:
    """Ingest one raw object; returns its counts and the keys written."""
    config = rt.config
    rel, tag = relative_key(ref.key, config.input_prefix), version_tag(ref)
    records_key = versioned_key(config.records_prefix, rel, tag, RECORDS_SUFFIX)
    quarantine_key = versioned_key(config.quarantine_prefix, rel, tag, QUARANTINE_SUFFIX)
    source = {"bucket": ref.bucket, "key": ref.key, "version_id": ref.version_id, "sequencer": tag}
    spools = _Spools()
    try:
        try:
            fmt = detect_format(ref.key, config.input_suffixes)
            counts = ingest(open_object(rt.s3, ref), fmt, rt.checker, config.max_record_bytes, source, spools)
        except UnreadableObjectError as error:
            # Whole or nothing: drop what the readable part produced, keep one entry naming the object.
            spools.close()
            spools = _Spools()
            spools.quarantine(unreadable_entry(source, error))
            counts = Counts(records_read=1, records_quarantined=1)
            # An empty records/ object too: this version holds no valid record, and in replace mode it
            # must still take the place of the key's earlier version in the totals.
            outputs = [
                (records_key, spools.records, "application/gzip"),
                (quarantine_key, spools.quarantined, "application/x-ndjson"),
            ]
        else:
            outputs = [(records_key, spools.records, "application/gzip")]
            if counts.records_quarantined:
                outputs.append((quarantine_key, spools.quarantined, "application/x-ndjson"))
        metadata = counts.as_metadata() | {contract.SOURCE_SEQUENCER_METADATA: tag}
        if ref.version_id:
            metadata[contract.SOURCE_VERSION_METADATA] = ref.version_id
        for key, spool, content_type in outputs:
            upload(rt.s3, spool.finish(), config.common.dest_bucket, key, content_type, metadata)
    finally:
        spools.close()
    return replace(counts, objects_written=len(outputs)), [key for key, _, _ in outputs]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()

    def process(ref: ObjectRef) -> tuple[Counts, dict[str, Any]]:
        counts, written = ingest_object(rt, ref)
        return counts, {"version_id": ref.version_id, "sequencer": ref.sequencer, "written": written}

    return handle_objects(
        rt.config.common.metrics_namespace, contract.Stage.INGESTION, event, context, process
    )
