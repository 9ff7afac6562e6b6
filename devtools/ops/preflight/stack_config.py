"""The stack's config as `pulumi up` would see it: from the Pulumi CLI, else from the stack file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.config import NAMESPACE, PipelineConfig, parse_config

PROJECT_DIR = Path(__file__).resolve().parents[3]


def read_config(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, Any], frozenset[str]]:
    """The stack's `data-pipeline:` values (without namespace) and `aws:region` under "aws:region"."""
    if shutil.which("pulumi"):
        done = subprocess.run(
            ["pulumi", "config", "--stack", stack, "--json", "--show-secrets"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            entries = json.loads(done.stdout)
            values = {k: v.get("objectValue", v.get("value")) for k, v in entries.items()}
            secret = frozenset(k.removeprefix(f"{NAMESPACE}:") for k, v in entries.items() if v.get("secret"))
            return values, secret
    import yaml

    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise SystemExit(f"no stack config {path}")
    document = yaml.safe_load(path.read_text()) or {}
    values = {}
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, Mapping) and "secure" in value:
            print(
                f"preflight: {key} is encrypted and the Pulumi CLI is not on PATH: not checked",
                file=sys.stderr,
            )
            continue
        values[key] = value
    return values, frozenset()


def load(stack: str, region: str | None, project_dir: Path = PROJECT_DIR) -> tuple[PipelineConfig, str]:
    import yaml

    values, secret = read_config(stack, project_dir)
    region = region or values.get("aws:region")
    if not region:
        raise SystemExit("preflight: no aws:region in the stack config; pass --region")
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]
    prefix = f"{NAMESPACE}:"
    raw = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    cfg = parse_config(
        raw, project=project, stack=stack, secret_keys=secret, project_dir=project_dir, region=str(region)
    )
    return cfg, str(region)
