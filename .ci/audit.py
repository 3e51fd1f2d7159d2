"""Dependency audit for .ci/run: pip-audit on the CI environment, findings reported.

Prints one line per known vulnerability (package, version, id, fixed versions) and a
summary. Exit status 0 unless WXOPS_AUDIT_STRICT=1 and something was found: a new
advisory against, say, torch must be seen at once, but must not block every unrelated
change until upstream ships a fix. When the advisory service cannot be reached (an
offline machine), it says so and exits 0 (1 when strict).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def run_pip_audit() -> dict[str, Any] | str:
    """pip-audit's JSON report of this environment, or why it could not run."""
    pip_audit = Path(sys.executable).with_name("pip-audit")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        done = subprocess.run(
            [str(pip_audit), "--skip-editable", "--progress-spinner", "off", "--format", "json",
             "--output", str(report)],
            capture_output=True, text=True, timeout=900,
        )
        if not report.is_file() or not report.read_text().strip():
            last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
            return f"pip-audit could not run (exit {done.returncode}): {last}"
        data: dict[str, Any] = json.loads(report.read_text())
        return data


def main(argv: list[str] | None = None) -> int:
    """Audit this environment, or summarise a saved pip-audit JSON report (first argument)."""
    args = sys.argv[1:] if argv is None else argv
    strict = os.environ.get("WXOPS_AUDIT_STRICT") == "1"
    try:
        data = json.loads(Path(args[0]).read_text()) if args else run_pip_audit()
    except (OSError, ValueError) as exc:
        print(f"audit: cannot read the pip-audit report {args[0] if args else ''}: {exc}", file=sys.stderr)
        return 2
    if isinstance(data, str):
        print(f"audit: {data}")
        return 1 if strict else 0
    findings = [(dep["name"], dep["version"], vuln["id"], vuln.get("fix_versions", []))
                for dep in data.get("dependencies", []) for vuln in dep.get("vulns", [])]
    skipped = [dep["name"] for dep in data.get("dependencies", []) if dep.get("skip_reason")]
    for name, version, vuln_id, fixes in findings:
        fix = f"fixed in {', '.join(fixes)}" if fixes else "no fix released"
        print(f"audit: {name} {version}: {vuln_id} ({fix})")
    audited = len(data.get("dependencies", [])) - len(skipped)
    if audited == 0:
        print(f"audit: NOT AUDITED: the advisory service knew none of the {len(skipped)} "
              "packages (offline, or an index mirror without vulnerability data)")
        return 1 if strict else 0
    print(f"audit: {len(findings)} known vulnerabilities in {audited} packages audited"
          + (f"; {len(skipped)} not on the index, skipped: {', '.join(sorted(skipped))}"
             if skipped else ""))
    return 1 if strict and findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
