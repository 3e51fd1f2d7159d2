"""Settings of data sources and quality control (``data:`` in ``wxops.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from wxops.section import Section as _Section


class QCConfig(_Section):
    """Quality-control rules (see ``wxops.data.qc.QC_RULES`` for the table)."""

    action: Literal["drop", "keep"] = "drop"
    """``drop`` removes flagged rows; ``keep`` keeps them with a ``qc_flags`` column."""
    sentinels: list[float] = Field(default_factory=lambda: [-9900.0, -9999.0, 99999.0])
    max_gap_hours: float = Field(default=3.0, gt=0)
    max_constant_hours: int = Field(default=24, ge=2)
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    """Overrides of the physical ranges, e.g. ``{t2m: [-60, 50]}``."""
    column_action: Literal["drop", "refuse"] = "drop"
    """A predictor whose rows one rule flags in more than ``max_column_share`` of the rows
    (a stuck sensor, an empty or all-sentinel column) is removed from the predictors
    (``drop``, with a QC message naming column, rule and count) or stops the run
    (``refuse``). The target is never dropped: a bad target always stops the run."""
    max_column_share: float = Field(default=0.5, gt=0, le=1)
    max_drop_share: float = Field(default=0.5, gt=0, le=1)
    """QC that would drop more than this share of the rows stops the run with the column,
    the rule, the count and the likely cause (e.g. units)."""


class NWPConfig(_Section):
    """Gridded NWP forecasts read through xarray and extracted at the stations."""

    source: Literal["netcdf", "zarr", "grib"] = "netcdf"
    paths: str | list[str]
    """A glob (``nwp/*.nc``) or a list of files, relative to the config's folder; entries
    may be URLs (``https://``, ``s3://bucket/nwp/*.nc``), downloaded into the cache."""
    sha256: dict[str, str] = Field(default_factory=dict)
    """Pinned sha256 per downloaded file, keyed by URL or file name."""

    @model_validator(mode="after")
    def _remote_files(self) -> NWPConfig:
        import re

        from wxops.data.remote import is_url

        bad = sorted(k for k, v in self.sha256.items() if not re.fullmatch(r"[0-9a-fA-F]{64}", v))
        if bad:
            raise ValueError(f"data.nwp.sha256: {bad} are not sha256 digests (64 hex digits)")
        entries = [self.paths] if isinstance(self.paths, str) else self.paths
        if self.source == "zarr" and any(is_url(e) for e in entries):
            raise ValueError("data.nwp.paths: a Zarr store is a folder and cannot be downloaded as one "
                             "file; use netcdf or grib files at URLs, or a local copy of the store")
        return self
    variables: list[str] = Field(min_length=1)
    """Variables to extract, under their names in the files (``t2m``, ``d2m``...)."""
    interpolation: Literal["nearest", "bilinear"] = "nearest"
    height_correction: bool = False
    """Correct 2 m temperatures from the model orography to the station elevation
    with the standard lapse rate (0.0065 K/m); needs an orography variable."""
    orography: str = "orog"
    """Variable holding the model orography in metres (geopotential ``z`` is divided by g)."""
    units: dict[str, str] = Field(default_factory=dict)
    """Expected ``units`` attribute per variable, e.g. ``{t2m: K}``; a mismatch is an error."""
    columns: dict[str, str] = Field(default_factory=dict)
    """Renames after extraction, from file names to wxops names, e.g. ``{d2m: td2m}``."""
    chunk_stations: int = Field(default=10, ge=1)
    """Stations per preprocessing task: the unit streamed and written as one partition."""
    chunk_files: int | None = Field(default=None, ge=1)
    """Files per preprocessing task (None: all). Few stations and many files: set it so
    that there are at least as many tasks as workers."""


class StationObsConfig(_Section):
    """Station observations in long form: station id, time and the variables."""

    source: Literal["table"] = "table"
    path: Path
    time_column: str = "time"
    station_column: str = "station"
    columns: dict[str, str] = Field(default_factory=dict)


class DataConfig(_Section):
    """Where the observations come from and how they are cleaned.

    With ``nwp``, ``obs`` and ``stations`` set the table is built from NWP forecasts
    extracted at the stations and joined with the observation at the valid time.
    """

    source: Literal["tmy3", "tmy2", "table", "netcdf", "zarr"] = "tmy3"
    path: Path | None = None
    """File to read; for ``tmy3`` the default is the Greensboro year shipped in pvlib.
    A URL (``https://``, ``s3://``, any fsspec protocol) is moved to ``url``."""
    url: str | None = None
    """Remote file, downloaded once into the digest-keyed cache (``wxops.data.remote``)."""
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    """Pinned sha256 of the file at ``url``: other bytes are refused, a cached copy is
    used without asking the server."""
    download_retries: int = Field(default=3, ge=0, le=20)
    """Further attempts after a failed download (backoff 0.5 s, 1 s, 2 s...)."""
    storage_options: dict[str, Any] = Field(default_factory=dict)
    """fsspec options for URLs (e.g. ``{anon: true}``); credentials belong in the
    environment (``AWS_*``), not here."""
    time_column: str = "time"
    columns: dict[str, str] = Field(default_factory=dict)
    """Renames from the file's column names to wxops names, e.g. ``{"T2M [K]": t2m}``."""
    units: dict[str, str] = Field(default_factory=dict)
    """Units of the file's columns (file or wxops names), converted to wxops' units with
    pint, e.g. ``{t2m: degF, wind_speed: knot, pressure: inHg, visibility: mile}``.
    NetCDF/Zarr ``units`` attributes are read without this; a disagreement is an error."""
    na_values: list[str] | dict[str, list[str]] = Field(default_factory=list)
    """Missing-value markers as written in the file (``M``, ``-``), for every column or
    per column (file or wxops names); counted in the QC report."""
    timezone: str | None = None
    """IANA time zone of naive times in tables and NetCDF/Zarr (``America/New_York``);
    unset: naive times are UTC. See :mod:`wxops.data.sources` for the daylight-saving rule."""
    station: str | None = None
    """For netcdf/zarr files with a ``station`` dimension: which station to read."""
    qc: QCConfig = Field(default_factory=QCConfig)
    nwp: NWPConfig | None = None
    obs: StationObsConfig | None = None
    stations: Path | None = None
    """CSV with columns ``id, lat, lon, elevation`` (elevation in metres)."""

    @model_validator(mode="before")
    @classmethod
    def _url_in_path(cls, raw: Any) -> Any:
        """``path: https://...`` is a URL: kept as text (a Path would fold ``//``)."""
        from wxops.data.remote import is_url

        if isinstance(raw, dict) and isinstance(raw.get("path"), str) and is_url(raw["path"]):
            if raw.get("url") is not None:
                raise ValueError("set data.path or data.url, not both")
            raw = {**raw, "url": raw["path"], "path": None}
        return raw

    @model_validator(mode="after")
    def _path_needed(self) -> DataConfig:
        given = [self.nwp is not None, self.obs is not None, self.stations is not None]
        if any(given) and not all(given):
            raise ValueError("data.nwp, data.obs and data.stations go together: set all three")
        if self.timezone is not None:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"data.timezone: unknown time zone {self.timezone!r}; use an "
                                 "IANA name such as America/New_York or UTC") from exc
        if self.url is not None and self.path is not None:
            raise ValueError("set data.path or data.url, not both")
        if self.sha256 is not None and self.url is None:
            raise ValueError("data.sha256 pins a downloaded file: give data.path as a URL (https://, s3://...)")
        if self.source != "tmy3" and self.path is None and self.url is None and self.nwp is None:
            raise ValueError(f"data.path is required for source '{self.source}'")
        return self

    @property
    def is_nwp(self) -> bool:
        """Whether the table comes from NWP forecasts at stations."""
        return self.nwp is not None
