"""The dependency audit that .ci/run runs: findings reported, strict mode fails on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _audit(report: Path, *, strict: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WXOPS_AUDIT_STRICT": "1" if strict else "0"}
    return subprocess.run([sys.executable, str(REPO / ".ci" / "audit.py"), str(report)],
                          capture_output=True, text=True, env=env)


def test_findings_are_reported_and_fail_only_when_strict(tmp_path: Path) -> None:
    report = tmp_path / "audit.json"
    report.write_text(json.dumps({"dependencies": [
        {"name": "requests", "version": "2.19.0",
         "vulns": [{"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"]}]},
        {"name": "numpy", "version": "2.3.0", "vulns": []},
        {"name": "inhouse-lib", "skip_reason": "Dependency not found on PyPI"},
    ]}))
    relaxed = _audit(report, strict=False)
    assert relaxed.returncode == 0
    assert "audit: requests 2.19.0: PYSEC-2018-28 (fixed in 2.20.0)" in relaxed.stdout
    assert "1 known vulnerabilities in 2 packages audited" in relaxed.stdout
    assert "skipped: inhouse-lib" in relaxed.stdout
    assert _audit(report, strict=True).returncode == 1


def test_nothing_audited_is_said_not_hidden(tmp_path: Path) -> None:
    report = tmp_path / "audit.json"
    report.write_text(json.dumps({"dependencies": [{"name": "a", "skip_reason": "not on PyPI"}]}))
    relaxed = _audit(report, strict=False)
    assert relaxed.returncode == 0 and "NOT AUDITED" in relaxed.stdout
    assert _audit(report, strict=True).returncode == 1


def test_unreadable_report_is_a_clear_error(tmp_path: Path) -> None:
    report = tmp_path / "audit.json"
    report.write_text("{not json")
    result = _audit(report, strict=False)
    assert result.returncode == 2
    assert f"cannot read the pip-audit report {report}" in result.stderr
