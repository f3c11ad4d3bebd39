"""Issue 21, items 8-16 and 18-20: inputs that passed validation and then crashed, were accepted silently, or got the wrong message.

Each test is one reproduction of the issue. A refused input is one
``error:`` line naming the file and field, exit 2, and no traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rareevent.cli.main import app
from typer.testing import CliRunner

from rareevent.detector import DETECTOR_FILE, PCA_FILE, WEIGHTS_FILE
from rareevent.runs import RUN_FILE

runner = CliRunner()
DEEP = "[" * 100_000 + "]" * 100_000


def invoke(*args: Any) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def error_line(result: Any) -> str:
    """The one ``error:`` line of a refused command (exit 2)."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.fixture(scope="module")
def pca_run(tmp_path_factory: pytest.TempPathFactory, sensor_csv: Path) -> Path:
    """A ``pca`` run (no Keras needed to score it), trained through the library."""
    from rareevent.detector import RareEventDetector
    from rareevent.training import save, train

    result = train(sensor_csv, RareEventDetector(arch="pca", lookback=3), name="pca")
    return save(result, tmp_path_factory.mktemp("pca-runs"))


def copy_run(source: Path, runs_dir: Path, name: str = "r") -> Path:
    target = runs_dir / name
    shutil.copytree(source, target)
    return target


def edit_json(path: Path, change: Any) -> None:
    """Apply ``change`` (a function of the parsed JSON) to ``path``, or replace the file with the text ``change``."""
    if isinstance(change, str):
        path.write_text(change, encoding="utf-8")
        return
    value = json.loads(path.read_text(encoding="utf-8"))
    change(value)
    path.write_text(json.dumps(value), encoding="utf-8")


def set_fitted(name: str, value: Any) -> Any:
    return lambda config: config["fitted"].__setitem__(name, value)


def rewrite_npz(folder: Path, **arrays: np.ndarray) -> None:
    with np.load(folder / PCA_FILE) as data:
        saved = dict(data)
    saved.update(arrays)
    np.savez(folder / PCA_FILE, **saved)


# ---------------------------------------------------------------- 8. deeply nested JSON


@pytest.mark.parametrize("damaged", [RUN_FILE, DETECTOR_FILE])
def test_deeply_nested_json_is_skipped_by_report_and_score_and_refused_by_name(
    tmp_path: Path, pca_run: Path, sensor_csv: Path, damaged: str
) -> None:
    runs_dir = tmp_path / "runs"
    copy_run(pca_run, runs_dir, "good")
    bad = copy_run(
        pca_run, runs_dir, "zz-bad"
    )  # the same `created`: the name makes it the newest
    edit_json(bad / damaged, DEEP)
    report = invoke("report", "--runs-dir", runs_dir)
    assert report.exit_code == 0, report.output
    assert (
        f"warning: skipped: {bad / damaged}: not valid JSON (nested too deeply)"
        in report.output
    )
    assert (
        report.output.count("skipped:") == 1 and "runs: test metrics" in report.output
    )
    scored = invoke("score", sensor_csv, "--runs-dir", runs_dir)
    assert scored.exit_code == 0, scored.output
    assert "with run pca" in scored.output
    # a run.json that cannot be read has no `created`, so it is never the newest; a newest run that fails is skipped aloud
    assert ("skipped:" in scored.output) == (damaged == DETECTOR_FILE)
    named = invoke("score", sensor_csv, "--runs-dir", runs_dir, "--run", "zz-bad")
    assert (
        error_line(named)
        == f"error: {bad / damaged}: not valid JSON (nested too deeply)"
    )


# ---------------------------------------------------------------- 9, 16. detector.json values refused at load


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_features_in_", 3.0),
        ("error_scale_", [1e39, 1e39, 1e39]),  # inf as float32: every score 0
        ("error_scale_", [1e-50, 1e-50, 1e-50]),  # 0 as float32: every score 3.4e38
        ("validation_scores_", "1e39"),
    ],
)
def test_detector_values_that_break_as_float32_or_int_are_refused_at_load(
    tmp_path: Path, pca_run: Path, sensor_csv: Path, field: str, value: Any
) -> None:
    run = copy_run(pca_run, tmp_path)
    config = json.loads((run / DETECTOR_FILE).read_text(encoding="utf-8"))
    if value == "1e39":
        value = [1e39] * len(config["fitted"][field])
    edit_json(run / DETECTOR_FILE, set_fitted(field, value))
    line = error_line(invoke("score", sensor_csv, "--run", run))
    assert line.startswith(
        f"error: {run / DETECTOR_FILE}: field 'fitted.{field}' has an invalid value"
    )


