"""Journeys 4 and 6 (JOURNEYS.md) on one project, through the installed ``wxops`` command.

Journey 4, a breaking change: a predictor is removed -> ``wxops run`` promotes a version
classified ``breaking`` (2.0.0) with the signature diff in its release note, the
candidate and the champion each judged on their own inputs; ``wxops serve`` shows the
new signature at ``/model`` and answers a request in the old shape with a 422 naming the
change.

Journey 6, a damaged artifact: the sha256 of each model file is recorded at
registration; a truncated ``model.pkl`` and one swapped in from another version are
refused by ``wxops rollback``, ``wxops promote --force`` and ``wxops serve`` (at start
and on reload); the champion alias and the served model never move to them, and the
failed reload shows at ``/ready`` and in ``/metrics``. Restored, the old version is
promoted back: inputs added, breaking again (3.0.0), not a crash.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml

from tests.integration.cli_helpers import model_file, registry, serving, wait_for_model, wxops

pytestmark = pytest.mark.slow

ALL = ["t2m", "td2m", "rh", "pressure", "wind_speed", "wind_dir", "total_cloud", "opaque_cloud"]
MODELS = [{"name": "gbm-short", "type": "gradient_boosting", "max_iter": 10}]
REFUSED = "the model artifact is not the one registered"


def _config(folder: Path, predictors: list[str]) -> None:
    (folder / "wxops.yaml").write_text(yaml.safe_dump(
        {"models": MODELS, "features": {"predictors": predictors},
         "gate": {"bootstrap_samples": 200}}))


def _rows(columns: list[str]) -> str:
    frame = pd.DataFrame({"time": pd.date_range("1988-01-01 06:00", periods=3, freq="h"),
                          "t2m": [10.0, 11.0, 12.0], "td2m": [6.1, 6.5, 7.0],
                          "rh": [77.0, 80.0, 85.0], "pressure": [993.0] * 3,
                          "wind_speed": [6.2, 5.0, 4.0], "wind_dir": [200.0, 210.0, 220.0],
                          "total_cloud": [10.0, 8.0, 5.0], "opaque_cloud": [10.0, 6.0, 2.0]})
    return str(frame[["time", *columns]].to_json())


def _champion(folder: Path) -> str:
    client = registry(folder)
    return str(client.get_model_version_by_alias("visibility", "champion").version)


def _cli(folder: Path, *args: str) -> tuple[int, str]:
    out = wxops(folder, *args, "-c", "wxops.yaml")
    return out.returncode, " ".join(out.stdout.split())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """Version 1 on all predictors, version 2 without opaque_cloud (the champion)."""
    folder = tmp_path_factory.mktemp("breaking")
    _config(folder, ALL)
    code, first = _cli(folder, "run", "--quiet")
    assert code == 0 and "version 1 is champion (1.0.0, initial)" in first, first
    _config(folder, ALL[:-1])  # opaque_cloud removed
    code, second = _cli(folder, "run", "--quiet")
    assert code == 0, second
    yield folder, second


def test_journey4_removed_predictor_is_a_breaking_release(project: tuple[Path, str]) -> None:
    folder, output = project
    assert "Traceback" not in output
    assert "version 2 is champion (2.0.0, breaking: inputs removed: ['opaque_cloud'])" in output
    v2 = registry(folder).get_model_version(
        "visibility", "2")
    assert v2.tags["wxops.change_class"] == "breaking" and v2.tags["wxops.semver"] == "2.0.0"
    assert "## Signature changes" in v2.description
    assert "| opaque_cloud | double | – |" in v2.description
    page = (folder / "wxops-out" / "verify" / "visibility-v2" / "index.html").read_text()
    assert "judged on its own inputs" in page  # the champion kept opaque_cloud

    with serving(folder, "--model", "visibility@champion", "--poll", "0") as url:
        assert wait_for_model(url)["model_version"] == "2"
        info = requests.get(url + "/model", timeout=10).json()
        names = [c["name"] for c in info["signature"]["inputs"]]
        assert "opaque_cloud" not in names and "total_cloud" in names
        assert info["change_class"] == "breaking" and info["semver"] == "2.0.0"
        assert info["signature_change"] == [["opaque_cloud", "double", "–"]]

        old = requests.post(url + "/predict", json={"data": _rows(ALL)}, timeout=10)
        assert old.status_code == 422, old.text
        assert old.json()["field"] == "opaque_cloud"
        assert "removed by the breaking change of version 2 (2.0.0)" in old.json()["error"]

        new = requests.post(url + "/predict", json={"data": _rows(ALL[:-1])}, timeout=10)
        assert new.status_code == 200, new.text
        assert new.json()["model_version"] == "2" and len(new.json()["result"]) == 3


def test_journey6_truncated_and_swapped_model_files_are_refused(
        project: tuple[Path, str]) -> None:
    folder, _ = project
    v1, v2 = model_file(folder, "visibility", "1"), model_file(folder, "visibility", "2")
    v1_bytes, v2_bytes = v1.read_bytes(), v2.read_bytes()

    # rollback runs the technical test, digest included, on the version it would restore
    v1.write_bytes(v1_bytes[: len(v1_bytes) // 2])
    code, out = _cli(folder, "rollback", "--reason", "back to 1")
    assert code != 0 and "rollback refused" in out and REFUSED in out, out
    assert "model.pkl has sha256" in out
    assert _champion(folder) == "2"

    # promote --force skips the gate's verdict, never the integrity check
    v1.write_bytes(v2_bytes)  # another version's valid pickle under version 1
    code, out = _cli(folder, "promote", "1", "--force", "--reason", "swapped file")
    assert code != 0 and REFUSED in out, out
    assert _champion(folder) == "2"
    code, out = _cli(folder, "history")
    assert out.count("technical-fail") == 2, out

    v1.write_bytes(v1_bytes)  # restored: the recorded bytes pass, a breaking change back
    code, out = _cli(folder, "promote", "1", "--force", "--reason", "opaque_cloud is back")
    assert code == 0 and "Traceback" not in out, out
    assert "version 1 is champion (3.0.0, breaking: inputs added: ['opaque_cloud'])" in out
    assert _champion(folder) == "1"

    # serve: a pinned damaged version never loads; a reload to it keeps the old model
    v2.write_bytes(v2_bytes[:100])
    with serving(folder, "--model", "visibility/2", "--poll", "0") as pinned:
        with serving(folder, "--model", "visibility@champion", "--poll", "0") as url:
            assert wait_for_model(url)["model_version"] == "1"
            registry(folder).set_registered_model_alias(
                "visibility", "champion", "2")  # someone moves the alias by hand
            reload = requests.post(url + "/admin/reload", timeout=60)
            assert reload.status_code == 502, reload.text
            assert "still serving 1" in reload.json()["error"] and REFUSED in reload.json()["error"]
            ready = requests.get(url + "/ready", timeout=10).json()
            assert ready["model_version"] == "1" and REFUSED in ready["last_reload_error"]
            assert requests.post(url + "/predict", json={"data": _rows(ALL)},
                                 timeout=10).json()["model_version"] == "1"
            metrics = requests.get(url + "/metrics", timeout=10).text
            assert "wxops_model_reload_failing 1.0" in metrics
            assert 'wxops_model_reloads_total{outcome="failed"} 1.0' in metrics
        not_ready = requests.get(pinned + "/ready", timeout=10)
        assert not_ready.status_code == 503 and REFUSED in not_ready.json()["error"]


def test_version_without_stored_test_table_says_how_to_recreate_it(
        project: tuple[Path, str]) -> None:
    folder, _ = project
    client = registry(folder)
    run_id = client.get_model_version("visibility", "1").tags["pipeline_run_id"]
    stored = [p for p in folder.rglob("release") if p.parent.parent.name == run_id]
    assert len(stored) == 1 and (stored[0] / "manifest.json").is_file()
    shutil.rmtree(stored[0])  # as for a run made before wxops stored its tables
    out = wxops(folder, "verify", "-m", "1", "-c", "wxops.yaml")
    text = " ".join(out.stdout.split())
    assert out.returncode == 1 and "Traceback" not in text, text
    assert "visibility version 1 has no stored test table" in text
    assert "run `wxops run --no-cache` with the configuration that made it" in text
