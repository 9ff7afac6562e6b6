"""The local run with records/ parts (``recordsPartBytes`` small enough to cut the samples): the chain
completes with IAM enforced, every part is processed and loaded, the totals are those of the samples,
and every raw version has exactly one report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from e2e_expected import SAMPLES, expected_from, input_files
from test_local_run import db_totals

from devtools.harness import Secret
from devtools.localrun.graph import pipeline_spec
from devtools.localrun.results import RunResult
from handlers import contract
from handlers.contract import BucketRole
from handlers.events import split_part

pytestmark = pytest.mark.network  # the real layer is built from PyPI unless .build/layers already holds it

PART_BYTES = 1500  # a few records per part: the larger samples take several parts


@pytest.fixture(scope="module")
def parted_run(
    evaluate: Callable[..., Any],
    local_layer: Any,
    run_pipeline: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[RunResult, str, Any]:
    declared = evaluate(
        "dev",
        {
            "database": Secret({"url": "sqlite:////placeholder/replaced-per-run.sqlite"}),
            "layer": {"archive": str(local_layer)},
            "recordsPartBytes": PART_BYTES,
        },
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('parts-db') / 'pipeline.sqlite'}"
    spec = pipeline_spec(declared)
    return run_pipeline(spec, [SAMPLES], database_url=url), url, spec


def test_the_samples_in_parts_complete_with_the_samples_totals_and_one_report_per_version(
    parted_run: tuple[RunResult, str, Any],
) -> None:
    result, url, spec = parted_run
    assert result.ok, result.failures
    processed, analytics = (
        result.objects[spec.bucket(role).name] for role in (BucketRole.PROCESSED, BucketRole.ANALYTICS)
    )
    records = [k for k in processed if k.startswith(contract.RECORDS_PREFIX)]
    parts = [split_part(k, contract.RECORDS_PREFIX, contract.RECORDS_SUFFIX) for k in records]
    # THEN some version was cut into several parts, and each part has its aggregates document
    assert max(part for _, _, part in parts) >= 2
    documents = [k for k in analytics if k.startswith(contract.AGGREGATES_PREFIX)]
    assert len(documents) == len(records)
    # AND the totals are the samples', exactly, and every raw version has one report
    expected = expected_from(input_files(SAMPLES))
    totals = db_totals(url)
    assert totals["records"] == expected.valid
    assert totals["metrics"]["value"]["count"] == expected.value_count
    assert totals["metrics"]["value"]["sum"] == expected.value_sum
    versions = {(rel, tag) for rel, tag, _ in parts}
    assert len(result.reports) == len(versions)
    assert all(report["database"] == "loaded" for report in result.reports.values())