def test_huge_batch_size_is_refused_before_update_trains(
    tmp_path: Path, trained_runs: dict[str, Path], sensor_csv: Path
) -> None:
    run = copy_run(trained_runs["ae"], tmp_path)
    edit_json(run / DETECTOR_FILE, set_fitted("batch_size_", 2**64))
    line = error_line(
        invoke("update", run, sensor_csv, "--runs-dir", tmp_path / "out", "--epochs", 1)
    )
    assert (
        line
        == f"error: {run / DETECTOR_FILE}: field 'fitted.batch_size_' has an invalid value {2**64}"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("series", [1, 2]),
        ("group_column", 5),
        ("series", [{"name": "a", "file": "a.csv", "rows": "9", "metrics": {}}]),
    ],
)
def test_run_json_fleet_fields_are_checked_and_report_skips_the_run(
    tmp_path: Path, pca_run: Path, field: str, value: Any
) -> None:
    runs_dir = tmp_path / "runs"
    copy_run(pca_run, runs_dir, "good")
    bad = copy_run(pca_run, runs_dir, "bad")
    edit_json(bad / RUN_FILE, lambda record: record.__setitem__(field, value))
    report = invoke("report", "--runs-dir", runs_dir)
    assert report.exit_code == 0, report.output
    assert (
        f"warning: skipped: {bad / RUN_FILE}: field {field!r} has an invalid value"
        in report.output
    )
    assert error_line(invoke("report", bad)).startswith(
        f"error: {bad / RUN_FILE}: field {field!r} has an invalid value"
    )


# ---------------------------------------------------------------- 9, 10, 16. the pca model's arrays


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"mean": np.array(["a", "b", "c"])},
            "array 'mean' holds <U1 values; it must hold real numbers",
        ),
        (
            {"mean": np.array([1 + 1j, 2, 3])},
            "array 'mean' holds complex128 values; it must hold real numbers",
        ),
        (
            {"mean": np.array([1e39, 0.0, 0.0])},
            "PCA model holds values that are not finite as 32-bit floats",
        ),
        (
            {"components": np.zeros((50, 3), np.float32)},
            "array 'components' has shape (50, 3); detector.json's 3 features need (k, 3) with k at most 3",
        ),
        (
            {"components": np.zeros((2, 4), np.float32)},
            "array 'components' has shape (2, 4)",
        ),
        (
            {"mean": np.zeros(5, np.float32)},
            "array 'mean' has shape (5,); detector.json's 3 features need (3,)",
        ),
        (
            {"targets": np.zeros(10**6, np.int64)},
            "array 'targets' has shape (1000000,); detector.json's 3 features need (k,) with k at most 3",
        ),
        (
            {"targets": np.array([0.0, 1.0, 2.0])},
            "array 'targets' holds float64 values; it must hold integers",
        ),
        (
            {"extra": np.zeros(1)},
            "a PCA model holds exactly the arrays components, mean and targets, not components, extra, mean, targets",
        ),
    ],
)
def test_pca_arrays_of_wrong_kind_or_shape_are_refused_at_load(
    tmp_path: Path,
    pca_run: Path,
    sensor_csv: Path,
    arrays: dict[str, np.ndarray],
    message: str,
) -> None:
    run = copy_run(pca_run, tmp_path)
    rewrite_npz(run, **arrays)
    assert error_line(invoke("score", sensor_csv, "--run", run)).startswith(
        f"error: {run / PCA_FILE}: {message}"
    )


