"""Keep secrets out of the tracking store: redact before anything is logged.

Two rules, applied by :mod:`wxops.tracking` to params, tags, dict/text artifacts,
dataset sources and text files it uploads: a value whose *key* looks like a password,
token, secret, API key or credential becomes ``***``; and any configured secret value
(``tracking.secrets``) is replaced wherever it appears, inside longer strings too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
#: Keys whose values are never logged (matched anywhere in the key, case-insensitive).
SECRET_KEY = re.compile(r"pass(word|wd)?|token|secret|api[_-]?key|credential|private[_-]?key",
                        re.IGNORECASE)
#: ``key=value`` / ``key: value`` / ``"key": "value"`` in free text, for secret-looking keys.
_TEXT_PAIR = re.compile(
    r"""(?P<key>[\w.-]*(?:pass(?:word|wd)?|token|secret|api[_-]?key|credential|private[_-]?key)[\w.-]*)"""
    r"""(?P<sep>["']?\s*[:=]\s*["']?)(?P<value>[^\s"',;&]+)""",
    re.IGNORECASE,
)
#: Password part of ``scheme://user:password@host`` URLs.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]+:)(?P<pw>[^@\s/]+)(?P<at>@)", re.IGNORECASE)

#: HTTP credentials in free text: ``Bearer <token>``, ``Basic <base64>`` (as in an
#: ``Authorization`` header copied into a log line).
_HTTP_CREDENTIAL = re.compile(
    r"(?P<scheme>\b(?:Bearer|bearer|BEARER|Basic|basic|BASIC)\s+)"
    # a credential, not a word: a digit or a token character in it, or long
    r"(?P<cred>(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{6,}|[A-Za-z]{20,})")

_secrets: tuple[str, ...] = ()


def configure(values: Iterable[str]) -> None:
    """Set the literal secret values to redact (process-wide, once at start-up)."""
    global _secrets
    _secrets = tuple(sorted({v for v in values if v}, key=len, reverse=True))


def secret_values() -> tuple[str, ...]:
    return _secrets


def is_secret_key(key: str) -> bool:
    return SECRET_KEY.search(key) is not None


def redact_text(text: str) -> str:
    """Replace configured secrets, ``key=value`` pairs of secret keys, ``Bearer``/``Basic``
    credentials and URL passwords."""
    for value in _secrets:
        text = text.replace(value, MASK)
    text = _HTTP_CREDENTIAL.sub(lambda m: f"{m['scheme']}{MASK}", text)
    text = _TEXT_PAIR.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", text)
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}", text)


def redact_value(key: str, value: Any) -> Any:
    """The value to log under ``key``: masked for secret keys, scrubbed otherwise."""
    if is_secret_key(key):
        return MASK
    return redact_tree(value)


def redact_mapping(values: dict[str, Any]) -> dict[str, Any]:
    """Params or tags with secret-looking keys masked and secret values scrubbed."""
    return {k: redact_value(k, v) for k, v in values.items()}


def redact_tree(value: Any) -> Any:
    """A JSON-like structure with every secret removed (dict keys decide, strings scrubbed)."""
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
