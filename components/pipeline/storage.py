"""The pipeline's buckets: the suffix they share, and one `DataBucket` per role, created or adopted."""

from __future__ import annotations

import pulumi
import pulumi_random

from components import config, stage_table
from components.bucket import DataBucket, DataBucketArgs
from components.config import PipelineConfig
from components.pipeline.options import moved_from_root


def declare_buckets(
    owner: pulumi.Resource, cfg: PipelineConfig
) -> tuple[pulumi_random.RandomId | None, dict[str, DataBucket]]:
    """The bucket suffix (None unless `bucketSuffix`) and the bucket of each role, children of `owner`."""
    # One suffix for all three buckets, generated once and kept in state: stable for the stack's lifetime.
    suffix = (
        pulumi_random.RandomId(
            "bucket-suffix",
            byte_length=config.SUFFIX_HEX_CHARS // 2,
            opts=moved_from_root(owner),
        )
        if cfg.bucket_suffix
        else None
    )
    buckets = {
        role: DataBucket(
            role,
            DataBucketArgs(
                bucket_name=pulumi.Output.format("{0}-{1}", base, suffix.hex) if suffix else base,
                force_destroy=cfg.force_destroy,
                retain_on_delete=cfg.retain_buckets_on_delete,
                versioning=cfg.versioning[role],
                noncurrent_version_expiration_days=cfg.noncurrent_version_expiration_days,
                kms_key_arn=cfg.kms_key_arn,
                staging_prefixes=stage_table.staging_prefixes(role),
            )
            if role not in cfg.adopted_buckets
            else _adopted_bucket_args(cfg, role),
            opts=moved_from_root(owner),
        )
        for role, base in cfg.bucket_base_names.items()
    }
    return suffix, buckets


def _adopted_bucket_args(cfg: PipelineConfig, role: str) -> DataBucketArgs:
    """An existing bucket taken over by import (`adoptBuckets.<role>`): its own name, never emptied or
    deleted by the stack; the stack's versioning and encryption still apply (docs/configuration.md)."""
    adopted = cfg.adopted_buckets[role]
    return DataBucketArgs(
        bucket_name=adopted.name,
        force_destroy=False,
        retain_on_delete=True,
        versioning=cfg.versioning[role],
        noncurrent_version_expiration_days=cfg.noncurrent_version_expiration_days,
        kms_key_arn=cfg.kms_key_arn,
        adopted=True,
        imported_settings=adopted.imported_settings,
    )
