"""Send objects that already exist through a stage again, as S3 would have announced them.

`python -m devtools replay --stack S --stage ingestion|processing|analytics [--prefix P] [--since DATE]
[--until DATE] [--rate N/s] [--concurrency N] [--dry-run] [--resume] [--quarantined] [--all]`

It lists the stage's source bucket under the stage's trigger (the raw bucket's input prefix and suffixes
for ingestion, `records/*.jsonl.gz` in the processed bucket for processing, `aggregates/*.json` in the
analytics bucket for analytics): for ingestion every version of each key where the raw bucket is
versioned, for the later stages the current version only (their keys are per raw version already; an
older version is an older processing, which must not replace the latest), delete markers never; and it
invokes the stage's function asynchronously (`InvocationType=Event`) with one S3 `ObjectCreated:Put`
notification per object version, shaped as S3 shapes it (key URL-encoded with `+` for a space,
`versionId` where the bucket is versioned, `size`, `eTag`, `sequencer`).

What is skipped as already done (unless `--all`):

* ingestion: a raw version that has outputs already (`records/<rel>/<TAG>.jsonl.gz`, or the quarantine
  entry of an unreadable object), found through the `source-version-id`/`source-sequencer` metadata the
  stage puts on them. `--quarantined` selects exactly the raw versions that have a
  `quarantine/<rel>/<TAG>.jsonl` entry, and sends them although they were ingested (an entry is left
  out when the version's `records/` object says a later ingestion quarantined nothing: ingestion leaves
  the old entry in place then).
* processing: a records object whose `aggregates/<rel>/<TAG>.json` is at least as new and was computed
  with the function's current window, dimensions and metrics (read from its environment).
* analytics: an aggregates object whose report (`reports/<rel>/<TAG>.json`) names the same bytes
  (SHA-256) and says the database loaded it (`loaded`, `duplicate`, `superseded`).

Sequencers of replayed ingestion events (`replay_tags`; README "Replaying history" says what holds):

* a raw version that went through ingestion before keeps the sequencer S3 gave its event, read back from
  its outputs' `source-sequencer` metadata: the replay is a redelivery, so it writes the same keys and
  changes no total;
* a version that never did gets a replay sequencer: `00000` and its LastModified in milliseconds (11 hex
  digits) then a 2-digit rank, which orders the versions of a key as ListObjectVersions does, and
  compares lower than every S3 sequencer seen in practice (they start with `00` and the epoch seconds in
  hex, `0065…` in 2024), so a live event of any later PUT out-ranks it. A version newer than a version
  with a known (real) sequencer is placed right after it (the known sequencer followed by `1` and a
  rank), and before the next known one; when no such sequencer exists (a known newer sequencer leaves no
  room) the version is reported failed, `unorderable`, and nothing is sent for it.

Rate and concurrency: events are sent at most `--rate` per second (token bucket) by at most
`--concurrency` senders, both capped by the function's reserved concurrency when it has one (Lambda runs
no more executions than the reservation; an asynchronous event over it is throttled and retried by
Lambda for up to the stage's maximum event age, and counts in the throttles alarm, so keep `--rate`
below the reservation divided by the typical duration in seconds to leave room for the live pipeline).

Checkpoint: every object version's outcome is appended to a JSON Lines file (`--checkpoint`, default
`.replay/<stack>-<stage>.jsonl`) as soon as it is known; `--resume` skips what it records as sent or
skipped (failed ones are tried again) and refuses a checkpoint written with other options.

The core, `replay`, takes an S3 client, a `ReplayTarget` and an `invoke` callable; `main` wires them to
boto3 (`--endpoint-url` for the local run's moto) and the stack outputs (`pulumi stack output --json`,
or `--outputs FILE`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote_plus

from handlers import contract
from handlers.contract import (
    AGGREGATES_PREFIX,
    AGGREGATES_SUFFIX,
    QUARANTINE_PREFIX,
    QUARANTINE_SUFFIX,
    RECORDS_PREFIX,
    RECORDS_SUFFIX,
    REPORTS_PREFIX,
    BucketRole,
    Env,
    Stage,
)
from handlers.events import SEQUENCER_WIDTH, order_key, relative_key, split_versioned, versioned_key

STAGES = tuple(str(stage) for stage in contract.STAGES)
SOURCE_ROLE = {
    Stage.INGESTION: BucketRole.RAW,
    Stage.PROCESSING: BucketRole.PROCESSED,
    Stage.ANALYTICS: BucketRole.ANALYTICS,
}
LOADED_STATES = frozenset({"loaded", "duplicate", "superseded"})
REPLAY_TAG_PREFIX = "00000"  # below every S3 sequencer observed: those start with 00 + epoch seconds
DEFAULT_RATE = 5.0
DEFAULT_CONCURRENCY = 4


class ReplayError(Exception):
    """A problem `main` reports as one line (exit status 2)."""


@dataclass(frozen=True)
class ReplayTarget:
    """Where a stage's input lives and what the stage is."""

    stage: str  # ingestion | processing | analytics
    function_name: str  # the function invoked
    bucket: str  # the source bucket (the stage's trigger)
    prefix: str  # the trigger's key prefix
    suffixes: tuple[str, ...]  # the trigger's key suffixes ("" = any)
    dest_bucket: str  # where the stage writes (skip checks read it)
    environment: Mapping[str, str] = field(default_factory=dict)  # the function's environment
    region: str = "us-east-1"  # the awsRegion of the events
    reserved_concurrency: int | None = None  # the function's reservation, if any


