"""Choosing between architectures by the alarms they raise: ``--arch auto`` and the PCA baseline's advice.

Both compare models the way a user meets them: each at its own threshold
(chosen on the validation part), by the F1 of its flags and the false-alarm
episodes it raises there. PR-AUC ranks scores, not alarms: it only breaks a
tie in F1. A model is never advised over another whose alarms are better.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rareevent.model import ARCHITECTURES

if TYPE_CHECKING:
    from rareevent.record import RunRecord

AUTO = "auto"
# what --arch auto trains and compares, in the order that breaks a full tie; an entry missing from the registry is skipped
CANDIDATES: tuple[str, ...] = tuple(
    arch for arch in ("ae", "forecast", "pca") if arch in ARCHITECTURES
)
SUMMARY_KEYS = ("f1", "pr_auc", "false_alarms", "events", "events_detected")


def alarm_summary(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of one part's metrics that compares alarms (None without labels)."""
    return None if metrics is None else {key: metrics.get(key) for key in SUMMARY_KEYS}


def _rank(summary: dict[str, Any] | None) -> tuple[float, float]:
    summary = summary or {}
    return (
        -1.0 if summary.get("f1") is None else summary["f1"],
        -1.0 if summary.get("pr_auc") is None else summary["pr_auc"],
    )


def choose(summaries: dict[str, dict[str, Any] | None]) -> str:
    """The candidate with the best validation F1 at its own threshold; PR-AUC breaks ties, then the order given."""
    return max(
        summaries, key=lambda arch: _rank(summaries[arch])
    )  # max keeps the first of equals


def better_alarms(theirs: dict[str, Any] | None, ours: dict[str, Any] | None) -> bool:
    """Whether ``theirs`` raises better alarms than ``ours``: a higher F1 and no more false-alarm episodes."""
    if not theirs or not ours or theirs.get("f1") is None:
        return False
    return (
        theirs["f1"] > (ours.get("f1") or 0.0)
        and theirs["false_alarms"] <= ours["false_alarms"]
    )


def baseline_advice(record: RunRecord, arch: str) -> str | None:
    """A warning when the PCA baseline's alarms beat those of the trained model (``arch``) on validation, each at its own threshold."""
    ours = record.metrics.get("valid")
    theirs = None if record.baseline is None else record.baseline.metrics.get("valid")
    if not theirs or not ours or not better_alarms(theirs, ours):
        return None
    return (
        f"the PCA baseline raises better alarms than {arch} on validation, each at its own threshold "
        f"(F1 {theirs['f1']:.3f} with {theirs['false_alarms']} false-alarm episode(s), against {ours.get('f1') or 0:.3f} with {ours['false_alarms']}); "
        "consider --arch pca"
    )
