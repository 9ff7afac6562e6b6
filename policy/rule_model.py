"""The values the pack's rules work on: resources, violations, the unknown value, and reading props.

A value the engine cannot know yet (during `pulumi preview`) arrives as `UNKNOWN`; a rule that needs
it returns an *undetermined* violation instead of guessing, which the pack reports as "can't run
during preview" and the rule is run again, with every value known, by `pulumi up`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final


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
# Reading props


def lookup(value: Any, *path: str) -> Any:
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


def refers_to(source: Resource, prop: str, value: Any, target: Resource) -> bool | None:
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


def of_type(resources: Iterable[Resource], *types: str) -> list[Resource]:
    return [r for r in resources if r.type in types]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


def statements_of(document: Any) -> list[Mapping[str, Any]] | None:
    """The statements of an IAM/bucket policy given as JSON text or a dict; None when unknown.

    Raises ValueError when the text is not JSON.
    """
    if document is UNKNOWN:
        return None
    if isinstance(document, str):
        document = json.loads(document)
    statements = as_list(lookup(document, "Statement"))
    if any(s is UNKNOWN for s in statements):
        return None
    return [s for s in statements if isinstance(s, Mapping)]
