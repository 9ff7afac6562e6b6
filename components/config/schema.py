"""The config schema: the namespace, every key and what each allows (values, limits, patterns), and which
keys a stack may set with `--secret`."""

from __future__ import annotations

import re

from components.stage_table import stage_names
from handlers import contract

NAMESPACE = "data-pipeline"
STAGES = stage_names()
BUCKET_ROLES = tuple(str(role) for role in contract.BUCKET_ROLES)
BUCKET_NAME_MAX = 63

RUNTIMES = ("python3.12", "python3.13")
ARCHITECTURES = ("x86_64", "arm64")
# The values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
AGGREGATION_WINDOWS = tuple(contract.WINDOWS)

# bucketSuffix appends "-" + 8 hex characters (random.RandomId, 4 bytes).
SUFFIX_HEX_CHARS = 8
SUFFIX_PLACEHOLDER = "-" + "0" * SUFFIX_HEX_CHARS
FUNCTION_NAME_MAX = 64
# Lambda rejects a function whose environment variables exceed 4 KB in total (keys and values).
LAMBDA_ENV_MAX_BYTES = 4096
# The largest maxRecordBytes whose records/ lines the processing stage can always read: ingestion may
# write a record longer than its input (handlers/contract.py, handlers.ingestion_core.output_bound).
MAX_RECORD_BYTES_LIMIT = contract.MAX_RECORD_BYTES_LIMIT

BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
BUCKET_CHARS = re.compile(r"^[a-z0-9.-]+$")
_ARN_PARTITION = r"arn:aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d"
KMS_KEY_ARN = re.compile(
    rf"^{_ARN_PARTITION}:kms:{_REGION}:\d{{12}}:key/(?:mrk-[0-9a-f]{{32}}|[0-9a-f]{{8}}(?:-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}})$"
)
# The full ARN, with the six characters Secrets Manager appends to the name: IAM matches a policy's
# Resource against the full ARN, so a grant naming a partial ARN would never apply.
SECRET_ARN = re.compile(
    rf"^{_ARN_PARTITION}:secretsmanager:{_REGION}:\d{{12}}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{{6}}$"
)
TOPIC_ARN = re.compile(rf"^{_ARN_PARTITION}:sns:{_REGION}:\d{{12}}:[A-Za-z0-9_-]{{1,256}}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
VPC_ID = re.compile(r"^vpc-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
ROUTE_TABLE_ID = re.compile(r"^rtb-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A field name: the analytics database keeps metric names in a 256-character column.
NAME_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
DB_URL = re.compile(r"^[a-z][a-z0-9+]*://\S+$")
RESOURCE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")

# RDS for PostgreSQL, current major version (database.create).
POSTGRES_MAJOR_VERSION = "17"
DB_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
DB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
DATABASE_CREATE_KEYS = ("instanceClass", "allocatedStorageGb", "multiAz", "name", "applyImmediately")

# How a function in the VPC reaches S3, Secrets Manager and SNS (`vpc.serviceAccess`).
SERVICE_ACCESS_ENDPOINTS = "endpoints"  # the stack creates the endpoints (components/network.py)
SERVICE_ACCESS_NAT = "nat"  # the subnets route 0.0.0.0/0 to a NAT gateway the user owns
SERVICE_ACCESS_EXISTING = "existingEndpoints"  # the VPC already has the endpoints, with private DNS
SERVICE_ACCESS_MODES = (SERVICE_ACCESS_ENDPOINTS, SERVICE_ACCESS_NAT, SERVICE_ACCESS_EXISTING)

# The settings resources a `DataBucket` declares for an adopted bucket, by their config name. Each one
# listed in `adoptBuckets.<role>.import` is imported (its import ID is the bucket name); the others are
# created, which writes the stack's setting over whatever the bucket has (S3 keeps one of each).
ADOPTABLE_SETTINGS = ("publicAccessBlock", "ownershipControls", "encryption", "versioning", "policy")
# What every bucket created since April 2023 has (S3's defaults: all four public access flags on,
# BucketOwnerEnforced, SSE-S3), so an import of it cannot fail for want of the setting.
DEFAULT_IMPORTED_SETTINGS = ("publicAccessBlock", "ownershipControls", "encryption")
ADOPT_KEYS = ("name", "import")

TOP_LEVEL_KEYS = (
    "buckets",
    "bucketSuffix",
    "forceDestroy",
    "retainBucketsOnDelete",
    "versioning",
    "noncurrentVersionExpirationDays",
    "kmsKeyArn",
    "runtime",
    "architecture",
    "logRetentionDays",
    "retryAttempts",
    "maxEventAgeSeconds",
    "stages",
    "inputPrefix",
    "inputSuffixes",
    "maxRecordBytes",
    "recordsPartBytes",
    "recordSchema",
    "aggregation",
    "database",
    "summaryTopicArn",
    "summaryTopicKmsKeyArn",
    "vpc",
    "layer",
    "alarmEmail",
    "overwrites",
    "adoptBuckets",
)
STAGE_KEYS = ("memoryMb", "timeoutSeconds", "reservedConcurrency", "logRetentionDays", "ephemeralStorageMb")
NESTED_KEYS: dict[str, tuple[str, ...]] = {
    "buckets": BUCKET_ROLES,
    "adoptBuckets": BUCKET_ROLES,
    "versioning": BUCKET_ROLES,
    "stages": STAGES,
    "aggregation": ("window", "dimensions", "metrics"),
    "database": ("secretArn", "url", "kmsKeyArn", "create"),
    "vpc": ("subnetIds", "securityGroupIds", "serviceAccess", "vpcId", "routeTableIds", "create"),
    "layer": ("archive", "includeBoto3"),
}
KNOWN_KEYS = TOP_LEVEL_KEYS

# The keys a stack may set with `--secret`: their values reach only the function environment, the role
# policy, the migration's triggers and the alarm subscription, where the program keeps them secret
# (`PipelineConfig.secret_keys`). Every other key becomes a name, ID or filter that AWS shows to anyone who
# can read the resource (and Pulumi in its URNs and outputs), so `--secret` on it would be a false promise:
# refused, with the reason (`NOT_SECRET_REASONS`).
KEPT_SECRET_KEYS = (
    "database",
    "summaryTopicArn",
    "summaryTopicKmsKeyArn",
    "alarmEmail",
    "recordSchema",
    "aggregation",
    "maxRecordBytes",
    "recordsPartBytes",
    "overwrites",
)
NOT_SECRET_REASONS = {
    "buckets": "bucket names are public: they are in every ARN, stack output and S3 event",
    "kmsKeyArn": "the key ARN is part of every bucket's encryption settings and every queue's attributes",
    "vpc": "the subnet, security group, VPC and route table IDs are part of the function's VpcConfig and "
    "the endpoints",
    "inputPrefix": "it is the raw bucket's notification filter and part of the role policy's ARNs",
    "inputSuffixes": "they are the raw bucket's notification filters and part of the role policy's ARNs",
    "layer": "it is a path on the machine that runs Pulumi, read to publish the layer",
}
