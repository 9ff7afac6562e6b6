"""Delivery: moto's S3 events to the stages, with Lambda's asynchronous-invocation semantics.

* an event is invoked; on a function error it is retried up to the declared ``maximum_retry_attempts``
  (without Lambda's one- and two-minute back-off: the local run has no reason to wait), under the same
  request id;
* after the last retry, the Lambda on-failure record (``requestContext``, ``requestPayload``,
  ``responseContext``, ``responsePayload``) is sent to the stage's failure queue *with the stage role's
  credentials*, as Lambda sends destination records with the execution role;
* with ``duplicate_deliveries`` every event is delivered twice (S3 and Lambda promise at-least-once).

The :class:`Dispatcher` counts what each stage did (:class:`StageStats`), keeps its log lines, the failed
events, and which keys each stage wrote and was sent, for :mod:`devtools.localrun.collect`.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from devtools.localrun.emulator import AwsEmulator
from devtools.localrun.errors import LocalRunError
from devtools.localrun.lambda_runtime import TIMED_OUT, InvocationResult
from devtools.localrun.provision import Deployment
from devtools.localrun.results import Failure, StageStats, stage_metrics
from devtools.localrun.spec import PipelineSpec, StageSpec
from handlers.contract import Env
from handlers.errors import EventError
from handlers.events import object_refs


@dataclass(frozen=True)
class Delivery:
    stage: str
    event: dict[str, Any]
    attempt: int = 0  # 0 = first invocation
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def key(self) -> str:
        with contextlib.suppress(KeyError, IndexError, TypeError):
            return unquote_plus(self.event["Records"][0]["s3"]["object"]["key"])
        return "?"


class Dispatcher:
    """Queues the events moto hands over and invokes them on worker threads until the chain is idle.

    It receives events from the emulator's start (:meth:`on_s3_event`) but delivers only once
    :meth:`start` has given it the provisioned :class:`Deployment`.
    """

    def __init__(
        self,
        spec: PipelineSpec,
        *,
        duplicate_deliveries: bool,
        concurrency: int,
        echo: Callable[[str], None],
    ) -> None:
        self.spec = spec
        self.duplicate_deliveries = duplicate_deliveries
        self.concurrency = max(1, concurrency)
        self.echo = echo
        self.stats = {s.stage: StageStats() for s in spec.stages}
        self.logs: dict[str, list[str]] = {s.stage: [] for s in spec.stages}
        self.failures: list[Failure] = []
        self.written: list[tuple[str, str, str]] = []  # (stage, bucket, key) each stage reported writing
        self.delivered_keys: set[tuple[str, str, str]] = set()  # (stage, bucket, key) of events sent
        self._deployment: Deployment | None = None
        self._aws: AwsEmulator | None = None
        self._work: queue.Queue[Delivery | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._pending = 0
        self._idle = threading.Condition()
        self._stats_lock = threading.Lock()

    # lifecycle -------------------------------------------------------------------------------------
    def start(self, deployment: Deployment, aws: AwsEmulator) -> None:
        self._deployment = deployment
        self._aws = aws
        for stage, pool in deployment.pools.items():
            stats = self.stats[stage]
            stats.memory_mb, stats.timeout_seconds = pool.image.memory_mb, pool.image.timeout_seconds
            stats.cpu_factor = pool.image.cpu_factor
        for i in range(self.concurrency):
            worker = threading.Thread(target=self._worker, name=f"lambda-worker-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        for _ in self._workers:
            self._work.put(None)
        for worker in self._workers:
            worker.join(timeout=30)
        self._aws = None

    def wait_idle(self, timeout: float) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout=timeout):
                raise LocalRunError(f"the chain was not idle after {timeout:.0f} s ({self._pending} pending)")

    # the emulator's hand-off -----------------------------------------------------------------------
    def on_s3_event(self, function_arn: str, event: dict[str, Any]) -> None:
        deployment = self._deployment
        stage = deployment.stage_by_function_arn.get(function_arn) if deployment is not None else None
        if stage is None:
            return  # preflight guarantees every notification targets a declared function
        copies = 2 if self.duplicate_deliveries else 1
        refs = []
        with contextlib.suppress(EventError):  # a malformed event still goes to the function, which says so
            refs = list(object_refs(event))
        with self._idle:
            self._pending += copies
        with self._stats_lock:
            self.stats[stage.stage].events += copies
            self.delivered_keys.update((stage.stage, ref.bucket, ref.key) for ref in refs)
        for _ in range(copies):
            self._work.put(Delivery(stage.stage, event))

    # workers ---------------------------------------------------------------------------------------
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

    def _attempt(self, delivery: Delivery) -> bool:
        """Invoke once; returns False when the delivery was re-queued for a retry."""
        assert self._deployment is not None
        stage = self.spec.stage(delivery.stage)
        pool = self._deployment.pools[delivery.stage]
        # Lambda keeps an event's request id across its retries, and names it in the failure record.
        result = pool.invoke(delivery.event, delivery.request_id)
        self._account(stage, delivery, result)
        if result.ok:
            return True
        if delivery.attempt < stage.max_retry_attempts:
            with self._stats_lock:
                self.stats[stage.stage].retries += 1
            self._work.put(
                Delivery(delivery.stage, delivery.event, delivery.attempt + 1, delivery.request_id)
            )
            return False
        self._send_to_failure_queue(stage, delivery, result)
        return True

    def _account(self, stage: StageSpec, delivery: Delivery, result: InvocationResult) -> None:
        assert self._deployment is not None
        emf = [doc for doc in (_emf(line) for line in result.log_lines) if doc is not None]
        written = []
        if result.ok and isinstance(result.payload, dict):
            bucket = self._deployment.map(str(stage.environment.get(Env.DEST_BUCKET, "")))
            for obj in result.payload.get("objects", []):
                written += [(stage.stage, bucket, key) for key in obj.get("written", [])]
        with self._stats_lock:
            self.written += written
            stats = self.stats[stage.stage]
            names = stage_metrics(stage.stage)
            stats.invocations += 1
            stats.cold_starts = self._deployment.pools[stage.stage].cold_starts
            if result.ok:
                stats.succeeded += 1
            else:
                stats.errors += 1
            stats.add_time(result.duration_ms, result.cpu_ms, result.lambda_ms, result.max_memory_mb)
            stats.timed_out += (result.error or {}).get("errorType") == TIMED_OUT
            for doc in emf:
                stats.emf_lines += 1
                for metric in names.values():
                    value = doc.get(metric, 0)
                    if isinstance(value, int | float):
                        stats.metrics[metric] = stats.metrics.get(metric, 0) + int(value)
            self.logs[stage.stage].extend(result.log_lines)
        status = "ok   " if result.ok else "ERROR"
        counts = ""
        if emf:
            doc = emf[-1]
            counts = "  " + " ".join(f"{m}={doc.get(m, 0)}" for m in list(names.values())[:4])
        attempt = f" (retry {delivery.attempt})" if delivery.attempt else ""
        detail = ""
        if not result.ok:
            error = result.error or {}
            message = (str(error.get("errorMessage", "")).splitlines() or [""])[0]
            detail = f"  {error.get('errorType')}: {message}"
        scaled = ""
        if result.lambda_ms is not None:
            scaled = f", {result.lambda_ms:.0f} ms on Lambda at {stage.memory_mb} MB"
        self.echo(
            f"  {stage.stage:<10} {status} {delivery.key}{attempt}{counts}"
            f"  {result.duration_ms:.0f} ms wall, {result.cpu_ms:.0f} ms CPU{scaled}{detail}"
        )

    def _send_to_failure_queue(self, stage: StageSpec, delivery: Delivery, result: InvocationResult) -> None:
        assert self._deployment is not None
        error = result.error or {}
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": delivery.request_id,
                "functionArn": f"{self._deployment.function_arn(stage)}:$LATEST",
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
        queue_url = self._deployment.failure_queue_url(stage)
        if queue_url is None:
            destination = f"not sent: destination {stage.failure_destination_arn} is not a declared queue"
        else:
            assert self._aws is not None
            sqs = self._aws.client("sqs", self._deployment.credentials[stage.stage])
            try:
                sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
                with self._stats_lock:
                    self.stats[stage.stage].failure_queue += 1
            except Exception as exc:  # Lambda drops the record (DestinationDeliveryFailures); we say so
                destination = f"not sent: {exc}"
        self._record_failure(delivery, error.get("errorType", ""), error.get("errorMessage", ""), destination)

    def _record_failure(self, delivery: Delivery, error_type: str, message: str, destination: str) -> None:
        failure = Failure(
            delivery.stage, delivery.key, error_type, message, delivery.attempt + 1, destination
        )
        with self._stats_lock:
            self.failures.append(failure)
        self.echo(
            f"  {delivery.stage:<10} FAILED {delivery.key} "
            f"after {failure.attempts} attempt(s) -> {destination}"
        )

    def snapshot(self) -> tuple[list[tuple[str, str, str]], set[tuple[str, str, str]]]:
        """(what each stage wrote, what each stage was sent), read consistently."""
        with self._stats_lock:
            return list(self.written), set(self.delivered_keys)


def _emf(line: str) -> dict[str, Any] | None:
    if not line.startswith("{") or '"_aws"' not in line:
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "_aws" in doc else None
