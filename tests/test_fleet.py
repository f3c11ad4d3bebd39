"""Fleets: many files, a glob, Parquet and --group; windows never cross a series; --per-group; score --jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.errors import RareEventError
from rareevent.runs import read_run
from rareevent.series import expand, load_series
from rareevent.options import InputSpec
from tests.conftest import TINY, TINY_PCA, synthetic_frame

runner = CliRunner()


def invoke(*args: object) -> object:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def one_line_error(result: object, *parts: str) -> None:
    """Exit 2 and a single ``error:`` line on stderr naming every one of ``parts``."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for part in parts:
        assert part in lines[0], (part, lines[0])


@pytest.fixture(scope="module")
def long_csv(tmp_path_factory: pytest.TempPathFactory, fleet_dir: Path) -> Path:
    """The three asset files as one long CSV with an ``asset`` column, rows interleaved by time."""
    frames = [
        pd.read_csv(path, dtype=str).assign(asset=path.stem)
        for path in sorted((fleet_dir / "exports").glob("*.csv"))
    ]
    long = pd.concat(frames).sort_values(["timestamp", "asset"], kind="stable")
    path = tmp_path_factory.mktemp("long") / "fleet.csv"
    long.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- the input layer


@pytest.mark.slow
def test_a_glob_expands_sorted_and_a_glob_matching_nothing_is_an_error(
    fleet_dir: Path,
) -> None:
    assert [p.name for p in expand([fleet_dir / "exports" / "*.csv"])] == [
        "pump_001.csv",
        "pump_002.csv",
        "pump_003.csv",
    ]
    with pytest.raises(RareEventError, match=r"no file matches this pattern"):
        expand([fleet_dir / "exports" / "*.txt"])


@pytest.mark.slow
def test_group_series_are_checked_alone_and_numbered_within_their_group(
    fleet_dir: Path, long_csv: Path
) -> None:
    by_group = load_series([long_csv], InputSpec(group="asset"))
    by_file = load_series([fleet_dir / "exports" / "*.csv"])
    assert [s.name for s, _ in by_group] == ["pump_001", "pump_002", "pump_003"]
    for (_, grouped), (_, own) in zip(by_group, by_file):
        assert len(grouped) == len(own) == 1200
        assert (
            (grouped.X == own.X).all()
            and (grouped.time == own.time).all()
            and (grouped.y == own.y).all()
        )
        assert (
            grouped.rows == own.rows
        ).all()  # the rows of the asset's own file, not of the long table
    parquet = load_series([fleet_dir / "fleet.parquet"], InputSpec(group="asset"))
    assert [(s.name, len(d)) for s, d in parquet] == [
        ("pump_001", 1200),
        ("pump_002", 1200),
        ("pump_003", 1200),
    ]
    assert (parquet[1][1].X == by_file[1][1].X).all() and (
        parquet[1][1].time == by_file[1][1].time
    ).all()


def test_an_error_in_one_group_names_the_file_the_group_and_the_line(
    tmp_path: Path, long_csv: Path
) -> None:
    lines = long_csv.read_text().splitlines()
    header = lines[0].split(",")
    at = next(
        i for i, line in enumerate(lines) if i > 100 and line.endswith(",pump_002")
    )
    cells = lines[at].split(",")
    cells[header.index("timestamp")] = (
        "2026-01-05 00:00:00"  # back to the start: time goes backwards in pump_002 only
    )
    lines[at] = ",".join(cells)
    bad = tmp_path / "fleet.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(RareEventError) as caught:
        load_series([bad], InputSpec(group="asset"))
    assert str(caught.value).startswith(
        f"{bad}: group 'pump_002': time in column 'timestamp' goes backwards at line {at + 1}"
    )


