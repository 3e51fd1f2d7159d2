"""Journey 4 (JOURNEYS.md): a breaking change, through the installed ``wxops`` command.

A predictor is removed -> ``wxops run`` promotes a version classified ``breaking``
(2.0.0) with the signature diff in its release note; the candidate and the champion are
each judged on their own inputs. ``wxops serve`` shows the new signature at ``/model``
and answers a request in the old shape with a 422 naming the change. ``wxops promote``
of the old version (inputs added back) is again breaking (3.0.0), not a crash.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
import requests
import yaml

from tests.integration.cli_helpers import serving, wait_for_model, wxops

pytestmark = pytest.mark.slow

ALL = ["t2m", "td2m", "rh", "pressure", "wind_speed", "wind_dir", "total_cloud", "opaque_cloud"]
MODELS = [{"name": "gbm-short", "type": "gradient_boosting", "max_iter": 10}]


def _config(folder: Path, predictors: list[str]) -> Path:
    path = folder / "wxops.yaml"
    path.write_text(yaml.safe_dump({"models": MODELS, "features": {"predictors": predictors},
                                    "gate": {"bootstrap_samples": 200}}))
    return path


def _rows(columns: list[str]) -> str:
    frame = pd.DataFrame({"time": pd.date_range("1988-01-01 06:00", periods=3, freq="h"),
                          "t2m": [10.0, 11.0, 12.0], "td2m": [6.1, 6.5, 7.0],
                          "rh": [77.0, 80.0, 85.0], "pressure": [993.0] * 3,
                          "wind_speed": [6.2, 5.0, 4.0], "wind_dir": [200.0, 210.0, 220.0],
                          "total_cloud": [10.0, 8.0, 5.0], "opaque_cloud": [10.0, 6.0, 2.0]})
    return str(frame[["time", *columns]].to_json())


def test_removed_predictor_is_a_breaking_release_served_with_its_new_signature(
        tmp_path: Path) -> None:
    config = _config(tmp_path, ALL)
    first = wxops(tmp_path, "run", "-c", str(config), "--quiet")
    assert first.returncode == 0, first.stdout
    assert "version 1 is champion (1.0.0, initial)" in first.stdout

    config = _config(tmp_path, ALL[:-1])  # opaque_cloud removed
    second = wxops(tmp_path, "run", "-c", str(config), "--quiet")
    assert second.returncode == 0, second.stdout
    assert "Traceback" not in second.stdout
    assert ("version 2 is champion (2.0.0, breaking: inputs removed: ['opaque_cloud'])"
            in second.stdout), second.stdout

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    v2 = client.get_model_version("visibility", "2")
    assert v2.tags["wxops.change_class"] == "breaking" and v2.tags["wxops.semver"] == "2.0.0"
    assert "## Signature changes" in v2.description
    assert "| opaque_cloud | double | – |" in v2.description
    page = (tmp_path / "wxops-out" / "verify" / "visibility-v2" / "index.html").read_text()
    assert "judged on its own inputs" in page  # the champion kept opaque_cloud

    with serving(tmp_path, "--model", "visibility@champion") as url:
        assert wait_for_model(url)["model_version"] == "2"
        info = requests.get(url + "/model", timeout=10).json()
        names = [c["name"] for c in info["signature"]["inputs"]]
        assert "opaque_cloud" not in names and "total_cloud" in names
        assert info["change_class"] == "breaking" and info["semver"] == "2.0.0"
        assert info["signature_change"] == [["opaque_cloud", "double", "–"]]

        old = requests.post(url + "/predict", json={"data": _rows(ALL)}, timeout=10)
        assert old.status_code == 422, old.text
        body = old.json()
        assert body["field"] == "opaque_cloud"
        assert "removed by the breaking change of version 2 (2.0.0)" in body["error"]

        new = requests.post(url + "/predict", json={"data": _rows(ALL[:-1])}, timeout=10)
        assert new.status_code == 200, new.text
        assert new.json()["model_version"] == "2" and len(new.json()["result"]) == 3

    # Back to the old feature set by hand: inputs added, breaking again, judged fairly.
    back = wxops(tmp_path, "promote", "1", "--reason", "opaque_cloud is back", "--force",
                 "-c", str(config))
    assert back.returncode == 0, back.stdout
    assert "Traceback" not in back.stdout
    assert "version 1 is champion (3.0.0, breaking: inputs added: ['opaque_cloud'])" in \
        " ".join(back.stdout.split()), back.stdout