@dataclass(frozen=True)
class Options:
    """What to replay and how fast."""

    prefix: str = ""  # a key prefix inside the trigger prefix (or a full key prefix)
    since: datetime | None = None  # LastModified >= since
    until: datetime | None = None  # LastModified < until
    rate: float = DEFAULT_RATE  # events per second
    concurrency: int = DEFAULT_CONCURRENCY  # simultaneous senders
    dry_run: bool = False  # list, send nothing
    resume: bool = False  # continue the checkpoint
    quarantined: bool = False  # ingestion: only raw versions with quarantine entries, sent although done
    all: bool = False  # skip nothing as already done

    def fingerprint(self, target: ReplayTarget) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed."""
        return {
            "stage": target.stage,
            "bucket": target.bucket,
            "prefix": self.prefix,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "quarantined": self.quarantined,
            "all": self.all,
        }


@dataclass(frozen=True)
class InvokeOutcome:
    ok: bool
    detail: str = ""


Invoke = Callable[[Mapping[str, Any]], InvokeOutcome]


@dataclass(frozen=True)
class Item:
    """One object version of the source bucket."""

    key: str
    version_id: str | None  # None in an unversioned bucket (or the "null" version)
    size: int
    etag: str
    last_modified: datetime
    tag: str = ""  # the event's sequencer ("" until assigned)
    problem: str = ""  # why it cannot be sent (e.g. unorderable)

    @property
    def ident(self) -> str:
        return f"{self.key}@{self.version_id}" if self.version_id else self.key


@dataclass
class Summary:
    seen: int = 0
    sent: int = 0
    skipped: int = 0  # already loaded / done
    failed: int = 0
    resumed: int = 0  # done in an earlier run (checkpoint)
    would_send: int = 0  # dry run
    failures: list[str] = field(default_factory=list)

    def text(self, dry_run: bool) -> str:
        if dry_run:
            return (
                f"dry run: {self.seen} object(s) seen, {self.would_send} would be sent, "
                f"{self.skipped} skipped as already loaded, {self.failed} failed"
            )
        line = (
            f"{self.seen} object(s) seen, {self.sent} sent, {self.skipped} skipped as already loaded, "
            f"{self.failed} failed"
        )
        return line + (f" ({self.resumed} done in an earlier run)" if self.resumed else "")


# ---------------------------------------------------------------------------------------------------
# Listing


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
                        _utc(v["LastModified"]),
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
                        _utc(o["LastModified"]),
                    )
                ]
    return found


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
                    head = s3.head_object(Bucket=target.dest_bucket, Key=o["Key"])
                    metadata = head.get("Metadata") or {}
                    tag = metadata.get("source-sequencer") or name[: -len(suffix)]
                    count = metadata.get("records-quarantined", "")
                    found.setdefault(rel, []).append(
                        Output(
                            tag.upper(),
                            metadata.get(contract.SOURCE_VERSION_METADATA),
                            _utc(o["LastModified"]),
                            kind,
                            int(count) if count.isdigit() else None,
                        )
                    )
    return found


# ---------------------------------------------------------------------------------------------------
# Sequencers


def replay_tag(last_modified: datetime, rank: int) -> str:
    """`00000` + LastModified in milliseconds (11 hex digits) + a 2-digit rank: below S3's sequencers."""
    millis = int(last_modified.timestamp() * 1000)
    return f"{REPLAY_TAG_PREFIX}{millis:011X}{rank % 256:02X}"


