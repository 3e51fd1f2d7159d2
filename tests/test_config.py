from pathlib import Path

import pytest

from wxops import ConfigError, WxopsConfig, config_schema, load_config, parse_config


def test_defaults_are_the_visibility_example() -> None:
    repo = Path(__file__).resolve().parents[1]
    example = load_config(repo / "examples" / "visibility" / "wxops.yaml")
    assert example == WxopsConfig()
    assert [m.type for m in example.models] == ["mlp", "mlp", "mlp", "gradient_boosting", "linear",
                                                "gradient_boosting", "probability"]
    assert example.models[-2].target_transform == "log"
    template = repo / "src" / "wxops" / "templates" / "wxops.yaml"
    assert template.read_text() == (repo / "examples" / "visibility" / "wxops.yaml").read_text()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"modles": []}, r"modles: unknown key"),
        ({"models": [{"name": "a", "type": "svm"}]}, r"models\.0: .*'svm'.*expected tags"),
        ({"models": [{"name": "a", "type": "mlp", "hidden_dim": "big"}]},
         r"models\.0\.mlp\.hidden_dim: .*valid integer.*'big'"),
        ({"models": [{"name": "a", "type": "mlp", "epochs": 0}]}, r"epochs: .*greater than or equal to 1"),
        ({"models": []}, r"models: .*at least 1"),
        ({"models": [{"name": "a", "type": "linear"}, {"name": "a", "type": "linear"}]},
         r"repeated: \['a'\]"),
        ({"features": {"predictors": ["t2m", "present_weather"]}}, r"leak the target"),
        ({"data": {"source": "table"}}, r"data.path is required"),
        ({"seed": -1}, r"seed: .*greater than or equal to 0"),
        ({"split": {"strategy": "explicit"}}, r"needs validation_blocks and test_blocks"),
        ([1, 2], r"top level must be a mapping"),
        (None, r"the file is empty"),
    ],
)
def test_bad_config_names_key_and_expectation(raw: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config(raw, source="wxops.yaml")


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"empty\.yaml: the file is empty"):
        load_config(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_relative_data_path_resolves_against_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "wxops.yaml"
    path.write_text("data: {source: table, path: obs.csv}\n")
    assert load_config(path).data.path == tmp_path / "obs.csv"


def test_schema_lists_sections() -> None:
    schema = config_schema()
    assert {"data", "features", "split", "models", "tracking", "seed"} <= set(schema["properties"])
