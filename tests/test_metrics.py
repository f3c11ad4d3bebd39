"""Point-wise and event-level metrics on hand-made vectors."""

from __future__ import annotations

import numpy as np
import pytest

from rareevent.metrics import evaluate, event_metrics, event_scores, point_metrics

# ---------------------------------------------------------------- point-wise

LABELS = np.array([1, 1, 0, 0, 1, 0])
FLAGS = np.array([1, 0, 1, 0, 1, 0])
SCORES = np.array([0.9, 0.4, 0.6, 0.1, 0.8, 0.3])


def test_point_metrics_confusion_matrix_and_f1() -> None:
    m = point_metrics(LABELS, FLAGS, SCORES)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 2)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)


def test_point_metrics_asymmetric_case() -> None:
    m = point_metrics([1, 1, 1, 0, 0], [1, 0, 0, 1, 1], [0.5] * 5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 2, 2, 0)
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 * 1 / (2 * 1 + 2 + 2))


def test_point_metrics_aucs() -> None:
    m = point_metrics(LABELS, FLAGS, SCORES)
    # ROC: of 9 positive/negative pairs, only (0.4 vs 0.6) is ordered wrong
    assert m["roc_auc"] == pytest.approx(8 / 9)
    # AP: ranked 0.9 P, 0.8 P, 0.6 N, 0.4 P -> 1/3 * (1 + 1 + 3/4)
    assert m["pr_auc"] == pytest.approx(11 / 12)


@pytest.mark.parametrize("labels", [np.zeros(4, int), np.ones(4, int)])
def test_point_metrics_aucs_none_with_one_class(labels: np.ndarray) -> None:
    m = point_metrics(labels, [0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4])
    assert m["pr_auc"] is None
    assert m["roc_auc"] is None


def test_point_metrics_no_flags_no_positives() -> None:
    m = point_metrics([0, 0, 0], [0, 0, 0], [0.1, 0.2, 0.3])
    assert (m["precision"], m["recall"], m["f1"]) == (
        None,
        None,
        None,
    )  # no events, no alarms: undefined
    assert m["tn"] == 3
    m = point_metrics([1, 0, 0], [0, 0, 0], [0.1, 0.2, 0.3])
    assert (m["precision"], m["recall"], m["f1"], m["fn"]) == (None, 0.0, 0.0, 1)
    m = point_metrics([0, 0, 0], [1, 0, 0], [0.1, 0.2, 0.3])
    assert (m["precision"], m["recall"], m["f1"], m["fp"]) == (0.0, None, 0.0, 1)


# ---------------------------------------------------------------- event-level
#
# 20 rows, events at rows 5..7 and 14..15; windows of lookback 3 end at rows 2..19.
# Alarms fire on windows ending at rows 4, 6, 9, 10, 12, 18; as window indices
# (end - 2) that is 2, 4, 7, 8, 10, 16 -> episodes ending at rows [4], [6], [9, 10], [12], [18].

ROW_LABELS = np.zeros(20, dtype=int)
ROW_LABELS[5:8] = 1
ROW_LABELS[14:16] = 1
ENDS = np.arange(2, 20)
ALARMS = (4, 6, 9, 10, 12, 18)
EVENT_FLAGS = np.isin(ENDS, ALARMS)
HOURS = np.datetime64("2026-01-01T00:00") + np.arange(20) * np.timedelta64(1, "h")


def test_event_metrics_lead_zero() -> None:
    m = event_metrics(ROW_LABELS, EVENT_FLAGS, ENDS)
    assert m["events"] == 2
    # event 1 first alarmed at row 6, one row after its onset (row 5): late; event 2 missed
    assert m["events_detected"] == 1
    assert m["lead_rows"] == [-1]
    assert m["mean_lead_rows"] == pytest.approx(-1.0)
    assert m["lead_seconds"] is None
    assert m["alarm_episodes"] == 5
    # only the episode at row 6 touches an event
    assert m["false_alarms"] == 4
    assert m["false_alarms_per_1000_windows"] == pytest.approx(1000 * 4 / 18)
    assert "false_alarms_per_day" not in m


