"""`devtools run --replay`: the command line and the config change it applies before the replay."""

from __future__ import annotations

import pytest

from devtools.__main__ import _parser
from devtools.harness import load_stack_config
from devtools.localrun.command import config_with
from devtools.localrun.errors import LocalRunError
from handlers.contract import Stage


def test_the_run_subcommand_takes_the_replay_options() -> None:
    args = _parser().parse_args(
        ["run", "samples/", "--replay", str(Stage.PROCESSING), "--replay-config", "aggregation.window=5m"]
    )
    assert (args.replay, args.replay_config, args.replay_quarantined) == (
        Stage.PROCESSING,
        ["aggregation.window=5m"],
        False,
    )
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "samples/", "--replay", "reports"])


def test_a_config_change_keeps_the_other_values_of_its_object() -> None:
    current = load_stack_config("dev").get("data-pipeline:aggregation", {})
    changed = config_with("dev", ["aggregation.window=5m", "aggregation.dimensions=type,source"])
    assert changed["aggregation"] == {**current, "window": "5m", "dimensions": ["type", "source"]}
    assert config_with("dev", ["aggregation.dimensions=type"])["aggregation"]["dimensions"] == ["type"]
    assert config_with("dev", ["maxRecordBytes=4096"]) == {"maxRecordBytes": "4096"}
    with pytest.raises(LocalRunError):
        config_with("dev", ["aggregation.window"])
