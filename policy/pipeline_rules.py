"""The rules of the data-pipeline policy pack as plain Python.

Nothing here imports pulumi_policy or talks to the engine: every rule takes `Resource` values (a type
token, the engine's camelCase props, and which resources each prop was computed from) and returns
`Violation`s. `__main__.py` adapts the engine's arguments to these values, and the tests feed them
hand-built resources and resources taken from the mocked program.

A value the engine cannot know yet (during `pulumi preview`) arrives as `UNKNOWN`; a rule that needs
it returns an *undetermined* violation instead of guessing, which the pack reports as "can't run
during preview" and the rule is run again, with every value known, by `pulumi up`.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

# The pipeline's contract (handlers/contract.py, standard library only) lives beside this pack in the
# repository; the Pulumi CLI puts only policy/ on sys.path.
_REPOSITORY = str(Path(__file__).resolve().parent.parent)
if _REPOSITORY not in sys.path:
    sys.path.append(_REPOSITORY)

from handlers.contract import WRITE_PREFIX_VARIABLES, Env  # noqa: E402

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
FUNCTION = "aws:lambda/function:Function"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"

PUBLIC_ACCESS_FLAGS: Final = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
SSE_ALGORITHMS: Final = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})

# Lambda's published deprecation dates (docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html) for
# the runtimes this pipeline can use. A runtime missing from the table is refused too: an unknown
# runtime is one nobody has checked.
RUNTIME_DEPRECATION: Final[Mapping[str, dt.date]] = {
    "python3.8": dt.date(2024, 10, 14),
    "python3.9": dt.date(2025, 12, 15),
    "python3.10": dt.date(2026, 6, 30),
    "python3.11": dt.date(2027, 6, 30),
    "python3.12": dt.date(2028, 10, 31),
    "python3.13": dt.date(2029, 6, 30),
    "python3.14": dt.date(2029, 6, 30),
}

# Environment variables through which a stage is told where it writes (docs/architecture.md).
DEST_BUCKET_VAR: Final = Env.DEST_BUCKET
WRITE_PREFIX_VARS: Final = WRITE_PREFIX_VARIABLES


class _Unknown:
    """The engine's "not known until the update" value."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


@dataclass(frozen=True)
class Resource:
    """One resource as a policy sees it."""

    type: str  # the type token, e.g. aws:s3/bucket:Bucket
    name: str  # the logical name
    urn: str  # the URN, used to point a violation at the resource
    props: Mapping[str, Any]  # the engine's props (camelCase), UNKNOWN where not yet known
    deps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # prop -> URNs it was computed from


@dataclass(frozen=True)
class Violation:
    """A broken rule, or (undetermined) a rule that could not be decided yet."""

    message: str  # what is wrong and how to fix it; for an undetermined one, what is not known yet
    urn: str | None = None  # the offending resource; None for the stack as a whole
    undetermined: bool = False  # True when a needed value is UNKNOWN (preview)


# ---------------------------------------------------------------------------------------------------
# Helpers


def _get(value: Any, *path: str) -> Any:
    """props["a"]["b"]... or None when a step is missing; UNKNOWN when a step is unknown."""
    for key in path:
        if value is UNKNOWN:
            return UNKNOWN
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _identities(resource: Resource) -> set[str]:
    """The strings other resources use to refer to this one (name, id, ARN)."""
    found = {resource.urn}
    for key in ("id", "bucket", "arn", "name", "functionName"):
        value = resource.props.get(key)
        if isinstance(value, str) and value:
            found.add(value)
    return found


def _refers_to(source: Resource, prop: str, value: Any, target: Resource) -> bool | None:
    """Whether `value` (read from `source.props[prop]`) designates `target`; None if it cannot be told.

    A known value is matched against the target's name, id or ARN (an ARN also by its trailing name).
    During preview the names are unknown, but the engine still knows which resources each prop was
    computed from: that dependency decides then.
    """
    deps = source.deps.get(prop, ())
    if isinstance(value, str) and value:
        names = _identities(target)
        if value in names or value.rsplit(":", 1)[-1] in names:
            return True
        # A reference by an attribute not in `_identities` (an id the outputs do not carry, say) is
        # still decided when the prop was computed from this one resource alone.
        return target.urn in deps and len(deps) == 1
    if value is UNKNOWN:
        if deps:
            return target.urn in deps
        return None
    return False


def _of_type(resources: Iterable[Resource], *types: str) -> list[Resource]:
    return [r for r in resources if r.type in types]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