def test_pca_shapes_are_read_from_the_headers_before_the_arrays(
    tmp_path: Path, pca_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A huge ``components`` is refused without reading it: no array of the archive is loaded."""
    from rareevent.pca import PCAModel
    from rareevent.protocol import ModelConfig

    run = copy_run(pca_run, tmp_path)
    rewrite_npz(run, components=np.zeros((100_000, 3), np.float32))
    monkeypatch.setattr(
        np.lib.npyio.NpzFile,
        "__getitem__",
        lambda self, key: pytest.fail(f"array {key} was read"),
    )
    with pytest.raises(ValueError, match=r"array 'components' has shape \(100000, 3\)"):
        PCAModel.load(run, ModelConfig("pca", 3, 3, (0, 1, 2)))


@pytest.mark.parametrize("fill", [np.nan, np.inf])
def test_non_finite_weights_in_the_h5_are_refused_at_load(
    tmp_path: Path, trained_runs: dict[str, Path], sensor_csv: Path, fill: float
) -> None:
    import h5py

    run = copy_run(trained_runs["ae"], tmp_path)
    with h5py.File(run / WEIGHTS_FILE, "r+") as h5:
        datasets: list[Any] = []
        h5.visititems(
            lambda name, item: (
                datasets.append(item)
                if isinstance(item, h5py.Dataset) and item.dtype.kind == "f"
                else None
            )
        )
        for dataset in datasets:
            dataset[...] = fill
    assert (
        error_line(invoke("score", sensor_csv, "--run", run))
        == f"error: {run / WEIGHTS_FILE}: the model weights hold NaN or infinite values (hint: retrain the run)"
    )


# ---------------------------------------------------------------- 11, 19, 20. group values and Parquet columns


def parquet_fleet(
    path: Path, sensor_csv: Path, second_group: str, **extra: Any
) -> Path:
    """Two assets of the sensor rows in one Parquet file, grouped by ``asset``; ``extra`` columns are pyarrow arrays."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.read_csv(sensor_csv)
    both = pd.concat(
        [frame.assign(asset="p1"), frame.assign(asset=second_group)], ignore_index=True
    )
    table = pa.Table.from_pandas(both, preserve_index=False)
    for name, values in extra.items():
        table = table.append_column(name, values(len(both)))
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    ("group", "message"),
    [
        (
            "fleet.json",
            "error: {file}: group 'fleet.json': the group value is the name of the --per-group run's summary file fleet.json (hint: rename the group in the data)",
        ),
        (
            "x" * 300,
            "error: {file}: group 'xxxxxxxxxxxxxxxxxxxx'... is 300 bytes long; a group value names a folder of the --per-group run and may have at most 200 bytes",
        ),
        (
            "p\x002",
            "error: {file}: value 'p\\x002' in the --group column 'asset' at row 601 holds a NUL byte",
        ),
    ],
)
def test_group_values_that_cannot_name_a_run_folder_are_refused_naming_group_and_input(
    tmp_path: Path, sensor_csv: Path, group: str, message: str
) -> None:
    data = parquet_fleet(tmp_path / "fleet.parquet", sensor_csv, group)
    result = invoke(
        "train",
        data,
        "--group",
        "asset",
        "--per-group",
        "--arch",
        "pca",
        "--runs-dir",
        tmp_path / "runs",
        "--name",
        "assets",
    )
    assert error_line(result) == message.format(file=data)
    assert ".tmp-" not in result.output
    assert not (tmp_path / "runs" / "assets").exists()


def test_nul_in_a_group_value_is_refused_when_scoring_too(
    tmp_path: Path, sensor_csv: Path, pca_run: Path
) -> None:
    data = parquet_fleet(tmp_path / "fleet.parquet", sensor_csv, "p\x002")
    result = invoke("score", data, "--group", "asset", "--run", pca_run)
    assert (
        error_line(result)
        == f"error: {data}: value 'p\\x002' in the --group column 'asset' at row 601 holds a NUL byte"
    )


def test_parquet_duplicate_or_struct_columns_are_named_with_the_reason(
    tmp_path: Path, sensor_csv: Path, pca_run: Path
) -> None:
    import pyarrow as pa

    twice = parquet_fleet(
        tmp_path / "twice.parquet", sensor_csv, "p2", s1=lambda n: pa.array(np.zeros(n))
    )
    expected = f"error: {twice}: column 's1' appears 2 times: a column is read by its name (hint: rename or remove the copies)"
    assert (
        error_line(
            invoke("train", twice, "--arch", "pca", "--runs-dir", tmp_path / "runs")
        )
        == expected
    )
    assert (
        error_line(invoke("score", twice, "--run", pca_run, "--group", "asset"))
        == expected
    )
    nested = parquet_fleet(
        tmp_path / "nested.parquet",
        sensor_csv,
        "p2",
        where=lambda n: pa.array([{"site": 1}] * n),
    )
    expected = f"error: {nested}: the --group column 'where' holds struct<site: int64> values, not plain values like text or numbers"
    assert (
        error_line(invoke("score", nested, "--run", pca_run, "--group", "where"))
        == expected
    )
    assert (
        error_line(
            invoke(
                "train",
                nested,
                "--group",
                "where",
                "--arch",
                "pca",
                "--runs-dir",
                tmp_path / "runs",
            )
        )
        == expected
    )


