"""Stack config validation: every problem at once, each naming its key and what is allowed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import (
    LOG_RETENTION_DAYS,
    ConfigError,
    bucket_name_problems,
    overlapping_suffixes,
    parse_config,
)
from components.stage_table import STAGE_TABLE
from devtools.harness import Secret, StackEvaluationError
from handlers import contract
from handlers.contract import BucketRole, Stage

RAW, PROCESSED, ANALYTICS = BucketRole.RAW, BucketRole.PROCESSED, BucketRole.ANALYTICS


def _stage_row(stage: str, key: str, value: object, message: str) -> tuple[dict[str, Any], str, str]:
    """A row of the table below for one stage's setting: the config, the key the error names, its text."""
    return {"stages": {stage: {key: value}}}, f"stages.{stage}.{key}", message


BAD_CONFIGS = [
    # (overrides, the key that must be named in full (data-pipeline:<key>), a phrase of the explanation)
    ({"buckets": {RAW: "a" * 60}}, f"buckets.{RAW}", "is 69 characters long; allowed: 3-63"),
    ({"buckets": {RAW: "Raw_Data"}}, f"buckets.{RAW}", "only lowercase letters, digits, hyphens and dots"),
    ({"bucketSuffix": False, "buckets": {RAW: "192.168.10.20"}}, f"buckets.{RAW}", "IP address"),
    ({"buckets": {PROCESSED: "xn--bucket"}}, f"buckets.{PROCESSED}", "reserved prefix 'xn--'"),
    (
        {"bucketSuffix": False, "buckets": {ANALYTICS: "data-s3alias"}},
        f"buckets.{ANALYTICS}",
        "reserved suffix '-s3alias'",
    ),
    ({"bucketSufix": False}, "bucketSufix", "did you mean 'bucketSuffix'?"),
    ({"runtime": "python3.9"}, "runtime", "allowed: python3.12, python3.13"),
    ({"architecture": "arm"}, "architecture", "allowed: x86_64, arm64"),
    _stage_row(Stage.INGESTION, "memoryMb", 64, "allowed: 128-10240"),
    _stage_row(Stage.PROCESSING, "timeoutSeconds", 901, "allowed: 1-900"),
    ({"inputSuffixes": [".json", ".gz", ".jsonl.gz"]}, "inputSuffixes", "'.jsonl.gz' ends with '.gz'"),
    ({"logRetentionDays": 10}, "logRetentionDays", "allowed: 1, 3, 5, 7, 14, 30"),
    _stage_row(Stage.ANALYTICS, "logRetentionDays", 4, "is not allowed"),
    ({"retryAttempts": 3}, "retryAttempts", "allowed: 0-2"),
    ({"maxEventAgeSeconds": 30}, "maxEventAgeSeconds", "allowed: 60-21600"),
    _stage_row(Stage.INGESTION, "reservedConcurrency", -1, "allowed: >= 0"),
    ({"forceDestroy": "yes"}, "forceDestroy", "is not a boolean"),
    ({"kmsKeyArn": "alias/my-key"}, "kmsKeyArn", "is not a KMS key ARN"),
    ({"aggregation": {"window": "2h"}}, "aggregation.window", "allowed: 1m, 5m, 15m, 1h, 1d"),
    ({"aggregation": {"metrics": ["m" * 257]}}, "aggregation.metrics", "at most 256 characters"),
    _stage_row(Stage.INGESTION, "memoryMB", 1024, "did you mean 'memoryMb'?"),
    _stage_row(Stage.INGESTION, "ephemeralStorageMb", 256, "allowed: 512-10240"),
    ({"vpc": {"subnetIds": ["subnet-0a1b2c3d"]}}, "vpc.securityGroupIds", "is required when vpc is set"),
    ({"database": {"url": "postgresql://u:p@h/db"}}, "database.url", "--secret"),
    (
        {"database": {"secretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}},
        "database.secretArn",
        "is not a full Secrets Manager secret ARN",
    ),
    (
        {"database": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"}},
        "database.secretArn",
        "ending in the six characters AWS adds",
    ),
    ({"inputPrefix": "incoming"}, "inputPrefix", "ending in '/'"),
    (
        {
            # each value within its own limit, the schema under the 3 KB it was once allowed alone
            "inputPrefix": "p" * 500 + "/",
            "inputSuffixes": [f".{n:02d}" + "x" * 60 for n in range(8)],
            "recordSchema": {"type": "object", "description": "d" * 2950},
        },
        "recordSchema",
        "the ingestion function's environment would be",
    ),
    ({"inputPrefix": "in*/"}, "inputPrefix", "letters, digits and !_.'()/-"),
    ({"layer": {"archive": "missing/layer.zip"}}, "layer.archive", "does not exist"),
    ({"summaryTopicArn": "my-topic"}, "summaryTopicArn", "is not an SNS topic ARN"),
    ({"overwrites": "merge"}, "overwrites", "allowed: replace, append"),
    ({"inputSuffixes": ["json"]}, "inputSuffixes", "a key suffix starting with '.'"),
    ({"maxRecordBytes": 16777216}, "maxRecordBytes", "allowed: 1-9320660"),
]


@pytest.mark.parametrize(
    ("overrides", "key", "phrase"),
    BAD_CONFIGS,
    ids=[c[1] + "-" + str(i) for i, c in enumerate(BAD_CONFIGS)],
)
def test_a_bad_config_stops_the_program_naming_the_key(evaluate, overrides, key, phrase):
    # GIVEN the dev stack with one bad value WHEN the program runs
    with pytest.raises(StackEvaluationError) as raised:
        evaluate("dev", overrides)
    # THEN the error names the full key and says what is allowed
    full_key = f"data-pipeline:{key}"
    lines = [line for line in str(raised.value).splitlines() if line.strip().startswith(f"- {full_key}:")]
    assert lines, str(raised.value)
    assert phrase in " ".join(lines)


def test_every_problem_is_reported_at_once(evaluate):
    with pytest.raises(StackEvaluationError) as raised:
        evaluate("dev", {"runtime": "python2", "architecture": "sparc", "retryAttempts": 9})
    message = str(raised.value)
    assert "(3 problems)" in message
    for key in ("runtime", "architecture", "retryAttempts"):
        assert f"data-pipeline:{key}:" in message


def test_a_database_url_is_never_echoed_in_an_error():
    with pytest.raises(ConfigError) as raised:
        parse_config({"database": {"url": "postgresql://admin:hunter2@db/x"}}, project="p", stack="s")
    assert "hunter2" not in str(raised.value)


def test_a_secret_of_the_wrong_shape_is_not_echoed_in_the_error():
    # GIVEN the URL set as a secret without --path: `database` itself is the (secret) string
    raw = {"database": "postgresql+psycopg2://admin:hunter2@db/x"}
    # WHEN the config is parsed
    with pytest.raises(ConfigError) as raised:
        parse_config(raw, project="p", stack="s", secret_keys=frozenset({"database"}))
    # THEN the error names the key and the problem, never the value
    assert [p.key for p in raised.value.problems] == ["data-pipeline:database"]
    assert "is not an object" in str(raised.value)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "hidden"),
    [
        ("buckets", {RAW: "Secret_Raw_Name"}, "Secret_Raw_Name"),
        ("retryAttempts", 7777, "7777"),
        ("inputSuffixes", [".hidden.json", ".json"], "hidden"),
        ("aggregation", {"dimensions": ["hush"], "metrics": ["hush"]}, "hush"),
        ("layer", {"archive": "private/hidden-name.zip"}, "hidden-name"),
    ],
)
def test_a_bad_value_set_as_a_secret_is_never_echoed(key, value, hidden):
    # GIVEN a bad value that Pulumi holds as a secret WHEN the config is parsed
    with pytest.raises(ConfigError) as raised:
        parse_config({key: value}, project="p", stack="s", secret_keys=frozenset({key}))
    # THEN the error names the key, and not the value
    assert any(p.key.startswith(f"data-pipeline:{key}") for p in raised.value.problems)
    assert hidden not in str(raised.value)


def test_the_largest_environment_the_config_allows_is_exactly_lambdas_limit():
    from components.environment import environment_bytes, stage_environment

    def with_schema(description_chars: int) -> dict[str, object]:
        schema = {"type": "object", "description": "d" * description_chars}
        return {"inputPrefix": "p" * 400 + "/", "inputSuffixes": [".json", ".jsonl"], "recordSchema": schema}

    # GIVEN an ingestion config whose environment, with the longest bucket name, is 4 096 bytes as
    # Lambda measures it (compact JSON), with a long prefix and two suffixes beside the schema
    cfg = parse_config(with_schema(3348), project="data-pipeline", stack="dev")
    assert environment_bytes(stage_environment(Stage.INGESTION, cfg, "x" * 63)) == 4096
    # WHEN the schema grows by one character THEN it is refused, naming the keys to shorten
    with pytest.raises(ConfigError, match=r"environment would be 4097 bytes and Lambda allows 4096"):
        parse_config(with_schema(3349), project="data-pipeline", stack="dev")


def test_a_secret_database_url_is_accepted(evaluate):
    stack = evaluate("dev", {"database": Secret({"url": "postgresql+psycopg2://app:pw@db/pipeline"})})
    assert stack.config["data-pipeline:database"] == "[secret]"


def test_database_needs_exactly_one_of_secret_arn_and_url():
    raw = {
        "database": {
            "secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
            "url": "postgresql://h/d",
        }
    }
    with pytest.raises(ConfigError) as raised:
        parse_config(raw, project="p", stack="s", secret_keys=frozenset({"database"}))
    assert [p.key for p in raised.value.problems] == ["data-pipeline:database"]


def test_max_record_bytes_may_be_as_large_as_every_records_line_stays_readable():
    from handlers.config import MAX_RECORD_BYTES_LIMIT

    cfg = parse_config({"maxRecordBytes": MAX_RECORD_BYTES_LIMIT}, project="p", stack="s")
    assert cfg.max_record_bytes == MAX_RECORD_BYTES_LIMIT


def test_max_record_bytes_one_past_the_limit_is_refused_saying_why():
    from handlers.config import MAX_RECORD_BYTES_LIMIT, RECORDS_LINE_LIMIT

    # GIVEN one byte more than a record may have for its records/ line to stay readable
    with pytest.raises(ConfigError) as raised:
        parse_config({"maxRecordBytes": str(MAX_RECORD_BYTES_LIMIT + 1)}, project="p", stack="s")
    # THEN the key is named with what is allowed, and why
    [problem] = raised.value.problems
    assert problem.key == "data-pipeline:maxRecordBytes"
    allowed = f"{MAX_RECORD_BYTES_LIMIT + 1} is out of range; allowed: 1-{MAX_RECORD_BYTES_LIMIT}"
    assert allowed in problem.message
    assert f"{contract.RECORDS_PREFIX} lines of at most {RECORDS_LINE_LIMIT} bytes" in problem.message


@pytest.mark.parametrize("value", [0, "lots", True])
def test_max_record_bytes_that_is_not_a_positive_integer_is_refused(value):
    with pytest.raises(ConfigError) as raised:
        parse_config({"maxRecordBytes": value}, project="p", stack="s")
    assert [problem.key for problem in raised.value.problems] == ["data-pipeline:maxRecordBytes"]


def test_defaults_when_nothing_is_set():
    cfg = parse_config({}, project="data-pipeline", stack="dev")
    assert cfg.bucket_base_names == {role: f"data-pipeline-dev-{role}" for role in contract.BUCKET_ROLES}
    assert (cfg.bucket_suffix, cfg.force_destroy, cfg.retain_buckets_on_delete) == (True, False, True)
    assert cfg.versioning == {RAW: True, PROCESSED: False, ANALYTICS: False}
    assert (cfg.runtime, cfg.architecture, cfg.retry_attempts, cfg.max_event_age_seconds) == (
        "python3.13",
        "x86_64",
        2,
        21600,
    )
    # each stage's size comes from the stage table (docs/capacity.md says why)
    assert {name: (s.memory_mb, s.timeout_seconds) for name, s in cfg.stages.items()} == {
        stage.name: (stage.memory_mb, stage.timeout_seconds) for stage in STAGE_TABLE
    }
    assert {s.log_retention_days for s in cfg.stages.values()} == {30}
    assert cfg.input_suffixes == contract.INPUT_SUFFIXES
    assert (cfg.database, cfg.vpc, cfg.kms_key_arn, cfg.layer.archive) == (None, None, None, None)


def test_values_arrive_as_strings_from_pulumi_and_are_typed():
    cfg = parse_config(
        {
            "forceDestroy": "true",
            "logRetentionDays": "14",
            "stages": json.dumps({Stage.ANALYTICS: {"memoryMb": 1024}}),
        },
        project="p",
        stack="s",
    )
    assert cfg.force_destroy is True
    assert cfg.retain_buckets_on_delete is False
    assert cfg.stages[Stage.ANALYTICS].memory_mb == 1024
    assert cfg.stages[Stage.ANALYTICS].log_retention_days == 14


def test_a_default_bucket_name_broken_by_the_stack_name_says_which_key_to_set():
    with pytest.raises(ConfigError) as raised:
        parse_config({}, project="data-pipeline", stack="Prod")
    assert "set data-pipeline:buckets.raw" in str(raised.value)


def test_a_stack_name_too_long_for_function_names_is_refused():
    stack = "feature-" + "x" * 40
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {"bucketSuffix": False, "buckets": {RAW: "r-1", PROCESSED: "p-1", ANALYTICS: "a-1"}},
            project="data-pipeline",
            stack=stack,
        )
    (problem,) = raised.value.problems
    assert problem.key == f"stack {stack!r}"
    assert "is over 64 characters; use a shorter stack name" in problem.message


