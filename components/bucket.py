"""`DataBucket`: one S3 bucket with secure defaults; `BucketTriggers`: its single notification."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_aws import lambda_, s3

from components.component import Component, Opts
from components.iam import deny_insecure_transport
from handlers.contract import STAGING_EXPIRATION_DAYS

# Parts of a multipart upload that never completed are billed until removed.
ABORT_INCOMPLETE_UPLOAD_DAYS = 7


@dataclass(frozen=True)
class DataBucketArgs:
    """Inputs of a `DataBucket`."""

    bucket_name: pulumi.Input[str]
    """The full physical name, suffix included."""

    force_destroy: bool
    """Empty the bucket when it is deleted."""

    retain_on_delete: bool
    """Keep the bucket, its data and its settings in the account when the resource is deleted."""

    versioning: bool
    """Keep every version of every object; False suspends versioning."""

    noncurrent_version_expiration_days: int
    """Delete noncurrent versions after this many days."""

    kms_key_arn: str | None = None
    """SSE-KMS with this key and a bucket key; None: SSE-S3."""

    adopted: bool = False
    """`bucket_name` names an existing bucket: import it (Pulumi's `import_`, ID = the bucket name) instead
    of creating it, keep it on destroy (`retain_on_delete`, whatever `retain_on_delete` says), never empty
    it, and declare no lifecycle configuration (its rules would expire the adopted bucket's existing
    noncurrent versions, and would replace the bucket's own rules)."""

    staging_prefixes: tuple[str, ...] = ()
    """Key prefixes where a stage holds objects only until it releases them (`StageDescription.staging`):
    what a failed invocation leaves there expires after `STAGING_EXPIRATION_DAYS` (not on an adopted
    bucket, which gets no lifecycle configuration)."""

    imported_settings: tuple[str, ...] = ()
    """For an adopted bucket, the settings resources imported with it (config names: publicAccessBlock,
    ownershipControls, encryption, versioning, policy; each import ID is the bucket name). The others are
    created, writing the stack's setting over the bucket's."""


class DataBucket(Component):
    """A private, encrypted, TLS-only bucket whose owner owns every object."""

    TYPE = "data-pipeline:bucket:DataBucket"

    bucket: s3.Bucket
    public_access_block: s3.BucketPublicAccessBlock
    ownership_controls: s3.BucketOwnershipControls
    encryption: s3.BucketServerSideEncryptionConfiguration
    versioning: s3.BucketVersioning
    policy: s3.BucketPolicy
    lifecycle: s3.BucketLifecycleConfiguration | None  # None for an adopted bucket
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: DataBucketArgs, opts: Opts = None) -> None:
        super().__init__(name, opts)

        # A retained bucket keeps its settings too: deleting them on destroy would leave the kept data
        # without its public access block, TLS-only policy, key, versioning and lifecycle rules.
        # An adopted bucket is never deleted by the stack, nor are its settings.
        retain = args.retain_on_delete or args.adopted

        def child(*depends_on: pulumi.Resource, setting: str | None = None) -> pulumi.ResourceOptions:
            imported = args.adopted and (setting is None or setting in args.imported_settings)
            return pulumi.ResourceOptions(
                parent=self,
                retain_on_delete=retain,
                depends_on=list(depends_on),
                # Each is imported by the bucket's name: pulumi-aws's documented import ID of s3.Bucket and
                # of every bucket settings resource of a bucket in the provider's account.
                import_=args.bucket_name if imported else None,
            )

        self.bucket = s3.Bucket(
            name, bucket=args.bucket_name, force_destroy=args.force_destroy and not args.adopted, opts=child()
        )
        self.public_access_block = s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child(setting="publicAccessBlock"),
        )
        self.ownership_controls = s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule=s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child(setting="ownershipControls"),
        )
        if args.kms_key_arn is None:
            default = s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"
            )
            bucket_key = None
        else:
            default = s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn
            )
            # A bucket key cuts KMS requests (and their cost) by orders of magnitude.
            bucket_key = True
        self.encryption = s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=default, bucket_key_enabled=bucket_key
                )
            ],
            opts=child(setting="encryption"),
        )
        self.versioning = s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration=s3.BucketVersioningVersioningConfigurationArgs(
                # "Suspended", not "Disabled": S3 cannot return a bucket to the unversioned state, so
                # "Disabled" would fail the update that turns versioning off; suspended behaves the same
                # for new objects (null version IDs) on a bucket that was never versioned.
                status="Enabled" if args.versioning else "Suspended"
            ),
            opts=child(setting="versioning"),
        )
        self.policy = s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=deny_insecure_transport(self.bucket.arn).to_json(),
            # With BlockPublicPolicy set first, a mistaken public statement is refused, never applied.
            opts=child(self.public_access_block, setting="policy"),
        )
        self.lifecycle = (
            None
            if args.adopted
            else s3.BucketLifecycleConfiguration(
                f"{name}-lifecycle",
                bucket=self.bucket.id,
                rules=[
                    s3.BucketLifecycleConfigurationRuleArgs(
                        id="abort-incomplete-multipart-uploads",
                        status="Enabled",
                        filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                        abort_incomplete_multipart_upload=s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                            days_after_initiation=ABORT_INCOMPLETE_UPLOAD_DAYS
                        ),
                    ),
                    s3.BucketLifecycleConfigurationRuleArgs(
                        id="expire-noncurrent-versions",
                        status="Enabled",
                        filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                        noncurrent_version_expiration=s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                            noncurrent_days=args.noncurrent_version_expiration_days
                        ),
                    ),
                    *(
                        s3.BucketLifecycleConfigurationRuleArgs(
                            id=f"expire-staged-{index}",
                            status="Enabled",
                            filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
                            expiration=s3.BucketLifecycleConfigurationRuleExpirationArgs(
                                days=STAGING_EXPIRATION_DAYS
                            ),
                            # A released object's delete leaves a noncurrent version in a versioned bucket.
                            noncurrent_version_expiration=s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                                noncurrent_days=STAGING_EXPIRATION_DAYS
                            ),
                        )
                        for index, prefix in enumerate(args.staging_prefixes)
                    ),
                ],
                # AWS documents that lifecycle rules on versions should follow the versioning configuration.
                opts=child(self.versioning),
            )
        )

        self.name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"name": self.name, "arn": self.arn})


