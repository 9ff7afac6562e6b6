"""Read-only checks of a stack's config against the real account, before `pulumi up`.

`python -m devtools preflight --stack STACK [--region REGION] [--profile PROFILE]`

With the user's credentials (the default boto3 chain, or `--profile`), each check reads what `pulumi up`
would trip over halfway through an apply, and names the config key and the fix when it fails:

- `buckets.<role>`: the bucket name is free. HeadBucket 404: free; 403: another account owns it (the
  `BucketAlreadyExists` that would stop the apply); 200: this account has it (fine if this stack created
  it). A name with `bucketSuffix` (the default) gets a random suffix and is not checked.
- `adoptBuckets.<role>`: an adopted bucket a stage stages objects in has an enabled lifecycle rule on the
  staging prefix, with no tag or size filter, that expires them (and their noncurrent versions if the
  bucket is versioned): the stack declares no lifecycle configuration on an adopted bucket.
- `stages.<stage>.reservedConcurrency`: the account's concurrency covers the reservations plus the 100 Lambda
  keeps unreserved (GetAccountSettings; this stack's functions' current reservations count as available).
- `vpc.*`: the subnets exist; their route tables are `vpc.routeTableIds` when it is set (`endpoints`;
  unset, the stack looks up the same tables: each subnet's own, else the VPC's main one); the VPC resolves
  private DNS (`endpoints`); each subnet routes 0.0.0.0/0 to a NAT gateway (`nat`); the VPC has the
  endpoints of the services the stage uses (`existingEndpoints`); one subnet per availability zone
  (`endpoints`); two zones at least (`database.create`). Nothing to check with `vpc.create`.
- `kmsKeyArn`, `database.kmsKeyArn`, `summaryTopicKmsKeyArn`: each key is in the stack's region, enabled,
  and for encryption (DescribeKey).
- `database.secretArn`, `summaryTopicArn`: the secret and the topic exist (DescribeSecret,
  GetTopicAttributes).
- `database.create.applyImmediately`: an instance the stack already owns has IAM database authentication
  on, or this `pulumi up` applies it at once (DescribeDBInstances); otherwise RDS would turn it on only in
  the next maintenance window while the loads already sign in with IAM tokens.
- `runtime`: Lambda is offered in the region (the public SSM parameter of AWS's global infrastructure) and
  the runtime is not past the date AWS deprecates it (Lambda has no API listing the runtimes of a region).

The config comes from `pulumi config --json --show-secrets` when the Pulumi CLI is on PATH, else from
`Pulumi.<stack>.yaml` (an encrypted value cannot be read offline: the checks needing it say so). The core,
`preflight`, takes a `PipelineConfig` and a boto3 session, and is tested on moto (with botocore's Stubber for
GetAccountSettings, which moto lacks). Nothing here writes.
"""

# This docstring is the command's --help. The package by job: `findings.py` (what a check reports),
# `checks.py` (the account's buckets, Lambda concurrency, KMS keys, the secret and the topic, the runtime,
# and `preflight`, every check in order), `lifecycle.py` (an adopted bucket's staging rule), `network.py`
# (the VPC), `stack_config.py` (reading the stack's config), `command.py` (the command line).

from devtools.ops.preflight.checks import (
    RUNTIME_DEPRECATION,
    UNRESERVED_MINIMUM,
    check_buckets,
    check_concurrency,
    check_database_auth,
    check_keys,
    check_runtime,
    check_secret_and_topic,
    preflight,
)
from devtools.ops.preflight.command import main
from devtools.ops.preflight.findings import Finding, Findings
from devtools.ops.preflight.lifecycle import check_adopted_lifecycle, staging_rule
from devtools.ops.preflight.network import check_network
from devtools.ops.preflight.stack_config import PROJECT_DIR, load, read_config

__all__ = [
    "PROJECT_DIR",
    "RUNTIME_DEPRECATION",
    "UNRESERVED_MINIMUM",
    "Finding",
    "Findings",
    "check_adopted_lifecycle",
    "check_buckets",
    "check_concurrency",
    "check_database_auth",
    "check_keys",
    "check_network",
    "check_runtime",
    "check_secret_and_topic",
    "load",
    "main",
    "preflight",
    "read_config",
    "staging_rule",
]
