"""`DatabaseSecret`: the Secrets Manager secret holding the analytics database URL given as secret config."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi_aws import secretsmanager


@dataclass(frozen=True)
class DatabaseSecretArgs:
    """Inputs of a `DatabaseSecret`."""

    url: pulumi.Input[str] = field(repr=False)
    """The SQLAlchemy URL; kept secret end to end."""

    kms_key_arn: str | None = None
    """Encrypt the secret with this key; None: the AWS managed key."""

    recovery_window_days: int = 30
    """Days a deleted secret can be restored; 0 deletes it at once (dev stacks)."""


class DatabaseSecret(pulumi.ComponentResource):
    """A secret whose `SecretString` is the database URL (the analytics handler reads it once)."""

    secret: secretsmanager.Secret
    version: secretsmanager.SecretVersion
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseSecretArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("data-pipeline:database:DatabaseSecret", name, None, opts)
        self.secret = secretsmanager.Secret(
            name,
            description="SQLAlchemy URL of the data-pipeline analytics database",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=args.recovery_window_days,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.version = secretsmanager.SecretVersion(
            f"{name}-version",
            secret_id=self.secret.id,
            secret_string=pulumi.Output.secret(args.url),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.secret.arn
        self.register_outputs({"arn": self.arn})
