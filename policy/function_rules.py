"""The stack rules over functions: a log group with a retention period, an on-failure destination."""

from __future__ import annotations

from collections.abc import Sequence

from resource_types import FUNCTION, INVOKE_CONFIG, LOG_GROUP
from rule_model import UNKNOWN, Resource, Violation, lookup, of_type, refers_to


def _log_group_for(function: Resource, log_groups: Sequence[Resource]) -> tuple[list[Resource], bool]:
    """The log groups the function logs to: its loggingConfig.logGroup, else /aws/lambda/<name>."""
    found, unsure = [], False
    configured = lookup(function.props, "loggingConfig", "logGroup")
    for group in log_groups:
        by_config = configured is not None and refers_to(function, "loggingConfig", configured, group)
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
    log_groups = of_type(resources, LOG_GROUP)
    for function in of_type(resources, FUNCTION):
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
    configs = of_type(resources, INVOKE_CONFIG)
    for function in of_type(resources, FUNCTION):
        unsure, covered = False, False
        for config in configs:
            verdict = refers_to(config, "functionName", config.props.get("functionName"), function)
            if verdict is None:
                unsure = True
            if not verdict:
                continue
            destination = lookup(config.props, "destinationConfig", "onFailure", "destination")
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
