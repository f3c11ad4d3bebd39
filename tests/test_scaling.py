"""Stage 3: standardisation, constant columns and the scaler saved in run.json."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rareevent.scaling import (
    constant_columns,
    fit_scaler,
    scaler_from_arrays,
    transform,
    trending_columns,
)


def test_fit_and_transform_by_hand() -> None:
    X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 60.0]])
    scaler = fit_scaler(X)
    np.testing.assert_allclose(scaler.mean_, [2.0, 30.0])
    # population standard deviation: sqrt(2/3) and sqrt((400 + 100 + 900) / 3)
    np.testing.assert_allclose(scaler.scale_, [math.sqrt(2 / 3), math.sqrt(1400 / 3)])
    out = transform(scaler, X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    np.testing.assert_allclose(
        out[:, 1], np.array([-20.0, -10.0, 30.0]) / math.sqrt(1400 / 3), rtol=1e-6
    )


def test_constant_column_does_not_divide_by_zero() -> None:
    X = np.array([[1.0, 5.0, 0.1], [2.0, 5.0, 0.1], [3.0, 5.0, 0.1]])
    scaler = fit_scaler(X)
    assert scaler.scale_[1] == 1.0
    with np.errstate(all="raise"):
        out = transform(scaler, X)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, 1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(out[:, 2], 0.0, atol=1e-6)
    # new data far from the constant: shifted by the mean only, not blown up
    np.testing.assert_allclose(
        transform(scaler, np.array([[2.0, 7.0, 0.1]]))[0, :2], [0.0, 2.0], atol=1e-6
    )


def test_constant_columns_finds_them() -> None:
    X = np.array([[1.0, 5.0, 0.1, 1e6], [2.0, 5.0, 0.1, 1e6], [3.0, 5.0, 0.1, 1e6]])
    np.testing.assert_array_equal(constant_columns(fit_scaler(X)), [1, 2, 3])
    varied = np.array([[0.0, 1.0], [1e-3, 1.0001]])
    assert constant_columns(fit_scaler(varied)).size == 0


def test_scaler_from_arrays_round_trips_exactly() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(loc=[3.0, -200.0, 0.01], scale=[1.0, 50.0, 1e-3], size=(200, 3))
    fitted = fit_scaler(X)
    # what run.json stores: plain JSON lists
    saved = json.loads(
        json.dumps({"mean": fitted.mean_.tolist(), "scale": fitted.scale_.tolist()})
    )
    rebuilt = scaler_from_arrays(saved["mean"], saved["scale"])
    np.testing.assert_array_equal(rebuilt.mean_, fitted.mean_)
    np.testing.assert_array_equal(rebuilt.scale_, fitted.scale_)
    np.testing.assert_array_equal(transform(rebuilt, X), transform(fitted, X))
    assert rebuilt.n_features_in_ == 3
    np.testing.assert_allclose(rebuilt.var_, fitted.var_, rtol=1e-12)
    # scikit-learn's own transform accepts the rebuilt scaler too
    np.testing.assert_allclose(
        rebuilt.transform(X), fitted.transform(X), rtol=0, atol=0
    )


def test_transform_centres_and_scales_new_data() -> None:
    scaler = scaler_from_arrays([1.0, -2.0], [2.0, 0.5])
    out = transform(scaler, np.array([[3.0, -2.0], [1.0, -1.0]]))
    np.testing.assert_array_equal(
        out, np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_fit_accepts_any_numeric_dtype(dtype) -> None:
    scaler = fit_scaler(np.array([[0], [2], [4]], dtype=dtype))
    assert scaler.mean_.dtype == np.float64
    np.testing.assert_allclose(scaler.mean_, [2.0])


def test_trending_columns_finds_steady_drift_not_cycles_or_noise() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(400)
    X = np.column_stack(
        [
            rng.normal(size=400),  # noise
            np.sin(t / 10) + 0.1 * rng.normal(size=400),  # a cycle
            0.01 * t
            + 0.5
            * rng.normal(size=400),  # drift: the trend explains most of the variance
            np.full(400, 3.0),  # constant: no trend, no division by zero
        ]
    )
    assert trending_columns(X).tolist() == [2]
    assert trending_columns(X[:2]).tolist() == []
