"""Moving the components under `DataPipeline` replaces nothing.

The fixture holds the URN of every resource the program declared at commit d8faf7c, before `DataPipeline`
existed (tests/components/urn_support.py regenerates it). Against a stack holding exactly those, the engine
must take every one of them over, through its URN or an alias, with exactly one resource of today's program:
no delete, no create, no replacement (a replaced bucket would lose its data). The aliases are the ones the
SDK sent in RegisterResource, resolved and inherited as the engine does (urn_support.match_old_state).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from urn_support import VARIANTS, fixture_path, make_urn, match_old_state

from devtools.harness import DeclaredStack, Secret
from handlers.contract import BUCKET_ROLES

PROJECT = "data-pipeline"
PIPELINE = "data-pipeline:pipeline:DataPipeline"
OLD = json.loads(fixture_path("d8faf7c").read_text())


# What was added after d8faf7c creates resources rather than taking old ones over: the VPC endpoints
# component's, and each stage's over-budget alarm.
def is_new(urn: str) -> bool:
    return "data-pipeline:network:ServiceEndpoints" in urn or urn.endswith("-over-budget")


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, evaluate) -> tuple[str, str, DeclaredStack]:
    """(variant, stack name, the stack as today's program declares it): one evaluation per variant for the
    module, which only reads it."""
    key = request.param
    stack, overrides = VARIANTS[key]
    if key == "dev":
        return key, stack, request.getfixturevalue("dev_stack")
    if key == "prod":
        return key, stack, request.getfixturevalue("prod_stack")
    return key, stack, evaluate(stack, {name: Secret(value) for name, value in overrides.items()})


def test_the_fixture_is_the_old_program_of_every_variant():
    assert OLD["commit"].startswith("d8faf7c")
    assert set(OLD["urns"]) == set(VARIANTS)
    assert {key: len(urns) for key, urns in OLD["urns"].items()} == {
        "dev": 77,
        "prod": 80,
        "dev-database-url": 82,
    }


def test_every_old_resource_is_taken_over_by_exactly_one_resource(variant):
    # GIVEN a stack deployed by the old program
    key, stack, declared = variant
    old = set(OLD["urns"][key])
    # WHEN today's program is matched against it as the engine would
    matches = match_old_state(declared.resources, stack, PROJECT, old)
    # THEN every old resource is taken over, each by one resource, so the engine deletes nothing
    taken = [m.old_urn for m in matches if m.old_urn is not None]
    # (an old URN left here would be deleted, and its resource created anew)
    assert sorted(old - set(taken)) == []
    assert len(taken) == len(set(taken)) == len(old)
    # AND the one resource created is the DataPipeline component itself (a component: nothing in AWS),
    # besides the VPC endpoints the old program never declared (prod's vpc.serviceAccess: endpoints) and the
    # over-budget alarms
    created = [m.urn for m in matches if m.old_urn is None and not is_new(m.urn)]
    assert created == [make_urn(stack, PROJECT, "", PIPELINE, "pipeline")]


def test_every_resource_moved_and_is_matched_through_an_alias(variant):
    # GIVEN today's program, where every resource sits under DataPipeline
    key, stack, declared = variant
    old = set(OLD["urns"][key])
    matches = match_old_state(declared.resources, stack, PROJECT, old)
    # THEN no old URN is a URN of today's program: each is taken over through an alias
    assert {m.urn for m in matches} & old == set()
    assert all(m.old_urn in m.aliases for m in matches if m.old_urn is not None)


def test_without_the_aliases_every_resource_would_be_replaced(variant):
    # GIVEN the same program with the aliases left out of every RegisterResource request
    key, stack, declared = variant
    bare = [replace(r, aliases=()) for r in declared.resources]
    # THEN the engine would find none of the old resources: all would be created anew and the old deleted
    matches = match_old_state(bare, stack, PROJECT, set(OLD["urns"][key]))
    assert [m.old_urn for m in matches if m.old_urn is not None] == []


def test_each_component_under_the_pipeline_names_its_old_root_level_place(dev_stack):
    # GIVEN the components DataPipeline declares
    [pipeline] = dev_stack.by_type(PIPELINE)
    children = dev_stack.children(pipeline)
    assert {r.name for r in children} >= {*BUCKET_ROLES, "shared-layer", "observability"}
    # THEN each one's RegisterResource carried exactly the alias "no parent" (the root stack), which its own
    # children inherit
    for child in children:
        assert [a["spec"].get("noParent") for a in child.aliases] == [True], child.name
    # AND nothing deeper names a former parent of its own (the provider's type aliases keep the parent)
    deeper = [r for r in dev_stack.resources if r.parent not in (None, pipeline.urn) and r is not pipeline]
    moved = [
        r.name
        for r in deeper
        for a in r.aliases
        if "urn" in a or a["spec"].get("noParent") or a["spec"].get("parentUrn")
    ]
    assert moved == []