# ---------------------------------------------------------------- 12, 13, 20. score --follow


def test_huge_poll_is_refused_in_one_line(sensor_csv: Path, pca_run: Path) -> None:
    result = invoke(
        "score",
        sensor_csv,
        "--follow",
        "--poll",
        "99999999999999999999s",
        "--run",
        pca_run,
    )
    assert (
        error_line(result)
        == "error: --poll '99999999999999999999s' is too long: give at most 3600s"
    )


def test_follow_needs_a_file_not_stdin(pca_run: Path) -> None:
    result = invoke("score", "-", "--follow", "--run", pca_run)
    assert "--follow needs a file to tail, not stdin (-)" in error_line(result)
    assert "metrics" not in result.output


@pytest.mark.parametrize("fields", [6, 1005])
def test_follow_refuses_appended_rows_with_extra_fields_as_score_does(
    tmp_path: Path, sensor_csv: Path, pca_run: Path, fields: int
) -> None:
    from rareevent.errors import RareEventError
    from rareevent.follow import Follower
    from rareevent.runs import load_run

    lines = sensor_csv.read_text(encoding="utf-8").splitlines(keepends=True)
    followed = tmp_path / "followed.csv"
    followed.write_text("".join(lines[:21]), encoding="utf-8")
    long_row = lines[21].rstrip("\n") + ",9" * (fields - 5) + "\n"
    record, detector = load_run(pca_run)
    follower = Follower(followed, record, detector)
    assert follower.poll().rows == 20
    with followed.open("a", encoding="utf-8") as fh:
        fh.write(long_row)
    with pytest.raises(RareEventError) as info:
        follower.poll()
    follower.close()
    expected = f"{followed}: line 22 has {fields} fields, the header has 5"
    assert info.value.message == expected
    # the same file, scored whole and through a pipe (the long row first, where pandas only warned)
    first_long = tmp_path / "first.csv"
    first_long.write_text(lines[0] + long_row + "".join(lines[22:40]), encoding="utf-8")
    assert error_line(invoke("score", first_long, "--run", pca_run)).startswith(
        f"error: {first_long}: line 2 has {fields} fields, the header has 5"
    )
    piped = runner.invoke(
        app,
        ["score", "-", "--run", str(pca_run)],
        input=first_long.read_text(encoding="utf-8"),
    )
    assert error_line(piped).startswith(
        f"error: <stdin>: line 2 has {fields} fields, the header has 5"
    )


# ---------------------------------------------------------------- 14. mixed offsets in a time column


def test_mixed_aware_and_naive_times_are_refused_naming_the_line(
    tmp_path: Path, sensor_csv: Path, pca_run: Path
) -> None:
    import pandas as pd

    frame = pd.read_csv(sensor_csv)
    iso = frame["timestamp"].str.replace(" ", "T")
    frame["timestamp"] = iso.where(frame.index >= 20, iso + "+01:00")
    mixed = tmp_path / "mixed.csv"
    frame.to_csv(mixed, index=False)
    expected = (
        f"error: {mixed}: time '2026-01-01T00:20:00' in column 'timestamp' at line 22 has no UTC offset, "
        "unlike the first time '2026-01-01T00:00:00+01:00' (hint: give every time the same form)"
    )
    assert error_line(invoke("score", mixed, "--run", pca_run)) == expected
    assert (
        error_line(
            invoke("train", mixed, "--arch", "pca", "--runs-dir", tmp_path / "runs")
        )
        == expected
    )
    frame["timestamp"] = iso + "Z"  # every time aware: read as before
    frame.to_csv(mixed, index=False)
    assert invoke("score", mixed, "--run", pca_run).exit_code == 0


# ---------------------------------------------------------------- 15, 20. the Python API


