"""Reading the stack config from the Pulumi runtime through its public API, and `load_stack_config`, the
program's entry: read, then `parse_config`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from components.config.model import PipelineConfig
from components.config.parse import parse_config
from components.config.schema import NAMESPACE, TOP_LEVEL_KEYS


def load_stack_config(project_dir: Path) -> PipelineConfig:
    """The validated config of the stack being deployed (`read_stack_config`, then `parse_config`)."""
    import pulumi

    raw, secret_keys = read_stack_config(project_dir)
    return parse_config(
        raw,
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        secret_keys=secret_keys,
        project_dir=project_dir,
        # The AWS provider's region: aws:region, else the environment (as the provider reads it).
        region=pulumi.Config("aws").get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION"),
    )


def read_stack_config(project_dir: Path | None = None) -> tuple[dict[str, Any], frozenset[str]]:
    """Every `data-pipeline:` value the program was given (keys without namespace), and which are secret.

    The adapter between the Pulumi runtime and `parse_config`. Values are read with `pulumi.Config`, secrecy
    with `pulumi.runtime.is_config_secret` and `get_config_secret_keys_env`. Unknown keys can be refused only
    if the program knows every key it was given, and the SDK has no public call that lists them, so the names
    come from where the config is handed over (`_config_names`).
    """
    import pulumi
    from pulumi import runtime

    config = pulumi.Config(NAMESPACE)
    names = _config_names(project_dir) | set(TOP_LEVEL_KEYS)
    raw = {name: value for name in sorted(names) if (value := config.get(name)) is not None}
    secret_full_keys = set(runtime.get_config_secret_keys_env())
    secrets = frozenset(
        name
        for name in raw
        if config.full_key(name) in secret_full_keys or runtime.is_config_secret(config.full_key(name))
    )
    return raw, secrets


def _config_names(project_dir: Path | None) -> set[str]:
    """The names (without namespace) of the `data-pipeline:` keys the program was given.

    - `pulumi up` / `preview` (the Pulumi CLI and the Automation API's local programs): the language host
      hands the program the stack's whole resolved config (the stack file, ESC environments, `--config`) as
      `PULUMI_CONFIG`, which the public `pulumi.runtime.get_config_env()` parses. That is the deploy path, and
      it needs nothing else.
    - Run in-process (Pulumi's mocks, as `devtools.harness` runs the program; an Automation API inline
      program), the program is given its config through the public `pulumi.runtime.set_all_config`, and no
      public call lists what it set. The keys of the stack file, `Pulumi.<stack>.yaml`, are listed (its format
      is documented), and the keys set in-process besides, from `_in_process_config_keys`.
    """
    import pulumi
    from pulumi import runtime

    if os.environ.get("PULUMI_CONFIG"):
        full_keys = set(runtime.get_config_env())
    else:
        full_keys = _stack_file_keys(project_dir, pulumi.get_stack()) | _in_process_config_keys()
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix) :] for key in full_keys if key.startswith(prefix)}


def _stack_file_keys(project_dir: Path | None, stack: str) -> set[str]:
    """The full keys of `Pulumi.<stack>.yaml`'s `config:` (none without a project directory or stack file)."""
    import yaml

    path = None if project_dir is None else project_dir / f"Pulumi.{stack}.yaml"
    if path is None or not path.is_file():
        return set()
    document = yaml.safe_load(path.read_text()) or {}
    return {str(key) for key in (document.get("config") or {})}


def _in_process_config_keys() -> set[str]:
    """The full keys `pulumi.runtime.set_all_config` set, for a program run in-process only.

    pulumi 3.272 keeps them in `pulumi.runtime.config.CONFIG`, a module attribute without an underscore that
    `pulumi.runtime` does not export and no document describes; nothing public lists them. Never read on
    `pulumi up` (see `_config_names`). Should an SDK upgrade drop it, this returns nothing: keys of the stack
    file are still checked, and the canary (tests/components/test_components_config_reading.py) fails.
    """
    from pulumi.runtime import config as runtime_config

    holder = getattr(runtime_config, "CONFIG", None)
    values = holder.get() if holder is not None and hasattr(holder, "get") else {}
    return {str(key) for key in values} if isinstance(values, dict) else set()
