"""Ingestion stage: raw ``incoming/<rel>`` → ``records/<rel>/<TAG>[.pNNNNN].jsonl.gz`` and ``quarantine/…``.

TAG is the raw version's S3 sequencer (``events.version_tag``): every version of a raw key has outputs
of its own, so each later stage reads that version's bytes even when an overwrite and a late, retried
or redriven event cross, and whatever the versioning of the processed bucket. ``records/`` is written
for every object, empty when no record is valid or the object cannot be read at all, so that in replace
mode every new version takes the place of the key's earlier one in the totals; ``quarantine/`` only
when something was quarantined. Both carry the conservation counts and the raw version as user
metadata. A key near S3's length limit is shortened (``events.versioned_key``). The core is
``handlers.ingestion_core``.

Valid records go into parts of at most ``RECORDS_PART_BYTES`` (``handlers.parts``; docs/architecture.md,
"Parts"): part 0 at the version's key, written last with the number of parts (``records-parts``), parts
k >= 1 at ``part_key``'s ``<TAG>.p<k>`` keys. So the processing stage fans out over the parts, and this
stage holds part 0 and one more part, whatever the object's size: each part k >= 1 is uploaded as soon
as it is full, under ``STAGING_PREFIX`` (which triggers nothing), and released to its records/ key (a
server-side copy, then the staged object's deletion) only once the whole object is read. So an attempt
that fails part-way (the deadline's watchdog, a lost S3 connection) leaves nothing the later stages see.
Quarantine entries are cut the same way (``quarantine/<rel>/<TAG>.p<k>.jsonl``, part 0 last with the
object's counts and the number of parts; they are not staged, since no stage reads them), so an object
of bad records does not fill ``/tmp`` either. A version within one part is written exactly as before parts
existed, and stages nothing. An object found unreadable after some parts were staged gets an empty part 0
of one part, and its staged parts are deleted unreleased.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import boto3

from handlers import contract, deadline
from handlers.config import IngestionConfig, load_ingestion
from handlers.errors import UnreadableObjectError
from handlers.events import ObjectRef, part_key, relative_key, version_tag
from handlers.framing import detect_format
from handlers.ingestion_core import ingest, unreadable_entry
from handlers.metrics import Counts, handle_objects
from handlers.parts import Parts
from handlers.records import RecordChecker
from handlers.s3io import LineSpool, copy, open_object, upload

RECORDS_SUFFIX = contract.RECORDS_SUFFIX  # the processing stage's INPUT_SUFFIX, fixed by the chain
QUARANTINE_SUFFIX = contract.QUARANTINE_SUFFIX
RECORDS, QUARANTINE = "records", "quarantine"
OUTPUTS = {  # kind -> the config field of its prefix, its suffix, its content type
    RECORDS: ("records_prefix", RECORDS_SUFFIX, "application/gzip"),
    QUARANTINE: ("quarantine_prefix", QUARANTINE_SUFFIX, "application/x-ndjson"),
}
# Staged parts are copied and deleted this many at a time: each is a request or two of a few milliseconds
# on S3's side, whatever the part's size.
RELEASE_THREADS = 8


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
    """The ingestion core's ``Sink``: valid lines into ``records/`` parts, quarantine entries into
    ``quarantine/`` parts (``handlers.parts``, both bounded by the part size)."""

    def __init__(self, part_bytes: int, ship: Callable[[str, int, LineSpool, int], None]) -> None:
        self.parts = Parts(
            part_bytes, functools.partial(LineSpool, compress=True), functools.partial(ship, RECORDS)
        )
        self.valid = self.parts.valid
        self.valid_lines = self.parts.valid_lines
        self.quarantined = Parts(
            part_bytes, functools.partial(LineSpool, compress=False), functools.partial(ship, QUARANTINE)
        )
        self.quarantine = self.quarantined.valid

    def close(self) -> None:
        self.parts.close()
        self.quarantined.close()


def part_metadata(counts: Counts, lines: list[int], part: int, common: dict[str, str]) -> dict[str, str]:
    """A records/ part's user metadata: its own conservation counts, the raw version, and for a version
    of more than one part its index (and on part 0 the number of parts).

    Part k >= 1 counts its lines as read and valid; part 0 the rest of the version's counts: the lines
    read that no later part holds, its valid lines, and every quarantined and blank line. So each part
    conserves on its own (read = valid + quarantined + blank), and the parts add up to the version's
    counts. A version of one part carries exactly what it did before parts existed."""
    if part:
        own = Counts(records_read=lines[part], records_valid=lines[part])
    else:
        later = sum(lines[1:])
        own = replace(counts, records_read=counts.records_read - later, records_valid=lines[0])
    metadata = own.as_metadata() | common
    if len(lines) > 1:
        metadata[contract.PART_METADATA] = str(part)
        if part == 0:
            metadata[contract.PARTS_METADATA] = str(len(lines))
    return metadata


def staged_key(attempt: str, part: int) -> str:
    """Where ``attempt`` stages records/ part ``part`` (k >= 1) until the whole raw object is read. Short
    whatever the raw key, and an attempt's own, so a concurrent attempt at the same version (a duplicate
    event) never releases or deletes what this one staged."""
    return f"{contract.STAGING_PREFIX}{attempt}/{part:0{contract.PART_DIGITS}d}{RECORDS_SUFFIX}"


def release(s3: Any, bucket: str, staged: list[tuple[str, str]], keep: bool = True) -> None:
    """Each staged part (staging key, records/ key) copied to its records/ key unless ``keep`` is false,
    then deleted; any error raises, after the other parts' requests have ended."""

    def one(pair: tuple[str, str]) -> None:
        if keep:
            copy(s3, bucket, pair[0], pair[1])
        s3.delete_object(Bucket=bucket, Key=pair[0])

    if staged:
        with ThreadPoolExecutor(min(RELEASE_THREADS, len(staged))) as pool:
            list(pool.map(one, staged))


