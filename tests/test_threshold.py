"""Stage 5: threshold strategies on hand-computed precision-recall curves."""

from __future__ import annotations

import numpy as np
import pytest

from rareevent.errors import RareEventError
from rareevent.threshold import (
    DEFAULT_QUANTILE,
    Strategy,
    choose_threshold,
    parse_strategy,
)

# Scores 0.1 .. 1.0; positives at 0.7, 0.9 and 1.0.  Flagging score >= t gives
#   t     flagged tp  precision recall   F1      F0.5    |p - r|
#   0.6   5       3   0.600     1.000    0.750   0.652   0.400
#   0.7   4       3   0.750     1.000    0.857   0.789   0.250
#   0.8   3       2   0.667     0.667    0.667   0.667   0.000
#   0.9   2       2   1.000     0.667    0.800   0.909   0.333
#   1.0   1       1   1.000     0.333    0.500   0.714   0.667
# (lower thresholds have recall 1 and lower precision)
SCORES = np.round(np.arange(1, 11) / 10, 1)
LABELS = np.array([0, 0, 0, 0, 0, 0, 1, 0, 1, 1])
ALL_NORMAL = np.ones(10, dtype=bool)


def choose(text: str, scores=SCORES, labels=LABELS, normal=ALL_NORMAL) -> float:
    return choose_threshold(parse_strategy(text), scores, labels, normal)


def test_f1_picks_maximum_f1() -> None:
    assert choose("f1") == pytest.approx(0.7)


def test_fbeta_below_one_favours_precision() -> None:
    assert choose("fbeta:0.5") == pytest.approx(0.9)


def test_fbeta_one_equals_f1_and_large_beta_favours_recall() -> None:
    assert choose("fbeta:1") == pytest.approx(0.7)
    # F2 at 0.7: 5*.75/(3+1) = .9375 beats 0.6: 3/3.4 = .882 and 0.9: 3.33/4.67 = .714
    assert choose("fbeta:2") == pytest.approx(0.7)


def test_pr_cross_where_precision_equals_recall() -> None:
    assert choose("pr-cross") == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("precision:0.7", 0.7),
        ("precision:0.75", 0.7),
        ("precision:0.8", 0.9),
        ("precision:1", 0.9),
    ],
)
def test_precision_target_gives_highest_recall(text: str, expected: float) -> None:
    assert choose(text) == pytest.approx(expected)


def test_precision_unreachable_is_an_error() -> None:
    # the two highest scores are negatives: precision never exceeds 1/3
    scores = np.array([0.1, 0.2, 0.3, 0.4])
    labels = np.array([0, 1, 0, 0])
    with pytest.raises(
        RareEventError, match=r"no threshold reaches precision 0.5"
    ) as info:
        choose("precision:0.5", scores, labels, np.ones(4, bool))
    assert "the best is 0.333" in str(info.value)


def test_quantile_of_normal_scores_only() -> None:
    scores = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    normal = np.array([True, True, True, True, False])
    assert choose_threshold(
        parse_strategy("quantile:0.5"), scores, None, normal
    ) == pytest.approx(2.5)
    assert choose_threshold(
        parse_strategy("quantile:1"), scores, None, normal
    ) == pytest.approx(4.0)
    # linear interpolation between order statistics: 0.9 * (4 - 1) = 2.7 -> 3 + 0.7 * (4 - 3)
    assert choose_threshold(
        parse_strategy("quantile:0.9"), scores, None, normal
    ) == pytest.approx(3.7)


def test_quantile_default_value() -> None:
    assert DEFAULT_QUANTILE == 0.995
    strategy = parse_strategy("quantile")
    assert strategy == Strategy("quantile", 0.995)
    scores = np.arange(201, dtype=float)  # 0 .. 200: the 0.995-quantile is 199
    assert choose_threshold(
        strategy, scores, None, np.ones(201, bool)
    ) == pytest.approx(199.0)


def test_quantile_needs_no_labels_but_a_normal_window() -> None:
    assert not parse_strategy("quantile:0.9").needs_labels
    with pytest.raises(RareEventError, match="no normal window"):
        choose_threshold(
            parse_strategy("quantile:0.9"), SCORES, None, np.zeros(10, bool)
        )


