"""Choosing between architectures by the alarms they raise: ``--arch auto`` and the PCA
baseline's advice.

Both compare models the way a user meets them: each at its own threshold
(chosen on the validation part), by the F1 of its flags and the false-alarm
episodes it raises there. PR-AUC ranks scores, not alarms: it only breaks a
tie in F1. A model is never advised over another whose alarms are better.

And only on evidence that can carry a choice: the validation part must hold
at least ``MIN_EVENTS`` events, and a challenger must beat the default's
F1 by ``MIN_GAIN`` with no more false-alarm episodes. On a validation part
with one or two events, one event decides F1 between 0 and 1; there the
default is kept, and the reason said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rareevent.model import ARCHITECTURES

if TYPE_CHECKING:
    from rareevent.record import RunRecord

AUTO = "auto"
# what --arch auto trains and compares, in the order that breaks a full tie; an entry
# missing from the registry is skipped
CANDIDATES: tuple[str, ...] = tuple(
    arch for arch in ("ae", "forecast", "pca") if arch in ARCHITECTURES
)
SUMMARY_KEYS = ("f1", "pr_auc", "false_alarms", "events", "events_detected")


def alarm_summary(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of one part's metrics that compares alarms (None without labels)."""
    return None if metrics is None else {key: metrics.get(key) for key in SUMMARY_KEYS}


MIN_EVENTS = 3  # validation events a choice between models may rest on
MIN_GAIN = 0.05  # the validation F1 a challenger must gain over the default


def _rank(summary: dict[str, Any] | None) -> tuple[float, float]:
    summary = summary or {}
    return (
        -1.0 if summary.get("f1") is None else summary["f1"],
        -1.0 if summary.get("pr_auc") is None else summary["pr_auc"],
    )


def thin_evidence(summary: dict[str, Any] | None) -> str | None:
    """Why a validation part cannot carry a choice between models (``None``: it can)."""
    if not summary or summary.get("f1") is None:
        return "the validation part has no labelled event"
    events = summary.get("events") or 0
    if events < MIN_EVENTS:
        return (
            f"the validation part holds {events} event(s), fewer than the "
            f"{MIN_EVENTS} a choice between models needs"
        )
    return None


def better_alarms(theirs: dict[str, Any] | None, ours: dict[str, Any] | None) -> bool:
    """Whether ``theirs`` raises clearly better alarms than ``ours`` on enough events.

    A validation F1 higher by at least ``MIN_GAIN``, no more false-alarm
    episodes, and a validation part of at least ``MIN_EVENTS`` events.
    """
    if not theirs or not ours or theirs.get("f1") is None:
        return False
    if thin_evidence(ours) is not None:
        return False
    return (
        theirs["f1"] >= (ours.get("f1") or 0.0) + MIN_GAIN
        and theirs["false_alarms"] <= ours["false_alarms"]
    )


def choose(summaries: dict[str, dict[str, Any] | None]) -> str:
    """The default (the first candidate) unless another raises clearly better alarms.

    Among those that do, the best validation F1; PR-AUC breaks ties, then
    the order given.
    """
    default = next(iter(summaries))
    better = [
        arch
        for arch in summaries
        if arch != default and better_alarms(summaries[arch], summaries[default])
    ]
    if not better:
        return default
    return max(better, key=lambda arch: _rank(summaries[arch]))  # first of equals


def choice_note(summaries: dict[str, dict[str, Any] | None], chosen: str) -> str:
    """One line saying why ``--arch auto`` kept what it kept."""
    default = next(iter(summaries))
    if chosen != default:
        return (
            f"--arch auto chose {chosen}: validation F1 "
            f"{(summaries[chosen] or {}).get('f1') or 0:.3f} "
            f"against {default}'s {(summaries[default] or {}).get('f1') or 0:.3f}"
        )
    thin = thin_evidence(summaries[default])
    if thin is not None:
        return f"--arch auto kept the default {default}: {thin}"
    return (
        f"--arch auto kept the default {default}: no candidate beat its validation F1 "
        f"by {MIN_GAIN} with no more false-alarm episodes"
    )


def baseline_advice(record: RunRecord, arch: str) -> str | None:
    """A warning when the PCA baseline's alarms beat those of the trained model
    (``arch``) on validation, each at its own threshold.
    """
    ours = record.metrics.get("valid")
    theirs = None if record.baseline is None else record.baseline.metrics.get("valid")
    if not theirs or not ours or not better_alarms(theirs, ours):
        return None
    return (
        f"the PCA baseline raises better alarms than {arch} on validation, each at "
        "its own threshold "
        f"(F1 {theirs['f1']:.3f} with {theirs['false_alarms']} false-alarm "
        f"episode(s), against {ours.get('f1') or 0:.3f} with "
        f"{ours['false_alarms']}); "
        "consider --arch pca"
    )
