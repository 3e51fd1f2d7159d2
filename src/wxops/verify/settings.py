"""Settings of verification (``verify:`` in ``wxops.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from wxops.section import Section as _Section


class VerifyConfig(_Section):
    """How forecasts are verified on the held-out test block."""

    thresholds: list[float] = Field(default_factory=lambda: [1000.0, 5000.0])
    """Event thresholds for categorical scores (target units; visibility in metres)."""
    event: Literal["below", "above"] = "below"
    """An event is the target below the threshold (fog: low visibility) or above it."""
    nwp_column: str | None = None
    """Column holding a raw NWP forecast of the target; it becomes a reference forecast."""
    station_column: str = "station"
    """Scores are stratified by this column when the data has several stations."""
    cap: float | Literal["auto"] | None = "auto"
    """Common maximum applied alike to observations, every forecast and the climatology
    before verification: visibility is reported up to caps that changed over the years
    (16, 24, 32 km in one TMY3 year). ``auto``: 16000 m (10 statute miles, what METAR/ASOS
    report at most) for a ``visibility`` target, none otherwise; null: no cap."""

    def cap_for(self, target: str) -> float | None:
        """The cap in force for ``target`` (resolves ``auto``)."""
        if self.cap == "auto":
            from wxops.verify.references import VISIBILITY_CAP

            return VISIBILITY_CAP if target == "visibility" else None
        return self.cap

    @field_validator("thresholds")
    @classmethod
    def _sorted_thresholds(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("list at least one threshold")
        return sorted(set(value))
