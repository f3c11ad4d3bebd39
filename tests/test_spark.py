"""rareevent.spark on a local[2] Spark: the windows of every asset equal the CLI's for that asset's own file.

Spark starts once for the module (it takes seconds); the tests are skipped,
with the reason shown by ``-ra``, where pyspark or Java is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.options import InputSpec, Resampling, ScoreSpec, SplitSpec, TrainSpec

pytest.importorskip(
    "pyspark", reason="pyspark is not installed (pip install 'rareevent[spark]')"
)
pytestmark = pytest.mark.skipif(
    shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
    reason="Spark needs Java 17 (java on PATH or JAVA_HOME)",
)

runner = CliRunner()


@pytest.fixture(scope="module")
def spark_session():  # noqa: ANN201 - a SparkSession (pyspark is imported lazily)
    from rareevent.spark import session

    started = session("local[2]")
    started.sparkContext.setLogLevel("ERROR")
    yield started
    started.stop()


def cli(*args: object) -> object:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def cli_windows(fleet_dir: Path, run: Path, tmp_path: Path) -> pd.DataFrame:
    """``rareevent score`` of each asset's own file, an ``asset`` column in front."""
    frames = []
    for path in sorted((fleet_dir / "exports").glob("*.csv")):
        cli(
            "score",
            path,
            "--run",
            run,
            "--output",
            tmp_path / f"{path.stem}.csv",
            "--quiet",
        )
        frames.append(
            pd.read_csv(tmp_path / f"{path.stem}.csv", parse_dates=["time"]).assign(
                asset=path.stem
            )
        )
    return pd.concat(frames, ignore_index=True)


def assert_same_windows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = got.sort_values(["asset", "row"], kind="stable").reset_index(drop=True)
    assert len(got) == len(expected) == 3 * (1200 - 2)
    assert (got["asset"] == expected["asset"]).all() and (
        got["row"].to_numpy() == expected["row"].to_numpy()
    ).all()
    assert (
        got["time"].to_numpy("datetime64[ns]")
        == expected["time"].to_numpy("datetime64[ns]")
    ).all()
    assert (
        got["error"].to_numpy(np.float32) == expected["error"].to_numpy(np.float32)
    ).all()  # the CSV holds float32's shortest text
    for column in ("flagged", "label", "top_features"):
        assert (got[column].to_numpy() == expected[column].to_numpy()).all(), column
    assert (
        expected["flagged"].sum() > 0
    )  # the comparison covers alarms, not only quiet windows


@pytest.mark.slow
def test_spark_scores_each_asset_of_a_long_table_as_the_cli_scores_its_own_file(
    spark_session, fleet_dir: Path, fleet_run: Path, tmp_path: Path
) -> None:
    from rareevent import spark

    expected = cli_windows(fleet_dir, fleet_run, tmp_path)
    table = spark_session.read.parquet(
        str(fleet_dir / "fleet.parquet")
    )  # rows interleaved across assets, typed timestamps
    windows = spark.score(table, fleet_run, ScoreSpec(InputSpec(group="asset")))
    assert windows.columns == [
        "asset",
        "row",
        "time",
        "error",
        "flagged",
        "top_features",
        "label",
    ]
    assert_same_windows(windows.toPandas(), expected)
    cli(
        "score",
        fleet_dir / "fleet.parquet",
        "--group",
        "asset",
        "--run",
        fleet_run,
        "--engine",
        "spark",
        "--master",
        "local[2]",
        "--output",
        tmp_path / "spark.parquet",
    )
    assert_same_windows(pd.read_parquet(tmp_path / "spark.parquet"), expected)


@pytest.mark.slow
def test_spark_trains_one_run_per_group_into_a_shared_folder(
    spark_session, fleet_dir: Path, tmp_path: Path
) -> None:
    """Each group is put on the spec's grid (2-minute rows on a 4-minute grid: half the rows), as a fleet's series are."""
    from rareevent import spark
    from rareevent.detector import RareEventDetector

    table = spark_session.read.parquet(str(fleet_dir / "fleet.parquet"))
    detector = RareEventDetector(
        lookback=3, units=(4, 2), epochs=2, batch_size=64, threshold="pot"
    )
    spec = TrainSpec(
        input=InputSpec(group="asset"),
        split=SplitSpec(resample=Resampling("4min", "max")),
    )
    folder = spark.train(
        table, spec, runs_dir=tmp_path, name="per-asset", detector=detector
    )
    summary = json.loads((folder / "fleet.json").read_text())
    assert (
        list(summary["runs"]) == ["pump_001", "pump_002", "pump_003"]
        and summary["group_column"] == "asset"
    )
    records = [
        json.loads((folder / g / "run.json").read_text()) for g in summary["runs"]
    ]
    assert [r["input_rows"] for r in records] == [600] * 3
    assert all(
        r["resample"]["every"] == "4min"
        and r["resample"]["agg"] == "max"
        and TrainSpec.from_record(r["spec"]) == spec
        for r in records
    )
    result = cli(
        "score",
        fleet_dir / "fleet.parquet",
        "--group",
        "asset",
        "--run",
        folder,
        "--jobs",
        "1",
    )
    assert result.output.count("pump_00") >= 3


@pytest.mark.slow
def test_spark_sorts_day_first_text_times_as_times_not_as_text(
    spark_session, fleet_dir: Path, fleet_run: Path
) -> None:
    """Exported text dates across a month end (31.01 then 01.02) come back in time order, as the typed table's windows."""
    from rareevent import spark

    typed = pd.read_parquet(fleet_dir / "fleet.parquet")
    shift = (
        pd.Timestamp("2026-01-31 00:00") - typed["timestamp"].min()
    )  # the 40 hours of each asset now cross into February
    text = typed.assign(
        timestamp=(typed["timestamp"] + shift).dt.strftime("%d.%m.%Y %H:%M:%S")
    ).sample(frac=1.0, random_state=0)
    assert (text["timestamp"].sort_values().str[:5] == "01.02").iloc[
        0
    ]  # as text, February's first hour sorts before January's last days
    windows = spark.score(
        spark_session.createDataFrame(text),
        fleet_run,
        ScoreSpec(InputSpec(group="asset")),
    ).toPandas()
    expected = spark.score(
        spark_session.createDataFrame(typed),
        fleet_run,
        ScoreSpec(InputSpec(group="asset")),
    ).toPandas()
    windows, expected = (
        frame.sort_values(["asset", "row"], kind="stable").reset_index(drop=True)
        for frame in (windows, expected)
    )
    assert len(windows) == len(expected) == 3 * (1200 - 2)
    assert (
        pd.to_datetime(windows["time"]) == pd.to_datetime(expected["time"]) + shift
    ).all()
    for column in ("row", "error", "flagged", "top_features", "label"):
        assert (windows[column].to_numpy() == expected[column].to_numpy()).all(), column
