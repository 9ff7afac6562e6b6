"""The analytics database: `DatabaseSecret`, the Secrets Manager secret holding a URL given as secret config
(`database.url`), and `ManagedDatabase`, an RDS for PostgreSQL instance the stack owns (`database.create`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_aws import ec2, rds, secretsmanager, vpc

from components.component import Component, Opts
from components.network import ingress_from
from handlers import contract


@dataclass(frozen=True)
class DatabaseSecretArgs:
    """Inputs of a `DatabaseSecret`."""

    url: pulumi.Input[str] = field(repr=False)
    """The SQLAlchemy URL; kept secret end to end."""

    kms_key_arn: str | None = None
    """Encrypt the secret with this key; None: the AWS managed key."""

    recovery_window_days: int = 30
    """Days a deleted secret can be restored; 0 deletes it at once (dev stacks)."""


class DatabaseSecret(Component):
    """A secret whose `SecretString` is the database URL (the analytics handler reads it once)."""

    TYPE = "data-pipeline:database:DatabaseSecret"

    secret: secretsmanager.Secret
    version: secretsmanager.SecretVersion
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseSecretArgs, opts: Opts = None) -> None:
        super().__init__(name, opts)
        self.secret = secretsmanager.Secret(
            name,
            description="SQLAlchemy URL of the data-pipeline analytics database",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=args.recovery_window_days,
            opts=self.child_opts,
        )
        self.version = secretsmanager.SecretVersion(
            f"{name}-version",
            secret_id=self.secret.id,
            secret_string=pulumi.Output.secret(args.url),
            opts=self.child_opts,
        )
        self.arn = self.secret.arn
        self.register_outputs({"arn": self.arn})


POSTGRES_PORT = 5432
MASTER_USERNAME = "pipeline_admin"
# The role loads sign in as with IAM tokens; the schema migration creates it (handlers/app_user.py).
APP_USER = contract.APP_USER


@dataclass(frozen=True)
class ManagedDatabaseArgs:
    """Inputs of a `ManagedDatabase` (`database.create`)."""

    identifier: str
    """The instance identifier, `<project>-<stack>`; the final snapshot is named after it."""

    engine_version: str
    """The PostgreSQL major version; RDS picks its newest minor and applies minor upgrades."""

    instance_class: str
    """The instance class."""

    allocated_storage_gb: int
    """gp3 storage."""

    multi_az: bool
    """A standby in a second availability zone."""

    apply_immediately: bool
    """Modify an existing instance now rather than in its next maintenance window (RDS's ApplyImmediately):
    needed for IAM database authentication to be on before this update's loads sign in as `app_user`."""

    db_name: str
    """The database created in the instance."""

    vpc_id: pulumi.Input[str]
    """The VPC of the subnets."""

    subnet_ids: Sequence[pulumi.Input[str]]
    """The configured private subnets (in at least two availability zones): the subnet group."""

    client_security_group_ids: Sequence[pulumi.Input[str]]
    """The analytics function's security groups: the only sources the database admits."""

    kms_key_arn: str | None
    """The stack's key: storage and the master secret; None: the AWS managed keys."""

    production: bool
    """Backups kept 7 days, deletion protection and a final snapshot (every stack but a forceDestroy one)."""


class ManagedDatabase(Component):
    """RDS for PostgreSQL in the configured subnets, admitting only the analytics function, its master
    password managed by RDS in Secrets Manager (`secret_arn`, holding `{"username", "password"}`) for the
    schema migration, and IAM database authentication on for the application user loads sign in as
    (`app_user`, `app_user_arn`)."""

    TYPE = "data-pipeline:database:ManagedDatabase"

    subnet_group: rds.SubnetGroup
    security_group: ec2.SecurityGroup
    ingress: list[vpc.SecurityGroupIngressRule]
    instance: rds.Instance
    secret_arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    resource_id: pulumi.Output[str]
    app_user: str

    def __init__(self, name: str, args: ManagedDatabaseArgs, opts: Opts = None) -> None:
        super().__init__(name, opts)
        self.subnet_group = rds.SubnetGroup(
            f"{name}-subnets",
            name=f"{args.identifier}-database",
            description="The data-pipeline analytics database's private subnets",
            subnet_ids=list(args.subnet_ids),
            opts=self.child_opts,
        )
        self.security_group = ec2.SecurityGroup(
            f"{name}-sg",
            name_prefix=f"{args.identifier}-database-",
            description="PostgreSQL from the data-pipeline analytics function only",
            vpc_id=args.vpc_id,
            opts=self.child_opts,
        )
        self.ingress = ingress_from(
            f"{name}-postgres",
            self.security_group,
            args.client_security_group_ids,
            POSTGRES_PORT,
            lambda _source: "PostgreSQL from the analytics function",
            self.child_opts,
        )
        self.instance = rds.Instance(
            f"{name}-instance",
            identifier=args.identifier,
            engine="postgres",
            engine_version=args.engine_version,
            auto_minor_version_upgrade=True,
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            db_name=args.db_name,
            username=MASTER_USERNAME,
            # RDS generates the password, keeps it in Secrets Manager and rotates it: no hand-made secret.
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.kms_key_arn,
            # Loads sign in as APP_USER with a token per connection, so no second password exists
            # (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.html).
            iam_database_authentication_enabled=True,
            db_subnet_group_name=self.subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            publicly_accessible=False,
            multi_az=args.multi_az,
            # Without it, RDS queues a modification of an existing instance, IAM database authentication
            # included, for the next maintenance window (docs/configuration.md, "database.create").
            apply_immediately=args.apply_immediately,
            backup_retention_period=7 if args.production else 1,
            copy_tags_to_snapshot=True,
            deletion_protection=args.production,
            skip_final_snapshot=not args.production,
            final_snapshot_identifier=f"{args.identifier}-final" if args.production else None,
            opts=self.child_opts,
        )
        self.secret_arn = self.instance.master_user_secrets.apply(lambda secrets: secrets[0].secret_arn)
        self.endpoint = pulumi.Output.format(
            "{0}:{1}/{2}", self.instance.address, self.instance.port, args.db_name
        )
        # The DbiResourceId, which names the instance in an rds-db:connect grant.
        self.resource_id = self.instance.resource_id
        self.app_user = APP_USER
        self.register_outputs(
            {"secret_arn": self.secret_arn, "endpoint": self.endpoint, "resource_id": self.resource_id}
        )

    def app_user_arn(
        self, partition: pulumi.Input[str], region: pulumi.Input[str], account_id: pulumi.Input[str]
    ) -> pulumi.Output[str]:
        """What `rds-db:connect` names to let a role sign in as `app_user`:
        `arn:${Partition}:rds-db:${Region}:${Account}:dbuser:${DbiResourceId}/${DbUserName}` (Service
        Authorization Reference, Amazon RDS IAM Authentication, resource type db-user)."""
        template = "arn:{0}:rds-db:{1}:{2}:dbuser:{3}/{4}"
        return pulumi.Output.format(template, partition, region, account_id, self.resource_id, self.app_user)
