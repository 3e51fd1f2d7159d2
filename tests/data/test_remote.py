"""The download stage against real servers on loopback: http.server and moto's S3 server."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loopback import S3Server, free_port, http_folder, moto_s3, stop, wait_port
from wxops.config import parse_config
from wxops.data.remote import fetch, fetch_paths, is_url
from wxops.errors import ConfigError, RemoteDataError

PAYLOAD = b"time,t2m\n2021-01-01T00:00Z,1.5\n" * 2000


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[object]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "obs.csv").write_bytes(PAYLOAD)
    with http_folder(root, tmp_path / "http.log") as server:
        yield server


def test_pinned_url_downloaded_once_then_served_from_cache_offline(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    seen: list[tuple[str, int | None]] = []
    moved: list[int] = []

    def progress(name: str, total: int | None):  # type: ignore[no-untyped-def]
        seen.append((name, total))
        return moved.append

    first = fetch(f"{served.url}/obs.csv", sha256=_sha(PAYLOAD), cache_dir=cache, progress=progress)
    assert first.downloaded and first.sha256 == _sha(PAYLOAD)
    assert first.path == cache / _sha(PAYLOAD) / "obs.csv" and first.path.read_bytes() == PAYLOAD
    assert seen == [("obs.csv", len(PAYLOAD))] and sum(moved) == len(PAYLOAD)
    again = fetch(f"{served.url}/obs.csv", sha256=_sha(PAYLOAD), cache_dir=cache)
    assert not again.downloaded and again.path == first.path
    assert served.requests("GET", "obs.csv") == 1
    assert first.lineage()["url"] == f"{served.url}/obs.csv"


def test_pinned_cache_needs_no_network(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    (root / "obs.csv").write_bytes(PAYLOAD)
    cache = tmp_path / "cache"
    with http_folder(root, tmp_path / "http.log") as server:
        url = f"{server.url}/obs.csv"
        fetch(url, sha256=_sha(PAYLOAD), cache_dir=cache)
    # The server is gone (an HPC node without network): the pinned copy is used as is.
    offline = fetch(url, sha256=_sha(PAYLOAD), cache_dir=cache, retries=0)
    assert not offline.downloaded and offline.path.read_bytes() == PAYLOAD
    with pytest.raises(RemoteDataError, match="download failed after 1 attempts"):
        fetch(url, cache_dir=cache, retries=0)  # unpinned: must ask the server


def test_unpinned_url_refetched_only_when_the_server_copy_changes(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    url = f"{served.url}/obs.csv"
    first = fetch(url, cache_dir=cache)
    assert first.downloaded
    assert not fetch(url, cache_dir=cache).downloaded
    assert served.requests("GET", "obs.csv") == 1
    changed = PAYLOAD + b"2021-01-02T00:00Z,2.5\n"
    (served.root / "obs.csv").write_bytes(changed)
    os.utime(served.root / "obs.csv", (2_000_000_000, 2_000_000_000))
    second = fetch(url, cache_dir=cache)
    assert second.downloaded and second.sha256 == _sha(changed) != first.sha256
    assert first.path.read_bytes() == PAYLOAD  # the older digest's copy stays valid


def test_pin_mismatch_is_refused_and_nothing_is_cached(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    wrong = "0" * 64
    with pytest.raises(RemoteDataError, match=f"sha256 {_sha(PAYLOAD)}, but the config pins {wrong}"):
        fetch(f"{served.url}/obs.csv", sha256=wrong, cache_dir=cache)
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_missing_file_is_named_and_not_retried(tmp_path: Path, served) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RemoteDataError, match=r"nope\.csv: not found"):
        fetch(f"{served.url}/nope.csv", cache_dir=tmp_path / "cache", retries=5)
    assert served.requests("GET", "nope.csv") + served.requests("HEAD", "nope.csv") <= 2


FLAKY = '''
import http.server, sys
failures = int(sys.argv[2])
class H(http.server.SimpleHTTPRequestHandler):
    def _flaky(self):
        global failures
        if failures > 0:
            failures -= 1
            self.send_error(503, "busy")
            return True
        return False
    def do_HEAD(self):
        if not self._flaky():
            super().do_HEAD()
    def do_GET(self):
        if not self._flaky():
            super().do_GET()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


@pytest.mark.parametrize(("retries", "succeeds"), [(4, True), (0, False)])
def test_transient_failures_are_retried(tmp_path: Path, retries: int, succeeds: bool) -> None:
    (tmp_path / "obs.csv").write_bytes(PAYLOAD)
    (tmp_path / "flaky.py").write_text(FLAKY)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "flaky.py", str(port), "2"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port, proc)
        url = f"http://127.0.0.1:{port}/obs.csv"
        if succeeds:
            got = fetch(url, sha256=_sha(PAYLOAD), cache_dir=tmp_path / "cache", retries=retries)
            assert got.downloaded and got.path.read_bytes() == PAYLOAD
        else:
            with pytest.raises(RemoteDataError, match="503"):
                fetch(url, sha256=_sha(PAYLOAD), cache_dir=tmp_path / "cache", retries=retries)
    finally:
        stop(proc)


def test_unknown_protocol_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RemoteDataError, match="nosuch://"):
        fetch("nosuch://host/obs.csv", cache_dir=tmp_path)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


def test_s3_glob_of_nwp_files_with_a_pin_by_file_name(tmp_path: Path, s3: S3Server,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    files = {"nwp/b.nc": b"second file", "nwp/a.nc": b"first file", "nwp/readme.txt": b"not nwp"}
    for key, data in files.items():
        s3.put("forecasts", key, data)
    local, fetched = fetch_paths(["s3://forecasts/nwp/*.nc", "local/*.nc"],
                                 pins={"a.nc": _sha(b"first file")}, cache_dir=tmp_path / "cache")
    assert [f.url for f in fetched] == ["s3://forecasts/nwp/a.nc", "s3://forecasts/nwp/b.nc"]
    assert [Path(p).read_bytes() for p in local[:2]] == [b"first file", b"second file"]
    assert local[2] == "local/*.nc"
    with pytest.raises(RemoteDataError, match="no file matches"):
        fetch_paths("s3://forecasts/none/*.nc", cache_dir=tmp_path / "cache")
    with pytest.raises(RemoteDataError, match="pins"):
        fetch_paths(["s3://forecasts/nwp/a.nc"], pins={"s3://forecasts/nwp/a.nc": "1" * 64},
                    cache_dir=tmp_path / "other")


def test_config_takes_urls_and_checks_pins() -> None:
    cfg = parse_config({"data": {"source": "table", "path": "https://example.org/a/obs.csv",
                                 "sha256": "A" * 64}})
    assert cfg.data.url == "https://example.org/a/obs.csv" and cfg.data.path is None
    assert is_url("s3://bucket/key") and not is_url("data/obs.csv")
    with pytest.raises(ConfigError, match="sha256 pins a downloaded file"):
        parse_config({"data": {"source": "table", "path": "obs.csv", "sha256": "a" * 64}})
    with pytest.raises(ConfigError, match=r"data\.sha256"):
        parse_config({"data": {"source": "table", "path": "https://x/obs.csv", "sha256": "xyz"}})
    with pytest.raises(ConfigError, match="not both"):
        parse_config({"data": {"source": "table", "path": "https://x/a.csv", "url": "https://x/b.csv"}})
    nwp = {"paths": ["s3://b/nwp/*.zarr"], "variables": ["t2m"], "source": "zarr"}
    with pytest.raises(ConfigError, match="Zarr store is a folder"):
        parse_config({"data": {"nwp": nwp, "obs": {"path": "o.csv"}, "stations": "s.csv"}})
    nwp = {"paths": ["s3://b/nwp/*.nc"], "variables": ["t2m"], "sha256": {"a.nc": "12"}}
    with pytest.raises(ConfigError, match="not sha256 digests"):
        parse_config({"data": {"nwp": nwp, "obs": {"path": "o.csv"}, "stations": "s.csv"}})
    ok = {"paths": ["s3://b/nwp/*.nc", "nwp/*.nc"], "variables": ["t2m"]}
    cfg = parse_config({"data": {"nwp": ok, "obs": {"path": "o.csv"}, "stations": "s.csv"}},
                       base_dir=Path("/proj"))
    assert cfg.data.nwp is not None and cfg.data.nwp.paths == ["s3://b/nwp/*.nc", "/proj/nwp/*.nc"]
