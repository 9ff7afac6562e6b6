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
3. Who gathers, still before any document's body is read. Without a database: the invocation of the
   newest document in that listing (LastModified, then key), and any other unless the version's report
   already holds its own current document (that part's SHA-256, and as many parts): the newest's own
   listing may have missed a document that came in after it, or listed a document's earlier bytes when
   the parts were processed again; so whichever document comes in last finds every part and either
   gathers or finds its bytes reported, and late or repeated deliveries of the others read only the
   report. With a database: each other
   part's document is HEADed, and a part whose current bytes (their SHA-256, ``head_metadata``) have
   no ledger row is processed again and not loaded yet, so the version waits for that load.
4. Every part's current document is read and checked, and with a database its ledger row for those
   exact bytes gives its state (bytes changed since their HEAD, or a document without the SHA-256
   metadata that has no row, keep the version waiting as in 3).

Each invocation checks after its own commit, so whichever commits last sees every part: at least one
invocation writes the report, and two that both do write the same bytes (``handlers.reports``).
Checking costs one HEAD and one ledger query (or listing) per part delivered, and HEADs of the other
parts once the ledger has them all; reading the N documents happens only once all are in, one at a
time, each merged into the running totals and dropped before the next is read
(``reports.VersionTotals``), so memory follows the version's groups, not its parts. That reading is
held to the invocation's deadline as its own document is (``handlers.deadline``): refused at once when
the listed (or HEAD) bytes cannot be gathered at ``GATHER_PLANNING_RATE``, and watched while read.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from handlers import contract, deadline, reports
from handlers.documents import AggregatesDocument, groups_from_document, read_groups
from handlers.events import part_key, split_part
from handlers.groups import Groups
from handlers.parts import parts_of

PREFIX, SUFFIX = contract.AGGREGATES_PREFIX, contract.AGGREGATES_SUFFIX
Part = tuple[dict[str, Any], AggregatesDocument]  # (source: bucket, key, sha256; document)
_MISSING = ("404", "NoSuchKey", "NotFound")
READ_BYTES = 1 << 20  # a part document is read in pieces of this size, for the watchdog to look in between


def _count(s3: Any, bucket: str, rel: str, tag: str) -> int | None:
    try:
        head = s3.head_object(Bucket=bucket, Key=part_key(PREFIX, rel, tag, 0, SUFFIX))
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
            return None
        raise
    return parts_of(head.get("Metadata") or {})


def _listed(s3: Any, bucket: str, first: str) -> dict[str, tuple[int, datetime]]:
    """The documents in the bucket of the version whose part 0 is ``first``: key → (size,
    LastModified); a tag that merely starts alike is not it."""
    tag = split_part(first, PREFIX, SUFFIX)[1]
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=first[: -len(SUFFIX)]):
        for item in page.get("Contents", []):
            key = item["Key"]
            try:
                if split_part(key, PREFIX, SUFFIX)[1] == tag:
                    found[key] = (int(item.get("Size", 0)), item["LastModified"])
            except ValueError:  # EventError: not a key of this pipeline
                continue
    return found


def _reported(s3: Any, bucket: str, key: str, part: int, sha256: str, count: int) -> bool:
    """Whether the version's report at ``key`` was built from part ``part``'s current document (its
    ``sha256``) and ``count`` parts; an existing report alone says neither (the parts may have been
    processed again since, or cut anew)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
            return False
        raise
    try:
        report = msgspec.json.decode(body)
        return bool(report["origin"]["parts"] == count and report["parts"][part]["sha256"] == sha256)
    except (msgspec.DecodeError, KeyError, IndexError, TypeError):  # a rejection, or not a report
        return False


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


def _complete(
    s3: Any, bucket: str, keys: list[str], own: dict[str, Any], engine: Any | None, report: tuple[str, str]
) -> tuple[dict[str, int], dict[tuple[str, str], str]] | str:
    """Whether this invocation gathers the version of ``keys`` (its own document's ``own`` source: key and
    SHA-256), decided before any document's body is read: the other parts' sizes and, with a database,
    the ledger's states; else why not. ``report`` is where the version's report goes (bucket, key)."""
    own_key = own["key"]
    count = len(keys)
    if engine is None:
        listed = _listed(s3, bucket, keys[0])
        missing = sum(key not in listed for key in keys)
        if missing:
            return f"waiting for {missing} of {count} parts"
        # The invocation of the newest document gathers (S3 stamps whole seconds: the key breaks ties).
        # Another one gathers too unless the report holds its current document, in case the newest's
        # listing missed it or saw its earlier bytes: the last document to come in always sees every part.
        newest = max(keys, key=lambda key: (listed[key][1], key))
        if newest != own_key and _reported(s3, *report, keys.index(own_key), own["sha256"], count):
            return f"reported: part {keys.index(newest)}'s document is the newest"
        return {key: listed[key][0] for key in keys if key != own_key}, {}
    states = _ledger(engine, keys)
    have = {key for key, _ in states}
    missing = sum(key not in have for key in keys)
    if missing:
        return f"waiting for {missing} of {count} parts"
    heads = {key: s3.head_object(Bucket=bucket, Key=key) for key in keys if key != own_key}
    pending = sum(
        (key, sha) not in states
        for key, head in heads.items()
        if (sha := (head.get("Metadata") or {}).get(contract.DOCUMENT_SHA256_METADATA)) is not None
    )
    if pending:
        return f"waiting for {pending} of {count} parts processed again"
    return {key: int(head["ContentLength"]) for key, head in heads.items()}, states


def gather(
    s3: Any,
    bucket: str,
    own: Part,
    engine: Any | None,
    top: int,
    own_groups: Groups | None = None,
    *,
    report: tuple[str, str],
) -> dict[str, Any] | str:
    """The report of ``own``'s version once every part is in and this invocation gathers it
    (``reports.VersionTotals``); else why not (a phrase for the log). ``own`` is the document this
    invocation loaded (``own_groups`` its groups, if at hand); ``engine`` None without a database;
    ``top`` the groups the report lists; ``report`` the report's (bucket, key).

    The other parts' documents are read one at a time and merged into the running totals, so memory
    grows with the version's groups, not its parts. Their bytes (listed or HEAD sizes) are held to the
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
    decided = _complete(s3, bucket, keys, source, engine, report)
    if isinstance(decided, str):
        return decided
    sizes, states = decided
    deadline.check_fits(deadline.current(), sum(sizes.values()), contract.GATHER_PLANNING_RATE)
    bodies = _Bodies()
    read = deadline.watched(bodies.read, sum(sizes.values()))
    version = reports.VersionTotals()
    found: list[str] = []
    for index, key in enumerate(keys):
        if index == part:
            part_source, raw = source, None
        else:
            bodies.body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            raw = b"".join(iter(lambda: read(READ_BYTES), b""))
            part_source = {"bucket": bucket, "key": key, "sha256": hashlib.sha256(raw).hexdigest()}
        state = states.get((key, part_source["sha256"])) if engine is not None else "not_configured"
        if state is None:  # processed again since its HEAD, or before documents named their SHA-256
            return f"waiting for part {index}, processed again"
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
    return version.report(found, top)
