"""The scorecard of issue 31: alarms worth acting on, per dataset, candidate and decision stage.

    python benchmarks/scorecard.py [--datasets msl,skab,faults,sample]
        [--candidates ae,pca-lb1,...] [--decision fixed,telemanom_reference,...]
        [--quick] [--refresh] [--no-train]

Stage A (``scorecard_cache.py``, slow, cached under ``benchmarks/.cache``)
trains every candidate and baseline on every series of the datasets asked
for and keeps its validation and test window scores; ``--datasets`` and
``--candidates`` pick subsets, so a long run can be done in pieces, and
``--quick`` takes SKAB on 6 of its 34 files (``SKAB_QUICK``: a quick look on
a loaded machine, not the scorecard; the full run stays the default).
``--no-train`` skips Stage A. Stage B (this module, seconds) turns the cached
scores into alarms with each decision stage and prints:

- per dataset and candidate: events caught of events, false-alarm episodes,
  event precision (events caught over events caught plus false-alarm
  episodes, as telemanom counts) and event F0.5 (telemanom's: beta 0.5 over
  that precision and the share of events caught), all pooled over the
  dataset's series (``rareevent.metrics.event_metrics``); the dataset's own metric;
  the point-wise F1 of the flags beside the best-threshold F1 of the same
  scores (a row is labelled by the row its window ends at; both averaged
  over the series);
- the mean event F0.5 over the four datasets (issue 31's rule for defaults);
- issue 31's goal table for the default candidate.

The datasets' own metrics: MSL, the mean PR-AUC of the window scores over
the 16 channels; SKAB, F1 and FAR pooled over all rows of the 34 files (a row
alarms when the window ending at it is flagged, as ``skab.py`` counts);
the fault plant, the kinds of fault caught and the false-window rate
(``faults.judge``); the sample data, F1 and PR-AUC of the windows of its test
part, as ``train`` reports them.

Decision stages (``--decision``, comma-separated; a spec with commas inside
is written ``adaptive:event=10,min=2`` and split only before a new name):

- ``fixed``: a window alarms when its score reaches the run's validation
  threshold (the flags ``score`` writes today);
- ``telemanom_reference``: telemanom's unsupervised thresholding (Hundman et
  al., KDD 2018, section 3.2) as issue 31 describes it, written here from the
  paper and applied offline: see :func:`telemanom_reference`;
- ``shipped``: the library's default alarm policy as ``train`` settles it for
  the series (``rareevent.decision.DEFAULT_POLICY``: the shortest labelled
  validation event, else 100 rows, as its time scale and cooldown);
- ``fixed:min=M,cool=C`` and ``adaptive:event=E[,min=M][,cool=C]``: the
  library's decision stage (``rareevent.decision.Decider``), all spans in
  windows; they need a rareevent that has it.

Every decision stage is a callable ``decide(scores, ends, threshold,
valid_scores) -> flags``: one series' test window scores in time order, the
row each window ends at, the run's validation threshold and its validation
window scores; it returns one bool per window.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faults
import field_metrics
import scorecard_cache as cache

from rareevent.metrics import event_metrics, event_scores

Decide = Callable[[np.ndarray, np.ndarray, float, np.ndarray], np.ndarray]

# telemanom's settings (their config.yaml), in windows
SPAN, BATCH, HISTORY_BATCHES, PAD, PRUNE = 105, 70, 30, 100, 0.13
Z_STEPS = np.arange(2.5, 12.0, 0.5)
Z_LIMIT, MAX_SEQUENCES = 12.0, 5


def fixed(
    scores: np.ndarray, ends: np.ndarray, threshold: float, valid_scores: np.ndarray
) -> np.ndarray:
    """Today's flags: a window alarms when its score reaches the validation threshold."""
    return np.asarray(scores) >= threshold


