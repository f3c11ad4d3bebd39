"""Which Keras the user chose, and what stands in for Keras while a builder is recorded: the bottom of the model layer.

``rareevent.model`` builds and imports Keras; ``rareevent.forward`` records
the same builders without it. Both read these two facts from here, so that
neither imports the other to learn them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any


def configured_backend() -> str | None:
    """The Keras backend the user chose: ``KERAS_BACKEND``, else ``keras.json``'s, else None.

    Keras writes ``keras.json`` itself on first import, with its default
    ``tensorflow``: that value says nothing about the user, so it counts as
    no choice. Any other backend in the file was put there by someone.
    """
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "keras.json"
    try:
        backend = json.loads(config.read_text(encoding="utf-8")).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) and backend != "tensorflow" else None


_building_with: ContextVar[Any] = ContextVar("rareevent_building_with", default=None)


@contextmanager
def building_with(api: Any) -> Iterator[None]:
    """Within the block, ``import_keras()`` returns ``api`` instead of Keras.

    The numpy forward (``rareevent.forward``) runs the registry's builders on
    a recorder of the ``keras.Input``/``keras.layers``/``keras.Model`` calls
    they make: one description of each architecture serves both.
    """
    token = _building_with.set(api)
    try:
        yield
    finally:
        _building_with.reset(token)


def stand_in() -> Any:
    """What ``building_with`` put in Keras' place in this context, or None."""
    return _building_with.get()