def test_event_precision_counts_events_caught_against_false_episodes() -> None:
    m = event_metrics(ROW_LABELS, EVENT_FLAGS, ENDS)
    # 1 event caught, 4 false episodes; 1 of 2 events caught
    assert m["event_precision"] == pytest.approx(1 / 5)
    assert m["event_f05"] == pytest.approx(1.25 * 0.2 * 0.5 / (0.25 * 0.2 + 0.5))
    m = event_metrics(ROW_LABELS, EVENT_FLAGS, ENDS, lead=2)
    # both events caught, 2 false episodes ([9, 10] and [18])
    assert m["event_precision"] == pytest.approx(2 / 4)
    assert m["event_f05"] == pytest.approx(1.25 * 0.5 / (0.25 * 0.5 + 1.0))


def test_alarms_that_flicker_inside_an_event_count_once() -> None:
    flags = np.isin(ENDS, (5, 7, 12))  # episodes [5] and [7] inside event 1, [12] false
    m = event_metrics(ROW_LABELS, flags, ENDS)
    assert (m["alarm_episodes"], m["events_detected"], m["false_alarms"]) == (3, 1, 1)
    assert m["event_precision"] == pytest.approx(0.5)  # not 2 of 3 episodes


def test_event_f05_is_one_for_one_episode_per_event_and_none_without_either() -> None:
    flags = np.isin(ENDS, (6, 7, 15))  # episodes [6, 7] and [15]: one inside each event
    m = event_metrics(ROW_LABELS, flags, ENDS)
    assert (m["alarm_episodes"], m["false_alarms"]) == (2, 0)
    assert (m["event_precision"], m["event_f05"]) == (1.0, 1.0)
    m = event_metrics(np.zeros(10, int), np.zeros(8, bool), np.arange(2, 10))
    assert (m["event_precision"], m["event_f05"]) == (None, None)
    m = event_metrics(ROW_LABELS, np.zeros(len(ENDS), bool), ENDS)
    assert (m["event_precision"], m["event_f05"]) == (None, 0.0)  # events, no alarm


def test_event_scores_weigh_precision_over_recall() -> None:
    # the same product of precision and recall scores higher when precision is the larger
    precise = event_scores(events=10, detected=2, false_alarms=0)
    eager = event_scores(events=10, detected=10, false_alarms=40)
    assert precise == (1.0, pytest.approx(1.25 * 0.2 / (0.25 + 0.2)))
    assert eager == (0.2, pytest.approx(1.25 * 0.2 / (0.25 * 0.2 + 1.0)))
    assert precise[1] > eager[1]
    assert event_scores(events=3, detected=0, false_alarms=2) == (0.0, 0.0)


def test_event_metrics_lead_extends_detection_before_onset() -> None:
    m = event_metrics(ROW_LABELS, EVENT_FLAGS, ENDS, lead=2)
    # event 1 range [3, 7]: first alarm row 4 (1 row early); event 2 range [12, 15]: alarm row 12 (2 early)
    assert m["events_detected"] == 2
    assert m["lead_rows"] == [1, 2]
    assert m["mean_lead_rows"] == pytest.approx(1.5)
    # episodes [4], [6], [12] touch an event's [start - 2, end]; [9, 10] and [18] do not
    assert m["false_alarms"] == 2
    assert m["false_alarms_per_1000_windows"] == pytest.approx(1000 * 2 / 18)


def test_event_metrics_lead_one_is_not_enough_for_event_two() -> None:
    m = event_metrics(ROW_LABELS, EVENT_FLAGS, ENDS, lead=1)
    assert m["events_detected"] == 1
    assert m["lead_rows"] == [1]
    assert m["false_alarms"] == 3  # [9, 10], [12], [18]


