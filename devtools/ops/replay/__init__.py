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

from devtools.ops.replay.command import (
    lambda_async_invoker,
    main,
    parse_args,
    parse_date,
    parse_rate,
    resolve_target,
)
from devtools.ops.replay.events import object_created_record, s3_event
from devtools.ops.replay.listing import Output, ingestion_outputs, is_versioned, key_prefix, list_items
from devtools.ops.replay.model import (
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE,
    LOADED_STATES,
    REPLAY_TAG_PREFIX,
    SOURCE_ROLE,
    STAGES,
    Invoke,
    InvokeOutcome,
    Item,
    Options,
    ReplayError,
    ReplayTarget,
    Summary,
)
from devtools.ops.replay.planning import Planned, plan, replay_tag, replay_tags
from devtools.ops.replay.sending import (
    Checkpoint,
    Progress,
    RateLimiter,
    effective_limits,
    replay,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RATE",
    "LOADED_STATES",
    "REPLAY_TAG_PREFIX",
    "SOURCE_ROLE",
    "STAGES",
    "Checkpoint",
    "Invoke",
    "InvokeOutcome",
    "Item",
    "Options",
    "Output",
    "Planned",
    "Progress",
    "RateLimiter",
    "ReplayError",
    "ReplayTarget",
    "Summary",
    "effective_limits",
    "ingestion_outputs",
    "is_versioned",
    "key_prefix",
    "lambda_async_invoker",
    "list_items",
    "main",
    "object_created_record",
    "parse_args",
    "parse_date",
    "parse_rate",
    "plan",
    "replay",
    "replay_tag",
    "replay_tags",
    "resolve_target",
    "s3_event",
]
