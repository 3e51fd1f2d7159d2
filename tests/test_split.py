import pandas as pd
import pytest

from tests.conftest import make_obs
from wxops import SplitError
from wxops.config import FeaturesConfig, SplitConfig
from wxops.features import build_features
from wxops.split import assign_blocks, split_by_blocks


def _year() -> pd.DataFrame:
    return assign_blocks(make_obs(365), SplitConfig())


def test_interleaved_blocks_are_disjoint() -> None:
    frame = _year()
    split = split_by_blocks(frame, SplitConfig())
    roles = list(split.assignment.values())
    assert roles[:4] == ["train", "train", "validation", "test"]
    assert roles.count("test") == 3 and roles.count("validation") == 3
    parts = {"train": split.train, "validation": split.validation, "test": split.test}
    assert sum(len(p) for p in parts.values()) == len(frame)
    # No timestamp of one split lies inside the time span of a block of another split.
    for name, part in parts.items():
        for block in part["block"].unique():
            lo, hi = frame.loc[frame.block == block, "time"].agg(["min", "max"])
            for other_name, other in parts.items():
                if other_name != name:
                    assert not other["time"].between(lo, hi).any()


def test_gap_drops_hours_at_edges_between_splits() -> None:
    frame = _year()
    split = split_by_blocks(frame, SplitConfig(gap_hours=24))
    # 11 block edges; edges train|train (Jan|Feb, May|Jun, Sep|Oct) keep their hours.
    changing_edges = 8
    assert split.rows_in_gaps == changing_edges * 2 * 24
    feb = split.train[split.train.block == "2021-02"]
    assert feb["time"].min() == pd.Timestamp("2021-02-01", tz="UTC")  # after train Jan
    assert feb["time"].max() == pd.Timestamp("2021-02-27 23:00", tz="UTC")  # before val Mar


def test_chronological_and_explicit() -> None:
    frame = _year()
    chrono = split_by_blocks(frame, SplitConfig(strategy="chronological"))
    assert list(chrono.assignment.values()) == ["train"] * 8 + ["validation"] * 2 + ["test"] * 2
    assert chrono.train["time"].max() < chrono.validation["time"].min()
    assert chrono.validation["time"].max() < chrono.test["time"].min()
    explicit = split_by_blocks(frame, SplitConfig(
        strategy="explicit", validation_blocks=["2021-06"], test_blocks=["2021-01"]))
    assert set(explicit.test.block) == {"2021-01"}
    with pytest.raises(SplitError, match=r"not in the data: \['1999-01'\]"):
        split_by_blocks(frame, SplitConfig(strategy="explicit", validation_blocks=["1999-01"],
                                           test_blocks=["2021-01"]))
    with pytest.raises(SplitError, match="both validation and test"):
        split_by_blocks(frame, SplitConfig(strategy="explicit", validation_blocks=["2021-01"],
                                           test_blocks=["2021-01"]))


def test_lags_never_cross_blocks_after_split() -> None:
    frame = _year()
    table = build_features(frame, FeaturesConfig(predictors=["t2m"], derived=[], lead_time=2, lags=[1, 3]))
    split = split_by_blocks(table.frame, SplitConfig())
    source = frame.set_index("time")
    for part in (split.train, split.validation, split.test):
        for lag in (1, 3):
            looked_up = source.loc[part["time"] - pd.Timedelta(hours=lag), "block"].to_numpy()
            assert (looked_up == part["block"].to_numpy()).all()
        ahead = source.loc[part["time"] + pd.Timedelta(hours=2), "block"].to_numpy()
        assert (ahead == part["block"].to_numpy()).all()


def test_too_little_data() -> None:
    with pytest.raises(SplitError, match=r"spans 1 month block\(s\); a split needs at least 3"):
        split_by_blocks(assign_blocks(make_obs(20), SplitConfig()), SplitConfig())
    with pytest.raises(SplitError, match=r"train split has 48 rows, fewer than split.min_rows=100.*96 rows in 4"):
        frame = assign_blocks(make_obs(4), SplitConfig(block="day"))
        split_by_blocks(frame, SplitConfig(block="day", min_rows=100))
    with pytest.raises(SplitError, match="no 'block' column"):
        split_by_blocks(make_obs(4), SplitConfig())