def ingest_object(rt: Runtime, ref: ObjectRef) -> tuple[Counts, list[str]]:
    """Ingest one raw object; returns its counts and the keys written (part 0 after the other parts)."""
    config, s3, bucket = rt.config, rt.s3, rt.config.common.dest_bucket
    rel, tag = relative_key(ref.key, config.input_prefix), version_tag(ref)
    source = {"bucket": ref.bucket, "key": ref.key, "version_id": ref.version_id, "sequencer": tag}
    common = {contract.SOURCE_SEQUENCER_METADATA: tag}
    if ref.version_id:
        common[contract.SOURCE_VERSION_METADATA] = ref.version_id
    written: list[str] = []
    attempt = uuid.uuid4().hex
    staged: list[tuple[str, str]] = []  # (staging key, records/ key) of the records/ parts k >= 1 so far

    def key(kind: str, part: int) -> str:
        prefix, suffix, _ = OUTPUTS[kind]
        return part_key(getattr(config, prefix), rel, tag, part, suffix)

    def ship(kind: str, part: int, spool: LineSpool, lines: int) -> None:
        # Counts this part alone knows; the other parts' lines are not known yet, nor needed.
        if kind == RECORDS:
            metadata = part_metadata(Counts(), [0] * part + [lines], part, common)
        else:  # a quarantine part k >= 1: part 0 carries the object's counts, as before parts
            metadata = common | {contract.PART_METADATA: str(part)}
        # records/ parts wait in staging until the whole object is read (the module docstring).
        target = staged_key(attempt, part) if kind == RECORDS else key(kind, part)
        try:
            upload(s3, spool.finish(), bucket, target, OUTPUTS[kind][2], metadata)
        finally:
            spool.close()
        if kind == RECORDS:
            staged.append((target, key(kind, part)))
        else:
            written.append(target)

    spools = _Spools(config.records_part_bytes, ship)
    try:
        try:
            fmt = detect_format(ref.key, config.input_suffixes)
            counts = ingest(open_object(s3, ref), fmt, rt.checker, config.max_record_bytes, source, spools)
        except UnreadableObjectError as error:
            # Whole or nothing: drop what the readable part produced, keep one entry naming the object.
            # Staged records/ parts are deleted unreleased; quarantine parts already written stay, but
            # part 0 says this version has one part.
            spools.close()
            release(s3, bucket, staged, keep=False)
            staged.clear()
            spools = _Spools(config.records_part_bytes, ship)
            spools.quarantine(unreadable_entry(source, error))
            counts = Counts(records_read=1, records_quarantined=1)
        # Each part 0 last: once it exists, every part it counts does. records/ always (an empty part 0
        # too: this version must take the place of the key's earlier version in replace mode even when it
        # holds nothing); quarantine/ when something was quarantined.
        lines = spools.parts.lines
        spools.parts.finish()
        # The whole object is read: the staged parts go to their records/ keys, and part 0 after them.
        # An attempt that could not finish the release in time must fail before its first copy: parts
        # out without part 0 would take the key's earlier version out of the totals (replace mode),
        # and every retry, at the same pace, would stop at the same place.
        rounds = -(-len(staged) // RELEASE_THREADS)
        needed = rounds * contract.RELEASE_PLANNING_SECONDS
        deadline.check_seconds(deadline.current(), ref.size or 0, needed, "to release its parts")
        release(s3, bucket, staged)
        written += [final for _, final in staged]
        metadata = part_metadata(counts, lines, 0, common)
        upload(s3, spools.parts.first.finish(), bucket, key(RECORDS, 0), OUTPUTS[RECORDS][2], metadata)
        written.append(key(RECORDS, 0))
        if counts.records_quarantined:
            metadata = counts.as_metadata() | common
            if spools.quarantined.finish() > 1:
                metadata |= {
                    contract.PART_METADATA: "0",
                    contract.PARTS_METADATA: str(len(spools.quarantined.lines)),
                }
            upload(
                s3,
                spools.quarantined.first.finish(),
                bucket,
                key(QUARANTINE, 0),
                OUTPUTS[QUARANTINE][2],
                metadata,
            )
            written.append(key(QUARANTINE, 0))
    finally:
        spools.close()
    return replace(counts, objects_written=len(written)), written


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()

    def process(ref: ObjectRef) -> tuple[Counts, dict[str, Any]]:
        counts, written = ingest_object(rt, ref)
        return counts, {"version_id": ref.version_id, "sequencer": ref.sequencer, "written": written}

    return handle_objects(
        rt.config.common.metrics_namespace, contract.Stage.INGESTION, event, context, process
    )
