"""``wxops synth nwp``: write a synthetic NWP + observation archive (registered into the app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

synth_app = typer.Typer(help="Synthetic archives for tests, examples and scale benchmarks.")


def register(app: typer.Typer) -> None:
    """Add ``wxops synth nwp`` to the wxops CLI."""
    app.add_typer(synth_app, name="synth")


@synth_app.command("nwp")
def synth_nwp(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write nwp/*.nc, obs.parquet, stations.csv, wxops.yaml.")],
    stations: Annotated[int, typer.Option(help="Number of stations.", min=1)] = 3,
    years: Annotated[int, typer.Option(help="Number of years (hourly valid times).", min=1)] = 1,
    start_year: Annotated[int, typer.Option(help="First year.")] = 2015,
    seed: Annotated[int, typer.Option(help="Seed of every perturbation.")] = 0,
    executor: Annotated[str, typer.Option(help="execution.executor of the written wxops.yaml.")] = "dask",
    workers: Annotated[int, typer.Option(help="execution.workers of the written wxops.yaml.", min=1)] = 2,
) -> None:
    """Derive a multi-station, multi-year archive from the Greensboro TMY3 year.

    The perturbations are listed in ``wxops.data.synthetic``; ``wxops run -c
    OUT_DIR/wxops.yaml`` then trains on it.
    """
    from wxops.data.synthetic import example_config, generate

    archive = generate(out_dir, stations=stations, years=years, start_year=start_year, seed=seed)
    config = out_dir / "wxops.yaml"
    config.write_text(example_config(executor=executor, workers=workers))
    typer.echo(f"wrote {len(archive.nwp_files)} NWP file(s), {archive.obs.name}, {archive.stations.name} "
               f"({archive.rows} forecast rows) and {config}")
