"""`recordsPartBytes`: the stack config key that sets ingestion's records/ part size (RECORDS_PART_BYTES)."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_config
from components.environment import stage_environment
from handlers.config import load_ingestion
from handlers.contract import DEFAULT_RECORDS_PART_BYTES, Env, Stage


def test_the_part_size_reaches_the_ingestion_function_alone_and_the_handler_reads_it() -> None:
    # GIVEN a stack that sets the part size
    cfg = parse_config({"recordsPartBytes": 16 << 20}, project="p", stack="s")
    # THEN the ingestion function's environment holds it, and no other stage's
    env = stage_environment(Stage.INGESTION, cfg, "bucket")
    assert env[Env.RECORDS_PART_BYTES] == str(16 << 20)
    assert all(
        Env.RECORDS_PART_BYTES not in stage_environment(s, cfg, "b")
        for s in (Stage.PROCESSING, Stage.ANALYTICS)
    )
    # AND the handler parses that environment to the same size
    assert load_ingestion({k: str(v) for k, v in env.items()}).records_part_bytes == 16 << 20


def test_an_unset_part_size_leaves_the_variable_out_and_the_handler_default_applies() -> None:
    env = stage_environment(Stage.INGESTION, parse_config({}, project="p", stack="s"), "bucket")
    assert Env.RECORDS_PART_BYTES not in env
    assert (
        load_ingestion({k: str(v) for k, v in env.items()}).records_part_bytes == DEFAULT_RECORDS_PART_BYTES
    )


@pytest.mark.parametrize("value", [0, -1, "64MB", True])
def test_a_part_size_that_is_not_a_positive_integer_is_refused_naming_the_key(value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"recordsPartBytes": value}, project="p", stack="s")
    assert [problem.key for problem in raised.value.problems] == ["data-pipeline:recordsPartBytes"]