def _runs(marks: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True in ``marks``."""
    edges = np.diff(np.concatenate([[0], marks.astype(np.int8), [0]]))
    return list(
        zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
    )


def _epsilon(values: np.ndarray) -> float:
    """The paper's epsilon on smoothed errors: the ``mean + z sd`` cut that helps most.

    As in telemanom's code, the windows above a cut are padded before they
    are counted and grouped into sequences.
    """
    mean, sd = float(values.mean()), float(values.std())
    chosen, best = mean + Z_LIMIT * sd, -np.inf
    if not sd > 0 or not mean > 0:
        return chosen
    for z in Z_STEPS:
        cut = mean + z * sd
        above = values >= cut
        if not above.any():
            continue
        padded = _padded(above, PAD)
        n_anomalous = int(padded.sum())
        sequences = len(_runs(padded))
        if sequences > MAX_SEQUENCES or n_anomalous >= len(values) / 2:
            continue
        kept = values[~above]
        gain = (mean - kept.mean()) / mean + (sd - kept.std()) / sd
        score = gain / (sequences**2 + n_anomalous)
        if score >= best:
            best, chosen = score, cut
    return chosen


def _padded(marks: np.ndarray, pad: int) -> np.ndarray:
    """``marks`` widened by ``pad`` rows each side."""
    out = marks.copy()
    for start, stop in _runs(marks):
        out[max(start - pad, 0) : stop + pad] = True
    return out


def _pruned(values: np.ndarray, anomalous: np.ndarray, quiet_max: float) -> np.ndarray:
    """The paper's pruning: a sequence stays if its peak stands ``PRUNE`` above the next lower.

    ``quiet_max``, the highest error outside every sequence, is the lowest
    "peak"; sequences of one window are dropped, as telemanom's code does.
    """
    sequences = [(a, b) for a, b in _runs(anomalous) if b - a > 1]
    out = np.zeros_like(anomalous)
    if not sequences:
        return out
    peaks = np.array([values[a:b].max() for a, b in sequences])
    ladder = np.append(np.sort(peaks)[::-1], quiet_max)
    drops = (ladder[:-1] - ladder[1:]) / np.where(ladder[:-1] > 0, ladder[:-1], 1.0)
    # the lowest peak still followed by a big drop; every peak at or above it stays
    big = np.flatnonzero(drops >= PRUNE)
    floor = ladder[big[-1]] if len(big) else np.inf
    for (a, b), peak in zip(sequences, peaks, strict=True):
        if peak >= floor:
            out[a:b] = True
    return out


def telemanom_reference(
    scores: np.ndarray, ends: np.ndarray, threshold: float, valid_scores: np.ndarray
) -> np.ndarray:
    """Telemanom's unsupervised thresholding of ``scores``, as issue 31 describes it.

    The errors are smoothed by an EWMA of span 105. The first 2,100 windows
    (30 batches of 70), and then every further batch of 70, are judged
    against the trailing 2,100 smoothed errors: the windows at or above the
    epsilon that most reduces their mean and spread, over (sequences² +
    anomalous windows), are padded by 100 windows each side; of those, the
    ones in the batch count (in the first 2,100, all); a sequence of them is
    kept only if its peak stands 13% above the next lower peak, the lowest
    being the highest error of the history outside every alarm. A window is
    decided once its batch of 70 is complete (the padding reaches back inside
    it). Left out: telemanom's checks of the errors against the range of the
    raw values (the scores here are errors already scaled) and its search on
    inverted errors. The validation threshold and scores are not used.
    """
    values = pd.Series(np.asarray(scores, dtype=np.float64)).ewm(span=SPAN).mean()
    smoothed = values.to_numpy()
    flags = np.zeros(len(smoothed), dtype=bool)
    history = HISTORY_BATCHES * BATCH
    stops = [min(history, len(smoothed)), *range(history + BATCH, len(smoothed), BATCH)]
    if len(smoothed) > history and stops[-1] != len(smoothed):
        stops.append(len(smoothed))
    for i, stop in enumerate(stops):
        lo = max(stop - history, 0)
        window = smoothed[lo:stop]
        anomalous = _padded(window >= _epsilon(window), PAD)
        if i > 0:
            anomalous[: len(window) - (stop - stops[i - 1])] = False  # its batch only
        quiet = window[~(anomalous | flags[lo:stop])]
        quiet_max = float(quiet.max()) if len(quiet) else 0.0
        flags[lo:stop] |= _pruned(window, anomalous, quiet_max)
    return flags


def library_stage(spec: str) -> Decide:
    """``fixed:min=M,cool=C`` or ``adaptive:event=E[,min=M][,cool=C]``: ``rareevent.decision``."""
    name, _, rest = spec.partition(":")
    keys = {"event": "event", "min": "min_duration", "cool": "cooldown"}
    found: dict[str, int] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if (
            key not in keys
            or not value.isdigit()
            or (key == "event" and name != "adaptive")
        ):
            raise SystemExit(
                f"--decision {spec!r}: {item!r} is not one of event=, min=, cool="
            )
        found[keys[key]] = int(value)
    if name == "adaptive" and found.get("event", 0) < 1:
        raise SystemExit(
            f"--decision {spec!r}: adaptive needs event=E (E >= 1 windows)"
        )
    try:
        from rareevent.decision import Decider, Decision
    except ImportError:
        raise SystemExit(
            f"--decision {spec!r} needs rareevent.decision (the decision stage of issue 31), "
            "which this rareevent does not have"
        ) from None

    def decide(
        scores: np.ndarray, ends: np.ndarray, threshold: float, valid_scores: np.ndarray
    ) -> np.ndarray:
        breaks = _breaks(ends)
        decision = Decision(threshold=float(threshold), **found)
        return Decider(decision, valid_scores)(scores, breaks)

    decide.gap = found.get("cooldown", 0)  # type: ignore[attr-defined]  # episodes merge
    return decide


def _breaks(ends: np.ndarray) -> np.ndarray:
    """Per window: True where rows are missing before it (a time gap between windows)."""
    return np.diff(ends, prepend=ends[:1] - 1) != 1


def shipped_flags(entry: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
    """The flags and episode gap of the library's default policy on one cached series.

    As ``train`` settles it: the shortest labelled event of the run's
    validation rows (the cache keeps the validation windows' labels), else
    ``FALLBACK_EVENT`` rows; the cooldown is the same span.
    """
    from rareevent.decision import DEFAULT_POLICY, Decider, resolve, settle

    labels = entry["valid_labels"]
    policy = settle(DEFAULT_POLICY, labels if len(labels) else None)
    decision = resolve(policy, float(entry["threshold"]), entry["valid_scores"], None)
    breaks = _breaks(entry["ends"])
    flags = Decider(decision, entry["valid_scores"])(entry["scores"], breaks)
    return flags, decision.cooldown


def shipped(
    scores: np.ndarray, ends: np.ndarray, threshold: float, valid_scores: np.ndarray
) -> np.ndarray:
    """``--decision shipped``: see :func:`shipped_flags` (it needs the whole entry)."""
    raise NotImplementedError("card_for calls shipped_flags")


BUILT_IN: dict[str, Decide] = {
    "fixed": fixed,
    "telemanom_reference": telemanom_reference,
    "shipped": shipped,
}


def decision_stage(spec: str) -> Decide:
    if spec in BUILT_IN:
        return BUILT_IN[spec]
    if spec.startswith(("fixed:", "adaptive:")):
        return library_stage(spec)
    raise SystemExit(
        f"--decision {spec!r}: use fixed, telemanom_reference, shipped, fixed:min=M,cool=C "
        "or adaptive:event=E[,min=M][,cool=C]"
    )


def split_specs(text: str) -> list[str]:
    """Split ``--decision``: a comma starts a new spec only before a name.

    ``fixed,adaptive:event=10,min=2,telemanom_reference`` is three specs.
    """
    return [s for s in re.split(r",(?=[A-Za-z_]+(?::|,|$))", text) if s]


@dataclass
class Card:
    """One dataset x candidate x decision: pooled event counts and the dataset's metrics."""

    events: int = 0
    caught: int = 0
    episodes: int = 0
    false_alarms: int = 0
    flags_f1: list[float] = field(default_factory=list)  # per series with events
    best_f1: list[float] = field(default_factory=list)
    auprc: list[float] = field(default_factory=list)  # per series with both classes
    own: dict[str, float] | None = None

    @property
    def precision(self) -> float | None:
        return event_scores(self.events, self.caught, self.false_alarms)[0]

    @property
    def f05(self) -> float | None:
        return event_scores(self.events, self.caught, self.false_alarms)[1]


def judge_series(
    entry: dict[str, np.ndarray], flags: np.ndarray, card: Card, gap: int = 0
) -> None:
    """Add one series' event counts and point-wise F1s to ``card``.

    ``gap``: flagged windows at most that many apart are one alarm episode (a
    cooldown, where ``rareevent.metrics.event_metrics`` takes one).
    """
    start = int(entry["eval_start"])
    ends = entry["ends"]
    merge = {"gap": gap} if gap else {}
    m = event_metrics(entry["labels"][start:], flags, ends, first_row=start, **merge)
    card.events += int(m["events"]) - int(m["events_unseen"])
    card.caught += int(m["events_detected"])
    card.episodes += int(m["alarm_episodes"])
    card.false_alarms += int(m["false_alarms"])
    y = entry["labels"][ends].astype(bool)
    if y.any():  # a series without events has no F1 to speak of
        card.flags_f1.append(float(f1_score(y, flags, zero_division=0)))
        card.best_f1.append(field_metrics.best_f1(y, entry["scores"]))
    if 0 < y.sum() < len(y):
        card.auprc.append(float(average_precision_score(y, entry["scores"])))


def own_metric(
    dataset: str,
    entries: dict[str, dict[str, np.ndarray]],
    flags: dict[str, np.ndarray],
    card: Card,
) -> dict[str, float]:
    """The dataset's own measure of the flags (and scores)."""
    if dataset == "msl":
        return {"mean PR-AUC": _mean(card.auprc) or 0.0}
    if dataset == "skab":
        tp = fp = fn = tn = 0
        for name, e in entries.items():
            y = e["labels"].astype(bool)
            rows = np.zeros(len(y), dtype=bool)
            rows[e["ends"]] = flags[name]
            tp += int(np.sum(y & rows))
            fp += int(np.sum(~y & rows))
            fn += int(np.sum(y & ~rows))
            tn += int(np.sum(~y & ~rows))
        return {"F1": tp / (tp + (fp + fn) / 2), "FAR %": 100 * fp / (fp + tn)}
    if dataset == "faults":
        e, f = entries["plant"], flags["plant"]
        caught, false = faults.judge(
            e["ends"][f], e["ends"], _plant_faults(), int(e["lookback"])
        )
        return {
            "kinds caught": float(sum(caught.values())),
            "false windows %": 100 * false,
        }
    e, f = entries["pump"], flags["pump"]
    y = e["window_labels"] if len(e["window_labels"]) else e["labels"][e["ends"]]
    return {
        "test F1": float(f1_score(y, f, zero_division=0)),
        "test PR-AUC": float(average_precision_score(y, e["scores"])),
    }


@functools.cache
def _plant_faults() -> list[faults.Fault]:
    """Where the fault plant's faults are (seed 0, as Stage A wrote it)."""
    return faults.plant(0).faults


def own_text(dataset: str, own: dict[str, float]) -> str:
    if dataset == "faults":
        return (
            f"{own['kinds caught']:.0f}/{len(faults.KINDS)} kinds, "
            f"{own['false windows %']:.2f}% false windows"
        )
    if dataset == "skab":
        return f"F1 {own['F1']:.3f}, FAR {own['FAR %']:.2f}%"
    return ", ".join(f"{k} {v:.3f}" for k, v in own.items())


def load_dataset(
    dataset: str, candidate: str, quick: bool
) -> dict[str, dict[str, np.ndarray]]:
    """Every cached series of one dataset and candidate; empty when any is missing."""
    found = {}
    for series in cache.dataset_series(dataset, quick):
        path = cache.cache_path(dataset, candidate, series.name)
        if not path.exists():
            return {}
        found[series.name] = cache.load_entry(path)
    return found


def card_for(
    dataset: str, entries: dict[str, dict[str, np.ndarray]], decide: Decide
) -> Card:
    card = Card()
    flags = {}
    for name, e in entries.items():
        if decide is shipped:
            found, gap = shipped_flags(e)
        else:
            found = decide(
                e["scores"], e["ends"], float(e["threshold"]), e["valid_scores"]
            )
            gap = getattr(decide, "gap", 0)
        flags[name] = np.asarray(found, bool)
        judge_series(e, flags[name], card, gap)
    card.own = own_metric(dataset, entries, flags, card)
    return card


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_cards(
    cards: dict[tuple[str, str, str], Card],
    datasets: list[str],
    candidates: list[str],
    decisions: list[str],
) -> None:
    for dataset in datasets:
        print(f"\n### {dataset}\n")
        print(
            "| candidate | decision | caught | FA episodes | event precision | event F0.5 "
            "| own metric | flags F1 | best F1 |"
        )
        print("| --- " * 9 + "|")
        for candidate in candidates:
            for decision in decisions:
                card = cards.get((dataset, candidate, decision))
                if card is None:
                    continue
                assert card.own is not None
                print(
                    f"| {candidate} | {decision} | {card.caught}/{card.events} "
                    f"| {card.false_alarms} | {_f(card.precision)} | {_f(card.f05)} "
                    f"| {own_text(dataset, card.own)} | {_f(_mean(card.flags_f1))} "
                    f"| {_f(_mean(card.best_f1))} |"
                )
    print(f"\n### mean event F0.5 over {', '.join(datasets)}\n")
    print("| candidate | " + " | ".join(decisions) + " |")
    print("| --- " * (len(decisions) + 1) + "|")
    for candidate in candidates:
        cells = []
        for decision in decisions:
            found = [cards.get((d, candidate, decision)) for d in datasets]
            done = [c.f05 or 0.0 for c in found if c is not None]
            cells.append(
                f"{np.mean(done):.3f}"
                + (
                    ""
                    if len(done) == len(datasets)
                    else f" ({len(done)} datasets only)"
                )
                if done
                else "-"
            )
        print(f"| {candidate} | " + " | ".join(cells) + " |")


def _mean(values: list[float] | None) -> float | None:
    return float(np.mean(values)) if values else None


def goal_table(cards: dict[tuple[str, str, str], Card], decision: str) -> None:
    """Issue 31's goals for the default candidate through one decision stage."""
    d = cache.DEFAULT

    def get(dataset: str) -> Card | None:
        return cards.get((dataset, d, decision))

    print(f"\n### goals of issue 31: {d}, decision {decision}\n")
    print("| measure | now | goal | met |")
    print("| --- | --- | --- | --- |")
    rows: list[tuple[str, str, str, bool | None]] = []
    if msl := get("msl"):
        ratio = (_mean(msl.flags_f1) or 0.0) / (_mean(msl.best_f1) or 1.0)
        rows += [
            (
                "MSL dev: caught; false-alarm episodes",
                f"{msl.caught}/{msl.events}; {msl.false_alarms}",
                ">= 15/21 with <= 2",
                msl.caught >= 15 and msl.false_alarms <= 2,
            ),
            (
                "MSL dev: flags F1 / best-threshold F1",
                f"{ratio:.2f}",
                ">= 0.85",
                ratio >= 0.85,
            ),
        ]
    if (skab := get("skab")) and skab.own:
        f1, far = skab.own["F1"], skab.own["FAR %"]
        rows.append(
            (
                "SKAB all rows: F1 / FAR",
                f"{f1:.3f} / {far:.2f}%",
                ">= 0.80 / <= 13.5%",
                f1 >= 0.80 and far <= 13.5,
            )
        )
    if (plant := get("faults")) and plant.own:
        kinds, false = plant.own["kinds caught"], plant.own["false windows %"]
        rows.append(
            (
                "fault plant: kinds caught; false windows; false-alarm episodes",
                f"{kinds:.0f}/7; {false:.2f}%; {plant.false_alarms}",
                ">= 6/7; <= 0.5%; <= 2",
                kinds >= 6 and false <= 0.5 and plant.false_alarms <= 2,
            )
        )
    if (pump := get("sample")) and pump.own:
        f1, auc = pump.own["test F1"], pump.own["test PR-AUC"]
        rows.append(
            (
                "sample data: test F1 / PR-AUC",
                f"{f1:.3f} / {auc:.3f}",
                ">= 0.93 / >= 0.93",
                f1 >= 0.93 and auc >= 0.93,
            )
        )
    rows.append(("`--arch auto` on the four datasets", "not measured here", "-", None))
    lead = baseline_lead(cards, decision)
    if lead is not None:
        rows.append(
            (
                "default vs IsolationForest, PCA, L2, 1-NN: smallest lead (event F0.5, AUPRC)",
                f"{lead[0]:+.3f} ({lead[1]})",
                "> 0 on every dataset",
                lead[0] > 0,
            )
        )
    for measure, now, goal, met in rows:
        print(
            f"| {measure} | {now} | {goal} | {'-' if met is None else 'yes' if met else 'no'} |"
        )


def baseline_lead(
    cards: dict[tuple[str, str, str], Card], decision: str
) -> tuple[float, str] | None:
    """The default's smallest lead over the baselines in event F0.5 and AUPRC, and where."""
    leads = []
    for (dataset, candidate, stage), card in cards.items():
        own = cards.get((dataset, cache.DEFAULT, decision))
        if stage != decision or candidate not in cache.BASELINES or own is None:
            continue
        where = f"{dataset} vs {candidate}"
        leads.append(((own.f05 or 0.0) - (card.f05 or 0.0), f"event F0.5, {where}"))
        auprc = (_mean(own.auprc) or 0.0) - (_mean(card.auprc) or 0.0)
        leads.append((auprc, f"AUPRC, {where}"))
    return min(leads) if leads else None


def auprc_table(
    cards: dict[tuple[str, str, str], Card],
    datasets: list[str],
    candidates: list[str],
    decision: str,
) -> None:
    """Mean AUPRC of the window scores per dataset: the scores before any decision."""
    print("\n### mean AUPRC of the window scores (over the series with events)\n")
    print("| candidate | " + " | ".join(datasets) + " |")
    print("| --- " * (len(datasets) + 1) + "|")
    for candidate in candidates:
        cells = [
            _f(_mean(card.auprc))
            if (card := cards.get((d, candidate, decision)))
            else "-"
            for d in datasets
        ]
        print(f"| {candidate} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", default=",".join(cache.DATASETS), help="comma-separated subset"
    )
    parser.add_argument(
        "--candidates",
        default=",".join([*cache.CANDIDATES, *cache.BASELINES]),
        help="candidates and baselines, comma-separated",
    )
    parser.add_argument(
        "--decision",
        default="fixed,telemanom_reference,shipped",
        help="decision stages: fixed, telemanom_reference, fixed:min=M,cool=C, "
        "adaptive:event=E[,min=M][,cool=C] (spans in windows), comma-separated",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"SKAB: only {len(cache.SKAB_QUICK)} of its files",
    )
    parser.add_argument(
        "--refresh", action="store_true", help="rebuild the cache entries"
    )
    parser.add_argument(
        "--no-train", action="store_true", help="stage B only: score what is cached"
    )
    options = parser.parse_args()
    datasets = [d for d in options.datasets.split(",") if d]
    candidates = [c for c in options.candidates.split(",") if c]
    for name in datasets:
        if name not in cache.DATASETS:
            raise SystemExit(
                f"--datasets: unknown {name!r}; use {', '.join(cache.DATASETS)}"
            )
    for name in candidates:
        if name not in cache.CANDIDATES and name not in cache.BASELINES:
            known = ", ".join([*cache.CANDIDATES, *cache.BASELINES])
            raise SystemExit(f"--candidates: unknown {name!r}; use {known}")
    decisions = split_specs(options.decision)
    stages = {spec: decision_stage(spec) for spec in decisions}
    if not options.no_train:
        for line in cache.fill_cache(
            datasets, candidates, options.quick, options.refresh
        ):
            print(line, file=sys.stderr, flush=True)
    cards: dict[tuple[str, str, str], Card] = {}
    missing = []
    for dataset in datasets:
        for candidate in candidates:
            entries = load_dataset(dataset, candidate, options.quick)
            if not entries:
                missing.append(f"{dataset}/{candidate}")
                continue
            for spec, decide in stages.items():
                cards[(dataset, candidate, spec)] = card_for(dataset, entries, decide)
    print(
        f"## Scorecard ({dt.date.today().isoformat()}; "
        f"{'SKAB quick subset; ' if options.quick else ''}"
        f"decision stages: {', '.join(decisions)})"
    )
    if missing:
        print(f"\nnot cached (run without --no-train): {', '.join(missing)}")
    print_cards(cards, datasets, candidates, decisions)
    auprc_table(cards, datasets, candidates, decisions[0])
    for spec in decisions:
        goal_table(cards, spec)


if __name__ == "__main__":
    main()
