"""What a preflight check reports: one finding per config key, passed or failed with the fix."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from components.config import NAMESPACE


@dataclass(frozen=True)
class Finding:
    """The result of one check."""

    key: str
    """The config key the check is about (full, `data-pipeline:...`)."""

    ok: bool
    """Passed (or skipped with a note)."""

    message: str
    """What was found; on failure, also the fix."""


class Findings(list[Finding]):
    """The findings so far; each check appends to it under the full key (`data-pipeline:...`)."""

    def ok(self, key: str, message: str) -> None:
        self.append(Finding(f"{NAMESPACE}:{key}", True, message))

    def fail(self, key: str, message: str) -> None:
        self.append(Finding(f"{NAMESPACE}:{key}", False, message))


def error_code(error: ClientError) -> str:
    """The AWS error code of a botocore client error (`""` when the response has none)."""
    return str(error.response.get("Error", {}).get("Code", ""))
