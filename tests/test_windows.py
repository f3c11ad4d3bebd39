"""Stage 2: sliding windows, window labels, clean-window masks, runs and splits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rareevent.errors import RareEventError
from rareevent.windows import (
    chronological_split,
    clean_windows,
    n_windows,
    one_segment,
    segments,
    sliding_windows,
    window_labels,
)
from rareevent.options import SplitSpec


@pytest.fixture
def toy() -> np.ndarray:
    """The seed article's toy: x1 = 0.1 .. 0.9, x2 = x1**3 (9 rows, 2 features)."""
    x1 = np.round(np.arange(1, 10) / 10, 1)
    return np.column_stack([x1, x1**3])


def test_toy_gives_all_seven_windows(toy: np.ndarray) -> None:
    w = sliding_windows(toy, 3)
    assert w.shape == (7, 3, 2)
    assert n_windows(9, 3) == 7
    # first window: rows 0..2, last window: rows 6..8 (the seed's loop never starts one at row 0 or 1)
    np.testing.assert_allclose(
        w[0], [[0.1, 0.001], [0.2, 0.008], [0.3, 0.027]], rtol=1e-12
    )
    np.testing.assert_allclose(
        w[-1], [[0.7, 0.343], [0.8, 0.512], [0.9, 0.729]], rtol=1e-12
    )
    for k in range(7):
        np.testing.assert_array_equal(w[k], toy[k : k + 3])
    # window k ends at row k + 2: its last row is the row it is identified by
    np.testing.assert_array_equal(w[:, -1, 0], toy[2:, 0])


def test_sliding_windows_is_a_view(toy: np.ndarray) -> None:
    w = sliding_windows(toy, 3)
    assert np.shares_memory(w, toy)
    assert w.base is not None


def test_lookback_one_and_equal_to_rows(toy: np.ndarray) -> None:
    assert sliding_windows(toy, 1).shape == (9, 1, 2)
    full = sliding_windows(toy, 9)
    assert full.shape == (1, 9, 2)
    np.testing.assert_array_equal(full[0], toy)


def test_too_few_rows_is_an_error(toy: np.ndarray) -> None:
    with pytest.raises(RareEventError, match=r"9 rows give no window of lookback 10"):
        sliding_windows(toy, 10)
    assert n_windows(9, 10) == 0
    assert n_windows(2, 10) == 0


@pytest.mark.parametrize("lookback", [0, -3])
def test_lookback_below_one_is_an_error(toy: np.ndarray, lookback: int) -> None:
    with pytest.raises(RareEventError, match="lookback must be at least 1"):
        sliding_windows(toy, lookback)


# rows:            0  1  2  3  4  5  6  7  8  9
Y = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0])


def test_window_labels_lead_zero_is_last_row() -> None:
    # lookback 3: window ends at rows 2..9
    labels = window_labels(Y, 3)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(labels, Y[2:])


def test_window_labels_lead_two_warns_early() -> None:
    labels = window_labels(Y, 3, lead=2)
    # ends 2 and 3 are within 2 rows before onset (row 4); event rows 4 and 5 stay positive;
    # end 6 is after the event and stays negative
    np.testing.assert_array_equal(labels, [1, 1, 1, 1, 0, 0, 0, 0])
    assert labels.shape == (8,)


