"""A process that reads GRIB (ecCodes) and talks to PostgreSQL (psycopg) exits cleanly.

wxops loads ecCodes only to read GRIB (:func:`wxops.data.openers.require_grib`). Without
the preload there the ecCodes wheel's OpenLDAP 2.4 shadows psycopg's 2.6 and the
process dies with SIGSEGV at exit (exit status 139) after doing all its work.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("psycopg")
pytest.importorskip("eccodes")

SCRIPT = """
import sqlite3
from wxops.data.openers import require_grib
require_grib()  # what reading a GRIB file does first
import eccodes
import psycopg
with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=5) as conn:
    conn.execute("select 1")
con = sqlite3.connect(":memory:")
con.execute("create table t (a int, b int generated always as (a * 2) virtual)")  # SQLite >= 3.31
print("clean")
"""


@pytest.mark.service
def test_ecCodes_and_psycopg_in_one_process_exit_cleanly() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "clean"