def _statements(document: Any) -> list[Mapping[str, Any]] | None:
    """The statements of an IAM/bucket policy given as JSON text or a dict; None when unknown.

    Raises ValueError when the text is not JSON.
    """
    if document is UNKNOWN:
        return None
    if isinstance(document, str):
        document = json.loads(document)
    statements = _as_list(_get(document, "Statement"))
    if any(s is UNKNOWN for s in statements):
        return None
    return [s for s in statements if isinstance(s, Mapping)]


def _overlaps(a: str, b: str) -> bool:
    """Two S3 key prefixes match a common key when one starts with the other ("" matches all)."""
    return a.startswith(b) or b.startswith(a)


# ---------------------------------------------------------------------------------------------------
# Resource rules (one resource at a time)


def wildcard_actions(document: Any) -> list[str] | None:
    """The Sids of statements that allow a wildcard action (`*`, `svc:*`) or use NotAction with Allow.

    None when the document is not known yet; ValueError when it is not JSON.
    """
    statements = _statements(document)
    if statements is None:
        return None
    offending = []
    for index, statement in enumerate(statements):
        if statement.get("Effect") != "Allow":
            continue
        sid = str(statement.get("Sid") or f"#{index}")
        if "NotAction" in statement:
            offending.append(sid)
            continue
        for action in _as_list(statement.get("Action")):
            if action is UNKNOWN:
                return None
            if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                offending.append(sid)
                break
    return offending


def check_iam_no_wildcard_action(resource: Resource) -> list[Violation]:
    """No Allow statement in a RolePolicy, Policy or role inline policy has a wildcard action."""
    if resource.type in (ROLE_POLICY, MANAGED_POLICY):
        documents = [("policy", resource.props.get("policy"))]
    elif resource.type == ROLE:
        inline = resource.props.get("inlinePolicies")
        if inline is UNKNOWN:
            return [Violation(f"{resource.name}: inline policies", resource.urn, undetermined=True)]
        documents = [(f"inline policy {_get(p, 'name')}", _get(p, "policy")) for p in _as_list(inline)]
    else:
        return []
    violations = []
    for label, document in documents:
        try:
            offending = wildcard_actions(document)
        except ValueError:
            violations.append(
                Violation(f"{resource.name}: {label} is not a JSON policy document", resource.urn)
            )
            continue
        if offending is None:
            violations.append(Violation(f"{resource.name}: {label}", resource.urn, undetermined=True))
        elif offending:
            violations.append(
                Violation(
                    f"{resource.name}: {label} allows a wildcard action in statement(s) "
                    f"{', '.join(offending)}; name each action the stage needs",
                    resource.urn,
                )
            )
    return violations


def check_runtime_supported(resource: Resource, today: dt.date) -> list[Violation]:
    """A zip-packaged function runs a runtime Lambda has not deprecated on `today`."""
    if resource.type != FUNCTION or resource.props.get("packageType") == "Image":
        return []
    runtime = resource.props.get("runtime")
    if runtime is UNKNOWN:
        return [Violation(f"{resource.name}: runtime", resource.urn, undetermined=True)]
    deprecated_on = RUNTIME_DEPRECATION.get(runtime) if isinstance(runtime, str) else None
    if deprecated_on is None:
        message = f"{resource.name}: runtime {runtime!r} is not a known Python runtime"
        return [Violation(message, resource.urn)]
    if deprecated_on <= today:
        return [
            Violation(
                f"{resource.name}: runtime {runtime} was deprecated on {deprecated_on:%Y-%m-%d}; "
                "set data-pipeline:runtime to a supported one",
                resource.urn,
            )
        ]
    return []


# ---------------------------------------------------------------------------------------------------
# Stack rules (need the relations between resources)


def _attached(
    resources: Sequence[Resource], kind: str, prop: str, bucket: Resource
) -> tuple[list[Resource], bool]:
    """Resources of `kind` whose `prop` designates `bucket`, and whether some could not be told."""
    found, unsure = [], False
    for candidate in _of_type(resources, kind):
        verdict = _refers_to(candidate, prop, candidate.props.get(prop), bucket)
        if verdict is None:
            unsure = True
        elif verdict:
            found.append(candidate)
    return found, unsure


