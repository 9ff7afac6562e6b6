"""The local run: the declared pipeline on moto, each handler in its own Lambda-like process.

``LocalPipeline(spec, layer_zip=...).run(files) -> RunResult`` provisions what the stack declares (buckets
with their notification configurations, failure queues, the database secret, one IAM role per stage with
exactly its declared inline policies), uploads the files under the raw bucket's input prefix and delivers
moto's S3 events to the stages with Lambda's asynchronous-invocation semantics until the chain is idle:

* an event is invoked; on a function error it is retried up to the declared ``maximum_retry_attempts``
  (without Lambda's one- and two-minute back-off: the local run has no reason to wait);
* after the last retry, the Lambda on-failure record (``requestContext``, ``requestPayload``,
  ``responseContext``, ``responsePayload``) is sent to the stage's failure queue *with the stage role's
  credentials*, as Lambda sends destination records with the execution role;
* with ``duplicate_deliveries`` every event is delivered twice (S3 and Lambda promise at-least-once).

Before anything runs, :func:`devtools.preflight.preflight` makes the checks AWS makes at deploy time.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import platform
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

from components import chain
from components.migration import MIGRATE_EVENT
from devtools.emulator import AwsEmulator, Credentials
from devtools.lambda_runtime import (
    ContainerPool,
    FunctionImage,
    Interpreter,
    InvocationResult,
    boto3_runtime_dir,
    precompile,
    unpack_cached,
    unpack_zip,
)
from devtools.preflight import preflight
from devtools.results import METRICS, Failure, RunResult, StageStats, Upload, hide_password, read_database
from devtools.spec import BucketSpec, PipelineSpec, StageSpec
from handlers.errors import EventError
from handlers.events import object_refs


class LocalRunError(RuntimeError):
    """The declared stack cannot run (what AWS would refuse at deploy time, or the local set-up failed)."""


# ------------------------------------------------------------------------------------------------
# the run


@dataclass(frozen=True)
class _Delivery:
    stage: str
    event: dict[str, Any]
    attempt: int = 0  # 0 = first invocation
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def key(self) -> str:
        with contextlib.suppress(KeyError, IndexError, TypeError):
            return unquote_plus(self.event["Records"][0]["s3"]["object"]["key"])
        return "?"


Printer = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class LocalPipeline:
    """Runs a declared pipeline (:class:`PipelineSpec`) on moto; one :meth:`run` per instance."""

    def __init__(
        self,
        spec: PipelineSpec,
        *,
        layer_archive: Path,
        interpreter: Interpreter,
        work_dir: Path,
        database_url: str,
        cache_dir: Path | None = None,
        duplicate_deliveries: bool = False,
        concurrency: int = 2,
        idle_timeout: float = 300.0,
        echo: Printer = _quiet,
    ) -> None:
        self.spec = spec
        self.layer_archive = layer_archive
        self.interpreter = interpreter
        self.work_dir = work_dir
        self.database_url = database_url
        self.cache_dir = cache_dir or work_dir.parent / "cache"
        self.duplicate_deliveries = duplicate_deliveries
        self.concurrency = max(1, concurrency)
        self.idle_timeout = idle_timeout
        self.echo = echo
        self._arn_map: dict[str, str] = {}
        self._stage_by_moto_arn: dict[str, StageSpec] = {}
        self._queue_urls: dict[str, str] = {}
        self._role_credentials: dict[str, Credentials] = {}
        self._pools: dict[str, ContainerPool] = {}
        self._stats = {s.stage: StageStats() for s in spec.stages}
        self._logs: dict[str, list[str]] = {s.stage: [] for s in spec.stages}
        self._failures: list[Failure] = []
        self._written: list[tuple[str, str, str]] = []  # (stage, bucket, key) each stage reported writing
        self._delivered_keys: set[tuple[str, str, str]] = set()  # (stage, bucket, key) of events sent
        self._work: queue.Queue[_Delivery | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._stats_lock = threading.Lock()
        self._aws: AwsEmulator | None = None

    # public ----------------------------------------------------------------------------------------
    def run(self, files: Sequence[Path]) -> RunResult:
        problems = preflight(self.spec)
        if problems:
            raise LocalRunError("the declared stack would not deploy:\n  - " + "\n  - ".join(problems))
        uploads = collect_uploads(files)
        started = time.monotonic()
        workers: list[threading.Thread] = []
        with AwsEmulator(self.spec.region, self._on_s3_event) as aws:
            self._aws = aws
            try:
                self._provision(aws)
                self._prepare_images(aws)
                self._migrate()
                for i in range(self.concurrency):
                    worker = threading.Thread(target=self._worker, name=f"lambda-worker-{i}", daemon=True)
                    worker.start()
                    workers.append(worker)
                uploaded = self._upload(aws, uploads)
                self._wait_idle()
                result = self._collect(aws, uploaded, time.monotonic() - started)
            finally:
                for _ in workers:
                    self._work.put(None)
                for worker in workers:
                    worker.join(timeout=30)
                for pool in self._pools.values():
                    pool.close()
                self._aws = None
        return result

    # provisioning ----------------------------------------------------------------------------------
    def _moto_function_arn(self, stage: StageSpec) -> str:
        return f"arn:aws:lambda:{self.spec.region}:{self.spec.account_id}:function:{stage.function_name}"

    def _map(self, value: str) -> str:
        for declared in sorted(self._arn_map, key=len, reverse=True):
            value = value.replace(declared, self._arn_map[declared])
        return value

    def _provision(self, aws: AwsEmulator) -> None:
        spec = self.spec
        s3, sqs, iam = aws.client("s3"), aws.client("sqs"), aws.client("iam")
        for bucket in spec.buckets:
            kwargs: dict[str, Any] = {"Bucket": bucket.name}
            if spec.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": spec.region}
            s3.create_bucket(**kwargs)
            if bucket.versioned:
                s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
            self._arn_map[bucket.arn] = f"arn:aws:s3:::{bucket.name}"
        for q in spec.queues:
            url = sqs.create_queue(QueueName=q.name, Attributes=dict(q.attributes))["QueueUrl"]
            moto_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self._arn_map[q.arn] = moto_arn
            self._queue_urls[moto_arn] = url
        if spec.secrets:
            secretsmanager = aws.client("secretsmanager")
            for secret in spec.secrets:
                created = secretsmanager.create_secret(
                    Name=secret.name, **({"SecretString": secret.value} if secret.value is not None else {})
                )
                self._arn_map[secret.arn] = created["ARN"]
        topics = {
            value
            for stage in spec.stages
            for value in stage.environment.values()
            if value.startswith("arn:aws:sns:")
        }
        if topics:
            # Topics the stack references but does not own (e.g. summaryTopicArn): a local stand-in each.
            sns = aws.client("sns")
            for topic in sorted(topics):
                self._arn_map[topic] = sns.create_topic(Name=topic.rsplit(":", 1)[-1])["TopicArn"]
        for stage in spec.stages:
            self._arn_map[stage.function_arn] = self._moto_function_arn(stage)
            self._arn_map[stage.role_arn] = f"arn:aws:iam::{aws.account_id}:role/{stage.role_name}"
        for stage in spec.stages:
            # The declared trust policy names lambda.amazonaws.com (checked in preflight); here the local
            # Lambda service user stands in for that principal, since moto cannot be the Lambda service.
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": aws.lambda_service_principal()},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
            iam.create_role(RoleName=stage.role_name, AssumeRolePolicyDocument=json.dumps(trust))
            for policy in stage.policies:
                iam.put_role_policy(
                    RoleName=stage.role_name,
                    PolicyName=policy.name,
                    PolicyDocument=self._map(json.dumps(policy.document)),
                )
            self._stage_by_moto_arn[self._moto_function_arn(stage)] = stage
        for bucket in spec.buckets:
            if bucket.notifications:
                self._put_notifications(s3, bucket)
        for stage in spec.stages:
            self._role_credentials[stage.stage] = aws.assume_role(
                self._arn_map[stage.role_arn], f"{stage.function_name}"[:64]
            )

    def _put_notifications(self, s3: Any, bucket: BucketSpec) -> None:
        configs = []
        for i, n in enumerate(bucket.notifications):
            rules = [{"Name": "prefix", "Value": n.prefix}] if n.prefix else []
            rules += [{"Name": "suffix", "Value": n.suffix}] if n.suffix else []
            config: dict[str, Any] = {
                "Id": n.id or f"{bucket.resource_name}-{i}",
                "LambdaFunctionArn": self._map(n.function_arn),
                "Events": list(n.events),
            }
            if rules:
                config["Filter"] = {"Key": {"FilterRules": rules}}
            configs.append(config)
        s3.put_bucket_notification_configuration(
            Bucket=bucket.name, NotificationConfiguration={"LambdaFunctionConfigurations": configs}
        )

    def _prepare_images(self, aws: AwsEmulator) -> None:
        root = self.work_dir / "functions"
        runtime_dir = boto3_runtime_dir(self.cache_dir / "runtime")
        precompile(runtime_dir, self.interpreter)
        opt = unpack_cached(self.layer_archive, self.cache_dir / "layers")
        for stage in self.spec.stages:
            if stage.layer_archives and self.layer_archive.resolve() not in {
                p.resolve() for p in stage.layer_archives
            }:
                raise LocalRunError(
                    f"stage {stage.stage} declares the layer {', '.join(map(str, stage.layer_archives))}, "
                    f"but the run was given {self.layer_archive} (evaluate the stack with layer.archive = it)"
                )
            task = unpack_zip(stage.code_archive, root / stage.stage / "task")
            environment = {k: self._map(str(v)) for k, v in stage.environment.items()}
            environment.update(
                {
                    "AWS_REGION": self.spec.region,
                    "AWS_DEFAULT_REGION": self.spec.region,
                    "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.interpreter.runtime}",
                    "AWS_LAMBDA_FUNCTION_NAME": stage.function_name,
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(stage.memory_mb),
                    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                    "AWS_LAMBDA_LOG_GROUP_NAME": stage.log_group or f"/aws/lambda/{stage.function_name}",
                    "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{stage.stage}",
                    "LAMBDA_TASK_ROOT": str(task),
                    "LAMBDA_RUNTIME_DIR": str(runtime_dir),
                    "_HANDLER": stage.handler,
                    "TZ": ":UTC",
                    "LANG": "en_US.UTF-8",
                    "PATH": "/usr/local/bin:/usr/bin:/bin",
                    "LD_LIBRARY_PATH": f"{opt}/lib",
                    "AWS_ENDPOINT_URL": aws.endpoint,
                    # No host AWS configuration may leak in: the role's credentials are the only ones.
                    "AWS_CONFIG_FILE": os.devnull,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                    "AWS_EC2_METADATA_DISABLED": "true",
                    **self._role_credentials[stage.stage].as_env(),
                }
            )
            image = FunctionImage(
                name=stage.function_name,
                arn=self._moto_function_arn(stage),
                handler=stage.handler,
                task_root=task,
                opt_dir=opt,
                runtime_dir=runtime_dir,
                interpreter=self.interpreter,
                environment=environment,
                timeout_seconds=stage.timeout_seconds,
                memory_mb=stage.memory_mb,
            )
            self._pools[stage.stage] = ContainerPool(image)

    def _migrate(self) -> None:
        """What `pulumi up` does before the analytics bucket notifies anyone (components/migration.py):
        one synchronous invocation of the analytics function that upgrades its database."""
        stage = _maybe_stage(self.spec, "analytics")
        if stage is None or "DATABASE_SECRET_ARN" not in stage.environment:
            return
        result = self._pools[stage.stage].invoke(MIGRATE_EVENT)
        if not result.ok:
            error = result.error or {}
            message = (str(error.get("errorMessage", "")).splitlines() or [""])[0]
            raise LocalRunError(f"the schema migration failed: {error.get('errorType')}: {message}")
        revision = result.payload.get("revision") if isinstance(result.payload, dict) else None
        self.echo(f"migrated the analytics database to revision {revision}")

    # uploads -------------------------------------------------------------------------------------------
    def _upload(self, aws: AwsEmulator, uploads: list[tuple[Path, str]]) -> list[Upload]:
        s3 = aws.client("s3")
        bucket, prefix = self.spec.input_bucket, self.spec.input_prefix
        raw = self.spec.bucket(bucket)
        done = []
        for path, rel in uploads:
            key = f"{prefix}{rel}"
            s3.upload_file(str(path), bucket, key)
            # From the declared filters: counting deliveries would also count later stages' events.
            triggered = any(key.startswith(n.prefix) and key.endswith(n.suffix) for n in raw.notifications)
            done.append(Upload(key=key, size=path.stat().st_size, triggered=triggered))
            self.echo(f"uploaded s3://{bucket}/{key}" + ("" if triggered else "  (matches no notification)"))
        return done

    # event delivery ----------------------------------------------------------------------------------
    def _on_s3_event(self, function_arn: str, event: dict[str, Any]) -> None:
        stage = self._stage_by_moto_arn.get(function_arn)
        if stage is None:
            return  # preflight guarantees every notification targets a declared function
        copies = 2 if self.duplicate_deliveries else 1
        refs = []
        with contextlib.suppress(EventError):  # a malformed event still goes to the function, which says so
            refs = list(object_refs(event))
        with self._idle:
            self._pending += copies
        with self._stats_lock:
            self._stats[stage.stage].events += copies
            self._delivered_keys.update((stage.stage, ref.bucket, ref.key) for ref in refs)
        for _ in range(copies):
            self._work.put(_Delivery(stage.stage, event))

    def _worker(self) -> None:
        while True:
            delivery = self._work.get()
            if delivery is None:
                return
            finished = True
            try:
                finished = self._attempt(delivery)
            except Exception as exc:  # a bug of the runner must not hang the run: report it as a failure
                self._record_failure(delivery, "LocalRunner.InternalError", repr(exc), "not sent")
            finally:
                if finished:
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()

    def _attempt(self, delivery: _Delivery) -> bool:
        """Invoke once; returns False when the delivery was re-queued for a retry."""
        stage = self.spec.stage(delivery.stage)
        pool = self._pools[delivery.stage]
        # Lambda keeps an event's request id across its retries, and names it in the failure record.
        result = pool.invoke(delivery.event, delivery.request_id)
        self._account(stage, delivery, result)
        if result.ok:
            return True
        if delivery.attempt < stage.max_retry_attempts:
            with self._stats_lock:
                self._stats[stage.stage].retries += 1
            self._work.put(
                _Delivery(delivery.stage, delivery.event, delivery.attempt + 1, delivery.request_id)
            )
            return False
        self._send_to_failure_queue(stage, delivery, result)
        return True

    def _account(self, stage: StageSpec, delivery: _Delivery, result: InvocationResult) -> None:
        emf = [doc for doc in (_emf(line) for line in result.log_lines) if doc is not None]
        written = []
        if result.ok and isinstance(result.payload, dict):
            bucket = self._map(str(stage.environment.get("DEST_BUCKET", "")))
            for obj in result.payload.get("objects", []):
                written += [(stage.stage, bucket, key) for key in obj.get("written", [])]
        with self._stats_lock:
            self._written += written
            stats = self._stats[stage.stage]
            stats.invocations += 1
            stats.cold_starts = self._pools[stage.stage].cold_starts
            if result.ok:
                stats.succeeded += 1
            else:
                stats.errors += 1
            for doc in emf:
                stats.emf_lines += 1
                for metric in METRICS:
                    value = doc.get(metric, 0)
                    if isinstance(value, int | float):
                        stats.metrics[metric] += int(value)
            self._logs[stage.stage].extend(result.log_lines)
        status = "ok   " if result.ok else "ERROR"
        counts = ""
        if emf:
            doc = emf[-1]
            counts = "  " + " ".join(f"{m}={doc.get(m, 0)}" for m in METRICS[:4])
        attempt = f" (retry {delivery.attempt})" if delivery.attempt else ""
        detail = ""
        if not result.ok:
            error = result.error or {}
            message = (str(error.get("errorMessage", "")).splitlines() or [""])[0]
            detail = f"  {error.get('errorType')}: {message}"
        self.echo(
            f"  {stage.stage:<10} {status} {delivery.key}{attempt}{counts}"
            f"  {result.duration_ms:.0f} ms{detail}"
        )

    def _send_to_failure_queue(self, stage: StageSpec, delivery: _Delivery, result: InvocationResult) -> None:
        error = result.error or {}
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": delivery.request_id,
                "functionArn": f"{self._moto_function_arn(stage)}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": delivery.attempt + 1,
            },
            "requestPayload": delivery.event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {
                "errorMessage": error.get("errorMessage", ""),
                "errorType": error.get("errorType", ""),
                "stackTrace": error.get("stackTrace", []),
            },
        }
        destination = "failure-queue"
        queue_url = self._queue_urls.get(self._map(stage.failure_destination_arn))
        if queue_url is None:
            destination = f"not sent: destination {stage.failure_destination_arn} is not a declared queue"
        else:
            assert self._aws is not None
            sqs = self._aws.client("sqs", self._role_credentials[stage.stage])
            try:
                sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
                with self._stats_lock:
                    self._stats[stage.stage].failure_queue += 1
            except Exception as exc:  # Lambda drops the record (DestinationDeliveryFailures); we say so
                destination = f"not sent: {exc}"
        self._record_failure(delivery, error.get("errorType", ""), error.get("errorMessage", ""), destination)

    def _record_failure(self, delivery: _Delivery, error_type: str, message: str, destination: str) -> None:
        failure = Failure(
            delivery.stage, delivery.key, error_type, message, delivery.attempt + 1, destination
        )
        with self._stats_lock:
            self._failures.append(failure)
        self.echo(
            f"  {delivery.stage:<10} FAILED {delivery.key} "
            f"after {failure.attempts} attempt(s) -> {destination}"
        )

    def _check_chain(self) -> None:
        """A stage's output that the next stage consumes, but that no notification delivered to it, is a
        failure of the run: the chain stopped there (a prefix or suffix that does not match, say)."""
        consumes = {  # stage -> the stage whose outputs it consumes, and at which keys
            "processing": ("ingestion", chain.RECORDS_PREFIX, chain.RECORDS_SUFFIX),
            "analytics": ("processing", chain.AGGREGATES_PREFIX, chain.AGGREGATES_SUFFIX),
        }
        with self._stats_lock:
            # A set: a duplicate delivery or a successful retry writes the same key again.
            written, delivered = sorted(set(self._written)), set(self._delivered_keys)
        for consumer, (producer, prefix, suffix) in consumes.items():
            if _maybe_stage(self.spec, consumer) is None:
                continue
            for stage, bucket, key in written:
                if stage != producer or not (key.startswith(prefix) and key.endswith(suffix)):
                    continue
                if (consumer, bucket, key) not in delivered:
                    self._failures.append(
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
                    self.echo(f"  {consumer:<10} NEVER INVOKED for {key} (written by {producer})")

    def _wait_idle(self) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout=self.idle_timeout):
                raise LocalRunError(
                    f"the chain was not idle after {self.idle_timeout:.0f} s ({self._pending} pending)"
                )

    # results -------------------------------------------------------------------------------------------
    def _collect(self, aws: AwsEmulator, uploads: list[Upload], elapsed: float) -> RunResult:
        s3 = aws.client("s3")
        objects: dict[str, list[str]] = {}
        for bucket in self.spec.buckets:
            keys: list[str] = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.name):
                keys += [o["Key"] for o in page.get("Contents", [])]
            objects[bucket.name] = keys

        def written(stage: str, prefix_variable: str, default_prefix: str) -> Iterator[tuple[str, bytes]]:
            """Key and body of every object ``stage`` wrote under the prefix its environment names."""
            spec = _maybe_stage(self.spec, stage)
            if spec is None:
                return
            bucket = spec.environment.get("DEST_BUCKET", "")
            prefix = spec.environment.get(prefix_variable, default_prefix)
            for key in objects.get(bucket, []):
                if key.startswith(prefix):
                    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    yield key, gzip.decompress(body) if key.endswith(".gz") else body

        reports = {key: json.loads(body) for key, body in written("analytics", "REPORTS_PREFIX", "reports/")}
        quarantine = [
            {"key": key, **_as_object(line)}
            for key, body in written("ingestion", "QUARANTINE_PREFIX", "quarantine/")
            for line in body.decode("utf-8").splitlines()
            if line.strip()
        ]
        queues = {}
        sqs = aws.client("sqs")
        for stage in self.spec.stages:
            url = self._queue_urls.get(self._map(stage.failure_destination_arn))
            queues[stage.stage] = _drain(sqs, url) if url else []
        self._check_chain()
        database, database_error = {}, None
        try:
            database = read_database(self.database_url)
        except Exception as exc:  # an unreachable database is a finding of the run, not a crash of it
            database_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return RunResult(
            stack=self.spec.stack,
            region=self.spec.region,
            interpreter={
                "path": str(self.interpreter.path),
                "runtime": self.interpreter.runtime,
                "matchesStackRuntime": self.interpreter.matches_runtime,
                "machine": platform.machine(),
            },
            layer_archive=str(self.layer_archive),
            database_url=hide_password(self.database_url),
            uploads=uploads,
            stages=self._stats,
            failures=list(self._failures),
            failure_queue_messages=queues,
            objects=objects,
            reports=reports,
            quarantine=quarantine,
            database=database,
            database_error=database_error,
            logs=self._logs,
            elapsed_seconds=round(elapsed, 3),
        )


# ------------------------------------------------------------------------------------------------
# helpers


def _maybe_stage(spec: PipelineSpec, name: str) -> StageSpec | None:
    try:
        return spec.stage(name)
    except KeyError:
        return None


def _emf(line: str) -> dict[str, Any] | None:
    if not line.startswith("{") or '"_aws"' not in line:
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "_aws" in doc else None


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


def collect_uploads(files: Sequence[Path]) -> list[tuple[Path, str]]:
    """(path, key relative to the input prefix): a directory's files keep their path below it."""
    found: list[tuple[Path, str]] = []
    for given in files:
        path = Path(given)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                found.append((child, PurePosixPath(*rel.parts).as_posix()))
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise LocalRunError(f"{path}: no such file or directory")
    if not found:
        raise LocalRunError("nothing to upload: the given paths hold no files")
    return found
