"""`components.config.read_stack_config`: the stack config as the program is handed it, through Pulumi's
public API, by the CLI (`pulumi up`) and in-process (Pulumi's mocks, an Automation API inline program)."""

from __future__ import annotations

import importlib.metadata
import json

import pulumi
import pytest
from pulumi import runtime

from components import config
from components.config import reading


@pytest.fixture
def no_in_process_config():
    """The runtime as `pulumi up` starts a program: nothing set in-process (earlier evaluations set some)."""
    runtime.set_all_config({}, [])
    yield
    runtime.set_all_config({}, [])


def test_under_the_cli_every_key_comes_from_the_language_host(monkeypatch, no_in_process_config):
    # GIVEN the config as the Python language host hands it over on `pulumi up`: PULUMI_CONFIG and
    # PULUMI_CONFIG_SECRET_KEYS, a misspelt key and a secret among them
    monkeypatch.setenv(
        "PULUMI_CONFIG",
        json.dumps(
            {
                "aws:region": "eu-west-1",
                "data-pipeline:bucketSufix": "false",
                "data-pipeline:runtime": "python3.12",
                "data-pipeline:database": '{"url":"postgresql://u:p@h/db"}',
            }
        ),
    )
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["data-pipeline:database"]))
    # WHEN the program reads its namespace
    raw, secrets = config.read_stack_config()
    # THEN it has every key of the namespace, the unknown one included, and knows which are secret
    assert raw == {
        "bucketSufix": "false",
        "runtime": "python3.12",
        "database": '{"url":"postgresql://u:p@h/db"}',
    }
    assert secrets == {"database"}


def test_under_the_cli_an_unknown_key_is_refused_with_the_closest_one(monkeypatch, no_in_process_config):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"data-pipeline:bucketSufix": "false"}))
    raw, secrets = config.read_stack_config()
    with pytest.raises(config.ConfigError, match="did you mean 'bucketSuffix'"):
        config.parse_config(raw, project="data-pipeline", stack="dev", secret_keys=secrets)


def test_in_process_the_keys_set_for_the_run_are_read(monkeypatch):
    # GIVEN config set in-process, as Pulumi's mocks and Automation API inline programs do
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    runtime.set_all_config(
        {"data-pipeline:retryAttemps": "1", "data-pipeline:database": '{"url":"x"}'},
        ["data-pipeline:database"],
    )
    try:
        raw, secrets = config.read_stack_config()
    finally:
        runtime.set_all_config({}, [])
    # THEN the misspelt key is there to be refused, and the secret is known as one
    assert raw == {"retryAttemps": "1", "database": '{"url":"x"}'}
    assert secrets == {"database"}


def test_in_process_the_stack_file_is_listed_without_any_sdk_internal(monkeypatch, tmp_path):
    # GIVEN a stack file with a misspelt key, its value set in-process, and no SDK internal to list the keys
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.setattr(reading, "_in_process_config_keys", set)
    stack = pulumi.get_stack()
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(
        "config:\n  data-pipeline:logRetentionDay: 7\n  aws:region: x\n"
    )
    runtime.set_all_config({"data-pipeline:logRetentionDay": "7"}, [])
    try:
        raw, _ = config.read_stack_config(tmp_path)
    finally:
        runtime.set_all_config({}, [])
    # THEN the stack file still names it
    assert raw == {"logRetentionDay": "7"}


def test_canary_the_sdk_still_lists_the_keys_set_in_process():
    # pulumi.runtime.set_all_config is public; listing what it set is not (components/config/reading.py,
    # _in_process_config_keys). After a Pulumi upgrade this fails if that changed.
    runtime.set_all_config({"data-pipeline:probe": "1", "aws:region": "x"}, [])
    try:
        listed = reading._in_process_config_keys()
    finally:
        runtime.set_all_config({}, [])
    assert listed == {"data-pipeline:probe", "aws:region"}, (
        f"pulumi {importlib.metadata.version('pulumi')}: pulumi.runtime.config.CONFIG no longer lists "
        "the keys set_all_config set; unknown keys set in-process (mocks, Automation API inline "
        "programs) go unchecked until components/config/reading.py finds another way"
    )
