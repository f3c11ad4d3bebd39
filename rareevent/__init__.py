"""rareevent: find rare events in multivariate sensor time series.

The package is organised by stage of the data flow:
``load`` (CSV -> validated arrays) -> ``windows`` (sliding windows and labels)
-> ``scaling`` -> ``model`` (Keras builders) -> ``threshold`` -> ``detector``
(the estimator tying them together) -> ``runs`` (run folders on disk)
-> ``scoring`` (new data, alarms) -> ``metrics`` -> ``report``.

The Python API (``RareEventDetector``, ``StreamScorer``, ``load_run``,
``RareEventError``) is exported lazily: importing the package imports
nothing else, and TensorFlow is imported only when a model is built or
loaded.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.5.0"

_EXPORTS = {
    "RareEventDetector": "rareevent.detector",
    "RareEventError": "rareevent.errors",
    "StreamScorer": "rareevent.scoring",
    "load_run": "rareevent.runs",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    """Import the module of an exported name on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rareevent' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
