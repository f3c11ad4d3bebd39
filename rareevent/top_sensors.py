"""Naming the sensors behind a score: each window's and each episode's top sensors.

A window's error is summed over its sensors; the sensors with the largest
shares of it are what an operator reads first. ``top_features`` writes
them as the ``top_features`` text of every output window, in bulk (pyarrow,
no Python string per window); :class:`TopSensors` is an episode's text with
its ``(sensor, share)`` pairs kept beside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOP_FEATURES = 3
_SHARE_TEXT = [f"{i / 100:.2f}" for i in range(101)]


def _top_order(feature_errors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` sensors with the largest share of each row's error, and their shares.

    The shares are in hundredths.
    """
    k = min(k, feature_errors.shape[1])
    total = feature_errors.sum(axis=1, keepdims=True)
    shares = np.divide(
        feature_errors, total, out=np.zeros_like(feature_errors), where=total > 0
    )
    order = np.empty((len(shares), k), np.int64)
    remaining = shares.copy()
    for i in range(
        k
    ):  # k passes of argmax (first index on ties) instead of sorting every sensor
        order[:, i] = remaining.argmax(axis=1)
        np.put_along_axis(remaining, order[:, i : i + 1], -np.inf, axis=1)
    hundredths = np.rint(np.take_along_axis(shares, order, axis=1) * 100).astype(
        np.int64
    )
    return order, hundredths


def top_features(
    feature_errors: np.ndarray, names: list[str], k: int = TOP_FEATURES
) -> pd.api.extensions.ExtensionArray:
    """``name:share;name:share;...`` of the ``k`` sensors with the largest shares of a row's error.

    A pandas string array held by pyarrow: the texts are joined by pyarrow
    (table lookups, no format call or Python string per window) and reach
    the output writers without a conversion.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    order, hundredths = _top_order(feature_errors, k)
    name_text, share_text = (
        pa.array(names, pa.string()),
        pa.array(_SHARE_TEXT, pa.string()),
    )
    pairs = [
        pc.binary_join_element_wise(
            name_text.take(order[:, i]), share_text.take(hundredths[:, i]), ":"
        )
        for i in range(order.shape[1])
    ]
    return pd.array(pc.binary_join_element_wise(*pairs, ";"), pd.StringDtype("pyarrow"))


class TopSensors(str):
    """An episode's ``top_features`` text (``name:0.52;...``, as in the window CSV) and its pairs.

    The text is what the JSON output and the console show, unchanged; the
    pairs ``[(sensor, share), ...]`` are what episodes and reports read, as
    the text cannot be split back: a sensor name may hold ``;`` or ``:``
    (OPC-UA tags like ``ns=2;s=Flow``).
    """

    pairs: list[tuple[str, float]]

    @classmethod
    def of(
        cls, feature_errors: np.ndarray, names: list[str], k: int = TOP_FEATURES
    ) -> TopSensors:
        """The top sensors of one row of summed errors."""
        row = feature_errors.reshape(1, -1)
        text = cls(top_features(row, names, k)[0])
        order, hundredths = _top_order(row, k)
        text.pairs = [
            (names[int(i)], int(h) / 100)
            for i, h in zip(order[0], hundredths[0], strict=True)
        ]
        return text
