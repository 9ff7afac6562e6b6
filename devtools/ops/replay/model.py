"""What a replay works on: the target stage, the options, the object versions and the counts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from handlers import contract
from handlers.contract import (
    BucketRole,
    Stage,
)

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


def utc(value: datetime) -> datetime:
    """The datetime in UTC; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
