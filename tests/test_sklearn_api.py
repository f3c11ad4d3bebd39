"""The detector as a scikit-learn outlier detector: one value per row, scikit-learn's own checks, the saved format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import is_outlier_detector
from sklearn.metrics import f1_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from rareevent.detector import DETECTOR_FILE, RareEventDetector
from rareevent.errors import RareEventError
from tests.conftest import synthetic_frame

FEATURES = ["s1", "s2", "s3"]
STREAM_RUN = Path(__file__).parent / "data" / "stream" / "run"

_Y_NOT_0_1 = "passes y with the labels 1 and 2; y is a 0/1 event label per row (1 = event), and which of two other values is the event is not guessed"
# The checks of scikit-learn that cannot apply to an estimator fitted on ordered rows with 0/1 event labels (listed in docs/reference/python-api.md)
EXPECTED_FAILED_CHECKS = {
    "check_outliers_train": "predict gives 0/1 (1 = event, as PyOD and the CLI), not -1/+1",
    "check_outliers_fit_predict": "fit_predict gives 0/1 (1 = event, as PyOD and the CLI), not -1/+1",
    "check_estimators_dtypes": _Y_NOT_0_1,
    "check_classifier_data_not_an_array": _Y_NOT_0_1,
    "check_fit2d_1feature": _Y_NOT_0_1,
    "check_positive_only_tag_during_fit": "fits iris in its stored order, sorted by class: every row of the validation part (the last rows) is an event, so no threshold can be chosen",
    "check_estimators_nan_inf": "fits with y = 1 on every row: nothing normal to learn from (a NaN or inf in X is refused, tested in test_api)",
    "check_dtype_object": "expects numpy's TypeError for a cell that is not a number; rareevent raises RareEventError (a ValueError) with a one-line message",
}


def _expected_failed(estimator: RareEventDetector) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS


@pytest.mark.filterwarnings("ignore")
@parametrize_with_checks(
    [RareEventDetector(arch="pca", lookback=1)], expected_failed_checks=_expected_failed
)
def test_scikit_learn_checks_pca(estimator: RareEventDetector, check) -> None:  # type: ignore[no-untyped-def]
    """scikit-learn's own checks, on the closed-form baseline (seconds): the estimator protocol, whatever the model."""
    check(estimator)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@parametrize_with_checks(
    [RareEventDetector(lookback=1, units=(4, 2), epochs=1)],
    expected_failed_checks=_expected_failed,
)
def test_scikit_learn_checks_lstm(estimator: RareEventDetector, check) -> None:  # type: ignore[no-untyped-def]
    """The same checks on a tiny LSTM autoencoder (minutes: every check trains one); the same 36 pass."""
    check(estimator)


def test_the_python_api_page_lists_the_skipped_checks() -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "reference" / "python-api.md"
    text = page.read_text(encoding="utf-8")
    for name in EXPECTED_FAILED_CHECKS:
        assert f"`{name}`" in text, name


@pytest.mark.slow
def test_f1_score_of_predict_on_a_dataframe() -> None:
    """Issue 22: predict gave one value per window (n - lookback + 1), so f1_score(y, predict(X)) raised."""
    frame = synthetic_frame()
    X, y = frame[FEATURES], frame["label"]
    detector = RareEventDetector(
        lookback=3, units=(4, 2), epochs=2, batch_size=64, seed=3
    )
    assert is_outlier_detector(detector)
    predicted = detector.fit(X, y).predict(X)
    assert predicted.shape == (600,) and predicted[:2].tolist() == [0, 0]
    score = f1_score(y, predicted)
    assert 0.5 < score <= 1.0, (
        score
    )  # the three events are found (6 rows each, 18 of 600 rows)
    np.testing.assert_array_equal(
        detector.labels_, predicted
    )  # PyOD: labels_ of every row fit was given
    assert np.isfinite(detector.decision_scores_).all()  # the first rows too
    # the events score higher than normal rows: decision_function is higher = more abnormal, score_samples the opposite
    scores = detector.decision_function(X)
    assert np.mean(scores[y == 1]) > 10 * np.mean(scores[y == 0])
    assert np.mean(detector.score_samples(X)[y == 1]) < np.mean(
        detector.score_samples(X)[y == 0]
    )