def replay_tags(versions: Sequence[Item], known: Mapping[int, str]) -> list[Item]:
    """Sequencers for `versions` (oldest first): `known[i]` where a version's sequencer is known, else one
    that sorts after the previous version and before the next known one (``order_key`` comparison), or a
    problem (`unorderable`) when there is no room."""
    out: list[Item] = []
    previous = ""
    for index, item in enumerate(versions):
        if index in known:
            tag = known[index]
        else:
            tag = replay_tag(item.last_modified, index)
            if previous and order_key(tag) <= order_key(previous):
                tag = f"{previous}1"  # right after the previous version, whose sequencer is a prefix
            following = [known[i] for i in sorted(known) if i > index]
            if len(tag) > SEQUENCER_WIDTH or (following and order_key(tag) >= order_key(following[0])):
                out.append(
                    Item(
                        **{**asdict(item), "problem": "unorderable: no sequencer fits between its neighbours"}
                    )
                )
                continue
        out.append(Item(**{**asdict(item), "tag": tag}))
        previous = tag
    return out


# ---------------------------------------------------------------------------------------------------
# Plan: which versions to send


@dataclass(frozen=True)
class Planned:
    item: Item
    action: str  # "send", "skip" or "fail"
    detail: str = ""


def plan(s3: Any, target: ReplayTarget, options: Options) -> list[Planned]:
    """Every object version under the trigger, with its sequencer and whether to send it."""
    by_key = list_items(s3, target, options.prefix)
    if target.stage == Stage.INGESTION:
        planned = _plan_ingestion(s3, target, options, by_key)
    else:
        planned = []
        for versions in by_key.values():
            for index, item in enumerate(versions):
                tagged = Item(**{**asdict(item), "tag": replay_tag(item.last_modified, index)})
                planned.append(_plan_later_stage(s3, target, options, tagged))
    return [
        p
        for p in planned
        if (options.since is None or p.item.last_modified >= options.since)
        and (options.until is None or p.item.last_modified < options.until)
    ]


def _plan_ingestion(
    s3: Any, target: ReplayTarget, options: Options, by_key: Mapping[str, list[Item]]
) -> list[Planned]:
    rels = {key: relative_key(key, target.prefix) for key in by_key}
    outputs = ingestion_outputs(s3, target, rels.values())
    planned: list[Planned] = []
    for key, versions in by_key.items():
        done = outputs.get(rels[key], [])
        known: dict[int, str] = {}
        # A quarantine entry is stale when the version's records/ object, written by a later ingestion,
        # counts nothing quarantined (ingestion writes quarantine/ only when it quarantines something).
        clean = {o.tag for o in done if o.kind == "records" and o.quarantined == 0}
        quarantined = {o.tag for o in done if o.kind == "quarantine"} - clean
        for index, item in enumerate(versions):
            if item.version_id is not None:
                tags = {o.tag for o in done if o.version_id == item.version_id}
            else:  # unversioned: the newest output written after this object was, if any
                later = [o for o in done if o.version_id is None and o.last_modified >= item.last_modified]
                tags = {max(later, key=lambda o: order_key(o.tag)).tag} if later else set()
            if tags:
                known[index] = max(tags, key=order_key)
        for index, item in enumerate(replay_tags(versions, known)):
            if item.problem:
                planned.append(Planned(item, "fail", item.problem))
            elif options.quarantined:
                if index in known and item.tag in quarantined:
                    planned.append(Planned(item, "send", "has quarantine entries"))
                # versions without quarantine entries are not part of this replay
            elif index in known and not options.all:
                planned.append(Planned(item, "skip", "already ingested"))
            else:
                planned.append(Planned(item, "send"))
    return planned