def test_a_record_schema_too_large_for_the_lambda_environment_is_refused():
    schema = {"type": "object", "description": "x" * 4000}
    with pytest.raises(
        ConfigError, match=r"data-pipeline:recordSchema: the ingestion function's environment"
    ):
        parse_config({"recordSchema": schema}, project="p", stack="s")


def test_bucket_name_rules():
    assert bucket_name_problems("my-bucket.data") == []
    assert bucket_name_problems("ab") == ["is 2 characters long; allowed: 3-63"]
    assert "must not contain '..', '.-' or '-.'" in bucket_name_problems("my..bucket")
    assert "must begin and end with a lowercase letter or digit" in bucket_name_problems("-bucket")
    assert "must not start with the reserved prefix 'sthree-'" in bucket_name_problems("sthree-data")


def test_overlapping_suffixes():
    assert overlapping_suffixes((".json", ".jsonl")) == []
    assert overlapping_suffixes((".gz", ".json.gz")) == [(".json.gz", ".gz")]
    assert overlapping_suffixes((".json", ".json")) == []


def test_duplicate_suffixes_are_refused():
    with pytest.raises(ConfigError, match="inputSuffixes: contains duplicates"):
        parse_config({"inputSuffixes": [".json", ".json"]}, project="p", stack="s")