def test_event_metrics_with_datetime_axis_reports_seconds_and_per_day() -> None:
    m = event_metrics(ROW_LABELS, EVENT_FLAGS, ENDS, lead=2, time=HOURS)
    assert m["lead_seconds"] == [3600.0, 7200.0]
    # 19 hours of data, 2 false alarms
    assert m["false_alarms_per_day"] == pytest.approx(2 / (19 / 24))
    assert "false_alarms_per_1000_windows" not in m
    m0 = event_metrics(ROW_LABELS, EVENT_FLAGS, ENDS, time=HOURS)
    assert m0["lead_seconds"] == [-3600.0]
    assert m0["false_alarms_per_day"] == pytest.approx(4 * 24 / 19)


def test_event_metrics_with_numeric_axis_reports_lead_in_its_own_unit() -> None:
    minutes = np.arange(20) * 60.0  # a numeric axis has no known unit: no per-day rate
    m = event_metrics(ROW_LABELS, EVENT_FLAGS, ENDS, lead=2, time=minutes)
    assert m["lead_time"] == [60.0, 120.0] and m["lead_seconds"] is None
    assert "false_alarms_per_day" not in m
    assert m["false_alarms_per_1000_windows"] == pytest.approx(
        1000 * 2 / len(EVENT_FLAGS)
    )


def test_event_metrics_first_row_offset() -> None:
    # the same span, but it starts at file row 100: ends and results shift consistently
    m = event_metrics(
        ROW_LABELS, EVENT_FLAGS, ENDS + 100, lead=2, time=HOURS, first_row=100
    )
    assert m["events"] == 2
    assert m["events_detected"] == 2
    assert m["lead_rows"] == [1, 2]
    assert m["lead_seconds"] == [3600.0, 7200.0]
    assert m["false_alarms"] == 2
    # without the offset the ends at 100+ match no event row: nothing detected, all episodes false
    wrong = event_metrics(ROW_LABELS, EVENT_FLAGS, ENDS + 100, lead=2)
    assert wrong["events_detected"] == 0
    assert wrong["false_alarms"] == 5


def test_event_metrics_no_events_and_no_alarms() -> None:
    m = event_metrics(np.zeros(10, int), np.zeros(8, bool), np.arange(2, 10))
    assert (
        m["events"],
        m["events_detected"],
        m["alarm_episodes"],
        m["false_alarms"],
    ) == (0, 0, 0, 0)
    assert m["lead_rows"] == []
    assert m["mean_lead_rows"] is None
    assert m["false_alarms_per_1000_windows"] == 0.0
    m = event_metrics(
        np.zeros(10, int), np.array([0, 1, 1, 0, 0, 1, 0, 0], bool), np.arange(2, 10)
    )
    assert (m["alarm_episodes"], m["false_alarms"]) == (2, 2)
    assert m["false_alarms_per_1000_windows"] == pytest.approx(250.0)


def test_event_metrics_event_before_first_window_cannot_be_detected_but_counts() -> (
    None
):
    y = np.array([1, 1, 0, 0, 0, 0])
    m = event_metrics(y, np.ones(4, bool), np.arange(2, 6))
    assert m["events"] == 1
    assert m["events_detected"] == 0
    assert m["false_alarms"] == 1


def test_event_metrics_single_time_point_falls_back_to_per_window_rate() -> None:
    m = event_metrics(np.array([0]), np.array([True]), np.array([0]), time=HOURS[:1])
    assert m["false_alarms"] == 1
    assert m["false_alarms_per_1000_windows"] == pytest.approx(1000.0)


def test_evaluate_merges_both() -> None:
    window_labels = ROW_LABELS[ENDS]
    m = evaluate(
        ROW_LABELS, window_labels, EVENT_FLAGS, np.where(EVENT_FLAGS, 1.0, 0.0), ENDS
    )
    # window-level: flagged ends 6 (positive), 4, 9, 10, 12, 18 (negative); positives at ends 5, 6, 7, 14, 15
    assert (m["tp"], m["fp"], m["fn"]) == (1, 5, 4)
    assert m["events_detected"] == 1
