"""The analytics stage's view of a raw version of several parts: is every part in, and what are they.

A large raw version reaches analytics as one aggregates document per ``records/`` part
(``aggregates/<rel>/<TAG>.json`` for part 0, ``<TAG>.p00001.json`` and on for the others,
``handlers.events.part_key``), each loaded by its own invocation, in any order. The version's one report
is written by an invocation that, after its own load committed, finds every part in (``gather``):

1. The number of parts N: part 0's document names it (``origin.parts``), and carries it as the
   ``records-parts`` user metadata for a HEAD from the other parts' invocations. No part 0 yet: it is
   not complete (part 0's own invocation checks again). A part at or past N is left over from an
   ingestion part 0's replaced: it completes nothing.
2. Every part 0..N-1 is in: with a database, each has a ledger row (it was loaded, or found a duplicate
   or superseded); without one, each document exists (one listing of the version's keys).
3. Every part's current document is read and checked, and with a database its ledger row for those
   exact bytes gives its state (a part processed again and not yet loaded makes it not complete: its
   load will complete it).

Each invocation checks after its own commit, so whichever commits last sees every part: at least one
invocation writes the report, and two that both do write the same bytes (``handlers.reports``).
Checking costs one HEAD and one ledger query (or listing) per part delivered; reading the N documents
happens only once all are in, one at a time, each merged into the running totals and dropped before the
next is read (``reports.VersionTotals``), so memory follows the version's groups, not its parts. That
reading is held to the invocation's deadline as its own document is (``handlers.deadline``): refused at
once when the listed bytes cannot be gathered at ``GATHER_PLANNING_RATE``, and watched while read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from handlers import contract, deadline, reports
from handlers.documents import AggregatesDocument, groups_from_document, read_groups
from handlers.events import part_key, split_part
from handlers.groups import Groups

PREFIX, SUFFIX = contract.AGGREGATES_PREFIX, contract.AGGREGATES_SUFFIX
Part = tuple[dict[str, Any], AggregatesDocument]  # (source: bucket, key, sha256; document)
_MISSING = ("404", "NoSuchKey", "NotFound")
READ_BYTES = 1 << 20  # a part document is read in pieces of this size, for the watchdog to look in between


def parts_of(metadata: Mapping[str, str]) -> int:
    """How many parts a part 0's ``records-parts`` metadata names (1 without it)."""
    text = metadata.get(contract.PARTS_METADATA, "1")
    return int(text) if text.isascii() and text.isdigit() and int(text) >= 1 else 1


def _count(s3: Any, bucket: str, rel: str, tag: str) -> int | None:
    try:
        head = s3.head_object(Bucket=bucket, Key=part_key(PREFIX, rel, tag, 0, SUFFIX))
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
            return None
        raise
    return parts_of(head.get("Metadata") or {})


def _listed(s3: Any, bucket: str, rel: str, tag: str) -> dict[str, int]:
    """This version's documents in the bucket and their sizes (a tag that merely starts alike is not it)."""
    stem = part_key(PREFIX, rel, tag, 0, SUFFIX)[: -len(SUFFIX)]
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=stem):
        for item in page.get("Contents", []):
            key = item["Key"]
            try:
                if split_part(key, PREFIX, SUFFIX)[1] == tag:
                    found[key] = int(item.get("Size", 0))
            except ValueError:  # EventError: not a key of this pipeline
                continue
    return found


def _ledger(engine: Any, keys: list[str]) -> dict[tuple[str, str], str]:
    """(object key, content SHA-256) → state, for every ledger row of ``keys``."""
    from sqlalchemy import select

    from handlers.schema import ledger

    with engine.connect() as conn:
        rows = conn.execute(
            select(ledger.c.object_key, ledger.c.content_sha256, ledger.c.state).where(
                ledger.c.object_key.in_(keys)
            )
        ).all()
    return {(row.object_key, row.content_sha256): row.state for row in rows}


class _Bodies:
    """One ``read`` over the parts' bodies in turn, so that one watchdog holds the whole gather, its
    decoding and merging included, to the deadline."""

    body: Any = None

    def read(self, n: int) -> bytes:
        return bytes(self.body.read(n))


def gather(
    s3: Any, bucket: str, own: Part, engine: Any | None, top: int, own_groups: Groups | None = None
) -> dict[str, Any] | str:
    """The report of ``own``'s version once every part is in (``reports.VersionTotals``); else why not
    (a phrase for the log). ``own`` is the document this invocation loaded (``own_groups`` its groups,
    if at hand); ``engine`` None without a database; ``top`` the groups the report lists.

    The other parts' documents are read one at a time and merged into the running totals, so memory
    grows with the version's groups, not its parts. Their bytes (the listing's sizes) are held to the
    invocation's deadline like its own document: refused before reading when they cannot be gathered
    at ``GATHER_PLANNING_RATE``, and watched while read (``handlers.deadline``; DeadlineError)."""
    source, document = own
    rel, tag, part = split_part(source["key"], PREFIX, SUFFIX)
    count = document.origin.parts if part == 0 else _count(s3, bucket, rel, tag)
    if count is None:
        return "waiting for part 0"
    if part >= count:
        return f"left over: part 0 names {count} parts"
    keys = [part_key(PREFIX, rel, tag, index, SUFFIX) for index in range(count)]
    states = _ledger(engine, keys) if engine is not None else {}
    listed = _listed(s3, bucket, rel, tag) if engine is None else {}
    have = {key for key, _ in states} if engine is not None else set(listed)
    missing = sum(key not in have for key in keys)
    if missing:
        return f"waiting for {missing} of {count} parts"
    if engine is not None:
        listed = _listed(s3, bucket, rel, tag)
    size = sum(listed.get(key, 0) for index, key in enumerate(keys) if index != part)
    deadline.check_fits(deadline.current(), size, contract.GATHER_PLANNING_RATE)
    bodies = _Bodies()
    read = deadline.watched(bodies.read, size)
    version = reports.VersionTotals()
    found: list[str] = []
    pending = 0
    for index, key in enumerate(keys):
        raw: bytes | None = None
        if index == part:
            part_source = source
        else:
            bodies.body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            raw = b"".join(iter(lambda: read(READ_BYTES), b""))
            part_source = {"bucket": bucket, "key": key, "sha256": hashlib.sha256(raw).hexdigest()}
        state = states.get((key, part_source["sha256"])) if engine is not None else "not_configured"
        if state is None or pending:  # not loaded yet: the rest is only counted, not decoded
            pending += state is None
            continue
        if raw is None:
            part_document = document
            groups = own_groups if own_groups is not None else groups_from_document(document)
        else:
            try:
                part_document, groups = read_groups(raw)
            except ValueError:
                return f"part {index} is not an aggregates document (its own report says why)"
        version.add(part_source, part_document, groups, state)
        found.append(state)
        del raw, part_document, groups  # gone before the next part is read: one part decoded at a time
    if pending:
        return f"waiting for {pending} of {count} parts processed again"
    return version.report(found, top)