def test_a_parquet_error_names_the_row(tmp_path: Path, fleet_dir: Path) -> None:
    table = pd.read_parquet(fleet_dir / "fleet.parquet")
    table.loc[7, "flow_rate"] = float("nan")
    table.to_parquet(tmp_path / "holed.parquet", index=False)
    with pytest.raises(
        RareEventError,
        match=r"holed.parquet: group 'pump_\d+': blank or NaN value in column 'flow_rate' at row 8",
    ):
        load_series([tmp_path / "holed.parquet"], InputSpec(group="asset"))


def test_bad_fleet_input_is_one_line_with_exit_2(
    tmp_path: Path, fleet_dir: Path
) -> None:
    one_line_error(
        invoke("train", tmp_path / "none" / "*.csv", *TINY, "--runs-dir", tmp_path),
        "*.csv",
        "no file matches",
    )
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pd.read_csv(fleet_dir / "exports" / "pump_001.csv").to_csv(
        mixed / "a.csv", index=False
    )
    pd.read_csv(fleet_dir / "exports" / "pump_002.csv").rename(
        columns={"oil_temp": "oil_temperature"}
    ).to_csv(mixed / "b.csv", index=False)
    one_line_error(
        invoke("train", mixed / "*.csv", *TINY, "--runs-dir", tmp_path),
        "b.csv: columns differ from",
        "a.csv",
        "missing oil_temp",
        "extra oil_temperature",
    )
    one_line_error(
        invoke(
            "train",
            fleet_dir / "fleet.parquet",
            "--group",
            "site",
            *TINY,
            "--runs-dir",
            tmp_path,
        ),
        "--group names unknown column 'site'",
    )
    one_line_error(
        invoke(
            "train",
            fleet_dir / "fleet.parquet",
            "--per-group",
            *TINY,
            "--runs-dir",
            tmp_path,
        ),
        "--per-group needs --group",
    )
    assert not (tmp_path / "runs").exists() and [
        p.name for p in tmp_path.iterdir()
    ] == ["mixed"]


# ---------------------------------------------------------------- training over series


@pytest.mark.slow
def test_the_fleet_model_splits_each_series_and_no_window_crosses_two(
    fleet_run: Path,
) -> None:
    record = json.loads((fleet_run / "run.json").read_text())
    # 3 series x 1200 rows, split 720/240/240 each: a window per 3 rows inside each part of each series, none across
    assert record["splits"] == {
        "train": [0, 2160],
        "valid": [2160, 2880],
        "test": [2880, 3600],
    }
    assert record["windows"]["valid"] == record["windows"]["test"] == 3 * (240 - 2)
    assert [s["name"] for s in record["series"]] == [
        str(p)
        for p in sorted(Path(record["input_file"].split(", ")[0]).parent.glob("*.csv"))
    ]
    assert record["gaps"]["segments"] == 3 and record["gaps"]["gaps"] == 0
    pooled = record["metrics"]["test"]
    per_series = [s["metrics"]["test"] for s in record["series"]]
    for key in ("tp", "fp", "fn", "tn", "events", "events_detected"):
        assert sum(m[key] for m in per_series) == pooled[key], key
    scores = pd.read_csv(fleet_run / "scores.csv")
    assert list(scores.columns[:3]) == ["split", "series", "row"]
    assert scores.groupby(["split", "series"]).size().tolist() == [238] * 6
    assert (
        scores.groupby(["split", "series"])["row"].min().tolist()
        == [962] * 3 + [722] * 3
    )  # each part's first window ends T-1 rows into it


