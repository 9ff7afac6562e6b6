"""The rules over one resource at a time: IAM wildcard actions, deprecated runtimes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from resource_types import FUNCTION, MANAGED_POLICY, ROLE, ROLE_POLICY
from rule_model import UNKNOWN, Resource, Violation, as_list, lookup, statements_of

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


def wildcard_actions(document: Any) -> list[str] | None:
    """The Sids of statements that allow a wildcard action (`*`, `svc:*`) or use NotAction with Allow.

    None when the document is not known yet; ValueError when it is not JSON.
    """
    statements = statements_of(document)
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
        for action in as_list(statement.get("Action")):
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
        documents = [(f"inline policy {lookup(p, 'name')}", lookup(p, "policy")) for p in as_list(inline)]
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
