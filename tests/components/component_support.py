"""Lookups the component tests share: a component's one child of a type, in the evaluated program."""

from __future__ import annotations

from collections import Counter

from devtools.harness import DeclaredResource, DeclaredStack

STAGE = "data-pipeline:stage:PipelineStage"
BUCKET = "data-pipeline:bucket:DataBucket"


def child(stack: DeclaredStack, component: str, component_type: str, type_: str) -> DeclaredResource:
    """The one child of type `type_` of the component `component` (of type `component_type`)."""
    parent = stack.get(component, component_type)
    (found,) = [r for r in stack.children(parent) if r.type == type_]
    return found


def child_types(stack: DeclaredStack, component: str, component_type: str) -> Counter[str]:
    """How many children of each type the component `component` (of type `component_type`) has."""
    return Counter(r.type for r in stack.children(stack.get(component, component_type)))


def stage_child(stack: DeclaredStack, stage: str, type_: str) -> DeclaredResource:
    return child(stack, stage, STAGE, type_)


def bucket_child(stack: DeclaredStack, role: str, type_: str) -> DeclaredResource:
    return child(stack, role, BUCKET, type_)
