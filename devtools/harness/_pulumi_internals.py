"""The Pulumi SDK internals the mocked-evaluation harness cannot do without, and nothing else.

Pinned: ``pulumi==3.272.0`` (requirements.txt). ``tests/devtools/harness/test_harness_pulumi_internals.py``
is the canary: after an upgrade it fails, naming the SDK and this version, when one of these changed.

Everything else in the harness uses the SDK's public surface: ``pulumi.runtime.reset_options``,
``set_all_config``, ``set_mocks``, ``Mocks``, ``test`` (which runs the program and awaits its outputs),
``get_root_resource`` and ``rpc.deserialize_properties`` / ``rpc.is_rpc_secret`` / ``rpc.unwrap_rpc_secret``.
What is left here has no public equivalent:

* **Resource options.** ``Mocks.new_resource`` receives ``MockResourceArgs`` (type, name, inputs, provider),
  not the options the tests check: ``depends_on``, ``protect``, ``retain_on_delete``, ``aliases``,
  ``import_``, the parent, the dependencies through inputs. Only the ``RegisterResource`` request carries
  them, and only the monitor sees it: :func:`recording_monitor` subclasses
  ``pulumi.runtime.mocks.MockMonitor`` (``set_mocks`` takes a ``monitor=``, but the class is not exported
  from ``pulumi.runtime``), and reads the request's fields (``RegisterResourceRequest`` of Pulumi's
  resource monitor protocol) and the monitor's ``resources`` registrations.
* **Stack outputs.** ``pulumi.export`` stores into the root ``Stack`` resource's ``outputs`` dict, which
  the engine receives through ``RegisterResourceOutputs``; under mocks ``set_mocks`` registers the root
  stack's outputs before the program runs, so no monitor call ever carries them: :func:`stack_exports`
  reads the dict.
* **Deprecated arguments.** The SDK logs a deprecated class, and deprecated fields of nested ``*Args``
  objects, but not a deprecated top-level keyword argument; generated ``*Args`` classes mark the property
  getters with ``_pulumi_deprecated_callable`` and their wire name with ``_pulumi_name``
  (:func:`deprecated_wire_names`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

PINNED = "pulumi==3.272.0"

# Attribute names the SDK's code generator puts on the property getters of `*Args` classes
# (pulumi/_types.py: _PULUMI_DEPRECATED_CALLABLE, _PULUMI_NAME).
DEPRECATED_MARKER = "_pulumi_deprecated_callable"
WIRE_NAME_MARKER = "_pulumi_name"

# The RegisterResourceRequest fields read by `recording_monitor` (pulumi/proto/resource.proto).
REQUEST_FIELDS = (
    "type",
    "name",
    "parent",
    "custom",
    "object",
    "dependencies",
    "propertyDependencies",
    "protect",
    "retainOnDelete",
    "aliases",
    "importId",
)


@dataclass(frozen=True)
class Registration:
    """One RegisterResource call: the request's fields that matter, and what the mocks returned."""

    urn: str
    type: str
    name: str
    parent: str | None  # parent URN
    custom: bool
    inputs: dict[str, Any]  # deserialized as the mocks received them
    dependencies: tuple[str, ...]  # every URN it waits for (explicit and through inputs)
    property_dependencies: frozenset[str]  # the URNs it waits for through its inputs
    protect: bool
    retain_on_delete: bool
    aliases: tuple[dict[str, Any], ...]  # the aliases option as sent: {"urn": ...} or {"spec": {...}}
    id: str | None  # what the mocks returned
    state: dict[str, Any]  # what the mocks returned (inputs and computed outputs)
    import_id: str | None = None  # the import_ option: the ID of an existing resource to adopt


def recording_monitor(mocks: Any) -> Any:
    """A ``MockMonitor`` for ``pulumi.runtime.set_mocks(mocks, monitor=...)`` that also keeps each request.

    Its ``registrations()`` lists every resource but the root stack, as :class:`Registration` values, in
    registration order.
    """
    from google.protobuf import json_format
    from pulumi.runtime import rpc
    from pulumi.runtime.mocks import MockMonitor

    class _Recording(MockMonitor):
        def __init__(self) -> None:
            super().__init__(mocks)
            self._lock = threading.Lock()
            self._requests: list[tuple[str, Any]] = []

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type == "pulumi:pulumi:Stack":
                return response
            with self._lock:
                self._requests.append((response.urn, request))
            return response

        def registrations(self) -> list[Registration]:
            with self._lock:
                requests = list(self._requests)
            return [self._registration(urn, request) for urn, request in requests]

        def _registration(self, urn: str, request: Any) -> Registration:
            registered = self.resources.get(urn)
            return Registration(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                inputs=rpc.deserialize_properties(request.object),
                dependencies=tuple(request.dependencies),
                property_dependencies=frozenset(
                    u for deps in request.propertyDependencies.values() for u in deps.urns
                ),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                aliases=tuple(json_format.MessageToDict(alias) for alias in request.aliases),
                import_id=request.importId or None,
                id=registered.id if registered is not None else None,
                state=dict(registered.state) if registered is not None else {},
            )

    return _Recording()


def stack_exports() -> dict[str, Any]:
    """What the program passed to ``pulumi.export`` so far (values may be Outputs)."""
    import pulumi

    root = pulumi.runtime.get_root_resource()
    if root is None:
        return {}
    return dict(root.outputs)  # type: ignore[attr-defined]


def deprecated_wire_names(args_class: type | None) -> list[str]:
    """The wire names of the properties ``args_class`` (a generated ``*Args`` class) marks deprecated."""
    found = []
    for attr in vars(args_class or object).values():
        getter = attr.fget if isinstance(attr, property) else None
        if getter is not None and DEPRECATED_MARKER in getter.__dict__:
            wire = getter.__dict__.get(WIRE_NAME_MARKER)
            if isinstance(wire, str):
                found.append(wire)
    return found
