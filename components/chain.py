"""The declared trigger/write graph of the pipeline and its loop-freedom invariant (pure).

Each stage is triggered by object-created events at some locations (bucket, prefix, suffix) and writes
objects at others. An S3 -> Lambda chain loops, and bills for every turn, as soon as a stage writes where
it or an earlier stage is triggered; `loop_problems` finds every such cycle before any resource exists.
The graph is built from the stage table (`components.stage_table`), and the same graph drives the
notification filters and the S3 statements of each stage's policy, so what is checked is exactly what is
deployed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from components import stage_table
from components.stage_table import Keys


@dataclass(frozen=True)
class Location:
    """A set of object keys in one bucket: every key starting with `prefix` and ending with `suffix`."""

    bucket: str
    """Bucket role: raw, processed or analytics."""

    prefix: str
    """Key prefix ("" matches every key)."""

    suffix: str = ""
    """Key suffix ("" matches every key)."""

    @classmethod
    def of(cls, bucket: str, keys: Keys) -> Location:
        """`keys` in the bucket with role `bucket`."""
        return cls(bucket, keys.prefix, keys.suffix)

    def overlaps(self, other: Location) -> bool:
        """Whether some key could be in both sets."""
        if self.bucket != other.bucket:
            return False
        prefixes_meet = self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix)
        suffixes_meet = self.suffix.endswith(other.suffix) or other.suffix.endswith(self.suffix)
        return prefixes_meet and suffixes_meet

    @property
    def key_pattern(self) -> str:
        """The keys as an IAM resource pattern relative to the bucket ARN."""
        return f"{self.prefix}*{self.suffix}"


@dataclass(frozen=True)
class StageNode:
    """One stage: where it is triggered and where it writes."""

    stage: str
    """The stage's name (ingestion, processing or analytics)."""

    triggers: tuple[Location, ...]
    """Object-created events here invoke the stage."""

    writes: tuple[Location, ...]
    """The stage puts objects here."""


@dataclass(frozen=True)
class ChainGraph:
    """The stages in chain order."""

    nodes: tuple[StageNode, ...]
    """One node per stage, in chain order."""

    def node(self, stage: str) -> StageNode:
        for node in self.nodes:
            if node.stage == stage:
                return node
        raise KeyError(stage)

    def triggers_by_bucket(self) -> dict[str, list[tuple[str, Location]]]:
        """bucket role -> [(stage, trigger location)], in chain order; one notification per bucket."""
        grouped: dict[str, list[tuple[str, Location]]] = {}
        for node in self.nodes:
            for trigger in node.triggers:
                grouped.setdefault(trigger.bucket, []).append((node.stage, trigger))
        return grouped


class ChainLoopError(ValueError):
    """The declared graph lets a stage trigger itself, directly or through later stages."""


def declared_chain(input_prefix: str, input_suffixes: Iterable[str]) -> ChainGraph:
    """The pipeline as the stage table declares it, with the configured input (docs/architecture.md,
    "The chain")."""
    suffixes = tuple(input_suffixes)
    return ChainGraph(
        nodes=tuple(
            StageNode(
                stage=stage.name,
                triggers=tuple(
                    Location.of(stage.source, keys) for keys in stage.trigger_keys(input_prefix, suffixes)
                ),
                writes=tuple(Location.of(stage.destination, keys) for keys in stage.writes),
            )
            # Read at call time: the stage table is the one source (the tests replace it to break the chain).
            for stage in stage_table.STAGE_TABLE
        )
    )


def edges(graph: ChainGraph) -> dict[str, set[str]]:
    """stage -> the stages its writes can trigger."""
    return {
        a.stage: {b.stage for b in graph.nodes if any(w.overlaps(t) for w in a.writes for t in b.triggers)}
        for a in graph.nodes
    }


def loop_problems(graph: ChainGraph) -> list[str]:
    """Every cycle in the graph, each as 'a -> b -> a' with the locations that close it; [] if none."""
    succ = edges(graph)
    problems: list[str] = []
    seen_cycles: set[frozenset[str]] = set()

    def visit(path: list[str]) -> None:
        for nxt in sorted(succ[path[-1]]):
            if nxt in path:
                cycle = [*path[path.index(nxt) :], nxt]
                members = frozenset(cycle)
                if members not in seen_cycles:
                    seen_cycles.add(members)
                    problems.append(_describe(graph, cycle))
            else:
                visit([*path, nxt])

    for node in graph.nodes:
        visit([node.stage])
    return problems


def _describe(graph: ChainGraph, cycle: list[str]) -> str:
    last, first = graph.node(cycle[-2]), graph.node(cycle[-1])
    pairs = [
        f"{w.bucket}:{w.key_pattern} overlaps trigger {t.bucket}:{t.key_pattern}"
        for w in last.writes
        for t in first.triggers
        if w.overlaps(t)
    ]
    return f"{' -> '.join(cycle)} ({'; '.join(pairs)})"


def check_loop_free(graph: ChainGraph) -> None:
    """Raise `ChainLoopError` naming every cycle; a recursive S3 -> Lambda loop costs real money."""
    problems = loop_problems(graph)
    if problems:
        raise ChainLoopError("the pipeline would trigger itself: " + " | ".join(problems))
