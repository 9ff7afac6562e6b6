"""Re-send the events held in a stage's failure queue to its function, once the cause is fixed.

`python -m devtools redrive --stack STACK --stage NAME [--dry-run]`

A stage's failure queue holds Lambda's asynchronous invocation records (the on-failure destination):
JSON with the original event under `requestPayload`. `redrive` takes the messages one at a time,
invokes the function synchronously with that payload, and deletes a message only after its invocation
succeeded. A message that fails again, or that is not an invocation record, stays in the queue and is
made visible again at the end of the run, so the queue's alarm keeps telling the truth.

Each message's line names the objects of its event (key, and version when the bucket is versioned),
the error of its last attempt, its age and how many times it has been received. Every receive counts,
a dry run's included: once a message has been received three times SQS leaves it out of
`ApproximateAgeOfOldestMessage`, so the `failures-age` alarm can clear while the event still waits
(`failures-visible` still counts it). The age printed here is the one to trust; SQS deletes the message
14 days after it was sent.

The core, `redrive`, is given an SQS client and an `invoke` callable; `main` wires them to boto3 and to
the stack's outputs (`pulumi stack output --json`), as docs/architecture.md fixes them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from handlers.contract import STAGES as CHAIN_STAGES
from handlers.errors import EventError
from handlers.events import object_refs

STAGES = tuple(str(stage) for stage in CHAIN_STAGES)
# Long enough for the slowest synchronous invocation (Lambda's 900 s ceiling) plus the call itself:
# a message must stay hidden while its event is being re-run.
DEFAULT_VISIBILITY_SECONDS = 960
# boto3 gives up reading after 60 s and then retries, which would run a slow event twice while the
# first run continues: wait as long as Lambda may run (900 s), and never retry an invocation.
LAMBDA_READ_TIMEOUT_SECONDS = 910


class RedriveError(Exception):
    """Base of the errors `main` reports as a one-line message."""


class TargetError(RedriveError):
    """The stack outputs do not name the stage's function or failure queue."""


class StackOutputError(RedriveError):
    """`pulumi stack output` failed or printed something that is not JSON."""


