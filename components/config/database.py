"""Database settings: an existing secret, a URL kept as a secret, or an RDS instance the stack creates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.config.collector import Collector
from components.config.model import Database, ManagedDatabaseSettings
from components.config.schema import (
    DATABASE_CREATE_KEYS,
    DB_INSTANCE_CLASS,
    DB_NAME,
    DB_URL,
    KMS_KEY_ARN,
    SECRET_ARN,
)


def database_settings(c: Collector, value: Any, is_secret: bool) -> Database | None:
    """`database`: a secret ARN, a URL or `create` (exactly one), and its key; None when unset."""
    raw = c.mapping("database", value)
    if not raw:
        return None
    secret_arn = c.string(
        "database.secretArn",
        raw.get("secretArn"),
        SECRET_ARN,
        "a full Secrets Manager secret ARN, ending in the six characters AWS adds to the name "
        "(arn:aws:secretsmanager:<region>:<account>:secret:<name>-AbCdEf)",
    )
    kms_key_arn = c.string(
        "database.kmsKeyArn",
        raw.get("kmsKeyArn"),
        KMS_KEY_ARN,
        "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)",
    )
    if kms_key_arn is not None and "secretArn" not in raw:
        c.fail(
            "database.kmsKeyArn",
            "is the key of an existing secret (database.secretArn); "
            "a secret the stack creates uses kmsKeyArn",
        )
    url = raw.get("url")
    if url is not None:
        if not isinstance(url, str) or not DB_URL.match(url):
            # Never echo the value: it holds a password.
            c.fail("database.url", "is not a database URL such as postgresql+psycopg2://user:pass@host/db")
            url = None
        elif not is_secret:
            c.fail(
                "database.url",
                "holds a password in plain text; set it with "
                "`pulumi config set --secret --path database.url <url>`",
            )
            url = None
    create = _database_create(c, raw.get("create")) if "create" in raw else None
    if sum(name in raw for name in ("secretArn", "url", "create")) != 1:
        c.fail("database", "set exactly one of database.secretArn, database.url and database.create")
        return None
    if secret_arn is None and url is None and create is None:
        return None
    return Database(secret_arn=secret_arn, url=url, kms_key_arn=kms_key_arn, create=create)


def _database_create(c: Collector, value: Any) -> ManagedDatabaseSettings | None:
    key = "database.create"
    if value is True:
        return ManagedDatabaseSettings()
    if not isinstance(value, Mapping):
        c.fail(key, f"is true or an object with {', '.join(DATABASE_CREATE_KEYS)}")
        return None
    c.check_keys(key, value, DATABASE_CREATE_KEYS)
    defaults = ManagedDatabaseSettings()
    instance_class = c.string(
        f"{key}.instanceClass",
        value.get("instanceClass"),
        DB_INSTANCE_CLASS,
        "an RDS instance class (db.t4g.micro)",
    )
    name = c.string(
        f"{key}.name", value.get("name"), DB_NAME, "a database name (a letter, then letters, digits or _)"
    )
    return ManagedDatabaseSettings(
        instance_class=instance_class or defaults.instance_class,
        allocated_storage_gb=c.integer(
            f"{key}.allocatedStorageGb", value.get("allocatedStorageGb"), 20, 20, 65536
        ),
        multi_az=c.boolean(f"{key}.multiAz", value.get("multiAz"), False),
        name=name or defaults.name,
        apply_immediately=c.boolean(f"{key}.applyImmediately", value.get("applyImmediately"), False),
    )
