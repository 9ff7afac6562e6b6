"""URNs as the Pulumi engine computes them, the aliases it derives, and the URNs an older program declared.

The mocked evaluation records what the program sends to the resource monitor, but Pulumi's Python mock monitor
(3.272) names resources its own way: it keeps only the parent's last type and keeps the root stack's type,
where the engine chains every ancestor's type and leaves the root stack's out. What `pulumi up` would match
against a stack's state is therefore recomputed here, following the engine's step generator
(pkg/resource/deploy: `generateURN`, `collapseAliasToUrn`, `inheritedChildAlias`, `generateAliases`).

Regenerate the fixture of an older program's URNs (it evaluates that commit's program, with that commit's
harness, in a scratch checkout):

    .venv/bin/python tests/components/urn_support.py d8faf7c
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"

# The stacks compared: the two stack files, and dev with a database URL (the stack creates the secret).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "dev-database-url": ("dev", {"database": {"url": "postgresql://u:p@db.internal/analytics"}}),
}
SECRET_VARIANT_KEYS = {"dev-database-url": "database"}


def make_urn(stack: str, project: str, parent_type: str, type_: str, name: str) -> str:
    """resource.NewURN: the parent's qualified type, then the resource's type, then its name."""
    qualified = f"{parent_type}${type_}" if parent_type else type_
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def qualified_type(urn: str) -> str:
    return urn.split("::")[2]


def urn_name(urn: str) -> str:
    return urn.split("::", 3)[3]


def engine_urns(resources: Iterable[Any], stack: str, project: str) -> dict[str, str]:
    """mock URN -> engine URN, for resources given in registration order (a parent before its children).

    Each resource needs `urn`, `type`, `name` and `parent` (the parent's mock URN, or None)."""
    engine: dict[str, str] = {}
    for r in resources:
        parent = engine.get(r.parent) if r.parent else None
        # The root stack, and an unknown parent (only the root stack is never registered as a resource).
        parent_type = "" if parent is None else qualified_type(parent)
        engine[r.urn] = make_urn(stack, project, parent_type, r.type, r.name)
    return engine


def _collapse(
    spec: Mapping[str, Any], goal_type: str, goal_name: str, parent: str | None, stack: str, project: str
) -> str:
    """collapseAliasToUrn for an alias spec (the SDK sends specs: the mock monitor supports aliasSpecs)."""
    name = spec.get("name") or goal_name
    type_ = spec.get("type") or goal_type
    alias_parent = spec.get("parentUrn") or parent
    if spec.get("noParent") or (alias_parent and qualified_type(alias_parent) == ROOT_STACK_TYPE):
        alias_parent = None
    return make_urn(
        spec.get("stack") or stack,
        spec.get("project") or project,
        qualified_type(alias_parent) if alias_parent else "",
        type_,
        name,
    )


def _inherited(
    child_type: str, child_name: str, parent_name: str, parent_alias: str, stack: str, project: str
) -> str:
    """inheritedChildAlias: the child under its parent's old URN, renamed like its parent."""
    alias_name = child_name
    if child_name.startswith(parent_name):
        alias_name = urn_name(parent_alias) + child_name[len(parent_name) :]
    return make_urn(stack, project, qualified_type(parent_alias), child_type, alias_name)


@dataclass(frozen=True)
class Match:
    """One resource of the new program, as the engine would see it against the stack's old state."""

    urn: str
    """The resource's engine URN."""

    aliases: tuple[str, ...]
    """The aliases the engine derives for it (generateAliases)."""

    old_urn: str | None
    """The old resource it takes over: its own URN or the first alias the old state holds; None: created."""


def match_old_state(resources: Iterable[Any], stack: str, project: str, old_urns: set[str]) -> list[Match]:
    """How the engine would match each resource, in registration order, to a stack holding `old_urns`.

    Each resource needs what `engine_urns` needs and `aliases`: the aliases option as the SDK sent it in
    RegisterResource (`{"urn": ...}` or `{"spec": {...}}`; the SDK sends specs, since the mock monitor, like
    the engine, supports aliasSpecs). As in the engine, the URN is looked up before the aliases, and a child
    inherits its parent's alias only when the parent's old state was found through that alias.
    """
    resources = list(resources)
    urns = engine_urns(resources, stack, project)
    found_by_alias: dict[str, str] = {}  # engine URN -> the old URN it was found by (sg.aliases)
    matches = []
    for r in resources:
        urn = urns[r.urn]
        parent = urns.get(r.parent) if r.parent else None
        explicit = []
        for alias in r.aliases:
            if "urn" in alias:
                explicit.append(alias["urn"])
                continue
            spec = dict(alias["spec"])
            if spec.get("parentUrn"):
                # The SDK names the parent by the URN the monitor gave it; the engine uses the parent's alias.
                named = urns.get(spec["parentUrn"], spec["parentUrn"])
                spec["parentUrn"] = found_by_alias.get(named, named)
            explicit.append(_collapse(spec, r.type, r.name, parent, stack, project))
        aliases = list(dict.fromkeys(explicit))
        if parent is not None and parent in found_by_alias:
            parent_alias, parent_name = found_by_alias[parent], urn_name(parent)
            inherited = [_inherited(r.type, r.name, parent_name, parent_alias, stack, project)]
            for a in explicit:
                child_type = qualified_type(a).rsplit("$", 1)[-1]
                inherited.append(
                    _inherited(child_type, urn_name(a), parent_name, parent_alias, stack, project)
                )
            aliases += [a for a in inherited if a not in aliases]
        old = next((u for u in (urn, *aliases) if u in old_urns), None)
        if old is not None and old != urn:
            found_by_alias[urn] = old
        matches.append(Match(urn, tuple(aliases), old))
    return matches


# --- the fixture ------------------------------------------------------------------------------------------

_OLD_PROGRAM = """
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, ".")
from devtools.declared import Secret, evaluate_stack, make_stub_layer
variants = json.loads(sys.argv[1])
secrets = json.loads(sys.argv[2])
out = {}
with tempfile.TemporaryDirectory() as tmp:
    stub = str(make_stub_layer(Path(tmp)))
    for key, (stack, overrides) in variants.items():
        overrides = dict(overrides)
        if key in secrets:
            overrides[secrets[key]] = Secret(overrides[secrets[key]])
        declared = evaluate_stack(stack, {"layer": {"archive": stub}, **overrides}, project_dir=Path("."))
        out[key] = [[r.urn, r.type, r.name, r.parent] for r in declared.resources]
print(json.dumps(out))
"""


class _Row:
    def __init__(self, urn: str, type_: str, name: str, parent: str | None) -> None:
        self.urn, self.type, self.name, self.parent, self.aliases = urn, type_, name, parent, ()


def old_urns_at(commit: str) -> dict[str, list[str]]:
    """variant -> the engine URNs the program of `commit` declares, evaluated by that commit's harness."""
    project = "data-pipeline"
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        done = subprocess.run(
            [sys.executable, "-c", _OLD_PROGRAM, json.dumps(VARIANTS), json.dumps(SECRET_VARIANT_KEYS)],
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        )
    declared = json.loads(done.stdout)
    return {
        key: sorted(engine_urns([_Row(*row) for row in rows], VARIANTS[key][0], project).values())
        for key, rows in declared.items()
    }


def fixture_path(commit: str) -> Path:
    return FIXTURES / f"urns-{commit}.json"


def main(argv: list[str]) -> int:
    commit = argv[0] if argv else "d8faf7c"
    full = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", commit], check=True, capture_output=True, text=True
    ).stdout.strip()
    document = {
        "commit": full,
        "made_by": f".venv/bin/python tests/components/urn_support.py {commit}",
        "what": "the URNs (as the Pulumi engine names them) of every resource the program of this commit "
        "declares, per stack variant (tests/components/urn_support.py: VARIANTS)",
        "urns": old_urns_at(full),
    }
    FIXTURES.mkdir(exist_ok=True)
    fixture_path(commit).write_text(json.dumps(document, indent=1) + "\n")
    print(fixture_path(commit))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
