"""Collecting results: what the chain left in the buckets, the failure queues and the database.

Runs once the chain is idle: lists every bucket, reads the reports and the quarantine, drains the failure
queues, checks that every output a later stage consumes was delivered to it (:func:`check_chain`) and reads
the database, into one :class:`RunResult`.
"""

from __future__ import annotations

import gzip
import json
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from devtools.localrun.delivery import Dispatcher
from devtools.localrun.emulator import AwsEmulator
from devtools.localrun.lambda_runtime import Interpreter
from devtools.localrun.provision import Deployment, maybe_stage
from devtools.localrun.results import Failure, RunResult, Upload, hide_password, read_database
from devtools.localrun.spec import PipelineSpec
from handlers import contract
from handlers.contract import Env, Stage
from handlers.errors import EventError
from handlers.events import part_key, split_part
from handlers.metrics import Counts


def check_chain(
    spec: PipelineSpec,
    written: list[tuple[str, str, str]],
    delivered: set[tuple[str, str, str]],
    echo: Callable[[str], None],
) -> list[Failure]:
    """A stage's output that the next stage consumes, but that no notification delivered to it, is a
    failure of the run: the chain stopped there (a prefix or suffix that does not match, say)."""
    consumes = {  # stage -> the stage whose outputs it consumes, and at which keys
        Stage.PROCESSING: (Stage.INGESTION, contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX),
        Stage.ANALYTICS: (Stage.PROCESSING, contract.AGGREGATES_PREFIX, contract.AGGREGATES_SUFFIX),
    }
    # A set: a duplicate delivery or a successful retry writes the same key again.
    outputs = sorted(set(written))
    failures = []
    for consumer, (producer, prefix, suffix) in consumes.items():
        if maybe_stage(spec, consumer) is None:
            continue
        for stage, bucket, key in outputs:
            if stage != producer or not (key.startswith(prefix) and key.endswith(suffix)):
                continue
            if (consumer, bucket, key) not in delivered:
                failures.append(
                    Failure(
                        consumer,
                        key,
                        "LocalRunner.ChainStopped",
                        f"{producer} wrote s3://{bucket}/{key}, and no notification delivered it to "
                        f"{consumer}: check the filters of the {bucket} notification",
                        0,
                        "not invoked",
                    )
                )
                echo(f"  {consumer:<10} NEVER INVOKED for {key} (written by {producer})")
    return failures


def check_parts(
    s3: Any, bucket: str, keys: list[str], prefix: str, echo: Callable[[str], None]
) -> list[Failure]:
    """Every raw version's ``records/`` parts add up (``handlers.parts``): part 0 exists, every part it
    counts exists, and the parts' conservation counts (their user metadata) conserve together. A part past
    the count part 0 names is not a failure: an unreadable end leaves the parts written before it, and
    the analytics stage takes them out."""
    versions: dict[tuple[str, str], dict[int, dict[str, str]]] = {}
    for key in keys:
        try:
            rel, tag, part = split_part(key, prefix, contract.RECORDS_SUFFIX)
        except EventError:
            continue
        metadata = s3.head_object(Bucket=bucket, Key=key).get("Metadata") or {}
        versions.setdefault((rel, tag), {})[part] = metadata
    failures = []
    for (rel, tag), parts in sorted(versions.items()):
        problem = None
        if 0 not in parts:
            problem = f"parts {sorted(parts)} without part 0, which is written last"
        else:
            count = int(parts[0].get(contract.PARTS_METADATA, "1"))
            missing = [index for index in range(count) if index not in parts]
            counted = [
                Counts(**{name: int(m.get(name.replace("_", "-"), 0)) for name in _COUNTED})
                for m in (parts[index] for index in range(count) if index in parts)
            ]
            total = sum(counted, Counts())
            if missing:
                problem = f"part 0 counts {count} parts, and {missing} are not there"
            elif not total.conserved:
                problem = f"the parts' counts do not add up: {total}"
        if problem:
            key = part_key(prefix, rel, tag, 0, contract.RECORDS_SUFFIX)
            failures.append(
                Failure(Stage.INGESTION, key, "LocalRunner.PartsIncomplete", problem, 0, "not sent")
            )
            echo(f"  {Stage.INGESTION:<10} PARTS for {key}: {problem}")
    return failures


