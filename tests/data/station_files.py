"""Station files derived from the reference TMY3 year, for edge cases (written by the tests)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from wxops.data.sources import default_tmy3_path


def tmy3_variant(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> Path:
    """The reference TMY3 file, its data table changed by ``edit``, written to ``path``."""
    source = default_tmy3_path()
    header = source.read_text().splitlines()[0]
    table = pd.read_csv(source, skiprows=1, dtype=str)
    if edit is not None:
        table = edit(table)
    path.write_text(header + "\n" + table.to_csv(index=False))
    return path


_TMY2_FORMAT = ("%2d%2d%2d%2d%4d%4d%4d%1s%1d%4d%1s%1d%4d%1s%1d%4d%1s%1d%4d%1s%1d%4d%1s%1d%4d%1s%1d"
                "%2d%1s%1d%2d%1s%1d%4d%1s%1d%4d%1s%1d%3d%1s%1d%4d%1s%1d%3d%1s%1d%3d%1s%1d%4d%1s%1d"
                "%5d%1s%1d%10d%3d%1s%1d%3d%1s%1d%3d%1s%1d%2d%1s%1d")
_TMY2_COLUMNS = (  # noqa: SIM905 (pvlib's own column string)
    "year,month,day,hour,ETR,ETRN,GHI,GHISource,GHIUncertainty,DNI,DNISource,DNIUncertainty,DHI,"
    "DHISource,DHIUncertainty,GHillum,GHillumSource,GHillumUncertainty,DNillum,DNillumSource,"
    "DNillumUncertainty,DHillum,DHillumSource,DHillumUncertainty,Zenithlum,ZenithlumSource,"
    "ZenithlumUncertainty,TotCld,TotCldSource,TotCldUncertainty,OpqCld,OpqCldSource,"
    "OpqCldUncertainty,DryBulb,DryBulbSource,DryBulbUncertainty,DewPoint,DewPointSource,"
    "DewPointUncertainty,RHum,RHumSource,RHumUncertainty,Pressure,PressureSource,"
    "PressureUncertainty,Wdir,WdirSource,WdirUncertainty,Wspd,WspdSource,WspdUncertainty,Hvis,"
    "HvisSource,HvisUncertainty,CeilHgt,CeilHgtSource,CeilHgtUncertainty,PresentWeather,Pwat,"
    "PwatSource,PwatUncertainty,AOD,AODSource,AODUncertainty,SnowDepth,SnowDepthSource,"
    "SnowDepthUncertainty,LastSnowfall,LastSnowfallSource,LastSnowfallUncertainty"
).split(",")


def tmy2_from_reference(path: Path, *, year: int = 1990) -> tuple[Path, pd.DataFrame]:
    """The reference year written in TMY2's fixed-width format (User's Manual for TMY2s):
    tenths of degC and m/s, visibility in tenths of km. Returns the path and the values
    written, in wxops units."""
    table = pd.read_csv(default_tmy3_path(), skiprows=1)
    date = pd.to_datetime(table["Date (MM/DD/YYYY)"], format="%m/%d/%Y")
    hour = table["Time (HH:MM)"].str.slice(0, 2).astype(int)
    written = pd.DataFrame({
        "t2m": (table["Dry-bulb (C)"] * 10).round() / 10,
        "td2m": (table["Dew-point (C)"] * 10).round() / 10,
        "rh": table["RHum (%)"].astype(float),
        "pressure": table["Pressure (mbar)"].astype(float),
        "wind_dir": table["Wdir (degrees)"].astype(float),
        "wind_speed": (table["Wspd (m/s)"] * 10).round() / 10,
        "total_cloud": table["TotCld (tenths)"].astype(float),
        "opaque_cloud": table["OpqCld (tenths)"].astype(float),
        "visibility": (table["Hvis (m)"] / 100).round() * 100,
    })
    values = {
        "year": year % 100, "DryBulb": written["t2m"] * 10, "DewPoint": written["td2m"] * 10,
        "RHum": written["rh"], "Pressure": written["pressure"], "Wdir": written["wind_dir"],
        "Wspd": written["wind_speed"] * 10, "TotCld": written["total_cloud"],
        "OpqCld": written["opaque_cloud"], "Hvis": written["visibility"] / 100,
        "CeilHgt": table["CeilHgt (m)"], "PresentWeather": 999999999,
    }
    markers = re.findall(r"%(\d+)([ds])", _TMY2_FORMAT)
    lines = ["13876 GREENSBORO NC -5 N 36 6 W 79 57 273"]
    for i in range(len(table)):
        row = {"month": date.dt.month[i], "day": date.dt.day[i], "hour": hour[i]}
        cells = []
        for (width, kind), name in zip(markers, _TMY2_COLUMNS, strict=True):
            value = row.get(name, values.get(name))
            if kind == "s":
                cells.append("A")
            else:
                number = value[i] if isinstance(value, pd.Series) else (value or 0)
                cells.append(f"{int(np.round(number)):>{width}d}")
        lines.append(" " + "".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path, written