def test_retention_values_are_cloudwatch_s():
    assert LOG_RETENTION_DAYS[:6] == (1, 3, 5, 7, 14, 30)
    assert LOG_RETENTION_DAYS[-1] == 3653


KEY_US = "arn:aws:kms:us-east-1:111122223333:key/0f6d1c6e-3b5a-4c2e-9d8f-7a1b2c3d4e5f"


def test_keys_secrets_and_topics_must_be_in_the_stack_region():
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {
                "kmsKeyArn": KEY_US,
                "summaryTopicArn": "arn:aws:sns:us-east-1:111122223333:summaries",
                "summaryTopicKmsKeyArn": KEY_US,
                "database": {
                    "secretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf",
                    "kmsKeyArn": KEY_US,
                },
            },
            project="data-pipeline",
            stack="prod",
            region="eu-west-1",
        )
    problems = {p.key: p.message for p in raised.value.problems}
    assert set(problems) == {
        f"data-pipeline:{k}"
        for k in (
            "kmsKeyArn",
            "summaryTopicArn",
            "summaryTopicKmsKeyArn",
            "database.secretArn",
            "database.kmsKeyArn",
        )
    }
    assert problems["data-pipeline:kmsKeyArn"].startswith(
        "is in us-east-1 but the stack deploys to eu-west-1 (aws:region)"
    )


def test_the_program_compares_the_key_region_with_aws_region(evaluate):
    with pytest.raises(StackEvaluationError, match=r"data-pipeline:kmsKeyArn: is in eu-west-1 but the stack"):
        evaluate("prod", {"aws:region": "us-east-1"})


def test_a_database_key_belongs_to_an_existing_secret_and_a_topic_key_to_a_topic():
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {
                "summaryTopicKmsKeyArn": KEY_US,
                "database": {"url": "postgresql://u:p@h/db", "kmsKeyArn": KEY_US},
            },
            project="data-pipeline",
            stack="dev",
            secret_keys=frozenset({"database"}),
        )
    problems = {p.key: p.message for p in raised.value.problems}
    assert "set summaryTopicArn too" in problems["data-pipeline:summaryTopicKmsKeyArn"]
    assert "a secret the stack creates uses kmsKeyArn" in problems["data-pipeline:database.kmsKeyArn"]
