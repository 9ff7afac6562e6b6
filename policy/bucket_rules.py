"""The stack rules over buckets: public access blocked, encryption by default, TLS only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from resource_types import BUCKET, BUCKET_POLICY, ENCRYPTION, PUBLIC_ACCESS_BLOCK
from rule_model import UNKNOWN, Resource, Violation, as_list, lookup, of_type, refers_to, statements_of

PUBLIC_ACCESS_FLAGS: Final = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
SSE_ALGORITHMS: Final = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})


def _attached(
    resources: Sequence[Resource], kind: str, prop: str, bucket: Resource
) -> tuple[list[Resource], bool]:
    """Resources of `kind` whose `prop` designates `bucket`, and whether some could not be told."""
    found, unsure = [], False
    for candidate in of_type(resources, kind):
        verdict = refers_to(candidate, prop, candidate.props.get(prop), bucket)
        if verdict is None:
            unsure = True
        elif verdict:
            found.append(candidate)
    return found, unsure


def check_buckets_block_public_access(resources: Sequence[Resource]) -> list[Violation]:
    """Every bucket has a BucketPublicAccessBlock with all four flags true."""
    violations = []
    for bucket in of_type(resources, BUCKET):
        blocks, unsure = _attached(resources, PUBLIC_ACCESS_BLOCK, "bucket", bucket)
        complete = [b for b in blocks if all(b.props.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS)]
        if complete:
            continue
        if unsure or any(any(b.props.get(f) is UNKNOWN for f in PUBLIC_ACCESS_FLAGS) for b in blocks):
            violations.append(
                Violation(f"bucket {bucket.name}: public access block", bucket.urn, undetermined=True)
            )
        elif blocks:
            missing = sorted({f for b in blocks for f in PUBLIC_ACCESS_FLAGS if b.props.get(f) is not True})
            message = f"bucket {bucket.name}: public access block leaves {', '.join(missing)} off"
            violations.append(Violation(message, bucket.urn))
        else:
            violations.append(Violation(f"bucket {bucket.name} has no BucketPublicAccessBlock", bucket.urn))
    return violations


def _encrypts(config: Resource) -> bool | None:
    rules = config.props.get("rules")
    if rules is UNKNOWN:
        return None
    for rule in as_list(rules):
        algorithm = lookup(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
        if algorithm is UNKNOWN:
            return None
        if algorithm in SSE_ALGORITHMS:
            return True
    return False


def check_buckets_encrypted(resources: Sequence[Resource]) -> list[Violation]:
    """Every bucket has a BucketServerSideEncryptionConfiguration with a default algorithm."""
    violations = []
    for bucket in of_type(resources, BUCKET):
        configs, unsure = _attached(resources, ENCRYPTION, "bucket", bucket)
        verdicts = [_encrypts(c) for c in configs]
        if True in verdicts:
            continue
        if unsure or None in verdicts:
            violations.append(Violation(f"bucket {bucket.name}: encryption", bucket.urn, undetermined=True))
        elif configs:
            message = f"bucket {bucket.name}: encryption configuration sets no default algorithm"
            violations.append(Violation(message, bucket.urn))
        else:
            violations.append(
                Violation(f"bucket {bucket.name} has no BucketServerSideEncryptionConfiguration", bucket.urn)
            )
    return violations


def _readable_statements(document: Any) -> list[Mapping[str, Any]] | None:
    """Like `statements_of`, an unreadable document counting as one without statements."""
    try:
        return statements_of(document)
    except ValueError:
        return []


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if principal != "*" and as_list(lookup(principal, "AWS")) != ["*"]:
        return False
    actions = as_list(statement.get("Action"))
    if not ({"*", "s3:*"} & {a for a in actions if isinstance(a, str)}):
        return False
    value = lookup(statement.get("Condition"), "Bool", "aws:SecureTransport")
    return [str(v).lower() for v in as_list(value)] == ["false"]


def check_buckets_deny_insecure_transport(resources: Sequence[Resource]) -> list[Violation]:
    """Every bucket has a policy denying every S3 action to anyone when aws:SecureTransport is false."""
    violations = []
    for bucket in of_type(resources, BUCKET):
        policies, unsure = _attached(resources, BUCKET_POLICY, "bucket", bucket)
        documents = [_readable_statements(p.props.get("policy")) for p in policies]
        if any(d is not None and any(_denies_insecure_transport(s) for s in d) for d in documents):
            continue
        if unsure or None in documents:
            violations.append(Violation(f"bucket {bucket.name}: policy", bucket.urn, undetermined=True))
        else:
            violations.append(
                Violation(
                    f"bucket {bucket.name} has no policy statement denying s3:* "
                    "when aws:SecureTransport is false",
                    bucket.urn,
                )
            )
    return violations
