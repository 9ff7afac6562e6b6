"""What `DataPipeline` carries into its children's declarations: the aliases of the components existing
stacks declared at the stack's root (`moved_from_root`), and the secrecy of keys set with `--secret`
(`kept_secret`, `secret_environment`)."""

from __future__ import annotations

from typing import Any

import pulumi

from components.config import PipelineConfig


def moved_from_root(parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options of a component that existing stacks declared at the stack's root: its old URN, and through
    inheritance its children's, are aliases of the new ones."""
    return pulumi.ResourceOptions(parent=parent, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])


def kept_secret(cfg: PipelineConfig, key: str, value: Any) -> Any:
    """`value`, as a secret Output when `key` was set with `--secret` (config.KEPT_SECRET_KEYS)."""
    if value is None or not cfg.is_secret(key):
        return value
    return pulumi.Output.secret(value)


def secret_environment(environment: dict[str, Any], secret: frozenset[str]) -> dict[str, Any]:
    """The function environment, each variable that comes from a `--secret` key wrapped as a secret."""
    return {
        name: pulumi.Output.secret(value) if name in secret else value for name, value in environment.items()
    }
