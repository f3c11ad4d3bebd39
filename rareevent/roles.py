"""Which role a 0/1 column that no option names takes: an event label, or an input.

A fault column read as a model input leaks the events it marks, so a 0/1
column is never made an input silently when it looks like a label:

- named with a label word (``Störung``, ``fault``, ``panne`` ...; case and
  accents ignored) it becomes the label, and the run says so;
- otherwise, when its ones are rare and come in runs, training stops with
  one line asking for ``label=NAME`` or ``context=NAME``.

Column names alone cannot decide: MSL's 54 command flags are 0/1 too and
must stay context inputs. The run shape tells them apart. Measured on the
0/1 columns of ../shared/data (MSL: 16 channels, train and test files; SKAB:
34 with labels, 35 in all) and sample_data (the measurement is repeated in
tests/test_roles.py):

============================  =======  ==========  ===============
columns                       count    ones share  mean run (rows)
============================  =======  ==========  ===============
MSL ``cmd*`` flags            427      0.03% - 30%  1.0 - 3.0
SKAB ``changepoint``          34       0.17% - 0.5% 1.0 - 1.33
labels: MSL/SKAB ``anomaly``  50       2% - 50%     67.5 - 1140
labels: sample ``label``      1        0.65%        9.7
============================  =======  ==========  ===============

So "rare and in runs" is: at most ``MAX_SHARE`` of the rows are ones and
their runs average at least ``MIN_RUN`` rows, between the longest flag
runs (3) and the shortest label runs (9.7).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import replace

import numpy as np

from rareevent.errors import RareEventError
from rareevent.frames import SensorData

LABEL_WORDS = (
    "fault",
    "failure",
    "alarm",
    "event",
    "break",
    "störung",
    "fehler",
    "ausfall",
    "défaut",
    "panne",
    "guasto",
    "allarme",
    "fallo",
    "avería",
)
# German builds compounds (Pumpenstörung, Motorausfall): these also match as a word's end
_COMPOUND_ENDS = ("storung", "fehler", "ausfall")
MAX_SHARE = 0.25
MIN_RUN = 5.0


def fold(text: str) -> str:
    """``text`` without case and accents: ``Störung`` -> ``storung``, ``AVERÍA`` -> ``averia``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_WORDS = {fold(word) for word in LABEL_WORDS}


def has_label_word(name: str) -> bool:
    """Whether a column name holds a label word: ``pump_failure``, ``Motorausfall``."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", fold(name)) if t]
    return any(token in _WORDS or token.endswith(_COMPOUND_ENDS) for token in tokens)


def run_shape(values: np.ndarray) -> tuple[float, int, float]:
    """The share of ones in a 0/1 column, the number of runs of ones and their mean length."""
    ones = values.astype(bool)
    edges = np.diff(np.concatenate(([0], ones.view(np.int8), [0])))
    runs = int((edges == 1).sum())
    share = float(ones.mean()) if len(ones) else 0.0
    return share, runs, (float(ones.sum()) / runs if runs else 0.0)


def looks_like_events(values: np.ndarray) -> bool:
    """Whether a 0/1 column's ones are rare (``MAX_SHARE``) and come in runs (``MIN_RUN``)."""
    share, runs, mean_run = run_shape(values)
    return runs > 0 and share <= MAX_SHARE and mean_run >= MIN_RUN


def settle_flags(
    parts: Sequence[SensorData], named: Collection[str]
) -> tuple[list[SensorData], int | None]:
    """Make a label-like 0/1 feature no option names (not in ``named``) the label, or refuse it.

    ``parts`` are the series of one training (one file, or a fleet's series:
    the same columns, judged on their rows together). Returns them (the
    column moved from the features to the label when its name holds a label
    word and there is no label yet) and the index the moved column had among
    the features (``None``: nothing moved).
    """
    columns = parts[0].columns
    for j, column in enumerate(columns.features):
        if column in named:
            continue
        values = np.concatenate([part.X[:, j] for part in parts])
        if not np.isin(values, (0.0, 1.0)).all() or len(np.unique(values)) != 2:
            continue
        worded = has_label_word(column)
        if worded and columns.label is None:
            return [_as_label(part, j) for part in parts], j
        if worded or looks_like_events(values):
            share, runs, _ = run_shape(values)
            path = next(part.path for part in parts if part.X[:, j].any())
            raise RareEventError(
                f"{path}: column {column!r} holds 0/1 flags whose ones are rare and come in runs "
                f"({runs} run(s), {share:.1%} of the rows), like an event label, and no option "
                "names it: as a model input it would leak the events it marks",
                hint=f"pass `label={column}` if it marks events, or `context={column}` "
                "if it is a state the model may read",
            )
    return list(parts), None


def _as_label(data: SensorData, j: int) -> SensorData:
    columns = data.columns
    column = columns.features[j]
    message = (
        f"column {column!r} is named like an event label and holds only 0 and 1: read as the "
        f"label (`label={column}`), not as an input; if it is a state, pass `context={column}`"
    )
    return replace(
        data,
        X=np.delete(data.X, j, axis=1),
        y=data.X[:, j].astype(np.int8),
        columns=replace(
            columns,
            features=[f for f in columns.features if f != column],
            label=column,
            assumed=[
                *columns.assumed,
                {"column": column, "as": "label", "message": message},
            ],
        ),
    )
