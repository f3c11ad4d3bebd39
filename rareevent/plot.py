"""Pictures of a run (optional extra ``rareevent[plot]``): error over time and the PR curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rareevent.errors import RareEventError
from rareevent.record import RunView
from rareevent.runs import SCORES_FILE
from rareevent.storage import atomic_file
from rareevent.windows import segments


def plot_run(folder: Path, record: RunView, output: str | Path) -> Path:
    """Draw the run's validation and test errors and its validation PR curve to a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RareEventError(
            "drawing a run needs matplotlib", hint="pip install 'rareevent[plot]'"
        ) from None
    from sklearn.metrics import precision_recall_curve

    output = Path(output)
    if output.suffix.lower() != ".png":
        raise RareEventError(
            f"{output}: a run is drawn as a PNG; give a file name ending in .png"
        )
    try:
        scores = pd.read_csv(folder / SCORES_FILE)
    except (OSError, ValueError) as exc:
        raise RareEventError(
            f"{folder / SCORES_FILE}: cannot read the run's scores ({type(exc).__name__})",
            hint="retrain the run",
        ) from None
    if not {"split", "row", "error", "flagged"} <= set(scores.columns):
        raise RareEventError(
            f"{folder / SCORES_FILE}: missing columns", hint="retrain the run"
        )
    threshold = record.threshold
    has_labels = "label" in scores
    x_name = "time" if "time" in scores else "row"
    scores["x"] = _time_axis(scores[x_name]) if x_name == "time" else scores["row"]
    fig, (ax_time, ax_pr) = plt.subplots(
        1, 2, figsize=(14, 4.5), gridspec_kw={"width_ratios": [3, 1]}
    )
    for split, colour in (("valid", "tab:blue"), ("test", "tab:green")):
        part = scores[scores["split"] == split]
        if len(part):
            ax_time.plot(
                part["x"], part["error"], lw=0.7, color=colour, label=f"{split} error"
            )
    if has_labels:
        xs = scores["x"].to_numpy()
        pad = max(
            (xs[-1] - xs[0]) * 0.002, (xs[1] - xs[0]) if len(xs) > 1 else 1
        )  # short events stay visible on a long axis
        for i, (start, end) in enumerate(segments(scores["label"].to_numpy() == 1)):
            ax_time.axvspan(
                xs[start] - pad,
                xs[end] + pad,
                color="tab:red",
                alpha=0.3,
                lw=0,
                label="labelled event" if i == 0 else None,
            )
    flagged = scores[scores["flagged"] == 1]
    ax_time.scatter(
        flagged["x"], flagged["error"], s=6, color="black", zorder=3, label="alarm"
    )
    ax_time.axhline(
        threshold,
        color="tab:orange",
        ls="--",
        label=f"threshold {threshold:.3g} ({record.threshold_strategy})",
    )
    ax_time.set_yscale("log")
    ax_time.set_xlabel(f"{x_name} (window end)")
    ax_time.set_ylabel("reconstruction error")
    ax_time.set_title(f"{record.name}: {record.arch}, lookback {record.lookback}")
    ax_time.legend(loc="upper left", fontsize=8)
    valid = scores[scores["split"] == "valid"]
    if has_labels and valid["label"].nunique() == 2:
        precision, recall, thresholds = precision_recall_curve(
            valid["label"], valid["error"]
        )
        ax_pr.plot(recall, precision, color="tab:blue")
        at = int(np.argmin(np.abs(thresholds - threshold)))
        ax_pr.scatter(
            [recall[at]],
            [precision[at]],
            color="tab:orange",
            zorder=3,
            label="chosen threshold",
        )
        ax_pr.legend(loc="lower left", fontsize=8)
    else:
        ax_pr.text(
            0.5,
            0.5,
            "no labelled events\nin the validation part",
            ha="center",
            va="center",
        )
    if x_name == "time":
        ax_time.tick_params(axis="x", labelrotation=20)
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title("validation precision-recall")
    try:
        fig.tight_layout()
        with atomic_file(output) as temp:
            fig.savefig(temp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return output


def _time_axis(column: pd.Series) -> pd.Series:
    """The saved window times as datetimes (numbers stay numbers: a numeric time column
    in its own unit).
    """
    if pd.api.types.is_numeric_dtype(column):
        return column
    return pd.to_datetime(column, format="ISO8601")
