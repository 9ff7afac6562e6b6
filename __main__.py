"""data-pipeline: raw -> processed -> analytics buckets chained by three Lambda stages.

Wiring only: read and validate the stack config, build the code and layer archives, declare the
`DataPipeline`, export its outputs. Everything else lives in components/ (the stages themselves in
components/stage_table.py).
"""

from __future__ import annotations

from pathlib import Path

import pulumi

from artifacts.function_code import build_function_archive
from components.config import load_stack_config
from components.migration import revisions_digest
from components.pipeline import DataPipeline, DataPipelineArgs
from layer.build import LayerSpec, build_layer, check_size_budget

PROJECT_DIR = Path(__file__).resolve().parent

# Every problem of the stack config at once, before anything is built or declared.
cfg = load_stack_config(PROJECT_DIR)

code_archive = build_function_archive(PROJECT_DIR)
layer_archive = cfg.layer.archive or build_layer(
    LayerSpec(runtime=cfg.runtime, architecture=cfg.architecture, include_boto3=cfg.layer.include_boto3)
)
# Lambda's 250 MB unzipped limit counts the layer and the function code together: fail at preview, not at up.
check_size_budget(layer_archive, code_archive)

pipeline = DataPipeline(
    "pipeline",
    DataPipelineArgs(
        config=cfg,
        code_archive=code_archive,
        layer_archive=layer_archive,
        revisions_digest=revisions_digest(PROJECT_DIR / "handlers" / "migrations"),
    ),
)

# README ("Stack outputs"), docs/configuration.md and devtools read these names and shapes.
pulumi.export("buckets", pipeline.bucket_outputs)
pulumi.export("stages", pipeline.stage_outputs)
pulumi.export("layerArn", pipeline.layer_arn)
pulumi.export("alarmTopicArn", pipeline.alarm_topic_arn)
pulumi.export("dashboardName", pipeline.dashboard_name)
if pipeline.database_secret_arn is not None:
    pulumi.export("databaseSecretArn", pipeline.database_secret_arn)
