"""Units of observation columns: declared (``data.units``), read (CF ``units`` attributes)
and converted to wxops' units with pint.

wxops' own units are those of :data:`wxops.data.qc.VARIABLES` (degC, %, hPa, m s-1,
degree, tenths, m, mm). A column whose declared unit differs is converted once, when the
source is read, so QC ranges, features, models and the service all see one set of units.
Unit strings are read the way CF/UDUNITS writes them (``m s-1``, ``degrees_Celsius``,
``K``, ``%``) as well as pint's own spellings (``degF``, ``knot``, ``inHg``, ``mile``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np

from wxops.errors import DataSourceError

#: UDUNITS/CF spellings pint does not know, mapped to pint's.
_ALIASES: dict[str, str] = {
    "%": "percent",
    "1": "dimensionless",
    "degrees_celsius": "degC",
    "degree_celsius": "degC",
    "degrees_c": "degC",
    "degree_c": "degC",
    "celsius": "degC",
    "c": "degC",
    "degrees_fahrenheit": "degF",
    "fahrenheit": "degF",
    "f": "degF",
    "degrees_north": "degree",
    "degrees_east": "degree",
    "degrees": "degree",
    "deg": "degree",
    "kt": "knot",
    "kts": "knot",
    "knots": "knot",
    "mph": "mile / hour",
    "mb": "millibar",
    "mbar": "millibar",
    "in": "inch",
    "inhg": "inHg",
    "mi": "mile",
    "statute_mile": "mile",
    "sm": "mile",
}
#: ``m s-1`` / ``kg m-2`` (UDUNITS exponents without ``^``).
_EXPONENT = re.compile(r"(?<=[A-Za-z])(-?\d+)\b")


@lru_cache(maxsize=1)
def _registry() -> Any:
    import pint

    ureg: Any = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    ureg.define("tenths = 0.1 = tenth")
    ureg.define("okta = 0.125 = oktas")
    return ureg


def _normalise(text: str) -> str:
    key = text.strip()
    alias = _ALIASES.get(key.lower())
    if alias is not None:
        return alias
    return _EXPONENT.sub(r"**\1", key)


def parse_unit(text: str, *, where: str) -> Any:
    """The pint unit of ``text``, or a :class:`DataSourceError` naming ``where``."""
    import pint

    try:
        return _registry().Unit(_normalise(text))
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError,
            AttributeError, TypeError, AssertionError) as exc:
        raise DataSourceError(f"{where}: unknown unit {text!r} ({exc}); use e.g. degC, degF, K, "
                              "knot, m/s, hPa, inHg, mile, m") from exc


def same_unit(a: str, b: str) -> bool:
    """Whether two unit strings name the same unit (``K`` and ``kelvin``; ``%`` and ``percent``)."""
    try:
        ua = parse_unit(a, where="units")
        ub = parse_unit(b, where="units")
    except DataSourceError:
        return a.strip() == b.strip()
    return bool(ua == ub)


def convert(values: np.ndarray, unit: str, target: str, *, where: str) -> np.ndarray:
    """``values`` in ``unit`` expressed in ``target`` (NaN stays NaN).

    Raises:
        DataSourceError: an unknown unit, or one of another dimension (``K`` for a
            visibility), naming ``where``.
    """
    import pint

    src = parse_unit(unit, where=where)
    dst = parse_unit(target, where=f"{where} (wxops unit)")
    if src == dst:
        return values
    try:
        quantity = _registry().Quantity(np.asarray(values, dtype="float64"), src)
        return np.asarray(quantity.to(dst).magnitude, dtype="float64")
    except pint.errors.DimensionalityError as exc:
        raise DataSourceError(f"{where}: cannot convert {unit!r} to wxops' unit {target!r} "
                              f"({exc}); fix data.units") from exc


#: Units a column is often recorded in by mistake, tried when QC flags many rows.
LIKELY_UNITS: dict[str, tuple[str, ...]] = {
    "t2m": ("degF", "K"),
    "td2m": ("degF", "K"),
    "pressure": ("Pa", "inHg", "kPa"),
    "wind_speed": ("knot", "km/h", "mile/hour"),
    "visibility": ("mile", "km", "foot"),
    "total_cloud": ("okta", "percent"),
    "opaque_cloud": ("okta", "percent"),
    "precip": ("inch",),
    "rh": ("dimensionless",),
}


def guess_unit(values: np.ndarray, name: str, target: str, low: float, high: float) -> str | None:
    """A unit in which ``values`` would lie within [low, high] after conversion, if one
    does for (nearly) all of them while they don't as given: the likely cause of a range
    failure ("are the units degF?")."""
    finite = np.asarray(values, dtype="float64")
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    for unit in LIKELY_UNITS.get(name, ()):
        try:
            moved = convert(finite, unit, target, where=name)
        except DataSourceError:
            continue
        inside = float(np.mean((moved >= low) & (moved <= high)))
        if inside >= 0.99:
            return unit
    return None


def likely_units_by_median(values: np.ndarray, name: str, target: str, low: float,
                           high: float) -> list[str]:
    """Units of :data:`LIKELY_UNITS` in which the median of ``values`` would lie within
    [low, high] after conversion (visibility in miles or km, temperature in degF)."""
    finite = np.asarray(values, dtype="float64")
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return []
    median = np.array([float(np.median(finite))])
    found = []
    for unit in LIKELY_UNITS.get(name, ()):
        try:
            moved = float(convert(median, unit, target, where=name)[0])
        except DataSourceError:
            continue
        if low <= moved <= high:
            found.append(unit)
    return found