@pytest.mark.slow
def test_train_on_a_glob_a_long_csv_and_parquet_gives_one_model(
    tmp_path: Path, fleet_dir: Path, long_csv: Path, fleet_run: Path
) -> None:
    expected = read_run(fleet_run)
    for name, args in (
        ("glob", [fleet_dir / "exports" / "*.csv"]),
        ("long", [long_csv, "--group", "asset"]),
    ):
        result = invoke(
            "train", *args, *TINY, "--seed", "0", "--runs-dir", tmp_path, "--name", name
        )
        assert result.exit_code == 0, result.output
        record = read_run(tmp_path / name)
        assert (
            record.threshold == expected.threshold
            and record.metrics == expected.metrics
        )
    assert "per series" in result.output and "pump_003" in result.output
    assert [s.group for s in record.series] == [
        "pump_001",
        "pump_002",
        "pump_003",
    ] and record.group_column == "asset"
    shown = invoke("report", "long", "--runs-dir", tmp_path)
    assert (
        shown.exit_code == 0
        and "run long: per series" in shown.output
        and shown.output.count("pump_00") == 3
    )


@pytest.mark.slow
def test_per_group_trains_one_run_per_group_and_scores_each_with_its_own(
    tmp_path: Path, fleet_dir: Path
) -> None:
    failed = invoke(
        "train",
        fleet_dir / "fleet.parquet",
        "--group",
        "asset",
        "--per-group",
        *TINY_PCA,  # the per-group bookkeeping, whatever the model
        "--runs-dir",
        tmp_path,
        "--name",
        "pg",
    )
    one_line_error(
        failed,
        "fleet.parquet: group 'pump_001': threshold f1 needs at least one positive window",
    )  # its validation part holds no event
    assert not (tmp_path / "pg").exists()
    result = invoke(
        "train",
        fleet_dir / "fleet.parquet",
        "--group",
        "asset",
        "--per-group",
        "--threshold",
        "pot",
        *TINY_PCA,
        "--runs-dir",
        tmp_path,
        "--name",
        "pg",
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "pg").iterdir()) == [
        "fleet.json",
        "pump_001",
        "pump_002",
        "pump_003",
    ]
    summary = json.loads((tmp_path / "pg" / "fleet.json").read_text())
    assert summary["group_column"] == "asset" and list(summary["runs"]) == [
        "pump_001",
        "pump_002",
        "pump_003",
    ]
    records = [read_run(tmp_path / "pg" / g) for g in summary["runs"]]
    assert [r.input_rows for r in records] == [1200] * 3 and len(
        {r.threshold for r in records}
    ) == 3
    two = tmp_path / "two.csv"
    pd.concat(
        [
            pd.read_csv(fleet_dir / "exports" / f"{g}.csv").assign(asset=a)
            for g, a in (("pump_001", "pump_001"), ("pump_002", "pump_009"))
        ]
    ).to_csv(two, index=False)
    one_line_error(
        invoke("score", two, "--group", "asset", "--run", tmp_path / "pg"),
        "two.csv: group 'pump_009'",
        "per-group run 'pg' has no run for this group",
    )


# ---------------------------------------------------------------- scoring over series


def own_files(
    fleet_dir: Path, run: Path, tmp_path: Path, column: str, name: object
) -> pd.DataFrame:
    """``score`` of each asset's own file, the series column in front as ``name(path)`` gives it."""
    frames = []
    for path in sorted((fleet_dir / "exports").glob("*.csv")):
        result = invoke(
            "score",
            path,
            "--run",
            run,
            "--output",
            tmp_path / f"own-{path.stem}.csv",
            "--quiet",
        )
        assert result.exit_code == 0, result.output
        frame = pd.read_csv(tmp_path / f"own-{path.stem}.csv", dtype=str)
        frame.insert(0, column, name(path))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.slow
