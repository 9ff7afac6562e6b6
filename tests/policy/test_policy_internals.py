"""Canary of policy/_pulumi_policy_internals.py: what the pack needs beyond pulumi_policy's documented API.

Each test fails with a message naming pulumi-policy, the installed and the pinned version and what changed,
so an upgrade that breaks the pack's handling of preview unknowns says where to look.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import version

import _pulumi_policy_internals as internals
import pulumi_policy.policy
import pulumi_policy.proxy
import pytest
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

INSTALLED = version("pulumi-policy")
UNKNOWN = object()


def broken(what: str) -> str:
    return (
        f"pulumi-policy {INSTALLED} (the pack was written against {internals.PINNED}): {what}. "
        "Update policy/_pulumi_policy_internals.py for this version."
    )


def test_the_unknown_sentinels_are_still_strings_of_the_proxy_module():
    names = [n for n in vars(pulumi_policy.proxy) if n.startswith("UNKNOWN_") and n.endswith("_VALUE")]
    current = {getattr(pulumi_policy.proxy, n) for n in names}
    assert current == set(internals.UNKNOWN_SENTINELS), broken(
        f"pulumi_policy.proxy's UNKNOWN_*_VALUE sentinels are now {sorted(names)}"
    )
    assert all(isinstance(s, str) for s in current), broken("an unknown sentinel is no longer a string")


def test_the_engine_props_are_still_mappings_and_sequences_that_raise_on_unknowns():
    # GIVEN props as the SDK hands them to a policy, with unknowns nested in a dict and a list
    props = unknown_checking_proxy(
        {"name": "b", "flags": [True, UNKNOWN_NUMBER_VALUE], "rules": {"arn": UNKNOWN_STRING_VALUE}}
    )
    assert isinstance(props, Mapping), broken("the props proxy is no longer a Mapping")
    assert isinstance(props["flags"], Sequence), broken("a list inside the props is no longer a Sequence")
    with pytest.raises(pulumi_policy.proxy.UnknownValueError) as raised:
        props["rules"]["arn"]
    assert raised.value.unknown_type_sentinel == UNKNOWN_STRING_VALUE, broken(
        "UnknownValueError no longer carries the unknown_type_sentinel"
    )
    # WHEN the pack unwraps them THEN the known half is plain and every unknown is marked
    assert internals.unwrap(props, UNKNOWN) == {
        "name": "b",
        "flags": [True, UNKNOWN],
        "rules": {"arn": UNKNOWN},
    }, broken("the proxies no longer unwrap through their Mapping/Sequence interface")


def test_the_engine_still_reports_a_raised_unknown_value_error_as_not_runnable_during_preview():
    assert pulumi_policy.policy.UnknownValueError is internals.UnknownValueError, broken(
        "the policy engine no longer catches pulumi_policy.proxy.UnknownValueError"
    )
    error = internals.not_known_yet("not known yet: p: policy")
    assert isinstance(error, pulumi_policy.proxy.UnknownValueError)
    assert error.message == "not known yet: p: policy", broken(
        "UnknownValueError.message is no longer settable"
    )
