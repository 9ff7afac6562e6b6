"""Reading typed values out of the raw config while recording every problem (`ConfigError` lists them all,
each with the closest known key for a misspelt one)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from components.config.schema import NAMESPACE, NESTED_KEYS


@dataclass(frozen=True)
class Problem:
    """One invalid key and what is allowed."""

    key: str
    """The full key, e.g. data-pipeline:stages.ingestion.memoryMb."""

    message: str
    """What is wrong and what is allowed."""


class ConfigError(ValueError):
    """The stack configuration is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p.key}: {p.message}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"invalid stack configuration ({count} problem{'s' * (count != 1)}):\n{lines}")


class Collector:
    """Reads typed values out of the raw mapping, recording problems instead of stopping at the first."""

    def __init__(self, secret_keys: frozenset[str] = frozenset()) -> None:
        self.problems: list[Problem] = []
        self.secret_keys = secret_keys  # top-level keys Pulumi holds encrypted: never echoed

    def show(self, key: str, value: Any) -> str:
        """``value`` for an error message, unless it belongs to a secret key (a URL with a password)."""
        if key.split(".", 1)[0] in self.secret_keys:
            return f"a secret {type(value).__name__}"
        return _show(value)

    def fail(self, key: str, message: str) -> None:
        self.problems.append(Problem(f"{NAMESPACE}:{key}", message))

    def unknown(self, key_path: str, name: str, known: tuple[str, ...]) -> None:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        self.fail(key_path, f"unknown key; {hint}known keys: {', '.join(known)}")

    def check_keys(self, path: str, value: Mapping[str, Any], known: tuple[str, ...]) -> None:
        for name in value:
            if name not in known:
                self.unknown(f"{path}.{name}", name, known)

    def boolean(self, key: str, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        self.fail(key, f"{self.show(key, value)} is not a boolean; allowed: true, false")
        return default

    def integer(self, key: str, value: Any, default: int, low: int, high: int | None) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"{self.show(key, value)} is not an integer; allowed: {allowed_range(low, high)}")
            return default
        if value < low or (high is not None and value > high):
            self.fail(key, f"{self.show(key, value)} is out of range; allowed: {allowed_range(low, high)}")
            return default
        return value

    def choice(self, key: str, value: Any, default: Any, allowed: tuple[Any, ...]) -> Any:
        if value is None:
            return default
        if value not in allowed or isinstance(value, bool):
            shown = ", ".join(str(a) for a in allowed)
            self.fail(key, f"{self.show(key, value)} is not allowed; allowed: {shown}")
            return default
        return value

    def string(self, key: str, value: Any, pattern: re.Pattern[str] | None, what: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            self.fail(key, f"{self.show(key, value)} is not {what}")
            return None
        return value

    def mapping(self, key: str, value: Any) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(
                key, f"{self.show(key, value)} is not an object; allowed keys: {', '.join(NESTED_KEYS[key])}"
            )
            return {}
        self.check_keys(key, value, NESTED_KEYS[key])
        return value

    def string_list(
        self, key: str, value: Any, check: Callable[[str], bool], what: str, *, allow_empty: bool = False
    ) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"{self.show(key, value)} is not a list of strings")
            return None
        if not value and not allow_empty:
            self.fail(key, "must not be empty")
            return None
        bad = [v for v in value if not check(v)]
        if bad:
            self.fail(key, f"{', '.join(self.show(key, b) for b in bad)}: each must be {what}")
            return None
        if len(set(value)) != len(value):
            self.fail(key, "contains duplicates")
            return None
        return tuple(value)


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def allowed_range(low: int, high: int | None) -> str:
    """An integer range as the error messages show it: `1-10`, or `>= 1` without an upper bound."""
    return f"{low}-{high}" if high is not None else f">= {low}"


def coerce(raw: Any) -> Any:
    """Pulumi hands config values over as strings; structured values and scalars arrive JSON-encoded."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw
