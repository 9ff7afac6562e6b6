"""`python -m devtools replay`: the command line, wired to boto3 and the stack outputs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from devtools.ops.replay.listing import key_prefix
from devtools.ops.replay.model import (
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE,
    SOURCE_ROLE,
    STAGES,
    Invoke,
    InvokeOutcome,
    Options,
    ReplayError,
    ReplayTarget,
    utc,
)
from devtools.ops.replay.sending import Checkpoint, effective_limits, replay
from handlers.contract import (
    AGGREGATES_PREFIX,
    AGGREGATES_SUFFIX,
    RECORDS_PREFIX,
    RECORDS_SUFFIX,
    Env,
    Stage,
)


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
    return utc(value)


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
