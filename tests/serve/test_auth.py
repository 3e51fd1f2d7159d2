"""Bearer tokens: parsing, the 0600 rule, scopes, and messages that never echo a token."""

from __future__ import annotations

from pathlib import Path

import pytest

from wxops.errors import ServeError
from wxops.serve.auth import TokenSet, load_tokens, parse_token_entries, read_token_file

TOKEN = "s3cr3t-token-abcdefghijkl"


def test_env_entries_with_scopes() -> None:
    tokens = load_tokens("T", None, {"T": f"predict:{TOKEN}; predict,admin:{TOKEN}-admin"})
    assert len(tokens) == 2
    assert tokens.check(f"Bearer {TOKEN}", "predict").status == 200
    assert tokens.check(f"Bearer {TOKEN}", "admin").status == 403
    assert tokens.check(f"bearer {TOKEN}-admin", "admin").status == 200
    assert tokens.check(f"Bearer {TOKEN}x", "predict").status == 401
    assert tokens.check(None, "predict").status == 401
    assert TOKEN not in repr(tokens)


def test_file_needs_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# comment\n\npredict:{TOKEN}\n")
    path.chmod(0o644)
    with pytest.raises(ServeError, match=r"readable by others .*`chmod 600 "):
        read_token_file(path)
    path.chmod(0o600)
    assert read_token_file(path) == {TOKEN: frozenset({"predict"})}


def test_file_and_env_merge_scopes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"admin:{TOKEN}\n")
    path.chmod(0o600)
    tokens = load_tokens("T", path, {"T": f"predict:{TOKEN}"})
    assert tokens.scopes_of(TOKEN) == frozenset({"predict", "admin"})


@pytest.mark.parametrize(("entry", "message"), [
    (TOKEN, r"entry 1: write 'scopes:token'"),
    (f"root:{TOKEN}", r"entry 1: unknown scopes \['root'\]"),
    ("predict:short", r"entry 1: tokens need at least 16 characters"),
    ("predict:", r"entry 1: write 'scopes:token'"),
    (f",:{TOKEN}", r"unknown scopes \(none\)"),
])
def test_bad_entries_name_the_entry_not_the_token(entry: str, message: str) -> None:
    with pytest.raises(ServeError, match=message) as info:
        parse_token_entries([entry], origin="$T")
    assert TOKEN not in str(info.value) and "short" not in str(info.value).split(":")[-1]


def test_no_tokens_at_all_is_refused() -> None:
    with pytest.raises(ServeError, match=r"no bearer token configured: set T=.*--no-auth"):
        load_tokens("T", None, {})


def test_missing_token_file(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="cannot read it"):
        load_tokens("T", tmp_path / "nope", {})


def test_every_digest_is_compared() -> None:
    """No early exit: the last matching entry is found even after a match (constant work)."""
    tokens = TokenSet({TOKEN: frozenset({"predict"}), TOKEN + "2": frozenset({"admin"})})
    assert tokens.scopes_of(TOKEN + "2") == frozenset({"admin"})
    assert tokens.scopes_of("") is None
