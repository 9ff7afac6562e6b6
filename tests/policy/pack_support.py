"""What the pack's tests share: the policies the brief asks of the pack."""

BRIEF_POLICIES = frozenset(
    {
        "s3-bucket-public-access-blocked",
        "s3-bucket-encrypted",
        "s3-bucket-tls-only",
        "iam-no-wildcard-action",
        "lambda-log-retention",
        "lambda-failure-destination",
        "lambda-runtime-supported",
        "s3-notification-no-self-trigger",
        "s3-staging-triggers-nothing",
    }
)
