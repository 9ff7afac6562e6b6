"""The mocked-evaluation harness: the real Pulumi program run under Pulumi's mocks, recorded.

Every test tier, the local run and ``python -m devtools plan`` read the stack through it:
``evaluate_stack(stack, overrides) -> DeclaredStack``.

    declared.py           evaluate_stack, DeclaredStack / DeclaredResource, Secret, stack config files
    mocks.py              the realistic outputs (ARNs, names, IDs) the mocks return for each resource
    plan.py               ``python -m devtools plan``: the declared resources as a tree
    _pulumi_internals.py  the Pulumi SDK internals this needs, and why (canary: tests/devtools/harness)
    __main__.py           ``python -m devtools.harness``: list the resources, or time the evaluation
"""

from devtools.harness.declared import (
    PROJECT_DIR,
    DeclaredResource,
    DeclaredStack,
    Secret,
    StackEvaluationError,
    deprecated_arguments,
    evaluate_stack,
    is_secret,
    load_stack_config,
    make_stub_layer,
    plain,
)
from devtools.harness.mocks import DEFAULT_REGION, MOCK_ACCOUNT_ID

__all__ = [
    "DEFAULT_REGION",
    "MOCK_ACCOUNT_ID",
    "PROJECT_DIR",
    "DeclaredResource",
    "DeclaredStack",
    "Secret",
    "StackEvaluationError",
    "deprecated_arguments",
    "evaluate_stack",
    "is_secret",
    "load_stack_config",
    "make_stub_layer",
    "plain",
]