def _plan_later_stage(s3: Any, target: ReplayTarget, options: Options, item: Item) -> Planned:
    if options.all:
        return Planned(item, "send")
    suffix = target.suffixes[0] if target.suffixes else ""
    try:
        rel, tag = split_versioned(item.key, target.prefix, suffix)
    except Exception:  # not a key of this pipeline: the stage reports it; send it as S3 would
        return Planned(item, "send")
    env = target.environment
    if target.stage == Stage.PROCESSING:
        out_key = versioned_key(
            env.get(Env.AGGREGATES_PREFIX, AGGREGATES_PREFIX), rel, tag, AGGREGATES_SUFFIX
        )
        document = _get_json(s3, target.dest_bucket, out_key)
        if document is None:
            return Planned(item, "send")
        current = (
            env.get(Env.AGGREGATION_WINDOW) or contract.DEFAULT_WINDOW,
            [
                d
                for d in (env.get(Env.AGGREGATION_DIMENSIONS) or ",".join(contract.DEFAULT_DIMENSIONS)).split(
                    ","
                )
                if d
            ],
            [
                m
                for m in (env.get(Env.AGGREGATION_METRICS) or ",".join(contract.DEFAULT_METRICS)).split(",")
                if m
            ],
        )
        done = (document.get("window"), document.get("dimensions"), document.get("metrics"))
        source_key = (document.get("source") or {}).get("key")
        if done == current and source_key == item.key:
            return Planned(item, "skip", "aggregates computed with the current settings")
        return Planned(item, "send", "aggregates of other settings")
    report_key = versioned_key(env.get(Env.REPORTS_PREFIX, REPORTS_PREFIX), rel, tag, AGGREGATES_SUFFIX)
    report = _get_json(s3, target.dest_bucket, report_key)
    if report is None or report.get("database") not in LOADED_STATES:
        return Planned(item, "send")
    kwargs = {"Bucket": target.bucket, "Key": item.key} | (
        {"VersionId": item.version_id} if item.version_id else {}
    )
    digest = hashlib.sha256(s3.get_object(**kwargs)["Body"].read()).hexdigest()
    if (report.get("source") or {}).get("sha256") == digest:
        return Planned(item, "skip", f"loaded ({report['database']})")
    return Planned(item, "send", "report of other bytes")


def _get_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:  # NoSuchKey, or not JSON: nothing usable is there
        if getattr(exc, "response", {}).get("Error", {}).get("Code") not in (None, "NoSuchKey", "404"):
            raise
        return None
    return document if isinstance(document, dict) else None


# ---------------------------------------------------------------------------------------------------
# Events


