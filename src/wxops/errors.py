"""Every exception wxops raises.

Each one derives from a built-in base so callers can catch it without importing wxops,
and each message says what to change in the input to make it work.
"""

from __future__ import annotations


class WxopsError(Exception):
    """Base of every wxops error: the CLI turns it into one clear line and exit code 1."""


class ConfigError(WxopsError, ValueError):
    """The configuration file is missing, empty, malformed or has a wrong key or type."""


class DataSourceError(WxopsError, OSError):
    """A data file is missing, unreadable or lacks the columns the config names."""


class DataQualityError(WxopsError, ValueError):
    """The data is unusable after quality control (e.g. the target is all missing)."""


class FeatureError(WxopsError, ValueError):
    """A feature cannot be built, or a configured feature leaks the target."""


class SplitError(WxopsError, ValueError):
    """The time-blocked split cannot be made (too few rows or blocks)."""


class ModelConfigError(WxopsError, ValueError):
    """A model configuration names an unknown type or invalid hyperparameters."""


class TrainingError(WxopsError, RuntimeError):
    """Training a model configuration failed (e.g. loss became NaN)."""


class TrackingError(WxopsError, RuntimeError):
    """The MLflow tracking store or model registry refused an operation."""


class DeployError(WxopsError, RuntimeError):
    """Deployment files or the git hook cannot be written or run as asked."""


class HookInstallError(DeployError, ValueError):
    """``wxops hook install`` was pointed at something that is not a bare repository."""


class VerificationError(WxopsError, ValueError):
    """Forecasts cannot be verified (no common rows, a reference column is missing...)."""


class GateError(WxopsError, ValueError):
    """A gate rule cannot be evaluated (unknown score, reference not available)."""


class ArtifactIntegrityError(TrackingError):
    """A model artifact's sha256 differs from the one recorded when it was registered."""


class StoredDataError(WxopsError, FileNotFoundError):
    """The test table a version was verified on is not stored with its run (an old run)."""


class ReleaseError(WxopsError, RuntimeError):
    """A promotion or rollback cannot be done (unknown version, nothing to roll back to)."""


class TechnicalCheckError(WxopsError, RuntimeError):
    """A model version failed to load or to predict in a fresh process."""


# --- serve ---


class ServeError(WxopsError, RuntimeError):
    """The inference service cannot start: no model, no token, an unsafe setting."""


class PayloadError(WxopsError, ValueError):
    """A prediction request is unusable; ``status`` is its HTTP code (400, 413 or 422).

    ``field`` names the offending column or key (None when the whole body is at fault),
    so a client can fix its request without reading server logs.
    """

    def __init__(self, message: str, *, status: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


# --- monitor ---


class MonitorError(WxopsError, ValueError):
    """Live monitoring cannot run on what it was given: a malformed observation file, a
    missing column, no overlap in valid time between forecasts and observations."""


# --- NWP and execution ---


class NWPDataError(DataSourceError, ValueError):
    """An NWP file is unreadable, truncated, lacks a variable, has other units than
    configured, or a station lies outside its grid. The message names file and variable."""


class ExecutorError(WxopsError, RuntimeError):
    """The Dask cluster cannot be reached or lost the work it was given."""


# --- team server ---


class ServerError(WxopsError, RuntimeError):
    """The team tracking server cannot be started, stopped or administered as asked."""


class LoginError(WxopsError, PermissionError):
    """The tracking server refused the login (wrong user or password) or is unreachable."""


class SyncError(WxopsError, RuntimeError):
    """Offline runs cannot be uploaded: the outbox is corrupt or the server refused them."""


# --- remote data and notifications ---


class RemoteDataError(DataSourceError):
    """A data URL cannot be downloaded (not found, refused, unreachable after the retries,
    an fsspec protocol whose package is not installed) or its bytes do not match the
    pinned sha256. The message names the URL and what to change."""


class NotifyError(WxopsError, RuntimeError):
    """A notification channel is misconfigured (a secret missing or readable by others)
    or refused the message."""


# --- optional parts ---


class MissingExtraError(WxopsError, ImportError):
    """An optional part of wxops is used but the pip extra that installs it is not: the
    message names the extra (``pip install 'wxops[grib]'``)."""

    def __init__(self, extra: str, what: str) -> None:
        super().__init__(f"{what}, not installed: pip install 'wxops[{extra}]'")
        self.extra = extra