def test_fit_predict_is_fit_then_labels(tmp_path: Path) -> None:
    frame = synthetic_frame()
    detector = RareEventDetector(arch="pca", lookback=3)
    labels = detector.fit_predict(frame[FEATURES], frame["label"])
    np.testing.assert_array_equal(labels, detector.predict(frame[FEATURES]))
    assert labels.shape == (600,) and 0 < labels.sum() < 60
    # the per-row results describe the data fit was given, not the detector: not saved
    loaded = RareEventDetector.load(detector.save(tmp_path / "saved"))
    assert not hasattr(loaded, "decision_scores_") and not hasattr(loaded, "labels_")
    np.testing.assert_array_equal(loaded.predict(frame[FEATURES]), labels)
    assert (
        json.loads((tmp_path / "saved" / DETECTOR_FILE).read_text())["format_version"]
        == 2
    )


def test_a_format_1_detector_is_read_with_the_new_names(tmp_path: Path) -> None:
    """0.3.0 saved the validation windows' scores as decision_scores_ and labels_; they load as validation_scores_ and validation_labels_."""
    saved = json.loads((STREAM_RUN / DETECTOR_FILE).read_text())
    assert saved["format_version"] == 1
    detector = RareEventDetector.load(STREAM_RUN)
    np.testing.assert_array_equal(
        detector.validation_scores_,
        np.asarray(saved["fitted"]["decision_scores_"], np.float32),
    )
    np.testing.assert_array_equal(
        detector.validation_labels_, saved["fitted"]["labels_"]
    )
    assert (
        isinstance(detector.feature_names_in_, np.ndarray)
        and detector.feature_names_in_.tolist() == saved["fitted"]["feature_names_in_"]
    )
    detector.save(tmp_path / "again")  # written in the new format, and read back
    assert (
        RareEventDetector.load(tmp_path / "again").validation_scores_.tolist()
        == detector.validation_scores_.tolist()
    )
    copy = tmp_path / "newer"
    shutil.copytree(STREAM_RUN, copy)
    saved["format_version"] = (
        2  # format 2 gets no defaults for what 0.3.0 lacked: the parameters added since ...
    )
    (copy / DETECTOR_FILE).write_text(json.dumps(saved))
    with pytest.raises(
        RareEventError,
        match="'params' must hold exactly the parameters .*horizon.*mask_rate",
    ):
        RareEventDetector.load(copy)
    saved["params"].update(
        horizon=1, mask_rate=0.0
    )  # ... and the old names are missing fields
    (copy / DETECTOR_FILE).write_text(json.dumps(saved))
    with pytest.raises(
        RareEventError, match="required field 'fitted.validation_scores_' is missing"
    ):
        RareEventDetector.load(copy)


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (
            np.zeros((20, 2)),
            np.full(20, 2),
            r"^y: labels must be 0 or 1, got 2 at row 0$",
        ),
        (
            np.zeros((20, 2)) + 1j,
            None,
            r"^X holds complex numbers \(Complex data not supported\)$",
        ),
        (
            np.zeros(20),
            None,
            r"^X must be 2-dimensional \(rows x features\), got shape \(20,\)",
        ),
        (
            np.zeros((3, 2)),
            None,
            r"^X has 3 sample\(s\): fewer than the train and validation parts need \(5 rows each",
        ),
    ],
)
def test_bad_input_is_refused_in_one_line(
    X: np.ndarray, y: np.ndarray | None, message: str
) -> None:
    with pytest.raises(RareEventError, match=message):
        RareEventDetector(arch="pca", lookback=5).fit(X, y)


def test_a_sparse_matrix_is_refused() -> None:
    from scipy import sparse

    with pytest.raises(
        RareEventError, match="^X is a sparse matrix: sparse input is not supported"
    ):
        RareEventDetector(arch="pca").fit(sparse.csr_matrix(np.ones((20, 2))))