def check_buckets_block_public_access(resources: Sequence[Resource]) -> list[Violation]:
    """Every bucket has a BucketPublicAccessBlock with all four flags true."""
    violations = []
    for bucket in _of_type(resources, BUCKET):
        blocks, unsure = _attached(resources, PUBLIC_ACCESS_BLOCK, "bucket", bucket)
        complete = [b for b in blocks if all(b.props.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS)]
        if complete:
            continue
        if unsure or any(any(b.props.get(f) is UNKNOWN for f in PUBLIC_ACCESS_FLAGS) for b in blocks):
            violations.append(
                Violation(f"bucket {bucket.name}: public access block", bucket.urn, undetermined=True)
            )
        elif blocks:
            missing = sorted({f for b in blocks for f in PUBLIC_ACCESS_FLAGS if b.props.get(f) is not True})
            message = f"bucket {bucket.name}: public access block leaves {', '.join(missing)} off"
            violations.append(Violation(message, bucket.urn))
        else:
            violations.append(Violation(f"bucket {bucket.name} has no BucketPublicAccessBlock", bucket.urn))
    return violations


def _encrypts(config: Resource) -> bool | None:
    rules = config.props.get("rules")
    if rules is UNKNOWN:
        return None
    for rule in _as_list(rules):
        algorithm = _get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
        if algorithm is UNKNOWN:
            return None
        if algorithm in SSE_ALGORITHMS:
            return True
    return False


def check_buckets_encrypted(resources: Sequence[Resource]) -> list[Violation]:
    """Every bucket has a BucketServerSideEncryptionConfiguration with a default algorithm."""
    violations = []
    for bucket in _of_type(resources, BUCKET):
        configs, unsure = _attached(resources, ENCRYPTION, "bucket", bucket)
        verdicts = [_encrypts(c) for c in configs]
        if True in verdicts:
            continue
        if unsure or None in verdicts:
            violations.append(Violation(f"bucket {bucket.name}: encryption", bucket.urn, undetermined=True))
        elif configs:
            message = f"bucket {bucket.name}: encryption configuration sets no default algorithm"
            violations.append(Violation(message, bucket.urn))
        else:
            violations.append(
                Violation(f"bucket {bucket.name} has no BucketServerSideEncryptionConfiguration", bucket.urn)
            )
    return violations


def _readable_statements(document: Any) -> list[Mapping[str, Any]] | None:
    """Like `_statements`, an unreadable document counting as one without statements."""
    try:
        return _statements(document)
    except ValueError:
        return []


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if principal != "*" and _as_list(_get(principal, "AWS")) != ["*"]:
        return False
    actions = _as_list(statement.get("Action"))
    if not ({"*", "s3:*"} & {a for a in actions if isinstance(a, str)}):
        return False
    value = _get(statement.get("Condition"), "Bool", "aws:SecureTransport")
    return [str(v).lower() for v in _as_list(value)] == ["false"]


def check_buckets_deny_insecure_transport(resources: Sequence[Resource]) -> list[Violation]:
    """Every bucket has a policy denying every S3 action to anyone when aws:SecureTransport is false."""
    violations = []
    for bucket in _of_type(resources, BUCKET):
        policies, unsure = _attached(resources, BUCKET_POLICY, "bucket", bucket)
        documents = [_readable_statements(p.props.get("policy")) for p in policies]
        if any(d is not None and any(_denies_insecure_transport(s) for s in d) for d in documents):
            continue
        if unsure or None in documents:
            violations.append(Violation(f"bucket {bucket.name}: policy", bucket.urn, undetermined=True))
        else:
            violations.append(
                Violation(
                    f"bucket {bucket.name} has no policy statement denying s3:* "
                    "when aws:SecureTransport is false",
                    bucket.urn,
                )
            )
    return violations


def _log_group_for(function: Resource, log_groups: Sequence[Resource]) -> tuple[list[Resource], bool]:
    """The log groups the function logs to: its loggingConfig.logGroup, else /aws/lambda/<name>."""
    found, unsure = [], False
    configured = _get(function.props, "loggingConfig", "logGroup")
    for group in log_groups:
        by_config = configured is not None and _refers_to(function, "loggingConfig", configured, group)
        # The default group's name is derived from the function's name; the engine records that as a
        # dependency of the group's `name` on the function.
        by_default = function.urn in group.deps.get("name", ())
        if not by_default and configured is None:
            name, group_name = function.props.get("name"), group.props.get("name")
            if UNKNOWN in (name, group_name):
                unsure = True
            elif isinstance(name, str) and group_name == f"/aws/lambda/{name}":
                by_default = True
        if by_config is None:
            unsure = True
        if by_config or by_default:
            found.append(group)
    return found, unsure


