"""The HTML report and its plots, opened in a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from wxops.verify import fit_climatology, verify_forecasts, write_report


@pytest.fixture
def verification(hourly):
    clim = fit_climatology(hourly.iloc[:120])
    fc = {"candidate": hourly["good"], "champion": hourly["bad"],
          "climatology": clim.predict(hourly["time"])}
    return verify_forecasts(fc, hourly["y"], valid_time=hourly["time"],
                            thresholds=[5000.0, 9000.0], lead_time=3)


def _report(verification, tmp_path):
    rows = [{"rule": "rmse vs climatology: skill > 0", "candidate": 300.0, "reference": 2000.0,
             "skill": 0.85, "worse_pct": -85.0, "p_value": 0.001, "status": "pass", "why": "ok",
             "n": 240, "effect": -1700.0, "ci_low": -1800.0, "ci_high": -1600.0,
             "test": "dm-hln (block 9 h)"},
            {"rule": "ets_9000 vs persistence: skill > 0", "candidate": 0.5, "reference": 0.4,
             "n": 240, "events": 4, "status": "too few events",
             "why": "too few events (n=4 < 10 observed)"},
            {"rule": "ets_5000 vs champion: at most 0 % worse", "candidate": 0.5,
             "reference": 0.6, "skill": None, "worse_pct": 16.7, "p_value": None,
             "status": "fail", "why": "16.7 % worse"}]
    history = {"gbm": [{"train_loss": 1.0, "val_loss": 1.1}, {"train_loss": 0.5, "val_loss": 0.6}]}
    return write_report(verification, tmp_path / "report", title="visibility version 3",
                        meta={"model": "visibility", "version": "3"}, gate_passed=False,
                        gate_rows=rows, histories=history)


def test_report_writes_page_and_plots(verification, tmp_path):
    page = _report(verification, tmp_path)
    text = page.read_text()
    for png in ("scorecard", "error_by_hour", "performance_diagram", "error_by_lead_time",
                "loss_curves"):
        assert (page.parent / f"{png}.png").stat().st_size > 5000
        assert f"src='{png}.png'" in text
    assert "FAIL" in text and "ets_5000 vs champion" in text
    assert "Events: below 9000" in text and "RMSE by season" in text
    # categorical scores by season, hour and lead time, with n and events on every row
    for heading in ("ETS 5000 by season", "ETS 9000 by hour (UTC)", "ETS 5000 by lead time",
                    "RMSE by hour (UTC)"):
        assert f"<h3>{heading}</h3>" in text, heading
    assert "<th>events</th>" in text and "<th>95 % CI</th>" in text
    assert "[-1800, -1600]" in text and "too few events (n=4 &lt; 10 observed)" in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None,
                    reason="chromium not installed (Debian: apt-get install -y chromium)")
def test_report_renders_in_headless_browser(verification, tmp_path):
    page = _report(verification, tmp_path)
    browser = _chromium()
    assert browser is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "<h1>visibility version 3</h1>" in dom
    assert 'id="gate-verdict"' in dom
    assert "ETS 5000 by season" in dom and "too few events (n=4" in dom
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == 5
    # each plot loaded in the browser (onload marks data-ok="1"; a missing file, "0")
    assert all('data-ok="1"' in img for img in images), images
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,3000",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000


def test_report_marks_a_missing_plot(verification, tmp_path):
    page = _report(verification, tmp_path)
    (page.parent / "scorecard.png").unlink()
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-background-networking", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}",
                          "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "plot missing: scorecard.png" in dom


def test_undefined_scores_say_why(hourly, tmp_path):
    """A threshold with no event in the test block: the report says why each score is
    undefined instead of a dash."""
    from wxops.verify.scoring import undefined_reason

    assert (hourly["y"] < 1000).sum() == 0 and (hourly["good"] < 1000).sum() == 0
    v = verify_forecasts({"candidate": hourly["good"]}, hourly["y"], valid_time=hourly["time"],
                         thresholds=[1000.0])
    page = write_report(v, tmp_path / "r", title="no events")
    text = page.read_text()
    events = text.split("<h3>Events: below 1000</h3>")[1].split("</table>")[0]
    assert "undefined: no forecasts of the event" in events  # FAR
    assert "undefined: no observed events" in events  # POD, frequency bias
    assert "undefined: no observed or forecast events" in events  # CSI, ETS
    assert "–" not in events
    counts = {"hits": 0.0, "misses": 0.0, "false_alarms": 3.0, "correct_negatives": 5.0}
    assert undefined_reason("far_1000", **counts) is None
    assert undefined_reason("pod_1000", **counts) == "no observed events"
    assert undefined_reason("ets_1000", hits=4.0, misses=0.0, false_alarms=0.0,
                            correct_negatives=0.0).startswith("every case is an event")


def test_names_from_data_and_config_are_escaped(hourly, tmp_path):
    """A station id, a title and a note holding markup are shown as text, never run."""
    evil = "<script>alert('x')</script>"
    station = np.where(np.arange(len(hourly)) % 2 == 0, evil, "B&B")
    v = verify_forecasts({"candidate": hourly["good"]}, hourly["y"], valid_time=hourly["time"],
                         thresholds=[5000.0], station=station)
    v.notes.append(f"note about {evil}")
    page = write_report(v, tmp_path / "r", title=f"visibility {evil}", meta={"experiment": evil},
                        gate_passed=True, gate_rows=[{"rule": evil, "status": "pass", "why": evil}])
    text = page.read_text()
    assert "<script>" not in text
    assert text.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 5  # title x2, meta, gate, note
    assert "<td class=\"l\">&lt;script&gt;" in text.split("<h3>RMSE by station</h3>")[1]
    assert "B&amp;B" in text


def test_report_templates_ship_with_the_package():
    from importlib.resources import files

    assert files("wxops.verify").joinpath("templates/report.html.j2").is_file()
    assert files("wxops.monitor").joinpath("templates/status.html.j2").is_file()
