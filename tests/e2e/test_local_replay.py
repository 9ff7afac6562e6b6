"""Recompute after a config change, in the local run: upload, change the window, replay processing
(`python -m devtools replay`'s core on the emulator); the database holds both settings' rollups, kept
apart, each with the exact totals of the file."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from devtools.harness import Secret
from devtools.localrun.command import ReplayingPipeline, ReplayStep, config_with
from devtools.localrun.graph import pipeline_spec
from devtools.localrun.results import read_database
from devtools.localrun.spec import PipelineSpec
from handlers import contract
from handlers.contract import Stage

pytestmark = pytest.mark.network  # the real layer is built from PyPI unless .build/layers already holds it

Replaying = Callable[[PipelineSpec, str], ReplayingPipeline]

RECORDS = [  # (timestamp, value): 1h windows 12:00 and 13:00; 5m windows 12:00, 12:05, 12:55, 13:00
    ("2026-11-24T12:01:00Z", "1.5"),
    ("2026-11-24T12:07:30Z", "2.25"),
    ("2026-11-24T12:59:59Z", "10"),
    ("2026-11-24T13:02:00Z", "0.1"),
]


def expected(window_minutes: int) -> dict[tuple[str, str], tuple[int, Decimal]]:
    found: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    for stamp, value in RECORDS:
        hour, minute = int(stamp[11:13]), int(stamp[14:16])
        start = hour * 60 + minute - (hour * 60 + minute) % window_minutes
        found[(f"{window_minutes}", f"{start // 60:02d}:{start % 60:02d}")].append(Decimal(value))
    return {key: (len(values), sum(values, Decimal(0))) for key, values in found.items()}


def table(url: str, name: str) -> list[dict[str, Any]]:
    """Every row of table ``name``, read as the local run reads the database for its summary."""
    return read_database(url, sample_rows=100_000)[name]["sample"]


def rollups(url: str) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """(window minutes, window start HH:MM) → (count, exact sum) of metric value."""
    minutes = {"5m": "5", "1h": "60"}
    found: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for row in table(url, "pipeline_rollup_metrics"):
        if row["metric"] != "value":
            continue
        key = (minutes[str(row["window_size"])], str(row["window_start"])[11:16])
        old = found.get(key, (0, Decimal(0)))
        found[key] = (old[0] + row["count"], old[1] + Decimal(str(row["sum"])))
    return found


@pytest.fixture
def replaying(interpreter: Any, local_layer: Path, runtime_cache: Path, tmp_path: Path) -> Replaying:
    """replaying(spec, database_url): the dev stack's local run, to be replayed."""

    def pipeline(spec: PipelineSpec, url: str) -> ReplayingPipeline:
        return ReplayingPipeline(
            spec,
            layer_archive=local_layer,
            interpreter=interpreter,
            work_dir=tmp_path / "work" / "dev",
            database_url=url,
            cache_dir=runtime_cache,
        )

    return pipeline


def test_changing_the_window_and_replaying_processing_keeps_both_settings(
    evaluate: Any, local_layer: Path, replaying: Replaying, tmp_path: Path
) -> None:
    # GIVEN the dev stack run locally on one file
    data = tmp_path / "input" / "readings.jsonl"
    data.parent.mkdir()
    data.write_text(
        "".join(
            json.dumps(
                {"id": f"r{n}", "timestamp": stamp, "type": "temp", "source": "a", "value": 0}
            ).replace('"value": 0', f'"value": {value}')
            + "\n"
            for n, (stamp, value) in enumerate(RECORDS)
        )
    )
    url = f"sqlite:///{tmp_path / 'pipeline.sqlite'}"
    base = {"database": Secret({"url": url}), "layer": {"archive": str(local_layer)}}
    spec = pipeline_spec(evaluate("dev", base))
    # WHEN the window changes to 5m (the changed stack's processing environment) and processing is replayed
    changed = pipeline_spec(evaluate("dev", {**config_with("dev", ["aggregation.window=5m"]), **base}))
    environment = changed.stage(Stage.PROCESSING).environment
    assert environment[contract.Env.AGGREGATION_WINDOW] == "5m"
    outcome = replaying(spec, url).run_and_replay([data], ReplayStep(Stage.PROCESSING, environment))
    # THEN the one records object was replayed, and the database holds both settings, each exact
    assert outcome.first.ok
    assert outcome.second.ok
    assert (outcome.summary.seen, outcome.summary.sent, outcome.summary.failed) == (1, 1, 0)
    assert rollups(url) == {**expected(60), **expected(5)}
    assert expected(60)[("60", "12:00")] == (3, Decimal("13.75"))
    assert sorted(row["window_size"] for row in table(url, "pipeline_settings")) == sorted(
        (contract.DEFAULT_WINDOW, "5m")
    )


def test_quarantined_records_are_taken_in_again_after_the_limit_is_raised(
    evaluate: Any, local_layer: Path, replaying: Replaying, tmp_path: Path
) -> None:
    # GIVEN a file with one record over a small maxRecordBytes (quarantined) and two that fit
    data = tmp_path / "input" / "mixed.jsonl"
    data.parent.mkdir()
    lines = [
        {"id": "small-1", "timestamp": "2026-11-24T12:01:00Z", "type": "temp", "source": "a", "value": 1},
        {"id": "x" * 300, "timestamp": "2026-11-24T12:02:00Z", "type": "temp", "source": "a", "value": 40},
        {"id": "small-2", "timestamp": "2026-11-24T12:03:00Z", "type": "temp", "source": "a", "value": 2},
    ]
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    url = f"sqlite:///{tmp_path / 'pipeline.sqlite'}"
    base = {"database": Secret({"url": url}), "layer": {"archive": str(local_layer)}}
    spec = pipeline_spec(evaluate("dev", {**base, "maxRecordBytes": 200}))
    # WHEN the limit is raised and ingestion is replayed for quarantined raw objects only
    changed = pipeline_spec(evaluate("dev", {**base, "maxRecordBytes": 4096}))
    outcome = replaying(spec, url).run_and_replay(
        [data], ReplayStep(Stage.INGESTION, changed.stage(Stage.INGESTION).environment, quarantined=True)
    )
    # THEN the first run quarantined one record, the replay sent that one raw object, and the database
    # holds the three records once each (the version's contribution replaced, not added to)
    assert outcome.first.ok
    assert outcome.second.ok
    assert (outcome.summary.seen, outcome.summary.sent) == (1, 1)
    assert rollups(url) == {("60", "12:00"): (3, Decimal(43))}