def check_functions_log_retention(resources: Sequence[Resource]) -> list[Violation]:
    """Every function logs to a log group of the stack that has a retention period."""
    violations = []
    log_groups = _of_type(resources, LOG_GROUP)
    for function in _of_type(resources, FUNCTION):
        groups, unsure = _log_group_for(function, log_groups)
        retentions = [g.props.get("retentionInDays") for g in groups]
        # The engine hands numbers over as JSON numbers: 7.0 as often as 7.
        if any(isinstance(r, int | float) and not isinstance(r, bool) and r > 0 for r in retentions):
            continue
        if unsure or UNKNOWN in retentions:
            violations.append(
                Violation(f"function {function.name}: log group", function.urn, undetermined=True)
            )
        elif groups:
            violations.append(
                Violation(
                    f"function {function.name}: its log group keeps logs forever (no retentionInDays)",
                    function.urn,
                )
            )
        else:
            violations.append(
                Violation(
                    f"function {function.name} has no log group in the stack (loggingConfig.logGroup or "
                    "/aws/lambda/<name>), so Lambda creates one that never expires",
                    function.urn,
                )
            )
    return violations


def check_functions_failure_destination(resources: Sequence[Resource]) -> list[Violation]:
    """Every function has a FunctionEventInvokeConfig with an on-failure destination."""
    violations = []
    configs = _of_type(resources, INVOKE_CONFIG)
    for function in _of_type(resources, FUNCTION):
        unsure, covered = False, False
        for config in configs:
            verdict = _refers_to(config, "functionName", config.props.get("functionName"), function)
            if verdict is None:
                unsure = True
            if not verdict:
                continue
            destination = _get(config.props, "destinationConfig", "onFailure", "destination")
            if destination is UNKNOWN:
                unsure = True
            elif isinstance(destination, str) and destination:
                covered = True
        if covered:
            continue
        if unsure:
            violations.append(
                Violation(f"function {function.name}: failure destination", function.urn, undetermined=True)
            )
        else:
            violations.append(
                Violation(
                    f"function {function.name} has no on-failure destination: an event that fails every "
                    "retry would be lost",
                    function.urn,
                )
            )
    return violations


def _write_targets(function: Resource) -> tuple[Any, list[Any]]:
    variables = _get(function.props, "environment", "variables")
    if variables is UNKNOWN:
        return UNKNOWN, [UNKNOWN]
    dest = _get(variables, DEST_BUCKET_VAR)
    prefixes = [_get(variables, v) for v in WRITE_PREFIX_VARS]
    return dest, [p for p in prefixes if p is not None]


def _function_writes_to(function: Resource, bucket: Resource) -> bool | None:
    dest, _ = _write_targets(function)
    if dest is None:
        return False
    return _refers_to(function, "environment", dest, bucket)


def _triggers(notification: Resource) -> Iterator[Mapping[str, Any]]:
    for entry in _as_list(notification.props.get("lambdaFunctions")):
        if isinstance(entry, Mapping):
            yield entry


def check_no_self_trigger(resources: Sequence[Resource]) -> list[Violation]:
    """No bucket notification invokes a function on a prefix that the same function writes to that bucket."""
    violations = []
    buckets = _of_type(resources, BUCKET)
    functions = _of_type(resources, FUNCTION)
    for notification in _of_type(resources, NOTIFICATION):
        bucket_value = notification.props.get("bucket")
        targets = [b for b in buckets if _refers_to(notification, "bucket", bucket_value, b)]
        if not targets and bucket_value is UNKNOWN:
            violations.append(Violation(f"{notification.name}: bucket", notification.urn, undetermined=True))
            continue
        for entry in _triggers(notification):
            arn = entry.get("lambdaFunctionArn")
            # With the ARN unknown, every function the notification depends on is a candidate.
            invoked = [f for f in functions if _refers_to(notification, "lambdaFunctions", arn, f)]
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


STACK_RULES: Final = (
    check_buckets_block_public_access,
    check_buckets_encrypted,
    check_buckets_deny_insecure_transport,
    check_functions_log_retention,
    check_functions_failure_destination,
    check_no_self_trigger,
)


def check_stack(resources: Sequence[Resource], today: dt.date) -> list[Violation]:
    """Every rule over a whole stack: what `pulumi preview --policy-pack policy/` would report."""
    violations = [v for rule in STACK_RULES for v in rule(resources)]
    for resource in resources:
        violations += check_iam_no_wildcard_action(resource)
        violations += check_runtime_supported(resource, today)
    return violations
