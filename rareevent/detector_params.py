"""The detector's parameters: ``__init__``, ``get_params`` and the checks ``fit`` starts with.

Kept apart from what the detector does with them: the limits of each
parameter and the rule its error states are one table here, which
``check_params`` walks before any data is read, and by which a loaded
``detector.json`` is checked too.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rareevent.errors import RareEventError
from rareevent.model import ARCHITECTURES, check_model_options
from rareevent.protocol import MAX_SPAN
from rareevent.threshold import parse_strategy

SCORE_KINDS = ("mean", "last", "max", "tail")
CONTEXT_RULES = ("auto", "none")
MAX_MARGIN = 1000.0
MAX_SEED = 2**32 - 1  # numpy's seeds
# 512x GPU_MAX_BATCH: a larger batch is a typo or a damaged file (2**63 overflows numpy and Keras)
MAX_BATCH_SIZE = 2**20
MAX_VALIDATION_FRACTION = 0.9


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def is_batch_size(value: Any) -> bool:
    return is_int(value) and 1 <= value <= MAX_BATCH_SIZE


# the limits and choices that the rules of PARAM_RULES name
LIMITS: dict[str, Any] = {
    "SCORE_KINDS": ", ".join(SCORE_KINDS),
    "MAX_SPAN": MAX_SPAN,
    "MAX_MARGIN": MAX_MARGIN,
    "MAX_SEED": MAX_SEED,
    "MAX_BATCH_SIZE": MAX_BATCH_SIZE,
    "MAX_VALIDATION_FRACTION": MAX_VALIDATION_FRACTION,
}

# What check_params asks of each parameter, in this order: when its value v is valid, and
# the rule its error states after "PARAM must be ", formatted with v and LIMITS:
# "smooth must be between 1 and 100000, got 0". (check_model_options has checked arch,
# activation, units, and that lookback and horizon are integers.)
# fmt: off
PARAM_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("score_kind", lambda v: v in SCORE_KINDS, "one of {SCORE_KINDS}, got {v!r}"),
    ("lookback", lambda v: v <= MAX_SPAN, "at most {MAX_SPAN}, got {v}"),
    ("horizon", lambda v: v <= MAX_SPAN, "at most {MAX_SPAN}, got {v}"),
    ("smooth", lambda v: is_int(v) and 1 <= v <= MAX_SPAN, "between 1 and {MAX_SPAN}, got {v}"),
    ("mask_rate", lambda v: is_number(v) and 0 <= v < 1, "in [0, 1), got {v}"),
    ("margin", lambda v: is_number(v) and 0 < v <= MAX_MARGIN,
        "above 0 and at most {MAX_MARGIN:g}, got {v}"),
    ("lead", lambda v: is_int(v) and 0 <= v <= MAX_SPAN, "between 0 and {MAX_SPAN}, got {v}"),
    ("seed", lambda v: is_int(v) and 0 <= v <= MAX_SEED, "between 0 and {MAX_SEED}, got {v}"),
    ("epochs", lambda v: is_int(v) and v >= 1, "at least 1, got {v}"),
    ("patience", lambda v: is_int(v) and v >= 0, "0 or more, got {v}"),
    ("batch_size", lambda v: v is None or is_batch_size(v),
        "between 1 and {MAX_BATCH_SIZE}, got {v}"),
    ("learning_rate", lambda v: v is None or (is_number(v) and 0 < v < 1),
        "in (0, 1), got {v}"),
    ("threshold", lambda v: v is None or isinstance(v, str),
        "a strategy like f1 or pot, got {v!r}"),
    ("normalize", lambda v: isinstance(v, bool), "true or false, got {v!r}"),
    ("warm_start", lambda v: isinstance(v, bool), "true or false, got {v!r}"),
    ("validation_fraction", lambda v: is_number(v) and 0 < v < MAX_VALIDATION_FRACTION,
        "above 0 and below {MAX_VALIDATION_FRACTION:g}, got {v}"),
)
# fmt: on


class DetectorParams:
    """The parameters of ``Detector`` and their checks (a mixin of ``Detector``).

    ``Detector``'s docstring describes each parameter.
    """

    def __init__(
        self,
        arch: str = "ae",
        lookback: int = 1,
        horizon: int = 1,
        units: tuple[int, int] | str = (32, 16),
        activation: str = "tanh",
        lead: int = 0,
        score_kind: str = "mean",
        smooth: int = 1,
        threshold: str | None = None,
        margin: float = 1.0,
        epochs: int = 40,
        batch_size: int | None = None,
        patience: int = 5,
        learning_rate: float | None = None,
        seed: int = 0,
        context: str | Sequence[int] = "auto",
        normalize: bool = False,
        validation_fraction: float = 0.2,
        warm_start: bool = False,
        mask_rate: float = 0.0,
    ) -> None:
        self.arch = arch
        self.lookback = lookback
        self.horizon = horizon
        self.units = units
        self.activation = activation
        self.lead = lead
        self.score_kind = score_kind
        self.smooth = smooth
        self.threshold = threshold
        self.margin = margin
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.learning_rate = learning_rate
        self.seed = seed
        self.context = context
        self.normalize = normalize
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.mask_rate = mask_rate

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters of ``__init__`` and their values (scikit-learn's ``get_params``)."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {name: getattr(self, name) for name in names}

    def check_masking(self) -> None:
        """Refuse ``mask_rate`` on an architecture that does not train with hidden sensors.

        Checked before training only: a run saved with such a setting (it
        was ignored) still loads.
        """
        if self.mask_rate and not ARCHITECTURES[self.arch].reads_masks:
            readers = [name for name, spec in ARCHITECTURES.items() if spec.reads_masks]
            raise RareEventError(
                f"mask_rate {self.mask_rate:g} applies to {' and '.join(readers)} only; "
                f"the {str(getattr(self.arch, 'value', self.arch))!r} model would ignore it",
                hint="leave `mask_rate` out, or choose one of those architectures",
                param="mask_rate",
            )

    def check_params(self) -> None:
        """Refuse bad parameters (types included) before any data is read or any model built.

        Raises
        ------
        RareEventError
            Naming the first bad parameter (``error.param``) and its value.
        """
        check_model_options(
            self.arch, self.activation, self.units, self.lookback, self.horizon
        )
        for param, valid, rule in PARAM_RULES:
            value = getattr(self, param)
            if not valid(value):
                message = f"{param} must be {rule.format(v=value, **LIMITS)}"
                raise RareEventError(message, param=param)
        if self.threshold is not None:
            parse_strategy(self.threshold)
        if isinstance(self.context, str):
            context_ok = self.context in CONTEXT_RULES
        else:
            context_ok = isinstance(self.context, (list, tuple)) and all(
                is_int(j) for j in self.context
            )
        if not context_ok:
            raise RareEventError(
                f"context must be one of {', '.join(CONTEXT_RULES)} or a list of column "
                f"indices, got {self.context!r}",
                param="context",
            )
