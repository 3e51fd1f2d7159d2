"""The append-only alias history of a registered model, kept as registered-model tags.

MLflow itself forgets who held an alias before; the release cycle (``wxops.release``)
records each change here, so ``wxops history`` and a rollback can read it back.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from wxops.errors import TrackingError
from wxops.tracking import session

#: Registered-model tag prefix of alias-history entries: ``wxops.history.000001`` ...
HISTORY_TAG = "wxops.history."
#: Longest JSON text of one history entry (the SQL stores cap tag values at 5000).
_MAX_HISTORY_ENTRY = 4800


def read_alias_history(name: str) -> list[dict[str, Any]]:
    """The alias-history entries of a registered model, oldest first."""
    from mlflow.exceptions import MlflowException

    try:
        tags = session.client().get_registered_model(name).tags or {}
    except MlflowException:
        return []
    keys = sorted(k for k in tags if k.startswith(HISTORY_TAG))
    return [json.loads(tags[k]) for k in keys]


def append_alias_history(name: str, entry: dict[str, Any]) -> int:
    """Append one entry (never overwriting an earlier one); return its sequence number."""
    from mlflow.exceptions import MlflowException

    client = session.client()
    with contextlib.suppress(MlflowException):
        client.create_registered_model(name)
    for _ in range(5):
        tags = client.get_registered_model(name).tags or {}
        seq = 1 + max((int(k.removeprefix(HISTORY_TAG)) for k in tags
                       if k.startswith(HISTORY_TAG)), default=0)
        record = {**entry, "seq": seq}
        text = json.dumps(record, sort_keys=True, default=str)
        if len(text) > _MAX_HISTORY_ENTRY:
            record["reason"] = str(record.get("reason", ""))[:500] + " [cut]"
            text = json.dumps(record, sort_keys=True, default=str)
        key = f"{HISTORY_TAG}{seq:06d}"
        client.set_registered_model_tag(name, key, text)
        # Another writer may have taken the same number at the same moment: re-read.
        if (client.get_registered_model(name).tags or {}).get(key) == text:
            return seq
    raise TrackingError(f"could not append to the alias history of '{name}' (concurrent writers?)")
