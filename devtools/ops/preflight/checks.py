"""The account-side checks: bucket names, Lambda concurrency, KMS keys, the secret and topic, the database's
IAM authentication, the runtime.

`preflight` runs them all, the VPC's (`network.py`) included, in the order they are reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from components.config import PipelineConfig
from devtools.ops.preflight.findings import Finding, Findings, error_code
from devtools.ops.preflight.lifecycle import check_adopted_lifecycle
from devtools.ops.preflight.network import check_network

# Lambda keeps this much of the account's concurrency unreserved.
UNRESERVED_MINIMUM = 100
# AWS's documented deprecation dates of the runtimes the config allows (Lambda runtimes page).
RUNTIME_DEPRECATION = {"python3.12": dt.date(2028, 10, 31), "python3.13": dt.date(2029, 6, 30)}


def check_buckets(cfg: PipelineConfig, s3: Any, out: Findings) -> None:
    if cfg.bucket_suffix:
        out.ok("buckets", "bucketSuffix adds a random suffix to every name: no collision to check")
        return
    for role, name in cfg.bucket_base_names.items():
        key = f"buckets.{role}"
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as error:
            code = error_code(error)
            if code in ("404", "NoSuchBucket", "NotFound"):
                out.ok(key, f"{name}: free")
            elif code in ("403", "AccessDenied", "Forbidden"):
                out.fail(
                    key,
                    f"{name}: another AWS account owns this name (HeadBucket 403), so creating it would fail "
                    f"with BucketAlreadyExists halfway through the apply; choose another name with "
                    f"`pulumi config set --path {key} <name>`, or turn bucketSuffix on",
                )
            else:
                out.fail(key, f"{name}: HeadBucket failed ({code}); check the credentials and retry")
            continue
        out.ok(key, f"{name}: exists in this account (fine if this stack created it; otherwise rename it)")


def check_concurrency(cfg: PipelineConfig, lambda_: Any, out: Findings) -> None:
    reserved = {s: st.reserved_concurrency for s, st in cfg.stages.items() if st.reserved_concurrency}
    key = "stages"
    try:
        limit = lambda_.get_account_settings()["AccountLimit"]
    except (ClientError, BotoCoreError) as error:
        out.fail(key, f"could not read the account's Lambda concurrency (GetAccountSettings): {error}")
        return
    total = int(limit["ConcurrentExecutions"])
    unreserved = int(limit["UnreservedConcurrentExecutions"])
    # This stack's functions, if deployed, already hold reservations that the new ones replace.
    held = 0
    for stage in reserved:
        try:
            answer = lambda_.get_function_concurrency(FunctionName=cfg.function_name(stage))
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            continue
        held += int(answer.get("ReservedConcurrentExecutions") or 0)
    need = sum(reserved.values())
    if not reserved:
        out.ok(key, f"no reserved concurrency; the account allows {total} concurrent executions")
    elif unreserved + held - need >= UNRESERVED_MINIMUM:
        out.ok(key, f"reservations {need} leave {unreserved + held - need} unreserved of {total}")
    else:
        stages = ", ".join(f"stages.{s}.reservedConcurrency={n}" for s, n in reserved.items())
        out.fail(
            key,
            f"the reservations ({stages}; {need} in all) would leave {unreserved + held - need} of the "
            f"account's {total} concurrent executions unreserved, and Lambda keeps at least "
            f"{UNRESERVED_MINIMUM}: lower or remove them (`pulumi config rm --path stages.<stage>."
            f"reservedConcurrency`), or request a higher quota (Service Quotas, Lambda, L-B99A9384) of at "
            f"least {total - unreserved - held + need + UNRESERVED_MINIMUM}",
        )


def check_keys(cfg: PipelineConfig, kms: Any, region: str, out: Findings) -> None:
    keys = {
        "kmsKeyArn": cfg.kms_key_arn,
        "database.kmsKeyArn": cfg.database.kms_key_arn if cfg.database else None,
        "summaryTopicKmsKeyArn": cfg.summary_topic_kms_key_arn,
    }
    for key, arn in keys.items():
        if arn is None:
            continue
        if arn.split(":")[3] != region:
            out.fail(key, f"is in {arn.split(':')[3]}, the stack in {region}: use a key in {region}")
            continue
        try:
            meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
        except ClientError as error:
            out.fail(
                key,
                f"DescribeKey failed ({error_code(error)}): the key does not exist or its policy does not "
                "let you use it; fix the ARN or the key policy",
            )
            continue
        if meta.get("KeyState") != "Enabled":
            out.fail(key, f"the key is {meta.get('KeyState')}: enable it (or cancel its deletion)")
        elif meta.get("KeyUsage") != "ENCRYPT_DECRYPT" or meta.get("KeySpec", "SYMMETRIC_DEFAULT") != (
            "SYMMETRIC_DEFAULT"
        ):
            out.fail(key, "is not a symmetric encryption key: S3, SQS and Secrets Manager need one")
        else:
            out.ok(key, "enabled symmetric key in the stack's region")


def check_secret_and_topic(cfg: PipelineConfig, secrets: Any, sns: Any, out: Findings) -> None:
    if cfg.database is not None and cfg.database.secret_arn is not None:
        try:
            secrets.describe_secret(SecretId=cfg.database.secret_arn)
            out.ok("database.secretArn", "the secret exists")
        except ClientError as error:
            out.fail(
                "database.secretArn",
                f"DescribeSecret failed ({error_code(error)}): create the secret (its SecretString the "
                "SQLAlchemy URL) or fix the ARN",
            )
    if cfg.summary_topic_arn is not None:
        try:
            sns.get_topic_attributes(TopicArn=cfg.summary_topic_arn)
            out.ok("summaryTopicArn", "the topic exists")
        except ClientError as error:
            out.fail(
                "summaryTopicArn",
                f"GetTopicAttributes failed ({error_code(error)}): create the topic or fix the ARN",
            )


def check_database_auth(cfg: PipelineConfig, rds: Any, out: Findings) -> None:
    """An instance `database.create` made before loads signed in with IAM tokens has IAM database
    authentication off; RDS applies a modification of it in the next maintenance window unless
    ApplyImmediately is set, while the same `pulumi up` switches the loads to the IAM-authenticated user."""
    if cfg.database is None or cfg.database.create is None:
        return
    key, identifier = "database.create.applyImmediately", cfg.resource_prefix.lower()
    try:
        (instance,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except ClientError as error:
        if error_code(error) == "DBInstanceNotFound":
            out.ok(key, f"{identifier}: not created yet; it is created with IAM database authentication on")
        else:
            out.fail(
                key, f"{identifier}: DescribeDBInstances failed ({error_code(error)}); check the credentials"
            )
        return
    if instance.get("IAMDatabaseAuthenticationEnabled"):
        out.ok(key, f"{identifier}: IAM database authentication is on")
    elif cfg.database.create.apply_immediately:
        out.ok(key, f"{identifier}: IAM database authentication is off; this `pulumi up` turns it on at once")
    else:
        out.fail(
            key,
            f"{identifier}: IAM database authentication is off, and `pulumi up` would only queue turning it "
            f"on for the next maintenance window while every load signs in with IAM tokens at once (and "
            f"fails until then): set `pulumi config set --path {key} true` (every pending modification "
            f"is applied with it), or first run `aws rds modify-db-instance --db-instance-identifier "
            f"{identifier} --enable-iam-database-authentication --apply-immediately`",
        )


def check_runtime(cfg: PipelineConfig, ssm: Any, region: str, today: dt.date, out: Findings) -> None:
    try:
        ssm.get_parameter(Name=f"/aws/service/global-infrastructure/regions/{region}/services/lambda")
    except ClientError as error:
        if error_code(error) == "ParameterNotFound":
            out.fail("runtime", f"Lambda is not offered in {region}: deploy to another region (aws:region)")
            return
        out.fail("runtime", f"could not read whether {region} offers Lambda ({error_code(error)})")
        return
    deprecated = RUNTIME_DEPRECATION.get(cfg.runtime)
    if deprecated is not None and today >= deprecated:
        out.fail("runtime", f"{cfg.runtime} is deprecated since {deprecated}: set runtime to a newer one")
    else:
        out.ok("runtime", f"Lambda is offered in {region}; {cfg.runtime} is supported")


def preflight(
    cfg: PipelineConfig, session: Any, region: str, *, today: dt.date | None = None
) -> list[Finding]:
    """Every check, in order; reads only."""
    out = Findings()
    client: Callable[[str], Any] = lambda name: session.client(name, region_name=region)  # noqa: E731
    check_buckets(cfg, client("s3"), out)
    check_adopted_lifecycle(cfg, client("s3"), out)
    check_concurrency(cfg, client("lambda"), out)
    check_network(cfg, client("ec2"), out)
    check_keys(cfg, client("kms"), region, out)
    check_secret_and_topic(cfg, client("secretsmanager"), client("sns"), out)
    check_database_auth(cfg, client("rds"), out)
    check_runtime(cfg, client("ssm"), region, today or dt.date.today(), out)
    return list(out)
