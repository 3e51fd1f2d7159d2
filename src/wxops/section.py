"""The base of every ``wxops.yaml`` section model, wherever the section's settings live.

Unknown keys are refused (a typo such as ``hiden_dim`` fails with the key's path instead
of being silently ignored) and a parsed section is immutable.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A section (or sub-section) of ``wxops.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