def test_window_and_row_outputs_line_up_on_a_numpy_array() -> None:
    frame = synthetic_frame(n=200, events=(120,))
    X = frame[FEATURES].to_numpy()
    detector = RareEventDetector(arch="pca", lookback=4).fit(X)
    windows, rows = detector.window_scores(X), detector.decision_function(X)
    assert (len(windows), len(rows)) == (197, 200)
    assert np.isfinite(rows[:3]).all()
    np.testing.assert_array_equal(rows[3:], windows)
    # row i's score is that of the window of rows i-3..i: scoring those four rows alone gives it
    assert detector.window_scores(X[117:121])[0] == pytest.approx(rows[120], rel=1e-6)
    assert (
        pd.Series(detector.predict(X)).iloc[120:126].sum() >= 1
    )  # the event at rows 120-125 is flagged


SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "pump_sensors.csv"


def test_every_row_gets_a_finite_score_from_a_shorter_window() -> None:
    """Issue 33 (4): the first lookback - 1 rows scored NaN, so average_precision_score raised."""
    from sklearn.metrics import average_precision_score

    frame = synthetic_frame(n=200, events=(2,))  # an event in the first rows
    X, y = frame[FEATURES].to_numpy(), frame["label"].to_numpy()
    detector = RareEventDetector(arch="pca", lookback=6, smooth=2).fit(X[20:])
    scores = detector.decision_function(X)
    assert np.isfinite(scores).all() and detector.predict(X)[:5].tolist() == [0] * 5
    # row 0 is judged by a window of copies of itself; rows 0-4 by the rows up to them only
    alone = detector.window_scores(np.repeat(X[:1], 6, axis=0))[0]
    assert scores[0] == pytest.approx(alone, rel=1e-6)
    np.testing.assert_array_equal(detector.decision_function(X[:5]), scores[:5])
    np.testing.assert_array_equal(scores[5:], detector.window_scores(X))  # unchanged
    assert scores[2:5].min() > 10 * np.median(scores)  # the event in row 2 stands out
    assert (
        average_precision_score(y, scores) > 0.6
    )  # it raised on NaN; windows after the event rank high too
    one = detector.decision_function(X[:1])  # shorter than a window: still one per row
    assert one.shape == (1,) and np.isfinite(one).all()
    with pytest.raises(RareEventError, match="X has 0 rows"):
        detector.decision_function(X[:0])


@pytest.mark.slow
def test_cross_val_score_and_grid_search_are_finite_on_the_sample_data() -> None:
    """Issue 33 (4): cross_val_score gave [nan nan nan]; a fold without an event in its validation part raised."""
    from sklearn.model_selection import GridSearchCV, TimeSeriesSplit, cross_val_score

    frame = pd.read_csv(
        SAMPLE, nrows=6000
    )  # fold 1 validates on rows 1200-1499: no event
    X, y = frame.drop(columns=["timestamp", "label"]), frame["label"]
    with pytest.warns(
        UserWarning, match="the validation part holds no positive window"
    ):
        scores = cross_val_score(
            RareEventDetector(arch="pca"),
            X,
            y,
            cv=TimeSeriesSplit(3),
            scoring="average_precision",
            error_score="raise",
        )
    assert np.isfinite(scores).all() and scores.min() > 0.5, scores
    with pytest.warns(UserWarning, match=r"chosen without labels \(pot:0\.001\)"):
        search = GridSearchCV(
            RareEventDetector(arch="pca"),
            {"lookback": [5, 10]},
            cv=TimeSeriesSplit(3),
            scoring="average_precision",
            error_score="raise",
        ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_ == {"lookback": 5} and search.best_score_ > 0.5
    # the fallback is fit's: an explicit label strategy is still refused, and the CLI refuses
    with pytest.raises(RareEventError, match="needs at least one positive window"):
        RareEventDetector(arch="pca", threshold="f1").fit(X[:1500], y[:1500])