def test_integer_column_names_fit_then_predict_on_the_same_frame(
    sensor_csv: Path,
) -> None:
    import pandas as pd

    from rareevent.detector import RareEventDetector

    rows = pd.read_csv(sensor_csv)[["s1", "s2", "s3"]].to_numpy()
    detector = RareEventDetector(arch="pca", lookback=3).fit(pd.DataFrame(rows))
    assert detector.feature_names_in_.tolist() == ["0", "1", "2"]
    scores = detector.window_scores(pd.DataFrame(rows))
    assert (
        scores.shape == (len(rows) - 2,)
        and np.isfinite(scores).all()
        and scores.std() > 0
    )
    np.testing.assert_array_equal(scores, detector.window_scores(rows))
    assert detector.predict(pd.DataFrame(rows)).shape == (len(rows),)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["a", "a", "b"], "X has repeated column names 'a': name every column once"),
        ([1, "1", 2], "X has repeated column names '1': name every column once"),
        (["a", "", "b"], "X has an empty column name (column 1): name every column"),
    ],
)
def test_repeated_or_empty_column_names_are_refused_at_fit(
    tmp_path: Path, sensor_csv: Path, columns: list[Any], message: str
) -> None:
    import pandas as pd

    from rareevent.detector import RareEventDetector
    from rareevent.errors import RareEventError

    rows = pd.read_csv(sensor_csv)[["s1", "s2", "s3"]].to_numpy()
    with pytest.raises(RareEventError) as info:
        RareEventDetector(arch="pca", lookback=3).fit(
            pd.DataFrame(rows, columns=columns)
        )
    assert str(info.value) == message


def test_api_messages_give_the_real_reason(sensor_csv: Path) -> None:
    import pandas as pd

    from rareevent.detector import RareEventDetector
    from rareevent.errors import RareEventError

    frame = pd.read_csv(sensor_csv)
    rows, labels = (
        frame[["s1", "s2", "s3"]].to_numpy(),
        frame["label"].to_numpy().copy(),
    )
    with pytest.raises(RareEventError, match=r"^lookback must be an integer, got '5'$"):
        RareEventDetector(lookback="5").fit(rows)
    labels[7] = 2
    with pytest.raises(
        RareEventError, match=r"^y: labels must be 0 or 1, got 2 at row 7$"
    ):
        RareEventDetector(arch="pca", lookback=3).fit(rows, labels)


# ---------------------------------------------------------------- 20. CLI messages


def test_update_names_valid_frac_alone(
    tmp_path: Path, sensor_csv: Path, pca_run: Path
) -> None:
    result = invoke(
        "update", pca_run, sensor_csv, "--valid-frac", "0.95", "--runs-dir", tmp_path
    )
    assert (
        error_line(result)
        == "error: --valid-frac = 0.95 leaves too little to train on: keep it below 0.9"
    )


@pytest.mark.parametrize("value", ["1e999", "inf", "nan"])
def test_max_gap_that_is_not_finite_says_so(
    tmp_path: Path, sensor_csv: Path, value: str
) -> None:
    result = invoke(
        "train", sensor_csv, "--arch", "pca", "--max-gap", value, "--runs-dir", tmp_path
    )
    assert (
        error_line(result)
        == f"error: --max-gap {value!r} is not a finite number: give a duration like 10min, a number or a multiple like 5x"
    )


# ---------------------------------------------------------------- 18. Spark masters


@pytest.mark.parametrize("master", ["bogus", "local[abc]", "local[0]", "spark:/x"])
def test_a_bad_spark_master_is_one_line_before_any_jvm_starts(
    tmp_path: Path, fleet_dir: Path, fleet_run: Path, master: str
) -> None:
    pytest.importorskip("pyspark")
    result = invoke(
        "score",
        fleet_dir / "fleet.parquet",
        "--group",
        "asset",
        "--run",
        fleet_run,
        "--engine",
        "spark",
        "--master",
        master,
        "--output",
        tmp_path / "o.parquet",
    )
    assert (
        error_line(result)
        == f"error: --master {master!r} is not a Spark master URL: use local[*], local[N], spark://HOST:PORT, k8s://HOST:PORT or yarn"
    )
    assert "Java" not in result.output and not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[*]",
        "local[2]",
        "local[*,3]",
        "local-cluster[2, 1, 1024]",
        "spark://host:7077",
        "k8s://https://host:443",
        "yarn",
    ],
)
def test_spark_master_urls_that_spark_takes_pass_the_check(master: str) -> None:
    from rareevent.spark import check_master

    check_master(master)
