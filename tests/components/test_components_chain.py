"""The loop-freedom invariant over the declared trigger/write graph."""

from __future__ import annotations

from dataclasses import replace

import pytest

from components.chain import (
    ChainGraph,
    ChainLoopError,
    Location,
    StageNode,
    check_loop_free,
    declared_chain,
    edges,
    loop_problems,
)
from components.stage_table import Keys
from devtools.harness import StackEvaluationError
from handlers import contract
from handlers.contract import BucketRole, Stage


def test_the_declared_chain_is_loop_free_and_linear():
    graph = declared_chain(contract.INPUT_PREFIX, contract.INPUT_SUFFIXES)
    assert loop_problems(graph) == []
    assert edges(graph) == {
        Stage.INGESTION: {Stage.PROCESSING},
        Stage.PROCESSING: {Stage.ANALYTICS},
        Stage.ANALYTICS: set(),
    }


def test_quarantine_and_reports_trigger_nothing():
    graph = declared_chain(contract.INPUT_PREFIX, (".json",))
    triggered = [t for node in graph.nodes for t in node.triggers]
    for written in (
        Location(BucketRole.PROCESSED, contract.QUARANTINE_PREFIX, contract.QUARANTINE_SUFFIX),
        Location(BucketRole.ANALYTICS, contract.REPORTS_PREFIX, contract.REPORTS_SUFFIX),
    ):
        assert not any(written.overlaps(t) for t in triggered)


def test_a_stage_writing_where_it_is_triggered_is_a_loop():
    # GIVEN analytics writing its reports under the prefix that triggers it
    graph = ChainGraph(
        nodes=(
            StageNode(
                Stage.ANALYTICS,
                triggers=(
                    Location(BucketRole.ANALYTICS, contract.AGGREGATES_PREFIX, contract.AGGREGATES_SUFFIX),
                ),
                writes=(
                    Location(
                        BucketRole.ANALYTICS,
                        contract.AGGREGATES_PREFIX + contract.REPORTS_PREFIX,
                        contract.REPORTS_SUFFIX,
                    ),
                ),
            ),
        )
    )
    # WHEN the invariant is checked THEN it names the cycle and the overlapping locations
    with pytest.raises(
        ChainLoopError, match=r"analytics -> analytics \(analytics:aggregates/reports/\*\.json overlaps"
    ):
        check_loop_free(graph)


def test_a_stage_writing_where_an_earlier_stage_is_triggered_is_a_loop():
    # GIVEN processing writing back into the processed bucket's records/
    graph = ChainGraph(
        nodes=(
            StageNode(
                Stage.INGESTION,
                (Location(BucketRole.RAW, contract.INPUT_PREFIX, ".json"),),
                (Location(BucketRole.PROCESSED, contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX),),
            ),
            StageNode(
                Stage.PROCESSING,
                (Location(BucketRole.PROCESSED, contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX),),
                (
                    Location(
                        BucketRole.PROCESSED, f"{contract.RECORDS_PREFIX}rollups/", contract.RECORDS_SUFFIX
                    ),
                ),
            ),
        )
    )
    problems = loop_problems(graph)
    assert problems == [
        "processing -> processing "
        "(processed:records/rollups/*.jsonl.gz overlaps trigger processed:records/*.jsonl.gz)"
    ]


def test_a_longer_cycle_through_three_stages_is_found():
    graph = ChainGraph(
        nodes=(
            StageNode("a", (Location("x", "in/"),), (Location("y", "mid/"),)),
            StageNode("b", (Location("y", "mid/"),), (Location("z", "out/"),)),
            StageNode("c", (Location("z", "out/"),), (Location("x", "in/again/"),)),
        )
    )
    assert len(loop_problems(graph)) == 1
    assert loop_problems(graph)[0].startswith("a -> b -> c -> a")


def test_disjoint_suffixes_under_the_same_prefix_do_not_overlap():
    assert not Location("b", "p/", ".json").overlaps(Location("b", "p/", ".gz"))
    assert Location("b", "p/", ".jsonl.gz").overlaps(Location("b", "p/", ".gz"))
    assert Location("b", "", "").overlaps(Location("b", "p/", ".gz"))
    assert not Location("a", "p/", ".gz").overlaps(Location("b", "p/", ".gz"))


def test_the_program_checks_the_invariant_before_declaring_resources(evaluate, monkeypatch):
    # GIVEN a chain whose analytics stage would write where it is triggered (the stage table is the one
    # source of every stage's keys)
    import components.stage_table as stage_table

    broken = tuple(
        replace(
            stage,
            writes=(Keys(contract.AGGREGATES_PREFIX + contract.REPORTS_PREFIX, contract.REPORTS_SUFFIX),),
        )
        if stage.name == Stage.ANALYTICS
        else stage
        for stage in stage_table.STAGE_TABLE
    )
    monkeypatch.setattr(stage_table, "STAGE_TABLE", broken)
    # WHEN the program is evaluated THEN it stops with the loop named
    with pytest.raises(
        StackEvaluationError, match="the pipeline would trigger itself: analytics -> analytics"
    ):
        evaluate("dev")