def test_window_labels_lead_one_and_event_at_the_end() -> None:
    y = np.array([0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(window_labels(y, 2, lead=1), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(window_labels(y, 2, lead=0), [0, 0, 0, 0, 1])


def old_window_labels(y: np.ndarray, lookback: int, lead: int) -> np.ndarray:
    """The labels before segments: any event row in ``[end, end+lead]``, one window at a time."""
    return np.array(
        [y[end : end + lead + 1].max() for end in range(lookback - 1, len(y))],
        dtype=np.int8,
    )


def old_clean_windows(y: np.ndarray, lookback: int, lead: int) -> np.ndarray:
    """The clean mask before segments: no event row in ``[start, end+lead]``."""
    return np.array(
        [y[k : k + lookback + lead].max() == 0 for k in range(len(y) - lookback + 1)]
    )


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(
    y=st.lists(st.integers(0, 1), min_size=1, max_size=40),
    lookback=st.integers(1, 6),
    lead=st.integers(0, 8),
)
def test_window_labels_of_one_segment_are_as_before(
    y: list[int], lookback: int, lead: int
) -> None:
    rows = np.array(y, dtype=np.int8)
    expected = old_window_labels(rows, lookback, lead)
    for starts in (
        None,
        one_segment(len(rows)),
        np.zeros(len(rows), bool),
    ):  # the first row's flag does not matter
        labels = window_labels(rows, lookback, lead, starts)
        assert labels.dtype == np.int8
        np.testing.assert_array_equal(labels, expected)
        if len(rows) >= lookback:
            np.testing.assert_array_equal(
                clean_windows(rows, lookback, lead, starts),
                old_clean_windows(rows, lookback, lead),
            )


def test_window_labels_look_ahead_stops_at_a_segment_start() -> None:
    # rows:        0  1  2  3  4  5  6  7  8  9 10 11
    y = np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])
    starts = np.zeros(12, bool)
    starts[[0, 6]] = True  # a gap before row 6: its event is in the next segment
    # lookback 2: windows end at rows 1..11; lead 3 reaches rows end..end+3
    np.testing.assert_array_equal(
        window_labels(y, 2, lead=3), [0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1]
    )
    np.testing.assert_array_equal(
        window_labels(y, 2, lead=3, starts=starts), [0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1]
    )
    # within the second segment the event at row 11 still labels the windows ending at rows 8..10
    assert window_labels(y, 2, lead=3, starts=starts)[7:10].tolist() == [1, 1, 1]
    # lead 0 ignores segments: every window takes its last row's label
    np.testing.assert_array_equal(window_labels(y, 2, starts=starts), y[1:])
    # the clean mask looks ahead as far: windows ending at rows 3..5 are normal now
    np.testing.assert_array_equal(
        clean_windows(y, 2, lead=3), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    )
    np.testing.assert_array_equal(
        clean_windows(y, 2, lead=3, starts=starts), [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    )


def test_clean_windows_excludes_windows_holding_event_rows() -> None:
    # windows k = 0..7 cover rows k..k+2; those holding row 4 or 5 are k = 2..5
    np.testing.assert_array_equal(clean_windows(Y, 3), [1, 1, 0, 0, 0, 0, 1, 1])
    # stricter than window_labels == 0: window 4 (rows 4..6, ends on a normal row) is not clean
    assert window_labels(Y, 3)[4] == 0
    assert not clean_windows(Y, 3)[4]


def test_clean_windows_with_lead_excludes_windows_just_before() -> None:
    # with lead 2, window k also must have no event in rows k+3 .. k+4
    np.testing.assert_array_equal(clean_windows(Y, 3, lead=2), [0, 0, 0, 0, 0, 0, 1, 1])
    # with lead 1, window 0 (rows 0..2, plus row 3) is still clean
    np.testing.assert_array_equal(clean_windows(Y, 3, lead=1), [1, 0, 0, 0, 0, 0, 1, 1])
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(clean_windows(y, 2, lead=0), [1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(clean_windows(y, 2, lead=2), [1, 1, 1, 1, 0, 0, 0])
    assert clean_windows(y, 2, lead=2).dtype == bool


def test_segments() -> None:
    np.testing.assert_array_equal(segments(np.array([0, 1, 1, 0, 1])), [[1, 2], [4, 4]])
    np.testing.assert_array_equal(
        segments(np.array([True, True, False, True])), [[0, 1], [3, 3]]
    )
    np.testing.assert_array_equal(segments(np.ones(4, bool)), [[0, 3]])
    empty = segments(np.zeros(5, bool))
    assert empty.shape == (0, 2)
    assert segments(np.array([], dtype=bool)).shape == (0, 2)
    assert segments(np.array([0, 1])).dtype == np.int64


def test_chronological_split_ranges() -> None:
    assert chronological_split(100, SplitSpec(0.2, 0.1)) == {
        "train": (0, 70),
        "valid": (70, 90),
        "test": (90, 100),
    }
    assert chronological_split(600, SplitSpec(0.25, 0.25)) == {
        "train": (0, 300),
        "valid": (300, 450),
        "test": (450, 600),
    }


def test_chronological_split_without_test_part() -> None:
    assert chronological_split(100, SplitSpec(0.2, 0.0)) == {
        "train": (0, 80),
        "valid": (80, 100),
        "test": (100, 100),
    }


def test_chronological_split_refuses_no_validation() -> None:
    with pytest.raises(RareEventError, match="^valid_frac must be above 0"):
        chronological_split(100, SplitSpec(0.0, 0.1))


@pytest.mark.parametrize(
    ("valid", "test"), [(0.5, 0.4), (0.45, 0.45), (0.7, 0.25), (0.9, 0.0)]
)
def test_chronological_split_refuses_too_little_training(
    valid: float, test: float
) -> None:
    with pytest.raises(RareEventError, match="leaves too little to train on"):
        chronological_split(100, SplitSpec(valid, test))


def test_chronological_split_refuses_sum_of_exactly_point_nine_in_any_order() -> None:
    with pytest.raises(RareEventError, match="leaves too little to train on"):
        chronological_split(100, SplitSpec(0.6, 0.3))


@pytest.mark.parametrize(
    ("valid", "test", "name"),
    [
        (1.0, 0.0, "valid_frac"),
        (-0.1, 0.1, "valid_frac"),
        (0.2, -0.1, "test_frac"),
        (0.2, 1.0, "test_frac"),
    ],
)
def test_chronological_split_fraction_range(
    valid: float, test: float, name: str
) -> None:
    with pytest.raises(RareEventError, match=rf"^{name} must be in \[0, 1\)"):
        chronological_split(100, SplitSpec(valid, test))


def test_chronological_split_just_below_limit_is_allowed() -> None:
    assert chronological_split(100, SplitSpec(0.89, 0.0)) == {
        "train": (0, 11),
        "valid": (11, 100),
        "test": (100, 100),
    }