def test_score_jobs_2_over_files_and_groups_equals_scoring_each_series_alone(
    tmp_path: Path, fleet_dir: Path, long_csv: Path, fleet_run: Path
) -> None:
    by_file = own_files(fleet_dir, fleet_run, tmp_path, "file", str)
    result = invoke(
        "score",
        fleet_dir / "exports" / "*.csv",
        "--run",
        fleet_run,
        "--jobs",
        "2",
        "--output",
        tmp_path / "files.csv",
        "--metrics-out",
        tmp_path / "m.json",
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "files.csv", dtype=str).equals(by_file)
    by_group = by_file.rename(columns={"file": "asset"}).assign(
        asset=lambda f: f["asset"].map(lambda p: Path(p).stem)
    )
    for data, jobs in ((fleet_dir / "fleet.parquet", "2"), (long_csv, "1")):
        out = tmp_path / f"{data.stem}-{data.suffix[1:]}.csv"
        result = invoke(
            "score",
            data,
            "--group",
            "asset",
            "--run",
            fleet_run,
            "--jobs",
            jobs,
            "--output",
            out,
        )
        assert result.exit_code == 0, result.output
        assert pd.read_csv(out, dtype=str).equals(by_group), data
    metrics = json.loads((tmp_path / "m.json").read_text())["series"]
    assert [m["rows"] for m in metrics] == [1200] * 3 and all(
        m["metrics"]["events"] >= 2 for m in metrics
    )


@pytest.mark.slow
def test_the_installed_command_trains_on_a_glob_and_scores_a_parquet_fleet(
    tmp_path: Path, fleet_dir: Path
) -> None:
    import subprocess
    import sys

    exe = str(Path(sys.executable).with_name("rareevent"))
    done = subprocess.run(
        [
            exe,
            "train",
            "exports/*.csv",
            *TINY,
            "--runs-dir",
            tmp_path / "runs",
            "--name",
            "fleet",
            "--quiet",
        ],
        cwd=fleet_dir,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stdout.strip() == str(
        tmp_path / "runs" / "fleet"
    ), done.stderr
    done = subprocess.run(
        [
            exe,
            "score",
            "fleet.parquet",
            "--group",
            "asset",
            "--run",
            tmp_path / "runs" / "fleet",
            "--output",
            tmp_path / "w.csv",
            "--quiet",
        ],
        cwd=fleet_dir,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    windows = pd.read_csv(tmp_path / "w.csv")
    assert (
        windows["asset"].unique().tolist() == ["pump_001", "pump_002", "pump_003"]
        and len(windows) == 3 * 1198
    )
    done = subprocess.run(
        [
            exe,
            "score",
            "none/*.parquet",
            "--group",
            "asset",
            "--run",
            tmp_path / "runs" / "fleet",
        ],
        cwd=fleet_dir,
        capture_output=True,
        text=True,
    )
    assert (
        done.returncode == 2
        and done.stderr == "error: none/*.parquet: no file matches this pattern\n"
        and done.stdout == ""
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_fleet_finds_its_time_column_by_content_as_a_single_file_does(
    tmp_path: Path, suffix: str
) -> None:
    """Issue 33 (8): ``train flotte.csv --group Anlage`` took ``Zeitstempel`` for a sensor and failed."""
    frames = []
    for asset, shift in (("A1", 0.0), ("A2", 0.5)):
        frame = synthetic_frame(n=60, events=(), seed=int(shift * 2))
        frames.append(
            frame.rename(columns={"timestamp": "Zeitstempel"})
            .drop(columns="label")
            .assign(Anlage=asset, s1=frame["s1"] + shift)
        )
    fleet = pd.concat(frames)[["Anlage", "Zeitstempel", "s1", "s2", "s3"]]
    data = tmp_path / f"flotte{suffix}"
    if suffix == ".csv":
        fleet.to_csv(data, index=False)
    else:
        fleet.to_parquet(data, index=False)
    result = invoke(
        "train", data, "--group", "Anlage", "--arch", "pca", "--lookback", "3",
        "--runs-dir", tmp_path / "runs", "--name", "flotte",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "column 'Zeitstempel' holds dates or times: read as the time column"
        in result.stderr
    )
    record = read_run(tmp_path / "runs" / "flotte")
    assert record.time_column == "Zeitstempel" and record.features == ["s1", "s2", "s3"]
    assert [s.group for s in record.series] == ["A1", "A2"]
