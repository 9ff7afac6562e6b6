"""The lifecycle an adopted bucket needs: its staging prefix expires.

A bucket the stack creates gets a lifecycle configuration that expires what a stage leaves in its staging
prefix (`StageDescription.staging`) after `STAGING_EXPIRATION_DAYS`. An adopted bucket gets none, because
S3 keeps one lifecycle configuration per bucket and the stack's would replace the owner's rules
(docs/configuration.md, "Adopting an existing bucket"). So the owner must hold such a rule among theirs,
and this check reads whether they do.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from components.config import PipelineConfig
from components.stage_table import staging_prefixes
from devtools.ops.preflight.findings import Findings, error_code
from handlers.contract import STAGING_EXPIRATION_DAYS


def staging_rule(prefix: str) -> dict[str, Any]:
    """The rule a bucket the stack creates holds for `prefix`, as S3's lifecycle API spells it."""
    return {
        "ID": "expire-staged",
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "Expiration": {"Days": STAGING_EXPIRATION_DAYS},
        "NoncurrentVersionExpiration": {"NoncurrentDays": STAGING_EXPIRATION_DAYS},
    }


def _covers(rule: dict[str, Any], prefix: str) -> bool:
    """Whether `rule` applies to every object under `prefix`: enabled, and filtered by a prefix of it alone
    (a tag or size filter would leave some objects out)."""
    if rule.get("Status") != "Enabled":
        return False
    if "Filter" in rule:
        scope = rule["Filter"]
        if set(scope) - {"Prefix"}:
            return False
        rule_prefix = scope.get("Prefix", "")
    else:  # the legacy top-level prefix
        rule_prefix = rule.get("Prefix", "")
    return prefix.startswith(rule_prefix)


def _missing(rules: list[dict[str, Any]], prefix: str, versioned: bool) -> list[str]:
    """What no rule covering `prefix` does: expire current objects, and (versioned) noncurrent versions."""
    covering = [rule for rule in rules if _covers(rule, prefix)]
    missing = []
    if not any(rule.get("Expiration", {}).keys() & {"Days", "Date"} for rule in covering):
        missing.append("expire its objects")
    noncurrent = (rule.get("NoncurrentVersionExpiration", {}) for rule in covering)
    if versioned and not any("NoncurrentDays" in expiry for expiry in noncurrent):
        missing.append("expire their noncurrent versions")
    return missing


def check_adopted_lifecycle(cfg: PipelineConfig, s3: Any, out: Findings) -> None:
    """Each adopted bucket a stage stages objects in has a lifecycle rule that expires them."""
    for role, adopted in cfg.adopted_buckets.items():
        prefixes = staging_prefixes(role)
        if not prefixes:
            continue
        key, name = f"adoptBuckets.{role}", adopted.name
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        except ClientError as error:
            code = error_code(error)
            if code != "NoSuchLifecycleConfiguration":
                out.fail(key, f"{name}: GetBucketLifecycleConfiguration failed ({code}); check the access")
                continue
            rules = []
        try:
            # A suspended bucket keeps the noncurrent versions it made while enabled.
            versioned = s3.get_bucket_versioning(Bucket=name).get("Status") in ("Enabled", "Suspended")
        except ClientError as error:
            out.fail(key, f"{name}: GetBucketVersioning failed ({error_code(error)}); check the access")
            continue
        for prefix in prefixes:
            missing = _missing(rules, prefix, versioned)
            if missing:
                out.fail(
                    key,
                    f"{name}: no enabled lifecycle rule on {prefix} (and no tag or size filter) does "
                    f"{' or '.join(missing)}, so what a stage leaves there is never removed; add this rule "
                    "beside the bucket's own (S3 keeps one lifecycle configuration per bucket, so "
                    "put-bucket-lifecycle-configuration with every rule): "
                    f"{json.dumps(staging_rule(prefix))}",
                )
            else:
                out.ok(key, f"{name}: a lifecycle rule expires {prefix}")
