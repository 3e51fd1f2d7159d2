"""The download stage: data given as a URL (``https://``, ``s3://``, any fsspec protocol).

A URL is downloaded once into a local cache keyed by the file's sha256
(``<cache>/<sha256>/<file name>``), so every later stage, rerun and process reads a plain
local file whose digest is known. With a pinned ``sha256`` a cached copy is used without
asking the server anything (an HPC node without network runs from the cache); without a
pin the server's fingerprint (size, ETag, Last-Modified) decides whether the cached copy
is still current. Transient failures are retried with backoff; a digest mismatch is not
(the bytes are wrong, not late) and leaves nothing in the cache.

The cache lives in ``$WXOPS_DOWNLOAD_CACHE``, else ``$XDG_CACHE_HOME/wxops/downloads``,
else ``~/.cache/wxops/downloads``: shared by every project of the user, since a file of
a given digest is the same file wherever it is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wxops.errors import RemoteDataError

if TYPE_CHECKING:
    from wxops.config import DataConfig

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CHUNK = 1 << 20
_GLOB = re.compile(r"[*?\[]")

Progress = Callable[[str, int | None], Callable[[int], None]]
"""``progress(label, total_bytes)`` -> ``advance(n_bytes)``: how a download is shown."""


def is_url(text: str | os.PathLike[str]) -> bool:
    """Whether ``text`` names a remote resource (``scheme://...``) rather than a local path."""
    return isinstance(text, str) and bool(_URL.match(text))


def default_cache_dir() -> Path:
    """Where downloads are kept (see module docstring)."""
    env = os.environ.get("WXOPS_DOWNLOAD_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wxops" / "downloads"


@dataclass(frozen=True)
class Fetched:
    """A URL and the local, digest-addressed copy of its bytes."""

    url: str
    path: Path
    sha256: str
    size: int
    downloaded: bool
    """False: served from the cache without transferring the bytes again."""

    def lineage(self) -> dict[str, Any]:
        """What lineage records: the URL, the digest and where the copy lies."""
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def fetch(
    url: str,
    *,
    sha256: str | None = None,
    cache_dir: Path | None = None,
    retries: int = 3,
    storage_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> Fetched:
    """Download ``url`` into the digest-keyed cache (or find it there) and return the copy.

    Args:
        url: Any fsspec URL naming one file.
        sha256: Pinned digest (64 hex digits). A cached copy with this digest is used
            without contacting the server; downloaded bytes with another digest are refused.
        cache_dir: The cache folder (default: :func:`default_cache_dir`).
        retries: Further attempts after a failed transfer (backoff 0.5 s, 1 s, 2 s...).
        storage_options: Keyword arguments for the fsspec filesystem (e.g. ``anon``).
        progress: How to show the transfer (default: nothing).

    Raises:
        RemoteDataError: not found, unreachable after the retries, unknown protocol, or
            the bytes do not match ``sha256``.
    """
    cache = cache_dir or default_cache_dir()
    name = _file_name(url)
    if sha256 is not None:
        sha256 = sha256.lower()
        cached = cache / sha256 / name
        if cached.is_file() and _digest(cached) == sha256:
            return Fetched(url, cached, sha256, cached.stat().st_size, downloaded=False)
    fs, remote_path = _filesystem(url, storage_options)
    fingerprint = None
    index = cache / "urls" / f"{hashlib.sha256(url.encode()).hexdigest()}.json"
    if sha256 is None:
        info = _retrying(lambda: fs.info(remote_path), url, retries)
        fingerprint = {k: str(info[k]) for k in sorted(info)
                       if k in ("size", "ETag", "LastModified", "Last-Modified", "mtime", "etag")}
        known = _read_index(index)
        if known and len(fingerprint) > 1 and known.get("fingerprint") == fingerprint:
            cached = cache / known["sha256"] / name
            if cached.is_file() and _digest(cached) == known["sha256"]:
                return Fetched(url, cached, known["sha256"], cached.stat().st_size, downloaded=False)
    partial = cache / ".partial"
    partial.mkdir(parents=True, exist_ok=True)
    tmp = partial / f"{uuid.uuid4().hex}-{name}"
    try:
        digest, size = _retrying(lambda: _download(fs, remote_path, tmp, url, progress), url, retries)
        if sha256 is not None and digest != sha256:
            raise RemoteDataError(
                f"{url}: downloaded {size} bytes with sha256 {digest}, but the config pins {sha256}; "
                "the file changed on the server or the pin is wrong (check it, then update data.sha256)")
        final = cache / digest / name
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    _digest_memo[_stat_key(final)] = digest
    if fingerprint is not None:
        index.parent.mkdir(parents=True, exist_ok=True)
        index.write_text(json.dumps({"url": url, "sha256": digest, "fingerprint": fingerprint}))
    return Fetched(url, final, digest, size, downloaded=True)


def fetch_paths(
    patterns: str | Sequence[str],
    *,
    pins: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    retries: int = 3,
    storage_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> tuple[list[str], list[Fetched]]:
    """Local paths for a mix of local patterns and URLs (a URL may be an object-store glob).

    Local entries come back unchanged; each URL is replaced by its cached copy. ``pins``
    maps a URL (or its file name) to its sha256.

    Returns:
        The entries with URLs replaced by local paths, and what was fetched.
    """
    entries = [patterns] if isinstance(patterns, str) else list(patterns)
    pins = dict(pins or {})
    local: list[str] = []
    fetched: list[Fetched] = []
    for entry in entries:
        if not is_url(entry):
            local.append(entry)
            continue
        for url in _expand(entry, storage_options, retries):
            pin = pins.get(url) or pins.get(_file_name(url))
            got = fetch(url, sha256=pin, cache_dir=cache_dir, retries=retries,
                        storage_options=storage_options, progress=progress)
            fetched.append(got)
            local.append(str(got.path))
    return local, fetched


def _expand(url: str, storage_options: Mapping[str, Any] | None, retries: int) -> list[str]:
    """An object-store glob -> the matching URLs, sorted; a plain URL -> itself."""
    if not _GLOB.search(url.split("://", 1)[1]):
        return [url]
    fs, path = _filesystem(url, storage_options)
    hits = sorted(_retrying(lambda: fs.glob(path), url, retries))
    if not hits:
        raise RemoteDataError(f"{url}: no file matches the pattern (data.nwp.paths)")
    return [fs.unstrip_protocol(h) for h in hits]


def _filesystem(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as exc:
        raise RemoteDataError(
            f"{url}: the package for this protocol is missing ({exc}); "
            "`pip install 'wxops[remote]'` installs HTTP and S3 support") from exc
    except ValueError as exc:
        raise RemoteDataError(f"{url}: not a URL fsspec can read ({exc}); use https://, s3://, gs://...") from exc


def _download(fs: Any, remote_path: str, tmp: Path, url: str, progress: Progress | None) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with fs.open(remote_path, "rb", block_size=_CHUNK) as src:
        total = getattr(src, "size", None)
        advance = progress(_file_name(url), total if isinstance(total, int) else None) if progress else None
        with tmp.open("wb") as dst:
            while chunk := src.read(_CHUNK):
                sha.update(chunk)
                dst.write(chunk)
                size += len(chunk)
                if advance is not None:
                    advance(len(chunk))
    if isinstance(total, int) and size != total:
        raise OSError(f"transfer cut off after {size} of {total} bytes")
    return sha.hexdigest(), size


def _retryable() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [OSError, TimeoutError]
    try:
        import aiohttp

        kinds.append(aiohttp.ClientError)
    except ImportError:
        pass
    return tuple(kinds)


def _retrying(call: Callable[[], Any], url: str, retries: int) -> Any:
    """``call()``, again after transient failures; a missing file or refusal is final."""
    last: BaseException | None = None
    for attempt in range(retries + 1):
        try:
            return call()
        except (FileNotFoundError, PermissionError) as exc:
            cause = exc.__cause__
            status = getattr(cause, "status", None)
            if (isinstance(cause, _retryable()) and not isinstance(cause, FileNotFoundError | PermissionError)
                    and (status is None or _transient(int(status)))):
                # fsspec's HTTP info turns "connection refused" or a 503 into FileNotFoundError
                last = cause
                if attempt < retries:
                    time.sleep(0.5 * 2**attempt)
                continue
            what = "not found" if isinstance(exc, FileNotFoundError) else "access refused"
            raise RemoteDataError(f"{url}: {what} ({exc}); check the URL and the credentials "
                                  "(for S3: AWS_* variables or data.storage_options)") from exc
        except _retryable() as exc:
            status = getattr(exc, "status", None)
            if status is not None and not _transient(int(status)):
                raise RemoteDataError(f"{url}: the server answered {status} ({exc}); check the URL") from exc
            last = exc
            if attempt < retries:
                time.sleep(0.5 * 2**attempt)
    raise RemoteDataError(f"{url}: download failed after {retries + 1} attempts ({type(last).__name__}: {last}); "
                          "check the network or raise data.download_retries") from last


def _transient(status: int) -> bool:
    """HTTP statuses worth another try: server errors, timeouts, rate limits."""
    return status >= 500 or status in (408, 429)


def _file_name(url: str) -> str:
    tail = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", tail) or "data"


def _read_index(index: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(index.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


_digest_memo: dict[tuple[str, int, int], str] = {}


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size


def _digest(path: Path) -> str:
    """sha256 of a cached file, hashed once per process and file state."""
    from wxops.data.lineage import digest_file

    key = _stat_key(path)
    if key not in _digest_memo:
        _digest_memo[key] = digest_file(path)
    return _digest_memo[key]


def fetch_data(cfg: DataConfig, *, progress: Progress | None = None) -> Fetched | None:
    """The cached copy of ``data.url`` (None when the data is a local file)."""
    if cfg.url is None:
        return None
    return fetch(cfg.url, sha256=cfg.sha256, retries=cfg.download_retries,
                 storage_options=cfg.storage_options, progress=progress)


def fetch_nwp(cfg: DataConfig, *, progress: Progress | None = None) -> tuple[list[str], list[Fetched]]:
    """``data.nwp.paths`` with every URL replaced by its cached copy."""
    assert cfg.nwp is not None
    return fetch_paths(cfg.nwp.paths, pins=cfg.nwp.sha256, retries=cfg.download_retries,
                       storage_options=cfg.storage_options, progress=progress)
