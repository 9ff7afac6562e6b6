"""Listing a stage's source bucket under its trigger, and the outputs ingestion already wrote."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devtools.ops.replay.model import Item, ReplayTarget, utc
from handlers import contract
from handlers.contract import (
    QUARANTINE_PREFIX,
    QUARANTINE_SUFFIX,
    RECORDS_PREFIX,
    RECORDS_SUFFIX,
    SOURCE_SEQUENCER_METADATA,
    Env,
    Stage,
)
from handlers.errors import EventError
from handlers.events import split_part, versioned_key
from handlers.metrics import Counts


def _matches(key: str, target: ReplayTarget, key_prefix: str) -> bool:
    return key.startswith(key_prefix) and (
        not target.suffixes or any(not s or key.endswith(s) for s in target.suffixes)
    )


def key_prefix(target: ReplayTarget, prefix: str) -> str:
    """The full key prefix listed: `prefix` inside the trigger prefix, unless it already starts with it."""
    return prefix if prefix.startswith(target.prefix) else target.prefix + prefix


def is_versioned(s3: Any, bucket: str) -> bool:
    return s3.get_bucket_versioning(Bucket=bucket).get("Status") in ("Enabled", "Suspended")


def list_items(s3: Any, target: ReplayTarget, prefix: str) -> dict[str, list[Item]]:
    """The object versions under the trigger, per key, oldest first (S3's order of its versions): every
    version of a raw key for ingestion (each is a version of the data); only the current version for the
    later stages, whose input keys are already per raw version (an older version of a `records/` or
    `aggregates/` object is an older processing of the same raw version, which must not come back)."""
    full = key_prefix(target, prefix)
    found: dict[str, list[Item]] = {}
    every_version = target.stage == Stage.INGESTION
    if is_versioned(s3, target.bucket):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=target.bucket, Prefix=full):
            for v in page.get("Versions", []):  # a key's versions come newest first
                if not _matches(v["Key"], target, full) or not (every_version or v.get("IsLatest")):
                    continue
                version = v.get("VersionId")
                found.setdefault(v["Key"], []).append(
                    Item(
                        v["Key"],
                        None if version in (None, "null") else version,
                        int(v.get("Size", 0)),
                        str(v.get("ETag", "")).strip('"'),
                        utc(v["LastModified"]),
                    )
                )
        return {key: versions[::-1] for key, versions in found.items()}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=full):
        for o in page.get("Contents", []):
            if _matches(o["Key"], target, full):
                found[o["Key"]] = [
                    Item(
                        o["Key"],
                        None,
                        int(o.get("Size", 0)),
                        str(o.get("ETag", "")).strip('"'),
                        utc(o["LastModified"]),
                    )
                ]
    return found


@dataclass(frozen=True)
class Output:
    """An output of the ingestion stage for one raw version."""

    tag: str
    version_id: str | None
    last_modified: datetime
    kind: str  # "records" or "quarantine"
    quarantined: int | None = None  # records-quarantined of a records/ object (its metadata)


def _output_dir(prefix: str, rel: str, suffix: str) -> str:
    """The `prefix<rel>` a versioned output key of `rel` starts with (shortened as the stage shortens)."""
    return versioned_key(prefix, rel, "0", suffix)[: -len("/0" + suffix)]


def _later_part(key: str, prefix: str, suffix: str) -> bool:
    """Whether ``key`` is a records/ part k >= 1 (``handlers.events.part_key``)."""
    try:
        return split_part(key, prefix, suffix)[2] > 0
    except EventError:
        return False


def ingestion_outputs(s3: Any, target: ReplayTarget, rels: Iterable[str]) -> dict[str, list[Output]]:
    """The ingestion outputs already written for each raw `rel`, with the raw version each names."""
    env = target.environment
    records_prefix = env.get(Env.RECORDS_PREFIX, RECORDS_PREFIX)
    quarantine_prefix = env.get(Env.QUARANTINE_PREFIX, QUARANTINE_PREFIX)
    found: dict[str, list[Output]] = {}
    for rel in set(rels):
        for kind, prefix, suffix in (
            ("records", records_prefix, RECORDS_SUFFIX),
            ("quarantine", quarantine_prefix, QUARANTINE_SUFFIX),
        ):
            directory = _output_dir(prefix, rel, suffix) + "/"
            paginator = s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=target.dest_bucket, Prefix=directory):
                for o in page.get("Contents", []):
                    name = o["Key"][len(directory) :]
                    if "/" in name or not name.endswith(suffix):
                        continue  # another rel that starts with this one
                    if _later_part(o["Key"], prefix, suffix):
                        continue  # only part 0, written last, says a version was ingested whole
                    head = s3.head_object(Bucket=target.dest_bucket, Key=o["Key"])
                    metadata = head.get("Metadata") or {}
                    tag = metadata.get(SOURCE_SEQUENCER_METADATA) or name[: -len(suffix)]
                    count = metadata.get(Counts.metadata_name("records_quarantined"), "")
                    found.setdefault(rel, []).append(
                        Output(
                            tag.upper(),
                            metadata.get(contract.SOURCE_VERSION_METADATA),
                            utc(o["LastModified"]),
                            kind,
                            int(count) if count.isdigit() else None,
                        )
                    )
    return found
