"""`Component`, the base of this program's ComponentResources: what each of them did first, written once."""

from __future__ import annotations

from typing import ClassVar

import pulumi

Opts = pulumi.ResourceOptions | None
"""The `opts` argument of a component."""


class Component(pulumi.ComponentResource):
    """A ComponentResource registered under its class's `TYPE`, with `child_opts`, the options each resource
    it declares takes: `parent=self`, so the child's URN, lifetime and the component's aliases follow it.
    A subclass declares its children in `__init__` after `super().__init__(name, opts)`, and ends with
    `register_outputs`."""

    TYPE: ClassVar[str]
    """`data-pipeline:<module>:<Name>`: part of the URN of the component and of each child, so never renamed
    without an alias."""

    child_opts: pulumi.ResourceOptions

    def __init__(self, name: str, opts: Opts = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.child_opts = pulumi.ResourceOptions(parent=self)
