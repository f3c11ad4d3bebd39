"""The decision stage (rareevent/decision.py): alarms from window scores, fed in any pieces."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from rareevent.decision import Decider, Decision, epsilon, resolve
from rareevent.scoring import AlarmEpisodes
from rareevent.windows import segments
from rareevent.errors import RareEventError
from rareevent.options import AlarmPolicy, parse_span


def decide(decision: Decision, scores, breaks=None, pieces=(), validation=None):
    """Flags of ``scores`` fed whole, or cut at the positions ``pieces``."""
    scores = np.asarray(scores, dtype=float)
    breaks = np.zeros(len(scores), bool) if breaks is None else np.asarray(breaks)
    decider = Decider(decision, validation)
    cuts = [0, *pieces, len(scores)]
    return np.concatenate(
        [decider(scores[a:b], breaks[a:b]) for a, b in itertools.pairwise(cuts)]
    )


def test_the_threshold_alone_flags_scores_at_or_above_it() -> None:
    flags = decide(Decision(threshold=1.0), [0.5, 1.0, 1.5, 0.9])
    assert flags.tolist() == [False, True, True, False]


def test_min_duration_alarms_only_once_the_score_has_stayed_high() -> None:
    scores = [2, 0, 2, 2, 2, 0, 2, 2]
    flags = decide(Decision(threshold=1.0, min_duration=3), scores)
    assert flags.tolist() == [False, False, False, False, True, False, False, False]


def test_min_duration_starts_again_after_a_gap() -> None:
    scores = [2, 2, 2, 2]
    breaks = [False, False, True, False]
    flags = decide(Decision(threshold=1.0, min_duration=2), scores, breaks)
    assert flags.tolist() == [False, True, False, True]


def test_cooldown_merges_close_episodes_and_never_changes_the_flags() -> None:
    scores = [2, 0, 0, 2, 0, 0, 0, 2]
    flags = decide(Decision(threshold=1.0, cooldown=2), scores)
    assert flags.tolist() == [s >= 1 for s in scores]
    assert segments(flags, None, 2).tolist() == [[0, 3], [7, 7]]
    breaks = np.array([False, False, False, True, False, False, False, False])
    assert segments(flags, breaks, 2).tolist() == [[0, 0], [3, 3], [7, 7]]


@pytest.mark.parametrize("pieces", [(), (1,), (2, 3, 5), tuple(range(1, 12))])
def test_streamed_episodes_close_after_the_cooldown_as_in_one_piece(pieces) -> None:
    flags = np.array([1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1], bool)
    breaks = np.zeros(len(flags), bool)
    breaks[10] = True  # a time gap before window 10
    episodes = AlarmEpisodes(["s"], gap=2)
    closed_at = []
    cuts = [0, *pieces, len(flags)]
    for a, b in itertools.pairwise(cuts):
        _, closed = episodes.add(
            flags[a:b],
            breaks[a:b],
            np.ones(b - a),
            np.ones((b - a, 1)),
            np.arange(a, b),
            None,
        )
        closed_at += [(c["start_row"], c["end_row"], b) for c in closed]
    closed_at += [(c["start_row"], c["end_row"], None) for c in episodes.end()]
    assert [(s, e) for s, e, _ in closed_at] == [(0, 3), (7, 8), (11, 11)]
    assert [(s, e) for s, e in segments(flags, breaks, 2).tolist()] == [
        (0, 3),
        (7, 8),
        (11, 11),
    ]


@pytest.mark.parametrize(
    "decision",
    [
        Decision(threshold=1.0),
        Decision(threshold=1.0, min_duration=3, cooldown=4),
        Decision(threshold=0.8, event=7, min_duration=2, cooldown=3),
        Decision(threshold=0.5, event=1),
    ],
)
def test_any_pieces_give_the_same_flags(decision: Decision) -> None:
    rng = np.random.default_rng(0)
    scores = np.abs(rng.normal(0.5, 0.3, 3000))
    scores[1000:1040] += 2.0
    scores[2000:2003] += 3.0
    breaks = np.zeros(len(scores), bool)
    breaks[[700, 1500, 2500]] = True
    validation = np.abs(rng.normal(0.5, 0.3, 500))
    whole = decide(decision, scores, breaks, validation=validation)
    for pieces in ([1], [7, 13, 999, 1000, 1001], list(range(5, 3000, 97))):
        assert np.array_equal(
            decide(decision, scores, breaks, pieces, validation), whole
        )
    assert whole[1000:1040].any()


def test_judging_against_recent_scores_silences_a_drift_the_threshold_flags() -> None:
    """Scores that sit a little higher than in validation for a long stretch.

    The threshold alone flags blips all along; judged against the recent
    scores only the real event stands out.
    """
    rng = np.random.default_rng(1)
    validation = np.abs(rng.normal(1.0, 0.1, 2000))
    scores = np.abs(rng.normal(1.2, 0.1, 6000))  # drifted up by two sd
    scores[4000:4030] += 1.5
    threshold = float(np.quantile(validation, 0.995))
    fixed = decide(Decision(threshold=threshold), scores, validation=validation)
    judged = decide(
        Decision(threshold=threshold, event=10), scores, validation=validation
    )
    assert fixed[:3900].sum() > 100
    assert judged[300:3900].sum() == 0  # once the history holds the drifted scores
    assert judged[:300].sum() < 10
    assert judged[4000:4040].any()


def test_a_long_event_does_not_raise_the_bar_against_itself() -> None:
    """A third of the file abnormal (SKAB-like): the alarm holds through it."""
    rng = np.random.default_rng(2)
    validation = np.abs(rng.normal(1.0, 0.1, 1000))
    scores = np.abs(rng.normal(1.0, 0.1, 1500))
    scores[1000:1500] += 1.0
    threshold = float(np.quantile(validation, 0.995))
    judged = decide(
        Decision(threshold=threshold, event=10), scores, validation=validation
    )
    assert judged[1020:1500].mean() > 0.95


def test_epsilon_cuts_above_the_bulk_and_is_minus_inf_without_spread() -> None:
    rng = np.random.default_rng(3)
    history = rng.normal(1.0, 0.1, 2100)
    history[1000:1010] = 3.0
    cut = epsilon(history)
    assert 1.3 < cut < 3.0
    assert epsilon(np.ones(50)) == -math.inf


def test_resolve_turns_durations_into_windows_and_applies_the_margin() -> None:
    policy = AlarmPolicy(
        threshold=2.0,
        margin=1.5,
        min_duration="3min",
        cooldown="90s",
        shortest_event="10min",
    )
    decision = resolve(policy, 1.0, None, step_seconds=60.0)
    assert decision == Decision(threshold=3.0, event=10, min_duration=3, cooldown=2)


def test_a_duration_needs_a_dated_time_column() -> None:
    with pytest.raises(RareEventError, match="min_duration '5min' is a duration"):
        resolve(AlarmPolicy(min_duration="5min"), 1.0, None, step_seconds=None)


def test_a_strategy_is_chosen_on_the_validation_scores() -> None:
    validation = np.linspace(0.0, 1.0, 1001)
    decision = resolve(AlarmPolicy(threshold="quantile:0.9"), 5.0, validation, None)
    assert decision.threshold == pytest.approx(0.9)
    with pytest.raises(RareEventError, match="needs the validation labels"):
        resolve(AlarmPolicy(threshold="f1"), 5.0, validation, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(10, (10, None)), ("10", (10, None)), ("off", (0, None)), ("2h", (0, 7200.0))],
)
def test_parse_span(value, expected) -> None:
    assert parse_span(value, "cooldown") == expected


@pytest.mark.parametrize("value", ["-1", "10 parsecs", "1.5", True, -3, "0min"])
def test_a_bad_span_names_its_option(value) -> None:
    with pytest.raises(RareEventError, match="cooldown"):
        AlarmPolicy(cooldown=value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("threshold", -1.0),
        ("threshold", math.nan),
        ("threshold", "nope"),
        ("margin", 0),
    ],
)
def test_a_bad_policy_value_is_refused_when_made(field, value) -> None:
    with pytest.raises(RareEventError):
        AlarmPolicy(**{field: value})


def test_a_policy_over_a_run_default() -> None:
    run = AlarmPolicy(margin=1.0, min_duration=1, cooldown=0, shortest_event="off")
    given = AlarmPolicy(cooldown="5")
    assert given.over(run) == AlarmPolicy(
        margin=1.0, min_duration=1, cooldown="5", shortest_event="off"
    )
