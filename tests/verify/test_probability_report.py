"""The probability report renders in a headless browser with every plot loaded."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wxops.config import ProbabilityGateConfig
from wxops.release.probability_gate import evaluate_probability_gate
from wxops.verify.probabilistic import verify_probabilities
from wxops.verify.probability_report import write_probability_report


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    n = 24 * 120
    p = rng.beta(0.6, 3.0, n)
    obs = np.where(rng.uniform(size=n) < p, 400.0, np.where(rng.uniform(size=n) < 0.3, 3000.0, 9000.0))
    probs = {1000.0: p, 5000.0: np.clip(p + 0.3, 0, 1)}
    clim = {1000.0: float(np.mean(obs < 1000)), 5000.0: float(np.mean(obs < 5000))}
    times = pd.date_range("2021-01-01", periods=n, freq="h", tz="UTC")
    v = verify_probabilities(probs, obs, climatology=clim, valid_time=times)
    gate = evaluate_probability_gate(probs, obs, climatology=clim, cfg=ProbabilityGateConfig())
    return write_probability_report(v, tmp_path_factory.mktemp("report") / "prob",
                                    title="gbm-prob: probability forecasts", gate=gate)


def test_page_and_plots_written(page: Path) -> None:
    text = page.read_text()
    assert "<h1>gbm-prob: probability forecasts</h1>" in text
    assert "Brier skill by season" in text and "Brier skill by hour" in text
    assert "reliability_5000: no bin off the diagonal" in text  # the +0.3 bias fails it
    rps = re.search(r'<p id="rps">Over all thresholds: ranked probability score ([0-9.]+) against\s+'
                    r"climatology's ([0-9.]+), skill ([+-][0-9.]+)", text)
    assert rps is not None, "no RPS line"
    assert float(rps[3]) == pytest.approx(1 - float(rps[1]) / float(rps[2]), abs=2e-3)
    names = {"reliability.png", "roc.png", "value.png", "bss_by_season.png", "bss_by_hour.png"}
    assert names <= {f.name for f in page.parent.iterdir()}


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="chromium not installed (Debian: apt-get install -y chromium)")
def test_renders_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert 'id="gate-verdict"' in dom and "failed" in dom
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == 5 and all('data-ok="1"' in img for img in images), images
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,3000",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000
