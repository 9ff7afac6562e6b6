"""The data-pipeline CrossGuard policy pack: `pulumi preview --policy-pack policy/`.

The rules live in `pipeline_rules` as plain functions over `Resource` values; this file only adapts the
engine's arguments to them and reports what they find. What that needs from pulumi_policy beyond its
documented API (the unknown values of a preview) is in `_pulumi_policy_internals`. The Pulumi CLI runs the
pack with this directory on `sys.path`, which is why both are imported as top-level modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import _pulumi_policy_internals as sdk
import pipeline_rules as rules
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)


def plain(value: Any) -> Any:
    """The engine's props without the SDK's proxies, unknowns turned into `rules.UNKNOWN`.

    The SDK's proxies raise on the first unknown value they are asked for; unwrapping them lets a rule
    use the known half of a resource (its property dependencies, its literal flags) during preview.
    """
    return sdk.unwrap(value, rules.UNKNOWN)


def from_engine(resource: PolicyResource) -> rules.Resource:
    return rules.Resource(
        type=resource.resource_type,
        name=resource.name,
        urn=resource.urn,
        props=plain(resource.props),
        deps={prop: tuple(dep.urn for dep in deps) for prop, deps in resource.property_dependencies.items()},
    )


def _report(violations: list[rules.Violation], report_violation: ReportViolation) -> None:
    for violation in violations:
        if not violation.undetermined:
            report_violation(violation.message, violation.urn)
    pending = [v for v in violations if v.undetermined]
    if pending:
        # The SDK turns this into an advisory "can't run policy ... during preview: <message>";
        # `pulumi up` runs the policy again with every value known and decides.
        raise sdk.not_known_yet("not known yet: " + "; ".join(v.message for v in pending))


StackRule = Callable[[Sequence[rules.Resource]], list[rules.Violation]]


def stack_policy(name: str, rule: StackRule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        _report(rule([from_engine(r) for r in args.resources]), report_violation)

    return StackValidationPolicy(name=name, description=(rule.__doc__ or name).strip(), validate=validate)


def _validate_iam(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    resource = rules.Resource(args.resource_type, args.name, args.urn, plain(args.props))
    _report(rules.check_iam_no_wildcard_action(resource), report_violation)


def _validate_runtime(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    resource = rules.Resource(args.resource_type, args.name, args.urn, plain(args.props))
    _report(rules.check_runtime_supported(resource, dt.datetime.now(dt.UTC).date()), report_violation)


POLICIES = [
    stack_policy("s3-bucket-public-access-blocked", rules.check_buckets_block_public_access),
    stack_policy("s3-bucket-encrypted", rules.check_buckets_encrypted),
    stack_policy("s3-bucket-tls-only", rules.check_buckets_deny_insecure_transport),
    stack_policy("lambda-log-retention", rules.check_functions_log_retention),
    stack_policy("lambda-failure-destination", rules.check_functions_failure_destination),
    stack_policy("s3-notification-no-self-trigger", rules.check_no_self_trigger),
    stack_policy("s3-staging-triggers-nothing", rules.check_staging_triggers_nothing),
    ResourceValidationPolicy(
        name="iam-no-wildcard-action",
        description=rules.check_iam_no_wildcard_action.__doc__.strip(),
        validate=_validate_iam,
    ),
    ResourceValidationPolicy(
        name="lambda-runtime-supported",
        description=rules.check_runtime_supported.__doc__.strip(),
        validate=_validate_runtime,
    ),
]

if __name__ == "__main__":
    PolicyPack(name="data-pipeline", policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