class SqsClient(Protocol):
    def receive_message(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def delete_message(self, **kwargs: Any) -> Any: ...
    def change_message_visibility(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class InvokeOutcome:
    """What happened when the function was invoked again with one event."""

    ok: bool  # True only when the function returned without a function error
    detail: str = ""  # the error, for the report


Invoke = Callable[[Mapping[str, Any]], InvokeOutcome]


@dataclass(frozen=True)
class MessageReport:
    """One failure-queue message and what the run did with it."""

    message_id: str  # the SQS message id
    request_id: str  # the failed invocation's request id, from the record's requestContext
    action: str  # "redriven", "failed", "unreadable" or "would-redrive" (dry run)
    detail: str = ""  # why it failed again or was not readable
    objects: tuple[str, ...] = ()  # the event's objects, "bucket/key" or "bucket/key@version"
    error: str = ""  # the last attempt's "errorType: errorMessage" from the invocation record
    age_seconds: int | None = None  # since the message was sent (SentTimestamp)
    receives: int | None = None  # ApproximateReceiveCount, this run's receive included

    def line(self) -> str:
        age = (
            "-"
            if self.age_seconds is None
            else f"{self.age_seconds // 3600}h{self.age_seconds % 3600 // 60:02d}m"
        )
        parts = [
            f"  {self.action:<13} {self.message_id} request {self.request_id or '-'}",
            f"age {age} received {self.receives if self.receives is not None else '-'}x",
            *self.objects,
        ]
        if self.error:
            parts.append(f"was: {self.error}")
        if self.detail:
            parts.append(f"now: {self.detail}")
        return "  ".join(parts)


@dataclass(frozen=True)
class RedriveResult:
    """The outcome of one pass over the queue."""

    dry_run: bool  # nothing was invoked or deleted
    messages: tuple[MessageReport, ...] = field(default_factory=tuple)  # every message seen, in order

    def count(self, action: str) -> int:
        return sum(1 for m in self.messages if m.action == action)

    @property
    def redriven(self) -> int:
        return self.count("redriven")

    @property
    def kept(self) -> int:
        """Messages left in the queue because they failed again or could not be read."""
        return self.count("failed") + self.count("unreadable")

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"dry run: {self.count('would-redrive')} event(s) would be re-sent, "
                f"{self.count('unreadable')} message(s) are not invocation records"
            )
        return (
            f"{self.redriven} event(s) re-sent and deleted, {self.count('failed')} failed again, "
            f"{self.count('unreadable')} not invocation records; {self.kept} left in the queue"
        )


@dataclass(frozen=True)
class FailedInvocation:
    """What an on-failure destination record says about the invocation that failed."""

    payload: Mapping[str, Any]  # the original event
    request_id: str  # its request id ("" when the record lacks one)
    objects: tuple[str, ...]  # the S3 objects its event names
    error: str  # "errorType: errorMessage" of the last attempt ("" when absent)


def failed_invocation(body: str) -> FailedInvocation:
    """The record in a failure-queue message.

    Raises ValueError when the body is not an on-failure destination record (e.g. an SNS/S3 message
    sent to the queue by hand, or a dead-letter-queue message, which carries the bare event and no
    requestContext).
    """
    record = json.loads(body)
    if not isinstance(record, dict) or "requestPayload" not in record:
        raise ValueError("not a Lambda invocation record: no requestPayload")
    payload = record["requestPayload"]
    if not isinstance(payload, dict):
        raise ValueError("requestPayload is not a JSON object")
    context = record.get("requestContext")
    request_id = str(context.get("requestId", "")) if isinstance(context, dict) else ""
    try:  # the handlers' own reading of the event: keys decoded as the function decodes them
        refs = list(object_refs(payload))
    except EventError:
        refs = []
    objects = tuple(
        f"{ref.bucket}/{ref.key}@{ref.version_id}" if ref.version_id else f"{ref.bucket}/{ref.key}"
        for ref in refs
    )
    response = record.get("responsePayload")
    error = ""
    if isinstance(response, dict) and (response.get("errorType") or response.get("errorMessage")):
        error = f"{response.get('errorType', '')}: {str(response.get('errorMessage', ''))[:300]}"
    return FailedInvocation(payload, request_id, objects, error)


def redrive(
    sqs: SqsClient,
    queue_url: str,
    invoke: Invoke,
    dry_run: bool,
    *,
    visibility_seconds: int = DEFAULT_VISIBILITY_SECONDS,
    wait_seconds: int = 1,
    now: Callable[[], float] = time.time,
) -> RedriveResult:
    """Re-send every event of the queue once; delete a message only after its invocation succeeded.

    One message at a time, each hidden for `visibility_seconds` while its event runs, so a crash of this
    tool leaves every message in the queue. Messages kept (failed, unreadable, or all of them on a dry
    run) are made visible again at the end. The pass ends when the queue returns nothing or hands back
    a message already seen in this run.
    """
    reports: list[MessageReport] = []
    seen: set[str] = set()
    to_release: list[str] = []
    try:
        while True:
            response = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=1,
                VisibilityTimeout=visibility_seconds,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            message = messages[0]
            message_id, receipt = message["MessageId"], message["ReceiptHandle"]
            if message_id in seen:
                to_release.append(receipt)
                break
            seen.add(message_id)
            age, receives = _age_and_receives(message.get("Attributes", {}), now())
            try:
                failed = failed_invocation(message["Body"])
            except ValueError as exc:
                reports.append(
                    MessageReport(message_id, "", "unreadable", str(exc), age_seconds=age, receives=receives)
                )
                to_release.append(receipt)
                continue
            report = partial(
                MessageReport,
                message_id,
                failed.request_id,
                objects=failed.objects,
                error=failed.error,
                age_seconds=age,
                receives=receives,
            )
            if dry_run:
                reports.append(report("would-redrive"))
                to_release.append(receipt)
                continue
            outcome = invoke(failed.payload)
            if outcome.ok:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
                reports.append(report("redriven"))
            else:
                reports.append(report("failed", outcome.detail))
                to_release.append(receipt)
    finally:
        for receipt in to_release:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
    return RedriveResult(dry_run=dry_run, messages=tuple(reports))


def _age_and_receives(attributes: Mapping[str, str], now: float) -> tuple[int | None, int | None]:
    sent, receives = attributes.get("SentTimestamp"), attributes.get("ApproximateReceiveCount")
    age = max(0, int(now - int(sent) / 1000)) if sent and sent.isdigit() else None
    return age, int(receives) if receives and receives.isdigit() else None


# ---------------------------------------------------------------------------------------------------
# Adapters: boto3 Lambda, the Pulumi CLI


def lambda_client_config() -> Config:
    return Config(read_timeout=LAMBDA_READ_TIMEOUT_SECONDS, retries={"total_max_attempts": 1})


def lambda_invoker(client: Any, function_name: str) -> Invoke:
    """Invoke `function_name` synchronously (RequestResponse); a function error is a failure."""

    def invoke(payload: Mapping[str, Any]) -> InvokeOutcome:
        try:
            response = client.invoke(
                FunctionName=function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            return InvokeOutcome(False, str(exc))
        body = response["Payload"].read().decode("utf-8", "replace")
        if response.get("FunctionError"):
            return InvokeOutcome(False, f"{response['FunctionError']}: {body[:500]}")
        return InvokeOutcome(True)

    return invoke


def stack_outputs(stack: str, cwd: str | None = None) -> Mapping[str, Any]:
    """`pulumi stack output --json --stack STACK` as a dict."""
    command = ["pulumi", "stack", "output", "--json", "--stack", stack]
    try:
        completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise StackOutputError("the pulumi CLI is not on PATH") from exc
    if completed.returncode != 0:
        raise StackOutputError(f"{' '.join(command)} failed: {completed.stderr.strip()}")
    try:
        outputs = json.loads(completed.stdout)
    except ValueError as exc:
        raise StackOutputError(f"{' '.join(command)} printed no JSON: {exc}") from exc
    if not isinstance(outputs, dict):
        raise StackOutputError(f"{' '.join(command)} printed {type(outputs).__name__}, not an object")
    return outputs


@dataclass(frozen=True)
class Target:
    """The function and failure queue of one stage."""

    function_name: str  # the Lambda function to invoke
    queue_url: str  # the stage's on-failure SQS queue


def resolve_target(outputs: Mapping[str, Any], stage: str) -> Target:
    """The stage's function name and failure queue URL from the `stages` stack output."""
    stages = outputs.get("stages")
    if not isinstance(stages, Mapping):
        raise TargetError(
            "the stack has no `stages` output; is this a data-pipeline stack, and is it deployed?"
        )
    entry = stages.get(stage)
    if not isinstance(entry, Mapping):
        raise TargetError(f"the `stages` output has no stage {stage!r}; it has {', '.join(sorted(stages))}")
    missing = [key for key in ("functionName", "failureQueueUrl") if not entry.get(key)]
    if missing:
        raise TargetError(f"stages.{stage} lacks {', '.join(missing)}")
    return Target(function_name=str(entry["functionName"]), queue_url=str(entry["failureQueueUrl"]))


_QUEUE_URL_REGION = re.compile(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")


def queue_region(queue_url: str) -> str | None:
    """The region in an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>), if any."""
    match = _QUEUE_URL_REGION.match(queue_url)
    return match.group(1) if match else None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools redrive",
        description="Re-send the events of a stage's failure queue to its function; failures stay queued.",
    )
    parser.add_argument("--stack", required=True, help="the Pulumi stack, e.g. dev or prod")
    parser.add_argument("--stage", required=True, choices=STAGES, help="the pipeline stage")
    parser.add_argument("--dry-run", action="store_true", help="list the events; invoke and delete nothing")
    parser.add_argument("--region", help="AWS region (default: the failure queue's, from its URL)")
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None,
    *,
    outputs: Callable[[str], Mapping[str, Any]] = stack_outputs,
    session: Any = None,
) -> int:
    """Run a redrive; exit 0 when every event was re-sent (or, dry run, listed), 1 when some stay queued."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        target = resolve_target(outputs(args.stack), args.stage)
    except RedriveError as exc:
        print(f"redrive: {exc}", file=sys.stderr)
        return 2
    if session is None:
        # The stack's region, not the profile's: both the queue and the function live there.
        session = boto3.session.Session(region_name=args.region or queue_region(target.queue_url))
    sqs = session.client("sqs")
    invoke = lambda_invoker(session.client("lambda", config=lambda_client_config()), target.function_name)
    print(f"redrive {args.stack}/{args.stage}: {target.queue_url} -> {target.function_name}")
    try:
        result = redrive(sqs, target.queue_url, invoke, args.dry_run)
    except ClientError as exc:
        # Nothing was deleted that had not been re-sent; the rest is still in the queue.
        error = exc.response.get("Error", {})
        print(f"redrive: SQS refused: {error.get('Code')}: {error.get('Message')}", file=sys.stderr)
        return 2
    except BotoCoreError as exc:
        print(f"redrive: {exc}", file=sys.stderr)
        return 2
    for report in result.messages:
        print(report.line())
    print(result.summary())
    return 1 if result.kept else 0


if __name__ == "__main__":
    sys.exit(main())
