"""MLflow's own INFO lines (database set-up, alembic) stay out of wxops' terminal output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

WXOPS = str(Path(sys.executable).with_name("wxops"))
#: MLflow's log line format ("2026/11/29 20:10:39 INFO mlflow.store.db.utils: ...") and
#: alembic's ("INFO  [alembic.runtime.migration] ...").
NOISE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (INFO|DEBUG) |\[alembic\.|"
                   r"Creating initial MLflow database tables|Updating database tables", re.M)


def _env(tmp_path: Path) -> dict[str, str]:
    drop = {"MLFLOW_TRACKING_URI", "MLFLOW_LOGGING_LEVEL"}
    return {k: v for k, v in os.environ.items() if k not in drop} | {"HOME": str(tmp_path)}


@pytest.mark.slow
def test_run_and_runs_in_a_fresh_folder_print_no_mlflow_log_lines(tmp_path: Path) -> None:
    (tmp_path / "wxops.yaml").write_text(yaml.safe_dump({"seed": 7, "models": [
        {"name": "ridge", "type": "linear"}]}))
    outputs = []
    for args in (["run", "-c", "wxops.yaml"], ["runs", "-c", "wxops.yaml"]):
        done = subprocess.run([WXOPS, *args], cwd=tmp_path, env=_env(tmp_path),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        outputs.append(done.stdout + done.stderr)
    assert (tmp_path / "mlflow.db").is_file()  # the store was created by this run
    for out in outputs:
        assert not NOISE.findall(out), out
    assert "ridge" in outputs[1]


@pytest.mark.parametrize(("verbose", "shown"), [(False, False), (True, True)])
def test_mlflow_info_lines_show_only_when_verbose(tmp_path: Path, verbose: bool, shown: bool) -> None:
    """``configure_process(verbose=True)`` (the CLI's ``-v``) lets MLflow's INFO lines through."""
    code = (
        "from pathlib import Path\n"
        "from wxops.startup import configure_process\n"
        f"configure_process(verbose={verbose})\n"
        "from wxops import tracking\n"
        "tracking.connect(f\"sqlite:///{Path('mlflow.db').resolve()}\")\n"
        "tracking.ensure_experiment('e', None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300, check=True)
    assert bool(NOISE.search(done.stderr)) is shown, done.stderr


@pytest.mark.parametrize(("flags", "shown"), [((), False), (("-v",), True)])
def test_cli_verbose_flag_shows_mlflow_info_lines(tmp_path: Path, flags: tuple[str, ...], shown: bool) -> None:
    """``wxops -v`` (any command) lets MLflow's INFO lines through; without it they stay out."""
    wxops = Path(sys.executable).with_name("wxops")
    done = subprocess.run([str(wxops), *flags, "runs"], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "no experiment 'visibility'" in done.stderr, done.stderr  # a fresh store
    assert bool(NOISE.search(done.stderr)) is shown, done.stderr
