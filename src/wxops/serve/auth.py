"""Bearer tokens with scopes, compared in constant time; tokens never reach a log.

A token entry is ``scopes:token``, scopes being ``predict`` and/or ``admin`` joined by
``,`` (``predict,admin:s3cr3t...``). Entries come from the ``WXOPS_SERVE_TOKENS``
environment variable (separated by ``;`` or newlines) and/or a token file (one entry a
line, ``#`` comments) that only its owner may read (mode 0600), like an SSH key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from wxops.errors import ServeError

SCOPES: tuple[str, ...] = ("predict", "admin")
#: Shortest token accepted: shorter ones can be guessed.
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class AuthResult:
    """Outcome of checking one request: HTTP status (200 when allowed) and why not."""

    status: int
    reason: str = ""


class TokenSet:
    """Configured tokens, kept only as sha256 digests, each with its scopes.

    Checking a token hashes it and compares it against *every* configured digest with
    :func:`hmac.compare_digest`, so the time taken says nothing about how much of a
    token was right or which entry matched.
    """

    def __init__(self, entries: Mapping[str, frozenset[str]]) -> None:
        self._entries = [(hashlib.sha256(t.encode()).digest(), s) for t, s in entries.items()]

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:  # never show token material
        return f"TokenSet({len(self._entries)} tokens)"

    def scopes_of(self, token: str) -> frozenset[str] | None:
        """Scopes of ``token``, or None if it is not a configured token."""
        given = hashlib.sha256(token.encode()).digest()
        found: frozenset[str] | None = None
        for digest, scopes in self._entries:
            if hmac.compare_digest(given, digest):
                found = scopes
        return found

    def check(self, authorization: str | None, scope: str) -> AuthResult:
        """Check an ``Authorization`` header value for ``scope``: 200, 401 or 403."""
        if not authorization:
            return AuthResult(401, "missing bearer token (send 'Authorization: Bearer <token>')")
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            return AuthResult(401, "the Authorization header must be 'Bearer <token>'")
        scopes = self.scopes_of(token.strip())
        if scopes is None:
            return AuthResult(401, "invalid bearer token")
        if scope not in scopes:
            return AuthResult(403, f"this token lacks the '{scope}' scope")
        return AuthResult(200)


def parse_token_entries(lines: Iterable[str], *, origin: str) -> dict[str, frozenset[str]]:
    """Parse ``scopes:token`` entries; ``origin`` names where they came from in errors.

    Error messages give the entry's position, never its text, so a token cannot leak
    into a log through a typo.
    """
    entries: dict[str, frozenset[str]] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        scope_text, sep, token = line.partition(":")
        token = token.strip()
        if not sep or not token:
            raise ServeError(
                f"{origin}, entry {number}: write 'scopes:token', e.g. 'predict:<token>' "
                f"or 'predict,admin:<token>'"
            )
        scopes = frozenset(s.strip() for s in scope_text.split(",") if s.strip())
        unknown = sorted(scopes - set(SCOPES))
        if unknown or not scopes:
            raise ServeError(
                f"{origin}, entry {number}: unknown scopes {unknown or '(none)'}; "
                f"use {' and/or '.join(SCOPES)}"
            )
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise ServeError(
                f"{origin}, entry {number}: tokens need at least {MIN_TOKEN_LENGTH} characters "
                "and no spaces; make one with `python -c \"import secrets; "
                "print(secrets.token_urlsafe(32))\"`"
            )
        entries[token] = entries.get(token, frozenset()) | scopes
    return entries


def read_token_file(path: Path) -> dict[str, frozenset[str]]:
    """Token entries of a file that only its owner can read (refused otherwise)."""
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ServeError(f"token file {path}: cannot read it ({exc.strerror})") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ServeError(
            f"token file {path} is readable by others (mode {stat.filemode(info.st_mode)}); "
            f"run `chmod 600 {path}`"
        )
    return parse_token_entries(text.splitlines(), origin=f"token file {path}")


def load_tokens(
    env_var: str, token_file: Path | None, environ: Mapping[str, str] | None = None
) -> TokenSet:
    """Tokens from the environment variable and the token file together.

    Raises:
        ServeError: if neither gives a token (the service would refuse every request).
    """
    env = os.environ if environ is None else environ
    entries: dict[str, frozenset[str]] = {}
    raw = env.get(env_var, "")
    if raw.strip():
        pieces = raw.replace("\n", ";").split(";")
        entries.update(parse_token_entries(pieces, origin=f"${env_var}"))
    if token_file is not None:
        for token, scopes in read_token_file(token_file).items():
            entries[token] = entries.get(token, frozenset()) | scopes
    if not entries:
        raise ServeError(
            f"no bearer token configured: set {env_var}='predict,admin:<token>' or pass "
            "--token-file FILE (mode 0600); for local use only, --no-auth switches auth off"
        )
    return TokenSet(entries)