@pytest.mark.parametrize("text", ["f1", "fbeta:2", "pr-cross", "precision:0.9"])
@pytest.mark.parametrize("labels", [None, np.zeros(10, dtype=int)])
def test_label_strategy_without_positive_window_suggests_a_label_free_strategy(
    text: str, labels
) -> None:
    strategy = parse_strategy(text)
    assert strategy.needs_labels
    with pytest.raises(
        RareEventError, match="needs at least one positive window"
    ) as info:
        choose_threshold(strategy, SCORES, labels, ALL_NORMAL)
    assert "`threshold=pot` (or quantile)" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected", "shown"),
    [
        ("f1", Strategy("f1"), "f1"),
        ("  F1 ", Strategy("f1"), "f1"),
        ("pr-cross", Strategy("pr-cross"), "pr-cross"),
        ("fbeta:2", Strategy("fbeta", 2.0), "fbeta:2"),
        ("FBETA:0.5", Strategy("fbeta", 0.5), "fbeta:0.5"),
        ("precision:0.9", Strategy("precision", 0.9), "precision:0.9"),
        ("precision:1", Strategy("precision", 1.0), "precision:1"),
        ("quantile:0.99", Strategy("quantile", 0.99), "quantile:0.99"),
        ("quantile", Strategy("quantile", 0.995), "quantile:0.995"),
    ],
)
def test_parse_strategy(text: str, expected: Strategy, shown: str) -> None:
    parsed = parse_strategy(text)
    assert parsed == expected
    assert str(parsed) == shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("f1:2", "f1 takes no parameter"),
        ("pr-cross:0.5", "pr-cross takes no parameter"),
        ("best", "unknown strategy"),
        ("", "unknown strategy"),
        ("fbeta", "fbeta needs a number, e.g. fbeta:2"),
        ("precision", "precision needs a number, e.g. precision:0.9"),
        ("fbeta:abc", "'abc' is not a number"),
        ("quantile:x", "'x' is not a number"),
        ("fbeta:0", "beta must be above 0"),
        ("fbeta:-1", "beta must be above 0"),
        ("fbeta:nan", "beta must be above 0"),
        ("precision:0", r"precision must be in \(0, 1\]"),
        ("precision:1.5", r"precision must be in \(0, 1\]"),
        ("quantile:0", r"quantile must be in \(0, 1\]"),
        ("quantile:99", r"quantile must be in \(0, 1\]"),
        ("quantile:nan", r"quantile must be in \(0, 1\]"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(RareEventError, match=message):
        parse_strategy(text)


def test_threshold_is_a_score_value_and_flags_as_documented() -> None:
    threshold = choose("f1")
    flags = SCORES >= threshold
    np.testing.assert_array_equal(flags, [0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    assert isinstance(threshold, float)


def test_pot_threshold_extrapolates_the_normal_tail() -> None:
    from rareevent.threshold import peaks_over_threshold

    crossed_pot, crossed_quantile = [], []
    for seed in range(
        20
    ):  # validation parts of 400 normal windows, then much later normal data
        rng = np.random.default_rng(seed)
        normal, later = rng.exponential(1.0, 400), rng.exponential(1.0, 20_000)
        level = peaks_over_threshold(normal, 1e-3)
        assert level >= np.quantile(normal, 0.999)
        crossed_pot.append(np.mean(later >= level))
        crossed_quantile.append(np.mean(later >= np.quantile(normal, 0.995)))
    assert (
        np.mean(crossed_pot) < 2.5e-3
    )  # about the promised 1e-3, where the true 0.999 quantile is ln(1000)
    assert np.mean(crossed_quantile) > 2 * np.mean(crossed_pot)


def test_pot_falls_back_to_the_empirical_quantile_when_the_tail_is_flat() -> None:
    from rareevent.threshold import peaks_over_threshold

    assert peaks_over_threshold(np.ones(50), 1e-3) == 1.0


@pytest.mark.parametrize("text", ["pot:0", "pot:0.5", "pot:x"])
def test_pot_risk_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(RareEventError, match=f"^threshold '{text}': ") as info:
        parse_strategy(text)
    assert info.value.param == "threshold"  # the CLI names it --threshold


def test_one_table_holds_every_strategy() -> None:
    """Parsing, the default parameter and whether labels are needed all come from ``STRATEGIES``."""
    from rareevent.threshold import LABEL_STRATEGIES, STRATEGIES

    assert list(STRATEGIES) == [
        "f1",
        "fbeta",
        "pr-cross",
        "precision",
        "quantile",
        "pot",
    ]
    assert LABEL_STRATEGIES == ("f1", "fbeta", "pr-cross", "precision")
    for name, spec in STRATEGIES.items():
        example = f"{name}:{spec.example}" if spec.param == "required" else name
        strategy = parse_strategy(example)
        assert strategy.needs_labels is spec.needs_labels
        assert strategy.param == (
            spec.default
            if spec.param == "optional"
            else None
            if spec.param == "none"
            else float(spec.example)
        )
    labels = (SCORES > np.quantile(SCORES, 0.7)).astype(int)
    # the label strategies pick a threshold that flags exactly the positives of separable scores
    for text in ("f1", "fbeta:2", "pr-cross", "precision:0.9"):
        threshold = choose_threshold(parse_strategy(text), SCORES, labels, ALL_NORMAL)
        np.testing.assert_array_equal(SCORES >= threshold, labels == 1)


def test_pot_is_the_default_without_labels_and_parses_its_risk() -> None:
    assert str(parse_strategy("pot")) == "pot:0.001"
    assert parse_strategy("pot:1e-4").param == pytest.approx(1e-4)
    assert not parse_strategy("pot").needs_labels
