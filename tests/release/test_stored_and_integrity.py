"""Pure parts of issue 13: stored release tables, artifact digests, the signature diff,
the NWP replay by init time, station keys of a request and the station one-hot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wxops.errors import (
    ArtifactIntegrityError,
    FeatureError,
    PayloadError,
    StoredDataError,
    VerificationError,
)
from wxops.features import TARGET, FeatureTable, MeteoFeatures
from wxops.release.note import classify_change, diff_signature
from wxops.release.replay import replay_init_times
from wxops.release.stored import read_release_data, release_data, write_release_data
from wxops.serve.payload import InputSchema, split_keys
from wxops.split import Split
from wxops.tracking import check_digests, folder_digests


def _nwp_table(n_init: int = 8) -> pd.DataFrame:
    init = pd.date_range("2024-01-01", periods=n_init, freq="3h", tz="UTC")
    rows = [{"station": s, "init_time": t, "lead_time": float(h),
             "valid_time": t + pd.Timedelta(hours=h), "t2m": 1.0 + h, "nwp_t2m": 2.0 + h,
             TARGET: 1.5 + h} for t in init for s in ("A", "B") for h in (1, 2, 3)]
    frame = pd.DataFrame(rows)
    frame["time"] = frame["valid_time"]
    frame["block"] = "2024-01"
    return frame


def _data(kind: str = "nwp") -> tuple[pd.DataFrame, FeatureTable, Split]:
    frame = _nwp_table()
    table = FeatureTable(frame, ["t2m", "lead_time"], "t2m", None)
    return frame, table, Split(frame, frame, frame, {"2024-01": "test"})


def test_release_tables_round_trip_and_refuse_damage(tmp_path: Path) -> None:
    frame, table, split = _data()
    files = write_release_data(release_data(frame, table, split, kind="nwp",
                                            nwp_column="nwp_t2m"), tmp_path)
    assert {p.name.split("-")[0] for p in files} == {"test", "train", "validation",
                                                    "manifest.json"}
    back = read_release_data(tmp_path, what="v1")
    assert back.kind == "nwp" and back.keys == ["station", "init_time", "lead_time"]
    assert back.table.inputs == ["t2m", "lead_time"] and back.table.target == "t2m"
    assert back.nwp_column == "nwp_t2m" and back.obs.empty
    pd.testing.assert_frame_equal(back.split.test, frame)

    test_file = next(p for p in files if p.name.startswith("test-"))
    test_file.write_bytes(test_file.read_bytes()[:50])
    with pytest.raises(StoredDataError, match=r"v1: stored table test-.* does not match its "
                                              r"recorded sha256"):
        read_release_data(tmp_path, what="v1")
    test_file.unlink()
    with pytest.raises(StoredDataError, match="is missing"):
        read_release_data(tmp_path, what="v1")
    with pytest.raises(StoredDataError, match=r"no manifest\.json"):
        read_release_data(tmp_path / "nowhere", what="v1")


def test_artifact_digests_refuse_truncated_swapped_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "code" / "wxops").mkdir(parents=True)
    (tmp_path / "model.pkl").write_bytes(b"pickle-bytes" * 100)
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "code" / "wxops" / "x.py").write_text("A = 1\n")
    recorded = folder_digests(tmp_path)
    assert set(recorded) == {"model.pkl", "MLmodel", "code/"}
    check_digests(recorded, tmp_path, what="m/1")  # the same bytes pass
    (tmp_path / "registered_model_meta").write_text("added on download")
    check_digests(recorded, tmp_path, what="m/1")  # files MLflow adds are ignored

    (tmp_path / "model.pkl").write_bytes(b"pickle-bytes" * 50)
    with pytest.raises(ArtifactIntegrityError, match=r"m/1: the model artifact is not the one "
                                                     r"registered \(model\.pkl has sha256"):
        check_digests(recorded, tmp_path, what="m/1")
    (tmp_path / "model.pkl").write_bytes(b"pickle-bytes" * 100)
    (tmp_path / "code" / "wxops" / "x.py").write_text("A = 2\n")
    with pytest.raises(ArtifactIntegrityError, match=r"code/ has sha256"):
        check_digests(recorded, tmp_path, what="m/1")
    (tmp_path / "MLmodel").unlink()
    with pytest.raises(ArtifactIntegrityError, match="MLmodel is missing"):
        check_digests(recorded, tmp_path, what="m/1")


def test_signature_diff_and_breaking_reasons() -> None:
    old = {"inputs": [{"name": "t2m", "type": "double"}, {"name": "rh", "type": "double"},
                      {"name": "opaque_cloud", "type": "double"}], "outputs": [{"type": "x"}]}
    new = {"inputs": old["inputs"][:2], "outputs": old["outputs"]}
    assert diff_signature(old, new) == [("opaque_cloud", "double", "–")]
    assert diff_signature(None, new) == []
    swapped = {"inputs": [old["inputs"][1], old["inputs"][0], old["inputs"][2]],
               "outputs": old["outputs"]}
    assert classify_change(swapped, old).reasons == ["input order changed"]
    assert diff_signature(old, swapped) == [("(order)", "t2m, rh, opaque_cloud",
                                             "rh, t2m, opaque_cloud")]
    retarget = classify_change(old, old, new_target="t2m_K", old_target="t2m")
    assert retarget.kind == "breaking" and retarget.reasons == ["target changed: t2m -> t2m_K"]
    assert classify_change(old, old, new_target="t2m", old_target="t2m").kind == "incremental"


def test_nwp_replay_by_init_time_orders_whole_cycles() -> None:
    frame = _nwp_table()
    fc = {"candidate": frame[TARGET].to_numpy() + 0.1}
    rep = replay_init_times(frame, fc, cycle_hours=6, nwp_column="nwp_t2m")
    f = rep.frame
    assert (f["issue_time"].dt.hour % 6 == 0).all() and f["issue_time"].is_monotonic_increasing
    assert len(f) == 4 * 2 * 3  # 4 of 8 inits on the 6-hourly cycle, 2 stations, 3 leads
    assert (f["latest_data_time"] <= f["issue_time"]).all()
    np.testing.assert_allclose(f["candidate"] - f["obs"], 0.1)
    assert set(rep.forecasts()) == {"candidate", "nwp"}  # keys are not forecasts
    with pytest.raises(VerificationError, match=r"lacks columns \['station'\]"):
        replay_init_times(frame.drop(columns=["station"]), fc, cycle_hours=6)
    odd = frame.assign(init_time=frame["init_time"] + pd.Timedelta(hours=1))
    with pytest.raises(VerificationError, match=r"no init time .* 6-hourly cycle"):
        replay_init_times(odd, fc, cycle_hours=6)


def test_request_keys_of_an_nwp_model() -> None:
    schema = InputSchema.from_signature([{"name": "t2m", "type": "double"},
                                         {"name": "lead_time", "type": "double"}])
    keys = ["station", "init_time", "lead_time"]
    table = {"station": ["A", 7], "init_time": ["2024-01-01T00:00:00Z", "2024-01-01T06:00Z"],
             "lead_time": [1.0, 2.0], "t2m": [1.0, 2.0]}
    rest, found = split_keys(table, schema, keys)
    assert set(rest) == {"lead_time", "t2m"}
    assert found["station"].tolist() == ["A", "7"]
    assert found["init_time"].dtype.kind == "M"
    with pytest.raises(PayloadError, match="station: missing key column"):
        split_keys({k: v for k, v in table.items() if k != "station"}, schema, keys)
    with pytest.raises(PayloadError, match=r"station, row 1: expected a station id"):
        split_keys({**table, "station": ["A", None]}, schema, keys)
    with pytest.raises(PayloadError, match="init_time, row 0: cannot read 'soon'"):
        split_keys({**table, "init_time": ["soon", "2024-01-01T06:00Z"]}, schema, keys)


def test_station_onehot_gives_one_bias_column_per_training_station() -> None:
    x = pd.DataFrame({"t2m": [1.0, 2.0, 3.0], "station": ["A", "B", "A"]})
    feats = MeteoFeatures(derived=["station_onehot"]).fit(x)
    out = feats.transform(pd.DataFrame({"t2m": [1.0, 1.0], "station": ["B", "unknown"]}))
    assert list(out.columns) == ["t2m", "station=A", "station=B"]
    assert out[["station=A", "station=B"]].to_numpy().tolist() == [[0.0, 1.0], [0.0, 0.0]]
    with pytest.raises(FeatureError, match=r"need columns \['station'\]"):
        MeteoFeatures(derived=["station_onehot"]).fit(x[["t2m"]])
    assert json.dumps(feats.stations_) == '["A", "B"]'