def s3_event(target: ReplayTarget, item: Item) -> dict[str, Any]:
    """The notification S3 sends for a PUT of `item` (one record)."""
    obj: dict[str, Any] = {
        "key": quote_plus(item.key, safe="/"),
        "size": item.size,
        "eTag": item.etag,
        "sequencer": item.tag,
    }
    if item.version_id:
        obj["versionId"] = item.version_id
    stamp = item.last_modified.astimezone(UTC)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": target.region,
                "eventTime": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "devtools-replay"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "REPLAY", "x-amz-id-2": "REPLAY"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "devtools-replay",
                    "bucket": {
                        "name": target.bucket,
                        "ownerIdentity": {"principalId": "devtools-replay"},
                        "arn": f"arn:aws:s3:::{target.bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


# ---------------------------------------------------------------------------------------------------
# Rate, checkpoint, progress


class RateLimiter:
    """At most `rate` acquisitions per second on average, with bursts of one (a token bucket of size 1)."""

    def __init__(
        self,
        rate: float,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.interval = 1.0 / rate
        self.now, self.sleep = now, sleep
        self._next = None  # type: float | None
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            current = self.now()
            if self._next is not None and current < self._next:
                self.sleep(self._next - current)
                current = self._next
            self._next = current + self.interval


class Checkpoint:
    """An append-only JSON Lines file: a header with the run's options, then one line per outcome."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._lock = threading.Lock()

    def open(self, fingerprint: Mapping[str, Any], resume: bool) -> set[str]:
        """The idents already done (sent or skipped) when resuming; starts a new file otherwise."""
        if self.path is None:
            return set()
        done: set[str] = set()
        if resume and self.path.exists():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0]) if lines else {}
            if header.get("options") != dict(fingerprint):
                raise ReplayError(
                    f"{self.path} was written by a replay with other options ({header.get('options')}); "
                    "run without --resume to start again"
                )
            for line in lines[1:]:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # the last line of an interrupted write
                if entry.get("outcome") in ("sent", "skipped"):
                    done.add(entry["id"])
            self._file = self.path.open("a", encoding="utf-8")
            return done
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self._file.write(json.dumps({"options": dict(fingerprint)}) + "\n")
        self._file.flush()
        return done

    def record(self, ident: str, outcome: str, tag: str, detail: str = "") -> None:
        if self._file is None:
            return
        with self._lock:
            self._file.write(
                json.dumps({"id": ident, "outcome": outcome, "tag": tag, "detail": detail}) + "\n"
            )
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Progress:
    """A one-line progress bar on a terminal stream (nothing when it is not a terminal, unless forced)."""

    def __init__(self, total: int, stream: TextIO | None, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.done = 0

    def step(self, summary: Summary) -> None:
        self.done += 1
        if self.stream is None:
            return
        filled = self.width * self.done // max(1, self.total)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
            f"sent {summary.sent} skipped {summary.skipped} failed {summary.failed}"
        )
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


# ---------------------------------------------------------------------------------------------------
# The core


def effective_limits(target: ReplayTarget, options: Options) -> tuple[float, int]:
    """(rate, concurrency) capped by the function's reserved concurrency, when it has one."""
    rate, concurrency = options.rate, max(1, options.concurrency)
    if target.reserved_concurrency is not None:
        cap = max(1, target.reserved_concurrency)
        rate, concurrency = min(rate, float(cap)), min(concurrency, cap)
    return rate, concurrency


def replay(
    s3: Any,
    target: ReplayTarget,
    invoke: Invoke,
    options: Options,
    *,
    checkpoint: Checkpoint | None = None,
    progress: TextIO | None = None,
    limiter: RateLimiter | None = None,
    echo: Callable[[str], None] = lambda _: None,
) -> Summary:
    """Send every planned object version once; returns the counts."""
    checkpoint = checkpoint or Checkpoint(None)
    planned = plan(s3, target, options)
    summary = Summary(seen=len(planned))
    rate, concurrency = effective_limits(target, options)
    limiter = limiter or RateLimiter(rate)
    done = set() if options.dry_run else checkpoint.open(options.fingerprint(target), options.resume)
    bar = Progress(len(planned), progress)
    lock = threading.Lock()

    def settle(entry: Planned, outcome: str, detail: str = "") -> None:
        with lock:
            if outcome == "sent":
                summary.sent += 1
            elif outcome == "skipped":
                summary.skipped += 1
            elif outcome == "failed":
                summary.failed += 1
                summary.failures.append(f"{entry.item.ident}: {detail}")
            elif outcome == "would-send":
                summary.would_send += 1
            if not options.dry_run and outcome != "resumed":
                checkpoint.record(entry.item.ident, outcome, entry.item.tag, detail)
            bar.step(summary)

    def send(entry: Planned) -> None:
        try:
            outcome = invoke(s3_event(target, entry.item))
        except Exception as exc:  # one bad send is reported, the rest go on
            outcome = InvokeOutcome(False, f"{type(exc).__name__}: {exc}")
        settle(entry, "sent" if outcome.ok else "failed", outcome.detail)

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            slots = threading.BoundedSemaphore(concurrency)
            for entry in planned:
                echo(
                    f"  {entry.action:<5} {entry.item.ident} sequencer {entry.item.tag or '-'} {entry.detail}"
                )
                if entry.item.ident in done:
                    summary.resumed += 1
                    with lock:
                        bar.step(summary)
                    continue
                if entry.action == "fail":
                    settle(entry, "failed", entry.detail)
                elif entry.action == "skip":
                    settle(entry, "skipped", entry.detail)
                elif options.dry_run:
                    settle(entry, "would-send")
                else:
                    limiter.acquire()
                    slots.acquire()

                    def run(e: Planned = entry) -> None:
                        try:
                            send(e)
                        finally:
                            slots.release()

                    if concurrency == 1:
                        run()
                    else:
                        pool.submit(run)
    finally:
        checkpoint.close()
    return summary


# ---------------------------------------------------------------------------------------------------
# Adapters: boto3, the stack outputs


def lambda_async_invoker(client: Any, function_name: str) -> Invoke:
    """Invoke asynchronously (InvocationType=Event): Lambda answers 202 once the event is queued."""

    def invoke(payload: Mapping[str, Any]) -> InvokeOutcome:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = client.invoke(
                FunctionName=function_name, InvocationType="Event", Payload=json.dumps(payload).encode()
            )
        except (ClientError, BotoCoreError) as exc:
            return InvokeOutcome(False, str(exc))
        status = response.get("StatusCode")
        return InvokeOutcome(status == 202, "" if status == 202 else f"status {status}")

    return invoke


def resolve_target(outputs: Mapping[str, Any], stage: str, lambda_client: Any, region: str) -> ReplayTarget:
    """The stage's function, source bucket and trigger from the stack outputs and the function itself."""
    from handlers import config as handler_config

    stages, buckets = outputs.get("stages"), outputs.get("buckets")
    if not isinstance(stages, Mapping) or not isinstance(buckets, Mapping):
        raise ReplayError(
            "the stack has no `stages`/`buckets` outputs; is it a deployed data-pipeline stack?"
        )
    entry, bucket = stages.get(stage), buckets.get(SOURCE_ROLE[stage])
    if not isinstance(entry, Mapping) or not entry.get("functionName"):
        raise ReplayError(f"stages.{stage}.functionName is missing from the stack outputs")
    if not isinstance(bucket, Mapping) or not bucket.get("name"):
        raise ReplayError(f"buckets.{SOURCE_ROLE[stage]}.name is missing from the stack outputs")
    function_name = str(entry["functionName"])
    configuration = lambda_client.get_function_configuration(FunctionName=function_name)
    environment = dict((configuration.get("Environment") or {}).get("Variables") or {})
    try:
        reserved = lambda_client.get_function_concurrency(FunctionName=function_name).get(
            "ReservedConcurrentExecutions"
        )
    except Exception:  # not allowed to read it: rely on --rate and --concurrency alone
        reserved = None
    if stage == Stage.INGESTION:
        parsed = handler_config.load_ingestion(environment)
        prefix, suffixes = parsed.input_prefix, tuple(parsed.input_suffixes)
    elif stage == Stage.PROCESSING:
        prefix, suffixes = environment.get(Env.RECORDS_PREFIX, RECORDS_PREFIX), (RECORDS_SUFFIX,)
    else:
        prefix, suffixes = AGGREGATES_PREFIX, (AGGREGATES_SUFFIX,)
    return ReplayTarget(
        stage=stage,
        function_name=function_name,
        bucket=str(bucket["name"]),
        prefix=prefix,
        suffixes=suffixes,
        dest_bucket=environment.get(Env.DEST_BUCKET, ""),
        environment=environment,
        region=region,
        reserved_concurrency=reserved,
    )


def parse_date(text: str) -> datetime:
    """An ISO 8601 date or date-time; UTC when it names no zone."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date: {text!r}") from exc
    return _utc(value)


def parse_rate(text: str) -> float:
    """`N` or `N/s`, N > 0."""
    try:
        value = float(text.removesuffix("/s"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (e.g. 10/s)") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError("the rate must be positive")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools replay",
        description="Send a stage's existing input objects through it again, as S3 events.",
    )
    parser.add_argument("--stack", required=True, help="the Pulumi stack, e.g. dev or prod")
    parser.add_argument("--stage", required=True, choices=STAGES)
    parser.add_argument("--prefix", default="", help="key prefix inside the stage's trigger prefix")
    parser.add_argument("--since", type=parse_date, help="only objects last modified at or after (ISO 8601)")
    parser.add_argument("--until", type=parse_date, help="only objects last modified before (ISO 8601)")
    parser.add_argument("--rate", type=parse_rate, default=DEFAULT_RATE, help="events per second (e.g. 10/s)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="simultaneous senders")
    parser.add_argument("--dry-run", action="store_true", help="list what would be sent; send nothing")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint of an interrupted run")
    parser.add_argument(
        "--quarantined", action="store_true", help="ingestion: only raw versions with quarantine entries"
    )
    parser.add_argument("--all", action="store_true", help="skip nothing as already loaded")
    parser.add_argument(
        "--checkpoint", type=Path, help="checkpoint file (default .replay/<stack>-<stage>.jsonl)"
    )
    parser.add_argument("--outputs", type=Path, help="stack outputs as JSON (default: pulumi stack output)")
    parser.add_argument("--region", help="AWS region (default: the profile's)")
    parser.add_argument("--endpoint-url", help="an S3/Lambda endpoint, e.g. the local run's moto server")
    parser.add_argument("--verbose", action="store_true", help="one line per object version")
    args = parser.parse_args(argv)
    if args.quarantined and args.stage != Stage.INGESTION:
        parser.error("--quarantined applies to --stage ingestion")
    return args


def main(
    argv: Sequence[str] | None = None,
    *,
    session: Any = None,
    outputs: Callable[[str], Mapping[str, Any]] | None = None,
) -> int:
    """Exit 0 when nothing failed, 1 when some object versions failed, 2 when the replay could not start."""
    import boto3

    from devtools.ops.redrive import StackOutputError, stack_outputs

    args = parse_args(sys.argv[1:] if argv is None else argv)
    options = Options(
        prefix=args.prefix,
        since=args.since,
        until=args.until,
        rate=args.rate,
        concurrency=args.concurrency,
        dry_run=args.dry_run,
        resume=args.resume,
        quarantined=args.quarantined,
        all=args.all,
    )
    try:
        if args.outputs is not None:
            stack = json.loads(args.outputs.read_text(encoding="utf-8"))
        else:
            stack = (outputs or stack_outputs)(args.stack)
        session = session or boto3.session.Session(region_name=args.region)
        extra = {"endpoint_url": args.endpoint_url} if args.endpoint_url else {}
        s3, lam = session.client("s3", **extra), session.client("lambda", **extra)
        target = resolve_target(stack, args.stage, lam, session.region_name or "us-east-1")
        checkpoint = Checkpoint(args.checkpoint or Path(".replay") / f"{args.stack}-{args.stage}.jsonl")
        rate, concurrency = effective_limits(target, options)
        print(
            f"replay {args.stack}/{args.stage}: s3://{target.bucket}/{key_prefix(target, args.prefix)} -> "
            f"{target.function_name} at most {rate:g}/s, {concurrency} at a time"
            + (
                f" (reserved concurrency {target.reserved_concurrency})"
                if target.reserved_concurrency
                else ""
            )
        )
        summary = replay(
            s3,
            target,
            lambda_async_invoker(lam, target.function_name),
            options,
            checkpoint=checkpoint,
            progress=sys.stderr if sys.stderr.isatty() and not args.verbose else None,
            echo=print if args.verbose or args.dry_run else (lambda _: None),
        )
    except (ReplayError, StackOutputError, OSError, ValueError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    for line in summary.failures:
        print(f"  failed {line}")
    print(summary.text(args.dry_run))
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
