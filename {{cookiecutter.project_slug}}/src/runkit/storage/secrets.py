"""Which recorded values are secrets: a config key that names one (`db_password`, `api_key`, `hf_token`,
`client_secret`, `credentials`) or one the project lists in `tracking.secret_keys`. Their values are masked
before anything is recorded (config.yaml, overrides.yaml, run.json, the params in events.jsonl, and so every
backend), while the training code keeps the real value.

A key is judged by its last part, split into words (`_`, `-`, camelCase): it is secret when a word is one of
password, passwd, pwd, passphrase, secret, token, credential(s), apikey, or when it ends in `key` after
another word (`api_key`, `access_key`, `private_key`; not a bare `key`, nor `key_x` or `keys`).
`tracking.secret_keys` adds names or glob patterns, matched against the dotted key or its last part
(`[db.uri, "*_dsn"]`). Only scalar values are masked; a mapping under a secret name is looked into.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "passphrase", "secret", "token", "credential", "credentials", "apikey"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")


class Secrets:
    """The rule for one run: the built-in words plus the project's `tracking.secret_keys`."""

    def __init__(self, extra: Iterable[str] | None = None) -> None:
        self.extra = [str(pattern) for pattern in (extra or [])]

    def is_secret(self, key: str) -> bool:
        key = key.lstrip("+~")
        last = key.rsplit(".", 1)[-1]
        if any(fnmatch.fnmatchcase(key, p) or fnmatch.fnmatchcase(last, p) for p in self.extra):
            return True
        words = _WORD.findall(_CAMEL.sub("_", last).lower())
        if any(word in SECRET_WORDS for word in words):
            return True
        return len(words) >= 2 and words[-1] == "key"

    def mapping(self, data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        """A copy of a (nested) mapping with the values of secret keys masked; keys may be dotted."""
        out: dict[str, Any] = {}
        for key, value in data.items():
            path = f"{prefix}{key}"
            if isinstance(value, Mapping):
                out[key] = self.mapping(value, f"{path}.")
            elif self.is_secret(path) and value is not None and not isinstance(value, (list, tuple, bool)):
                out[key] = MASK
            else:
                out[key] = value
        return out

    def overrides(self, items: Iterable[str]) -> list[str]:
        """Command-line overrides (`key=value`, also in argv) with secret values masked."""
        out = []
        for item in items:
            key, sep, value = str(item).partition("=")
            out.append(f"{key}{sep}{MASK}" if sep and value and self.is_secret(key) else str(item))
        return out

    def text(self, text: str, values: Iterable[str]) -> str:
        """`text` with each of the given secret values replaced by the mask."""
        for value in values:
            if len(value) >= 4:
                text = text.replace(value, MASK)
        return text
