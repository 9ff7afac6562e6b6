"""The rules of the data-pipeline policy pack as plain Python.

Nothing here imports pulumi_policy or talks to the engine: every rule takes `Resource` values (a type
token, the engine's camelCase props, and which resources each prop was computed from) and returns
`Violation`s. `__main__.py` adapts the engine's arguments to these values, and the tests feed them
hand-built resources and resources taken from the mocked program.

The rules are grouped by what they look at: `resource_rules` (one resource at a time), `bucket_rules`,
`function_rules` and `trigger_rules` (the relations in a stack), over the values of `rule_model` and
the type tokens of `resource_types`. This module gathers them under the names the pack and the tests use.

A value the engine cannot know yet (during `pulumi preview`) arrives as `UNKNOWN`; a rule that needs
it returns an *undetermined* violation instead of guessing, which the pack reports as "can't run
during preview" and the rule is run again, with every value known, by `pulumi up`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from bucket_rules import (
    PUBLIC_ACCESS_FLAGS,
    SSE_ALGORITHMS,
    check_buckets_block_public_access,
    check_buckets_deny_insecure_transport,
    check_buckets_encrypted,
)
from function_rules import check_functions_failure_destination, check_functions_log_retention
from resource_rules import (
    RUNTIME_DEPRECATION,
    check_iam_no_wildcard_action,
    check_runtime_supported,
    wildcard_actions,
)
from resource_types import (
    BUCKET,
    BUCKET_POLICY,
    ENCRYPTION,
    FUNCTION,
    INVOKE_CONFIG,
    LOG_GROUP,
    MANAGED_POLICY,
    NOTIFICATION,
    PUBLIC_ACCESS_BLOCK,
    ROLE,
    ROLE_POLICY,
)
from rule_model import UNKNOWN, Resource, Violation
from trigger_rules import (
    DEST_BUCKET_VAR,
    WRITE_PREFIX_VARS,
    check_no_self_trigger,
    check_staging_triggers_nothing,
)

__all__ = [
    "BUCKET",
    "BUCKET_POLICY",
    "DEST_BUCKET_VAR",
    "ENCRYPTION",
    "FUNCTION",
    "INVOKE_CONFIG",
    "LOG_GROUP",
    "MANAGED_POLICY",
    "NOTIFICATION",
    "PUBLIC_ACCESS_BLOCK",
    "PUBLIC_ACCESS_FLAGS",
    "ROLE",
    "ROLE_POLICY",
    "RUNTIME_DEPRECATION",
    "SSE_ALGORITHMS",
    "STACK_RULES",
    "UNKNOWN",
    "WRITE_PREFIX_VARS",
    "Resource",
    "Violation",
    "check_buckets_block_public_access",
    "check_buckets_deny_insecure_transport",
    "check_buckets_encrypted",
    "check_functions_failure_destination",
    "check_functions_log_retention",
    "check_iam_no_wildcard_action",
    "check_no_self_trigger",
    "check_runtime_supported",
    "check_stack",
    "check_staging_triggers_nothing",
    "wildcard_actions",
]

STACK_RULES: Final = (
    check_buckets_block_public_access,
    check_buckets_encrypted,
    check_buckets_deny_insecure_transport,
    check_functions_log_retention,
    check_functions_failure_destination,
    check_no_self_trigger,
    check_staging_triggers_nothing,
)


def check_stack(resources: Sequence[Resource], today: dt.date) -> list[Violation]:
    """Every rule over a whole stack: what `pulumi preview --policy-pack policy/` would report."""
    violations = [v for rule in STACK_RULES for v in rule(resources)]
    for resource in resources:
        violations += check_iam_no_wildcard_action(resource)
        violations += check_runtime_supported(resource, today)
    return violations
