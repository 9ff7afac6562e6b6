"""The pipeline's database: the secret of a URL in the config, or the instance the stack creates
(`database.create`), the ARN of the secret the stages read, and what names the database to migrate."""

from __future__ import annotations

from typing import Any

import pulumi

from components import config
from components.component import Component
from components.config import PipelineConfig, Vpc
from components.database import DatabaseSecret, DatabaseSecretArgs, ManagedDatabase, ManagedDatabaseArgs
from components.pipeline.options import kept_secret, moved_from_root


def declare_database_secret(owner: Component, cfg: PipelineConfig) -> DatabaseSecret | None:
    """The stack's secret holding `database.url`; None without one."""
    if cfg.database is None or cfg.database.url is None:
        return None
    return DatabaseSecret(
        "database-secret",
        DatabaseSecretArgs(
            url=cfg.database.url,
            kms_key_arn=cfg.kms_key_arn,
            recovery_window_days=0 if cfg.force_destroy else 30,
        ),
        opts=moved_from_root(owner),
    )


def declare_managed_database(
    owner: Component, cfg: PipelineConfig, vpc_cfg: Vpc | None
) -> ManagedDatabase | None:
    """The instance `database.create` asks for, in `vpc_cfg`'s subnets; None otherwise."""
    if cfg.database is None or cfg.database.create is None:
        return None
    assert vpc_cfg is not None
    assert vpc_cfg.vpc_id is not None
    created = cfg.database.create
    return ManagedDatabase(
        "database",
        ManagedDatabaseArgs(
            identifier=cfg.resource_prefix.lower(),
            engine_version=config.POSTGRES_MAJOR_VERSION,
            instance_class=created.instance_class,
            allocated_storage_gb=created.allocated_storage_gb,
            multi_az=created.multi_az,
            apply_immediately=created.apply_immediately,
            db_name=created.name,
            vpc_id=vpc_cfg.vpc_id,
            subnet_ids=vpc_cfg.subnet_ids,
            client_security_group_ids=vpc_cfg.security_group_ids,
            kms_key_arn=cfg.kms_key_arn,
            production=not cfg.force_destroy,
        ),
        opts=owner.child_opts,
    )


def database_secret_arn(
    cfg: PipelineConfig, secret: DatabaseSecret | None, managed: ManagedDatabase | None
) -> Any:
    """The ARN of the secret the stages read the database URL from: the created instance's, else the
    configured `database.secretArn`, else the stack's secret of `database.url`; None without a database."""
    if managed is not None:
        return managed.secret_arn
    if cfg.database is not None and cfg.database.secret_arn is not None:
        # Set with --secret, the ARN stays secret in the environment, the policy and the migration.
        return kept_secret(cfg, "database", cfg.database.secret_arn)
    return secret.arn if secret is not None else None


def database_identity(
    secret_arn: pulumi.Input[str], secret: DatabaseSecret | None, managed: ManagedDatabase | None
) -> pulumi.Output[str]:
    """What names the database the migration must reach: a new URL behind the same secret (its version),
    or a new instance (its endpoint), invokes the migration again; an external secret is named by its ARN,
    so a database moved behind it is migrated with `python -m devtools migrate` (README, Operating)."""
    if secret is not None:
        return pulumi.Output.format("{0}#{1}", secret_arn, secret.version.version_id)
    if managed is not None:
        return pulumi.Output.format("{0}#{1}", secret_arn, managed.endpoint)
    return pulumi.Output.from_input(secret_arn)
