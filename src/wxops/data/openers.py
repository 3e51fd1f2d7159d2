"""Open gridded files with a named xarray engine, never a guessed one.

Without ``engine=`` xarray asks every installed backend whether it can read the file, and
asking cfgrib imports ecCodes, whose wheel loads old copies of SQLite and OpenLDAP into the
process (see :mod:`wxops._native`). So NetCDF always opens with ``netcdf4`` (a wxops
dependency), and ecCodes is imported only when a GRIB file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from wxops.errors import MissingExtraError

if TYPE_CHECKING:
    import xarray as xr

#: The engine NetCDF files open with: netCDF4 is a dependency of wxops (HDF5 and classic).
NETCDF_ENGINE = "netcdf4"


def open_netcdf(path: Path, **kwargs: Any) -> xr.Dataset:
    """``xarray.open_dataset`` with the netCDF4 engine."""
    import xarray as xr

    return xr.open_dataset(path, engine=NETCDF_ENGINE, **kwargs)


def require_grib() -> None:
    """Load ecCodes (and cfgrib) after the libraries it would shadow (:mod:`wxops._native`).

    Raises:
        MissingExtraError: cfgrib or ecCodes is not installed (the ``grib`` extra).
    """
    from wxops import _native

    _native.preload()
    try:
        import cfgrib  # noqa: F401  (imports eccodes, which loads the library)
        import eccodes  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("grib", f"reading GRIB needs cfgrib and ecCodes ({exc})") from exc


def open_grib(path: Path, **kwargs: Any) -> xr.Dataset:
    """``xarray.open_dataset`` with the cfgrib engine, after :func:`require_grib`.

    The cfgrib index file is not written (``indexpath=""``): archives are often read-only.
    """
    import xarray as xr

    require_grib()
    backend_kwargs = {"indexpath": "", **kwargs.pop("backend_kwargs", {})}
    return xr.open_dataset(path, engine="cfgrib", backend_kwargs=backend_kwargs, **kwargs)
