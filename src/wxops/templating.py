"""HTML pages from the Jinja2 templates shipped inside the package, autoescaped.

Every value a page shows (station ids, experiment and model names, notes) comes from
data or configuration, so escaping is on for every template: a name such as
``<script>`` is shown, never run.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _environment(package: str) -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(package: str, template: str, **context: Any) -> str:
    """Render ``template`` from ``<package>/templates/`` with ``context``."""
    return str(_environment(package).get_template(template).render(**context))
