"""Native libraries loaded in a safe order, before ecCodes (the ``grib`` extra) loads.

The ecCodes wheel (``eccodeslib``/``eckitlib``) loads its bundled libraries into the
process-wide symbol scope (``RTLD_GLOBAL``), among them SQLite 3.26 and OpenLDAP 2.4.
Whatever loads the same libraries later binds to those copies:

* MLflow's SQLite store needs SQLite >= 3.31 (generated columns) and reads as
  "malformed" against 3.26, so Python's ``sqlite3`` (the system SQLite) goes first;
* psycopg's bundled libpq links its own OpenLDAP 2.6; bound to eckit's 2.4 it crashes the
  process with SIGSEGV at exit (``free()`` in libldap's destructor), after a run that
  otherwise succeeded. Loaded first, it keeps its own. Measured: ecCodes then psycopg
  exits 139, psycopg's libpq then ecCodes exits 0; the preload costs ~12 ms.

xarray imports ecCodes only when cfgrib is asked about a file; wxops names the engine of
every file it opens (:mod:`wxops.data.openers`), so this runs just before GRIB is read,
and a process that reads no GRIB never loads ecCodes.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import sqlite3  # noqa: F401  (loads the system libsqlite3)
from pathlib import Path

_done = False


def preload() -> None:
    """Load the system SQLite and, when installed, psycopg's bundled libpq (once)."""
    global _done
    if _done:
        return
    _done = True
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec("psycopg_binary")
        if spec is None or spec.origin is None:
            return
        libs = Path(spec.origin).parent.parent / "psycopg_binary.libs"
        for lib in sorted(libs.glob("libpq-*.so*")):
            with contextlib.suppress(OSError):
                ctypes.CDLL(str(lib))

