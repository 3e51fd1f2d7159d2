"""The data.nwp / data.obs / data.stations and execution sections of wxops.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from wxops import ConfigError, parse_config

NWP = {"nwp": {"paths": "nwp/*.nc", "variables": ["t2m"]}, "obs": {"path": "obs.parquet"},
       "stations": "stations.csv"}


def test_nwp_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    cfg = parse_config({"data": NWP}, base_dir=tmp_path)
    assert cfg.data.is_nwp
    assert cfg.data.nwp is not None and cfg.data.nwp.paths == str(tmp_path / "nwp" / "*.nc")
    assert cfg.data.obs is not None and cfg.data.obs.path == tmp_path / "obs.parquet"
    assert cfg.data.stations == tmp_path / "stations.csv"
    assert cfg.execution.executor == "local"


def test_nwp_obs_and_stations_go_together() -> None:
    with pytest.raises(ConfigError, match="go together"):
        parse_config({"data": {"nwp": NWP["nwp"]}})


@pytest.mark.parametrize("bad", [{"interpolation": "cubic"}, {"source": "hdf"}, {"variables": []},
                                 {"chunk_size": 3}])
def test_nwp_section_is_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"data\.nwp"):
        parse_config({"data": {**NWP, "nwp": {**NWP["nwp"], **bad}}})


@pytest.mark.parametrize("executor", ["local", "dask", "slurm", "tcp://10.0.0.1:8786"])
def test_executors(executor: str) -> None:
    assert parse_config({"execution": {"executor": executor}}).execution.executor == executor


def test_unknown_executor_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"execution\.executor"):
        parse_config({"execution": {"executor": "pbs"}})
