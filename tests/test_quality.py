"""Quality features: context columns, normalised errors, bounded inputs, the PCA baseline, scoring any run on labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent import scaling
from rareevent.cli.main import app
from rareevent.detector import RareEventDetector
from rareevent.runs import read_record, read_run
from tests.conftest import TINY

runner = CliRunner()


SETPOINT_LEVELS = (40.0, 45.0, 50.0, 55.0, 60.0)
STEPS = (150, 400)  # the steps file's two setpoint steps: 50 -> 60 -> 50
FAULT = 330  # the fault file's 8 rows where the flow sensor reads 8 low


def setpoint_frame(
    schedule: list[tuple[int, float]], n: int, fault: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """A flow that follows its controller's setpoint with a first-order lag, and the setpoint.

    ``schedule`` lists ``(row, level)``: the setpoint steps to ``level`` at
    ``row`` and holds it. The flow closes 5% of its gap to the setpoint each
    row (a time constant of 20 rows) and reads with noise of 0.7.
    ``fault`` puts 8 rows of a flow sensor reading 8 low while the setpoint holds.
    """
    rng = np.random.default_rng(seed)
    setpoint = np.empty(n)
    for (start, level), (stop, _) in zip(schedule, [*schedule[1:], (n, 0.0)]):
        setpoint[start:stop] = level
    flow = np.empty(n)
    flow[0] = setpoint[0]
    for t in range(1, n):
        flow[t] = flow[t - 1] + 0.05 * (setpoint[t] - flow[t - 1])
    flow += 0.7 * rng.standard_normal(n)
    label = np.zeros(n, np.int8)
    if fault is not None:
        flow[fault : fault + 8] -= 8.0
        label[fault : fault + 8] = 1
    return pd.DataFrame({"setpoint": setpoint, "flow": flow, "label": label})


def operating_history(n_steps: int = 900) -> list[tuple[int, float]]:
    """Setpoint steps between the levels every 60..140 rows, then a steady stretch at 50 from row ``n_steps``.

    Following a step is normal: the model learns it from the steps. The
    steady stretch is the validation part, so the threshold is what steady
    running scores: with steps in it, pot (never below the 0.999 quantile of
    the validation scores) would put the threshold at the steps' own scores.
    """
    rng = np.random.default_rng(100)
    schedule, row, level = [], 0, 50.0
    while row < n_steps:
        schedule.append((row, level))
        row += int(rng.integers(60, 140))
        level = float(
            rng.choice([other for other in SETPOINT_LEVELS if other != level])
        )
    return [*schedule, (n_steps, 50.0)]


@pytest.fixture(scope="module")
def setpoint_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two ``ae`` runs on the operating history, ``--context setpoint`` and ``--context none``, and the files to score."""
    folder = tmp_path_factory.mktemp("setpoint")
    paths = {
        "train": folder / "train.csv",
        "steps": folder / "steps.csv",
        "fault": folder / "fault.csv",
    }
    setpoint_frame(operating_history(), 1200, seed=0).drop(columns="label").to_csv(
        paths["train"], index=False, float_format="%.4f"
    )
    setpoint_frame([(0, 50.0), (STEPS[0], 60.0), (STEPS[1], 50.0)], 600, seed=1).to_csv(
        paths["steps"], index=False, float_format="%.4f"
    )
    setpoint_frame([(0, 50.0)], 600, fault=FAULT, seed=2).to_csv(
        paths["fault"], index=False, float_format="%.4f"
    )
    model = [
        "--lookback",
        "5",
        "--units",
        "16,8",
        "--epochs",
        "20",
        "--batch-size",
        "32",
        "--learning-rate",
        "0.01",
        "--seed",
        "0",
    ]
    for name in ("ctx", "none"):
        context = "setpoint" if name == "ctx" else "none"
        args = [
            "train",
            str(paths["train"]),
            "--runs-dir",
            str(folder),
            "--name",
            name,
            "--context",
            context,
            "--valid-frac",
            "0.25",
            "--test-frac",
            "0",
            *model,
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        paths[name] = folder / name
    return paths


def _scored(paths: dict[str, Path], run: str, kind: str) -> pd.DataFrame:
    out = paths[run].parent / f"{run}-{kind}.csv"
    result = runner.invoke(
        app,
        ["score", str(paths[kind]), "--run", str(paths[run]), "--output", str(out)]
        + ["--shortest-event", "off"],  # the threshold alone: this is about context
    )
    assert result.exit_code == 0, result.output
    return pd.read_csv(out)


def _after(scored: pd.DataFrame, step: int) -> pd.DataFrame:
    """The windows that end in the 40 rows after a step: the setpoint's step and most of the flow's transient."""
    return scored[scored["row"].between(step, step + 40)]


@pytest.mark.slow
def test_setpoint_steps_alarm_only_when_the_setpoint_is_scored(
    setpoint_runs: dict[str, Path],
) -> None:
    """The flow follows the setpoint, and steps between trained levels are normal history.

    The threshold (pot, no labels) is learned on a steady validation stretch.
    As context, the setpoint tells the model where the flow is heading: a
    step's windows score like steady running. Scored (``--context none``),
    the noise-free setpoint's sharp step is what the autoencoder cannot
    reconstruct, and both steps alarm.
    """
    scored_too = _scored(setpoint_runs, "none", "steps")
    for step in STEPS:
        alarms = _after(scored_too, step).query("flagged == 1")
        assert len(alarms) >= 1, f"no alarm at the setpoint step at row {step}"
        assert "setpoint" in ";".join(alarms["top_features"])
    as_context = _scored(setpoint_runs, "ctx", "steps")
    # near the steps, no more than pot's usual rate of stray windows (about 1% over the whole file)
    assert (
        pd.concat([_after(as_context, step) for step in STEPS])["flagged"].mean() < 0.05
    )
    fault = _scored(setpoint_runs, "ctx", "fault")
    assert (
        fault[fault["row"].between(FAULT, FAULT + 11)]["flagged"].sum() > 0
    )  # the flow's own fault still alarms
    assert "setpoint" not in ";".join(fault["top_features"])
    detector = RareEventDetector.read_config(setpoint_runs["ctx"])
    assert [detector.feature_names_in_[j] for j in detector.context_features_] == [
        "setpoint"
    ]
    assert [detector.feature_names_in_[j] for j in detector.target_features_] == [
        "flow"
    ]


def test_auto_context_finds_flags_and_modes_and_none_turns_it_off(
    tmp_path: Path,
) -> None:
    frame = setpoint_frame([(0, 50.0)], 400).drop(columns="label")
    frame["setpoint"] = np.where(np.arange(400) % 100 < 50, 50, 60)
    frame["mode"] = np.arange(400) // 100 % 3 + 1
    frame["valve_open"] = (np.arange(400) % 97 == 0).astype(int)
    path = tmp_path / "plant.csv"
    frame.to_csv(path, index=False, float_format="%.4f")
    result = runner.invoke(
        app,
        [
            "train",
            str(path),
            "--runs-dir",
            str(tmp_path),
            "--name",
            "auto",
            "--arch",
            "pca",
            "--test-frac",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "mode, valve_open (read, not scored" in " ".join(result.stdout.split())
    assert read_run(tmp_path / "auto").context_features == ["mode", "valve_open"]
    result = runner.invoke(
        app,
        [
            "train",
            str(path),
            "--runs-dir",
            str(tmp_path),
            "--name",
            "none",
            "--arch",
            "pca",
            "--test-frac",
            "0",
            "--context",
            "none",
        ],
    )
    assert result.exit_code == 0, result.output
    assert read_run(tmp_path / "none").context_features == []


def test_context_pattern_that_matches_nothing_is_refused(
    sensor_csv: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            str(sensor_csv),
            "--runs-dir",
            str(tmp_path),
            "--context",
            "cmd*",
            *TINY,
        ],
    )
    assert result.exit_code == 2
    assert "error: context 'cmd*' matches no feature column" in result.output
    assert not any(tmp_path.iterdir())


@pytest.mark.slow  # its fixture trains the two setpoint runs: the quick tier's costliest setup
def test_score_refuses_a_file_without_a_context_column(
    setpoint_runs: dict[str, Path], tmp_path: Path
) -> None:
    partial = tmp_path / "partial.csv"
    pd.read_csv(setpoint_runs["fault"]).drop(columns="setpoint").to_csv(
        partial, index=False
    )
    result = runner.invoke(
        app, ["score", str(partial), "--run", str(setpoint_runs["ctx"])]
    )
    assert result.exit_code == 2
    assert "missing trained feature column(s) setpoint" in result.output


def test_rare_flags_are_not_blown_up_and_inputs_are_bounded() -> None:
    X = np.zeros((1000, 2))
    X[0, 0] = 1.0  # a flag set in 0.1% of the rows
    X[:, 1] = (
        np.random.default_rng(0).normal(size=1000) * 1e-4
    )  # a near-constant sensor
    scaler = scaling.fit_scaler(X, discrete=scaling.discrete_columns(X))
    assert scaling.discrete_columns(X).tolist() == [0]
    assert scaling.transform(scaler, np.array([[1.0, 0.0]]))[0, 0] == pytest.approx(
        2.0, abs=0.01
    )  # 1 / half its range
    assert (
        np.abs(scaling.transform(scaler, np.array([[0.0, 5.0]]))).max()
        == scaling.Z_LIMIT
    )


def test_a_sensor_with_large_normal_error_does_not_dominate() -> None:
    from rareevent.detector import error_scales

    errors = np.column_stack([np.full(100, 0.01), np.full(100, 4.0)])
    scales = error_scales(errors)
    np.testing.assert_allclose(scales, [0.01, 4.0])
    np.testing.assert_allclose((errors / scales).mean(axis=0), [1.0, 1.0])
    assert error_scales(np.zeros((10, 2))).min() > 0  # never a division by zero


def test_pca_run_is_arrays_only_and_scores_through_the_same_path(
    sensor_csv: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            str(sensor_csv),
            "--runs-dir",
            str(tmp_path),
            "--name",
            "p",
            "--arch",
            "pca",
            "--lookback",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "p"
    assert (folder / "model.npz").is_file() and not (
        folder / "model.weights.h5"
    ).exists()
    with np.load(folder / "model.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"mean", "components", "targets"}
    record = read_record(folder)
    assert (
        RareEventDetector.read_config(folder).arch == "pca" and record.baseline is None
    )
    assert (
        record.metrics["test"]["events_detected"]
        == record.metrics["test"]["events"]
        == 1
    )
    out = tmp_path / "scores.csv"
    scored = runner.invoke(
        app, ["score", str(sensor_csv), "--run", str(folder), "--output", str(out)]
    )
    assert scored.exit_code == 0, scored.output
    assert pd.read_csv(out)["flagged"].sum() > 0


def test_damaged_pca_model_is_refused(sensor_csv: Path, tmp_path: Path) -> None:
    runner.invoke(
        app,
        [
            "train",
            str(sensor_csv),
            "--runs-dir",
            str(tmp_path),
            "--name",
            "p",
            "--arch",
            "pca",
            "--lookback",
            "3",
        ],
    )
    np.savez(
        tmp_path / "p" / "model.npz",
        mean=np.array([object()], dtype=object),
        components=np.zeros((1, 3)),
        targets=np.arange(3),
    )
    result = runner.invoke(
        app, ["score", str(sensor_csv), "--run", str(tmp_path / "p")]
    )
    assert result.exit_code == 2
    assert (
        "model.npz: array 'mean' has shape (1,); detector.json's 3 features need (3,)"
        in result.output
    )


def test_every_lstm_run_carries_the_pca_baseline_and_report_shows_it(
    trained_runs: dict[str, Path],
) -> None:
    record = json.loads((trained_runs["ae"] / "run.json").read_text())
    baseline = record["baseline"]
    assert (
        baseline["arch"] == "pca" and baseline["metrics"]["valid"]["pr_auc"] is not None
    )
    result = runner.invoke(app, ["report", str(trained_runs["ae"])])
    assert result.exit_code == 0, result.output
    assert "baseline: pca PR-AUC" in result.output
    as_json = json.loads(
        runner.invoke(app, ["report", str(trained_runs["ae"]), "--json"]).output
    )
    assert as_json["runs"][0]["baseline"]["metrics"]["test"]["pr_auc"] == pytest.approx(
        baseline["metrics"]["test"]["pr_auc"]
    )


def test_a_run_trained_without_labels_is_measured_with_score_label(
    tmp_path: Path,
) -> None:
    from tests.conftest import synthetic_frame

    normal = tmp_path / "normal.csv"
    synthetic_frame(events=(), seed=1).drop(columns="label").to_csv(
        normal, index=False, float_format="%.5f"
    )
    incident = tmp_path / "incident.csv"
    synthetic_frame().rename(columns={"label": "fault"}).to_csv(
        incident, index=False, float_format="%.5f"
    )
    assert (
        runner.invoke(
            app,
            [
                "train",
                str(normal),
                "--runs-dir",
                str(tmp_path),
                "--name",
                "n",
                "--arch",
                "pca",
                "--lookback",
                "3",
            ],
        ).exit_code
        == 0
    )
    metrics = tmp_path / "m.json"
    refused = runner.invoke(
        app,
        [
            "score",
            str(incident),
            "--run",
            str(tmp_path / "n"),
            "--metrics-out",
            str(metrics),
        ],
    )
    assert (
        refused.exit_code == 2 and "--label" in refused.output and not metrics.exists()
    )
    result = runner.invoke(
        app,
        [
            "score",
            str(incident),
            "--run",
            str(tmp_path / "n"),
            "--label",
            "fault",
            "--metrics-out",
            str(metrics),
        ],
    )
    assert result.exit_code == 0, result.output
    measured = json.loads(metrics.read_text())["metrics"]
    assert measured["events"] == 3 and measured["events_detected"] >= 2
    unknown = runner.invoke(
        app, ["score", str(incident), "--run", str(tmp_path / "n"), "--label", "nope"]
    )
    assert (
        unknown.exit_code == 2 and "label names unknown column 'nope'" in unknown.output
    )


def test_architecture_shows_the_context_shapes_and_the_seed_count_holds_without() -> (
    None
):
    seed = runner.invoke(
        app,
        [
            "architecture",
            "--arch",
            "plain",
            "--lookback",
            "3",
            "--features",
            "2",
            "--units",
            "128,64",
        ],
    )
    assert seed.exit_code == 0 and "248,578" in seed.output
    with_context = runner.invoke(
        app,
        [
            "architecture",
            "--lookback",
            "3",
            "--features",
            "55",
            "--context",
            "54",
            "--units",
            "32,16",
        ],
    )
    assert with_context.exit_code == 0, with_context.output
    assert (
        "(3, 1)" in with_context.output
        and "(55 features (54 context)" not in with_context.output
    )
    assert "55 features (54 context)" in with_context.output
    refused = runner.invoke(app, ["architecture", "--features", "3", "--context", "3"])
    assert refused.exit_code == 2 and "--context must be in 0..2" in refused.output


def test_a_pca_run_can_be_updated_and_a_pca_file_for_other_columns_is_refused(
    sensor_csv: Path, tmp_path: Path
) -> None:
    assert (
        runner.invoke(
            app,
            [
                "train",
                str(sensor_csv),
                "--runs-dir",
                str(tmp_path),
                "--name",
                "p",
                "--arch",
                "pca",
                "--lookback",
                "3",
            ],
        ).exit_code
        == 0
    )
    updated = runner.invoke(
        app,
        ["update", "p", str(sensor_csv), "--runs-dir", str(tmp_path), "--name", "p2"],
    )
    assert updated.exit_code == 0, updated.output
    assert (
        json.loads((tmp_path / "p2" / "run.json").read_text())["parent"]["name"] == "p"
    )
    with np.load(tmp_path / "p" / "model.npz", allow_pickle=False) as arrays:
        saved = dict(arrays)
    np.savez(
        tmp_path / "p" / "model.npz",
        **{**saved, "targets": saved["targets"][::-1].copy()},
    )
    result = runner.invoke(
        app, ["score", str(sensor_csv), "--run", str(tmp_path / "p")]
    )
    assert result.exit_code == 2
    assert (
        "reconstructs other columns than detector.json's target_features_"
        in result.output
    )


def test_library_train_keeps_the_detectors_own_context(sensor_csv: Path) -> None:
    from rareevent.detector import RareEventDetector
    from rareevent.training import train

    result = train(sensor_csv, RareEventDetector(arch="pca", lookback=3, context=[0]))
    assert result.detector.context_features_ == [
        0
    ] and result.detector.target_features_ == [1, 2]


def test_normalised_validation_scores_are_the_scores_score_gives(
    sensor_csv: Path,
) -> None:
    from rareevent.detector import RareEventDetector
    from rareevent.training import train

    result = train(
        sensor_csv, RareEventDetector(arch="pca", lookback=3, normalize=True)
    )
    detector, (start, stop) = result.detector, result.record.splits["valid"]
    assert not np.allclose(detector.error_scale_, 1.0)
    rescored = detector.smooth_scores(
        detector.score_windows(result.data.X[start:stop])[0]
    )
    np.testing.assert_allclose(detector.validation_scores_, rescored, rtol=1e-6)