@dataclass(frozen=True)
class Trigger:
    """One notification target: a function invoked for created objects under prefix/suffix."""

    function: lambda_.Function
    """The function to invoke."""

    permission: lambda_.Permission
    """The function's resource policy allowing this bucket to invoke it."""

    prefix: str
    """Key prefix filter."""

    suffix: str
    """Key suffix filter."""


@dataclass(frozen=True)
class BucketTriggersArgs:
    """Inputs of `BucketTriggers`."""

    bucket: s3.Bucket
    """The triggering bucket."""

    triggers: tuple[Trigger, ...]
    """Every target of this bucket: a bucket has one notification configuration."""

    wait_for: tuple[pulumi.Resource, ...] = ()
    """Resources that must exist before the bucket notifies anyone (a target's schema migration, say)."""


class BucketTriggers(Component):
    """The one `s3.BucketNotification` of a bucket (a second one would silently replace the first)."""

    TYPE = "data-pipeline:bucket:BucketTriggers"

    notification: s3.BucketNotification
    notification_id: pulumi.Output[str]

    def __init__(self, name: str, args: BucketTriggersArgs, opts: Opts = None) -> None:
        super().__init__(name, opts)
        self.notification = s3.BucketNotification(
            f"{name}-notification",
            bucket=args.bucket.id,
            lambda_functions=[
                s3.BucketNotificationLambdaFunctionArgs(
                    id=f"{name}-{index}",
                    lambda_function_arn=t.function.arn,
                    events=["s3:ObjectCreated:*"],
                    filter_prefix=t.prefix,
                    filter_suffix=t.suffix,
                )
                for index, t in enumerate(args.triggers)
            ],
            # S3 test-invokes each destination when the configuration is saved: without the permissions in
            # place it answers "Unable to validate the following destination configurations".
            # A component's depends_on does not reach its children, so what must come first is named here.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*(t.permission for t in args.triggers), *args.wait_for]
            ),
        )
        self.notification_id = self.notification.id
        self.register_outputs({"notification_id": self.notification_id})
