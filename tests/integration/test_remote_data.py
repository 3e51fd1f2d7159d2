"""Journey 9 (remote data): ``data.path: https://…`` with a pinned sha256 and ``s3://``,
run by the installed ``wxops`` in a fresh folder against real servers on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import small_config_dict
from tests.loopback import http_folder, moto_s3
from wxops.data.lineage import digest_file
from wxops.data.sources import default_tmy3_path

pytestmark = pytest.mark.slow

WXOPS = str(Path(sys.executable).with_name("wxops"))


def _run(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WXOPS, "run", "-c", "wxops.yaml", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)


def _project(folder: Path, data: dict[str, object]) -> Path:
    folder.mkdir(parents=True)
    raw = small_config_dict(data=data)
    raw["models"] = [m for m in raw["models"] if m["type"] != "mlp"]  # the download is the point here
    (folder / "wxops.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def test_journey_9_https_pinned_and_s3_data(tmp_path: Path) -> None:
    """Journey 9: a pinned https:// file is downloaded once, cached by digest and named in
    the lineage; the same year from s3:// (moto's server) trains as well."""
    tmy3 = default_tmy3_path()
    digest = digest_file(tmy3)
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(tmy3, www / tmy3.name)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "WXOPS_DOWNLOAD_CACHE": str(tmp_path / "cache")}
    with http_folder(www, tmp_path / "http.log") as server:
        url = f"{server.url}/{tmy3.name}"
        first = _project(tmp_path / "a", {"path": url, "sha256": digest})
        done = _run(first, env)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"download {tmy3.name}" in done.stderr
        lineage = json.loads((first / "wxops-out" / "lineage.json").read_text())
        assert lineage["source"]["url"] == url and lineage["source"]["sha256"] == digest
        assert lineage["source"]["downloads"][0]["sha256"] == digest
        cached = tmp_path / "cache" / digest / tmy3.name
        assert Path(lineage["source"]["path"]) == cached and digest_file(cached) == digest
        # A second project on the same data: no second download.
        second = _project(tmp_path / "b", {"path": url, "sha256": digest})
        assert _run(second, env, "--quiet").returncode == 0
        assert server.requests("GET", tmy3.name) == 1
        # A wrong pin is refused before anything is trained or logged.
        bad = _project(tmp_path / "c", {"path": url, "sha256": "0" * 64})
        refused = _run(bad, env, "--quiet")
        assert refused.returncode != 0 and "the config pins 0000" in refused.stderr
        assert not (bad / "mlflow.db").exists()

    with moto_s3(tmp_path / "moto.log") as s3:
        s3.put("observations", f"tmy3/{tmy3.name}", tmy3.read_bytes())
        s3_env = {**env, **s3.env, "WXOPS_DOWNLOAD_CACHE": str(tmp_path / "cache-s3")}
        s3_project = _project(tmp_path / "s3", {"path": f"s3://observations/tmy3/{tmy3.name}"})
        done = _run(s3_project, s3_env, "--quiet")
        assert done.returncode == 0, done.stderr[-3000:]
        lineage = json.loads((s3_project / "wxops-out" / "lineage.json").read_text())
        assert lineage["source"]["url"] == f"s3://observations/tmy3/{tmy3.name}"
        assert lineage["source"]["sha256"] == digest
        assert "testing" not in (s3_project / "wxops-out" / "lineage.json").read_text()
