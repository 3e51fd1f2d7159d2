"""What the CLI shows a person: tables that fit the terminal, full plain rows when piped.

Rich sizes a table to 80 columns when the output is not a terminal and cuts cells with
``…``; a file or a pipe gets tab-separated rows with every value whole instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence


def show_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print a table on stdout: Rich (cells wrap, never cut) on a terminal, else plain.

    Args:
        title: one line above the table (``# title`` in plain output).
        columns: header names.
        rows: cells as text; Rich markup (``[green]pass[/]``) is dropped in plain output.
    """
    from rich.console import Console
    from rich.text import Text

    console = Console()
    if console.is_terminal:
        from rich.table import Table

        table = Table(title=title)
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    lines = [f"# {title}", "\t".join(columns)]
    lines += ["\t".join(Text.from_markup(cell).plain for cell in row) for row in rows]
    sys.stdout.write("\n".join(lines) + "\n")
