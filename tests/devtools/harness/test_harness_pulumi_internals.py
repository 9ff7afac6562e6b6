"""Canary of devtools/harness/_pulumi_internals.py: the Pulumi SDK internals the harness relies on.

Each test fails with a message naming the SDK, the installed and the pinned version and what changed, so
an upgrade of `pulumi` that breaks the harness says where to look instead of failing somewhere in a tier.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
from pathlib import Path

import pytest

from devtools.harness import _pulumi_internals as internals
from devtools.harness import evaluate_stack

INSTALLED = version("pulumi")


def broken(what: str) -> str:
    return (
        f"pulumi {INSTALLED} (the harness was written against {internals.PINNED}): {what}. "
        "Update devtools/harness/_pulumi_internals.py for this version."
    )


def test_the_mock_monitor_can_still_be_subclassed_and_handed_to_set_mocks():
    from pulumi.runtime import set_mocks
    from pulumi.runtime.mocks import MockMonitor

    assert "monitor" in inspect.signature(set_mocks).parameters, broken("set_mocks() takes no monitor=")
    assert list(inspect.signature(MockMonitor.__init__).parameters) == ["self", "mocks"], broken(
        "MockMonitor(mocks) has another constructor"
    )
    assert callable(getattr(MockMonitor, "RegisterResource", None)), broken(
        "MockMonitor.RegisterResource(request) is gone"
    )
    assert MockMonitor.ResourceRegistration._fields == ("urn", "id", "state"), broken(
        "MockMonitor.resources no longer holds ResourceRegistration(urn, id, state)"
    )


def test_the_register_resource_request_still_has_the_fields_the_harness_reads():
    from pulumi.runtime.proto import resource_pb2

    fields = set(resource_pb2.RegisterResourceRequest.DESCRIPTOR.fields_by_name)
    missing = [name for name in internals.REQUEST_FIELDS if name not in fields]
    assert not missing, broken(f"RegisterResourceRequest lacks {missing}")


def test_generated_args_classes_still_mark_deprecated_properties():
    from pulumi import _types
    from pulumi_aws.s3 import BucketArgs

    assert (_types._PULUMI_DEPRECATED_CALLABLE, _types._PULUMI_NAME) == (
        internals.DEPRECATED_MARKER,
        internals.WIRE_NAME_MARKER,
    ), broken("the *Args property markers were renamed")
    # pulumi_aws 7 marks Bucket's inline `acl` deprecated (test_harness_declared.py checks the warning it
    # leads to).
    assert "acl" in internals.deprecated_wire_names(BucketArgs), broken(
        f"no deprecated property found on pulumi_aws {version('pulumi_aws')} BucketArgs (acl)"
    )


def test_a_probe_program_is_recorded_with_its_options_and_exports(tmp_path: Path):
    # GIVEN a one-file program with a parent, an explicit dependency, protect, retain_on_delete, an alias
    # and an export
    (tmp_path / "Pulumi.yaml").write_text("name: internals-probe\nruntime: python\n")
    (tmp_path / "Pulumi.probe.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(
        "import pulumi\n"
        "import pulumi_random as random\n"
        "parent = pulumi.ComponentResource('probe:index:Parent', 'parent')\n"
        "first = random.RandomId('first', byte_length=4, opts=pulumi.ResourceOptions(parent=parent))\n"
        "third = random.RandomId('third', byte_length=4)\n"
        "second = random.RandomId('second', byte_length=4, keepers={'first': first.hex},\n"
        "    opts=pulumi.ResourceOptions(depends_on=[third], protect=True, retain_on_delete=True,\n"
        "        aliases=[pulumi.Alias(name='old-second')]))\n"
        "pulumi.export('firstHex', first.hex)\n"
    )
    # WHEN the harness evaluates it
    try:
        stack = evaluate_stack("probe", project_dir=tmp_path)
    except Exception as exc:  # the canary's message matters more than the traceback
        pytest.fail(broken(f"a probe program no longer evaluates under the recording monitor: {exc!r}"))
    # THEN every option, dependency and export is recorded
    parent, first, second, third = (stack.get(name) for name in ("parent", "first", "second", "third"))
    assert first.parent == parent.urn, broken("RegisterResourceRequest.parent is not the parent URN")
    assert (second.protect, second.retain_on_delete) == (True, True), broken(
        "RegisterResourceRequest.protect / retainOnDelete no longer carry the options"
    )
    assert [a.get("spec", {}).get("name") for a in second.aliases] == ["old-second"], broken(
        "RegisterResourceRequest.aliases no longer carries the aliases option as Alias messages"
    )
    assert second.depends_on == (third.urn,), broken("dependencies / propertyDependencies changed meaning")
    assert first.urn in second.dependencies, broken("dependencies no longer include those through inputs")
    assert first.id, broken("MockMonitor.resources no longer holds the mocks' ID")
    assert first.outputs["hex"], broken("MockMonitor.resources no longer holds the mocks' state")
    assert stack.outputs == {"firstHex": first.outputs["hex"]}, broken(
        "the root Stack's `outputs` dict no longer holds what pulumi.export stored"
    )
