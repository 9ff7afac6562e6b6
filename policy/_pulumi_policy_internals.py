"""What the pack needs from pulumi_policy beyond its documented API, in one place.

Pinned: ``pulumi-policy==1.21.0`` (policy/requirements.txt, requirements-dev.txt).
``tests/policy/test_policy_internals.py`` is the canary: after an upgrade it fails, naming pulumi-policy
and this version, when one of these changed.

The SDK hands a policy the resource's properties wrapped in proxies that raise ``UnknownValueError`` on the
first value not known during a preview. A rule must see the known half of a resource (its literal flags,
its property dependencies) and decide the rest at ``pulumi up``, so the pack:

* unwraps the proxies (:func:`unwrap`) through their public ``Mapping``/``Sequence`` interface, catching
  ``UnknownValueError`` per value and keeping its ``unknown_type_sentinel``; no private attribute of the
  proxies (such as their ``__target`` key) is read;
* recognises the SDK's unknown sentinels (:data:`UNKNOWN_SENTINELS`);
* reports a rule that needs values not known yet by raising ``UnknownValueError`` itself
  (:func:`not_known_yet`): the SDK turns that exception, and only that one, into the advisory
  "can't run policy ... during preview: <message>", and ``pulumi up`` runs the policy again.

Both the exception and the sentinels live in ``pulumi_policy.proxy``, which the package does not re-export:
that module is the internal dependency. The CLI runs the pack with ``policy/`` on ``sys.path``, so this is
imported as a top-level module, like ``pipeline_rules``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

PINNED = "pulumi-policy==1.21.0"

UNKNOWN_SENTINELS = frozenset(
    {
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
    }
)
"""The strings the engine puts where a value is not known during a preview."""


def unwrap(value: Any, unknown: Any) -> Any:
    """``value`` as plain dicts, lists and scalars, with ``unknown`` wherever a value is not known yet."""
    if isinstance(value, str):
        return unknown if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        return {key: unwrap(_item(value, key), unknown) for key in value}
    if isinstance(value, Sequence):
        return [unwrap(_item(value, index), unknown) for index in range(len(value))]
    return value


def _item(container: Any, key: Any) -> Any:
    try:
        return container[key]
    except UnknownValueError as error:  # a proxy refuses to hand out an unknown value: keep its sentinel
        return error.unknown_type_sentinel


def not_known_yet(message: str) -> UnknownValueError:
    """The exception that makes the SDK report a policy as "can't run during preview: <message>"."""
    error = UnknownValueError(UNKNOWN_STRING_VALUE, [])
    error.message = message
    return error
