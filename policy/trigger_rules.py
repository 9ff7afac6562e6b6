"""The stack rules over the S3 trigger chain: no function is invoked by what it writes itself, and nothing
is invoked by the records/ parts ingestion stages before it has read their raw object whole."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from resource_types import BUCKET, FUNCTION, NOTIFICATION
from rule_model import UNKNOWN, Resource, Violation, as_list, lookup, of_type, refers_to

# The pipeline's contract (handlers/contract.py, standard library only) lives beside this pack in the
# repository; the Pulumi CLI puts only policy/ on sys.path.
_REPOSITORY = str(Path(__file__).resolve().parent.parent)
if _REPOSITORY not in sys.path:
    sys.path.append(_REPOSITORY)

from handlers.contract import STAGING_PREFIX, WRITE_PREFIX_VARIABLES, Env  # noqa: E402

# Environment variables through which a stage is told where it writes (docs/architecture.md).
DEST_BUCKET_VAR: Final = Env.DEST_BUCKET
WRITE_PREFIX_VARS: Final = WRITE_PREFIX_VARIABLES


def _overlaps(a: str, b: str) -> bool:
    """Two S3 key prefixes match a common key when one starts with the other ("" matches all)."""
    return a.startswith(b) or b.startswith(a)


def _write_targets(function: Resource) -> tuple[Any, list[Any]]:
    variables = lookup(function.props, "environment", "variables")
    if variables is UNKNOWN:
        return UNKNOWN, [UNKNOWN]
    dest = lookup(variables, DEST_BUCKET_VAR)
    prefixes = [lookup(variables, v) for v in WRITE_PREFIX_VARS]
    return dest, [p for p in prefixes if p is not None]


def _function_writes_to(function: Resource, bucket: Resource) -> bool | None:
    dest, _ = _write_targets(function)
    if dest is None:
        return False
    return refers_to(function, "environment", dest, bucket)


def _triggers(notification: Resource) -> Iterator[Mapping[str, Any]]:
    for entry in as_list(notification.props.get("lambdaFunctions")):
        if isinstance(entry, Mapping):
            yield entry


def check_no_self_trigger(resources: Sequence[Resource]) -> list[Violation]:
    """No bucket notification invokes a function on a prefix that the same function writes to that bucket."""
    violations = []
    buckets = of_type(resources, BUCKET)
    functions = of_type(resources, FUNCTION)
    for notification in of_type(resources, NOTIFICATION):
        bucket_value = notification.props.get("bucket")
        targets = [b for b in buckets if refers_to(notification, "bucket", bucket_value, b)]
        if not targets and bucket_value is UNKNOWN:
            violations.append(Violation(f"{notification.name}: bucket", notification.urn, undetermined=True))
            continue
        for entry in _triggers(notification):
            arn = entry.get("lambdaFunctionArn")
            # With the ARN unknown, every function the notification depends on is a candidate.
            invoked = [f for f in functions if refers_to(notification, "lambdaFunctions", arn, f)]
            prefix = entry.get("filterPrefix") or ""
            for function in invoked:
                for bucket in targets:
                    writes = _function_writes_to(function, bucket)
                    _, prefixes = _write_targets(function)
                    if writes is None or prefix is UNKNOWN or UNKNOWN in prefixes:
                        message = f"{notification.name}: trigger of {function.name}"
                        violations.append(Violation(message, notification.urn, undetermined=True))
                        continue
                    if not writes:
                        continue
                    for written in prefixes:
                        if isinstance(written, str) and _overlaps(prefix, written):
                            violations.append(
                                Violation(
                                    f"{notification.name}: bucket {bucket.name} invokes {function.name} "
                                    f"on prefix {prefix!r}, and {function.name} writes {written!r} to "
                                    "that bucket: every write would invoke it again",
                                    notification.urn,
                                )
                            )
    return violations


def check_staging_triggers_nothing(resources: Sequence[Resource]) -> list[Violation]:
    """No bucket notification invokes a function on a key under the staging prefix of a bucket that a
    function writes records/ to: those are parts of a raw version not yet read whole."""
    violations = []
    buckets = of_type(resources, BUCKET)
    stagers = [
        f
        for f in of_type(resources, FUNCTION)
        if lookup(f.props, "environment", "variables") is UNKNOWN
        or lookup(f.props, "environment", "variables", Env.RECORDS_PREFIX) is not None
    ]
    for notification in of_type(resources, NOTIFICATION):
        bucket_value = notification.props.get("bucket")
        targets = [b for b in buckets if refers_to(notification, "bucket", bucket_value, b)]
        staged_in = [_function_writes_to(f, b) for f in stagers for b in targets]
        if (not targets and bucket_value is UNKNOWN) or None in staged_in:
            violations.append(Violation(f"{notification.name}: bucket", notification.urn, undetermined=True))
            continue
        if not any(staged_in):
            continue
        for entry in _triggers(notification):
            prefix = entry.get("filterPrefix") or ""
            if prefix is UNKNOWN:
                message = f"{notification.name}: trigger prefix"
                violations.append(Violation(message, notification.urn, undetermined=True))
            elif _overlaps(prefix, STAGING_PREFIX):
                violations.append(
                    Violation(
                        f"{notification.name}: invokes a function on prefix {prefix!r}, which takes in "
                        f"{STAGING_PREFIX!r}, where ingestion stages records/ parts before it has read their "
                        "raw object whole",
                        notification.urn,
                    )
                )
    return violations