_COUNTED = ("records_read", "records_valid", "records_quarantined", "blank_lines")


def collect(
    aws: AwsEmulator,
    deployment: Deployment,
    dispatcher: Dispatcher,
    *,
    uploads: list[Upload],
    elapsed: float,
    interpreter: Interpreter,
    layer_archive: Path,
    database_url: str,
) -> RunResult:
    spec = deployment.spec
    s3 = aws.client("s3")
    objects: dict[str, list[str]] = {}
    for bucket in spec.buckets:
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.name):
            keys += [o["Key"] for o in page.get("Contents", [])]
        objects[bucket.name] = keys

    def written(stage: str, prefix_variable: str, default_prefix: str) -> Iterator[tuple[str, bytes]]:
        """Key and body of every object ``stage`` wrote under the prefix its environment names."""
        found = maybe_stage(spec, stage)
        if found is None:
            return
        bucket = found.environment.get(Env.DEST_BUCKET, "")
        prefix = found.environment.get(prefix_variable, default_prefix)
        for key in objects.get(bucket, []):
            if key.startswith(prefix):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                yield key, gzip.decompress(body) if key.endswith(".gz") else body

    reports = {
        key: json.loads(body)
        for key, body in written(Stage.ANALYTICS, Env.REPORTS_PREFIX, contract.REPORTS_PREFIX)
    }
    quarantine = [
        {"key": key, **_as_object(line)}
        for key, body in written(Stage.INGESTION, Env.QUARANTINE_PREFIX, contract.QUARANTINE_PREFIX)
        for line in body.decode("utf-8").splitlines()
        if line.strip()
    ]
    queues = {}
    sqs = aws.client("sqs")
    for stage in spec.stages:
        url = deployment.failure_queue_url(stage)
        queues[stage.stage] = _drain(sqs, url) if url else []
    dispatcher.failures += check_chain(spec, *dispatcher.snapshot(), dispatcher.echo)
    ingestion = maybe_stage(spec, Stage.INGESTION)
    if ingestion is not None:
        processed = ingestion.environment.get(Env.DEST_BUCKET, "")
        records_prefix = ingestion.environment.get(Env.RECORDS_PREFIX, contract.RECORDS_PREFIX)
        dispatcher.failures += check_parts(
            s3, processed, objects.get(processed, []), records_prefix, dispatcher.echo
        )
    database, database_error = {}, None
    try:
        database = read_database(database_url)
    except Exception as exc:  # an unreachable database is a finding of the run, not a crash of it
        database_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return RunResult(
        stack=spec.stack,
        region=spec.region,
        interpreter={
            "path": str(interpreter.path),
            "runtime": interpreter.runtime,
            "matchesStackRuntime": interpreter.matches_runtime,
            "machine": platform.machine(),
        },
        layer_archive=str(layer_archive),
        database_url=hide_password(database_url),
        uploads=uploads,
        stages=dispatcher.stats,
        failures=list(dispatcher.failures),
        failure_queue_messages=queues,
        objects=objects,
        reports=reports,
        quarantine=quarantine,
        database=database,
        database_error=database_error,
        logs=dispatcher.logs,
        elapsed_seconds=round(elapsed, 3),
    )


def _as_object(line: str) -> dict[str, Any]:
    try:
        doc = json.loads(line)
    except ValueError:
        return {"line": line}
    return doc if isinstance(doc, dict) else {"entry": doc}


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
        )
        batch = got.get("Messages", [])
        if not batch:
            return messages
        messages += [json.loads(m["Body"]) for m in batch]
