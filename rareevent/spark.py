"""rareevent on Apache Spark: one series per group, the same code and results as the CLI.

:func:`score` runs a saved run (or a ``--per-group`` run) over a Spark
DataFrame with ``groupBy(group).applyInPandas``: each group is sorted by
time and scored alone by the stream scorer the CLI uses, so its windows are
the CLI's for that asset's own file, row for row. Memory per task is one
group's rows and one model. :func:`train` fits one run per group on the
executors into a shared runs folder (``--per-group``).

Needs the extra ``rareevent[spark]`` (pyspark, pyarrow) and Java 17.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rareevent.errors import RareEventError
from rareevent.fleet import (
    check_group_folder,
    read_fleet,
    save_group_run,
    train_series,
    write_fleet_summary,
)
from rareevent.options import InputSpec, ScoreSpec, TrainSpec
from rareevent.record import RunRecord
from rareevent.runs import check_runs_dir, read_record
from rareevent.series import (
    Series,
    expand,
    frame_table,
    in_time_order,
    is_table,
    naming,
    validate_series,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise RareEventError(
            "`engine=spark` needs pyspark", hint="pip install 'rareevent[spark]'"
        ) from None
    return pyspark


# the master URLs Spark 4 takes
# (https://spark.apache.org/docs/latest/submitting-applications.html#master-urls)
MASTER_URL = re.compile(
    r"local(\[(\*|[1-9]\d*)(,\s*[1-9]\d*)?\])?"
    r"|local-cluster\[\s*[1-9]\d*\s*,\s*[1-9]\d*\s*,\s*[1-9]\d*\s*\]"
    r"|(spark|k8s)://\S+|yarn"
)


def check_master(master: str) -> None:
    """Refuse a master that is no Spark master URL before the JVM starts: Spark would
    print its stack trace and exit.
    """
    if not MASTER_URL.fullmatch(master):
        raise RareEventError(
            f"master {master!r} is not a Spark master URL: use local[*], local[N], "
            "spark://HOST:PORT, k8s://HOST:PORT or yarn",
            param="master",
        )


def session(master: str = "local[*]", app_name: str = "rareevent") -> SparkSession:
    """A Spark session for rareevent: UTC session time, Arrow transfers, workers on this Python.

    Parameters
    ----------
    master : str, default="local[*]"
        ``local[*]``, ``local[N]``, ``spark://HOST:PORT``, ``k8s://HOST:PORT``
        or ``yarn``.
    app_name : str, default="rareevent"
        The Spark application's name.

    Returns
    -------
    SparkSession
        A new session, or the one already running.

    Raises
    ------
    RareEventError
        A malformed master URL, pyspark missing, or Spark unable to start.
    """
    check_master(master)
    _pyspark()
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    try:
        return (
            SparkSession.builder.master(master)
            .appName(app_name)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
    except (
        Exception
    ) as exc:  # no Java, a bad master URL: py4j and pyspark raise many types
        java = os.environ.get("JAVA_HOME") or shutil.which(
            "java"
        )  # the hint only where Java is missing: it misleads where it is there
        raise RareEventError(
            f"cannot start Spark with `master={master}` ({' '.join(str(exc).split())[:120]})",
            hint=None if java else "Spark needs Java 17 on PATH or JAVA_HOME",
        ) from None


def _schema(
    df: DataFrame, record: RunRecord, group: str, time: str | None, label: str | None
) -> Any:
    """The output schema: the group column as in ``df``, then the CLI's window columns."""
    from pyspark.sql import types as T

    fields = [
        T.StructField(group, df.schema[group].dataType, False),
        T.StructField("row", T.LongType(), False),
    ]
    if time is not None:
        numeric = isinstance(df.schema[time].dataType, T.NumericType) and not (
            record.reading or {}
        ).get("time_unit")
        fields.append(
            T.StructField(
                "time", T.DoubleType() if numeric else T.TimestampNTZType(), False
            )
        )
    fields += [
        T.StructField("error", T.FloatType(), False),
        T.StructField("flagged", T.ByteType(), False),
        T.StructField("top_features", T.StringType(), False),
    ]
    if label is not None:
        fields.append(T.StructField("label", T.ByteType(), False))
    return T.StructType(fields)


def _group(df: DataFrame, spec: InputSpec) -> str:
    """The group column ``spec`` names, which ``df`` must hold: every group is one series."""
    if spec.group is None:
        raise RareEventError(
            "Spark works one group at a time: give `group` in the input spec",
            param="group",
        )
    if spec.group not in df.columns:
        raise RareEventError(
            f"group names unknown column {spec.group!r}",
            hint=f"columns are {', '.join(df.columns)}",
        )
    return spec.group


def _column(
    df: DataFrame, given: str | None, trained: str | None, what: str
) -> str | None:
    """The time or label column of ``df``: the one given (it must exist), else the run's
    when ``df`` has it.
    """
    if given is not None and given not in df.columns:
        raise RareEventError(
            f"{what} names unknown column {given!r}",
            hint=f"columns are {', '.join(df.columns)}",
        )
    name = given or trained
    return name if name in df.columns else None


def score(df: DataFrame, run: str | Path, spec: ScoreSpec) -> DataFrame:
    """Window scores of every group of ``df`` (the column ``spec.input.group``):
    ``group``, ``row``, ``time``, ``error``, ``flagged``, ``top_features``, ``label``.

    ``run`` is a run folder (one model for every group) or a ``--per-group``
    folder (each group its own run; a group without one fails the job). It
    must be readable at the same path on every executor. Within a group the
    rows are sorted by ``time`` (default: the run's time column) and scored
    as the CLI scores that asset's own file: ``row`` counts the group's rows
    in time order from 0.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        The rows of every group, with the run's sensor columns and the group
        column.
    run : str or Path
        A run folder or a ``--per-group`` run folder, at the same path on
        every executor.
    spec : ScoreSpec
        ``spec.input.group`` names the group column; the time and label
        columns default to the run's.

    Returns
    -------
    pyspark.sql.DataFrame
        One row per window: the group, ``row``, ``time``, ``error``,
        ``flagged``, ``top_features``, ``label``. Lazy, as Spark is.

    Raises
    ------
    RareEventError
        No group column, or a column the run needs is missing.

    Examples
    --------
    >>> from rareevent import spark
    >>> from rareevent.options import InputSpec, ScoreSpec
    >>> session = spark.session("local[2]")  # doctest: +SKIP
    >>> df = session.read.parquet("sample_data/fleet/fleet.parquet")  # doctest: +SKIP
    >>> spec = ScoreSpec(InputSpec(group="asset"))
    >>> windows = spark.score(df, "runs/fleet", spec)  # doctest: +SKIP
    """
    from rareevent.fleet_score import score_frame

    folder = Path(run).resolve()
    fleet = read_fleet(folder)
    record = (
        read_record(folder / next(iter(fleet["runs"])))
        if fleet is not None
        else read_record(folder)
    )
    group = _group(df, spec.input)
    time = _column(df, spec.input.time, record.time_column, "time")
    label = _column(df, spec.input.label, record.label_column, "label")
    spec = replace(spec, input=replace(spec.input, time=time, label=label))
    schema = _schema(df, record, group, time, label)

    def score_group(frame: pd.DataFrame) -> pd.DataFrame:
        value = frame[group].iloc[0]
        series = Series(Path(f"{group}={value}"), str(value))
        windows, _ = score_frame(frame, series, folder, spec, sort_by_time=True)
        assert windows is not None, "score_frame returns the windows when given no sink"
        windows.insert(0, group, value)
        return _for_arrow(windows)

    return _by_group(df, group).applyInPandas(score_group, schema)


def _by_group(df: DataFrame, group: str) -> Any:
    """``df`` grouped by ``group`` over ``spark.sql.shuffle.partitions`` tasks.

    Adaptive execution would coalesce a fleet's partitions into a few tasks
    (three small groups into one): a fixed count keeps the groups apart, so
    the cores share them out as they finish.
    """
    partitions = df.sparkSession.conf.get("spark.sql.shuffle.partitions")
    assert partitions is not None, "Spark sets a default for it (200)"
    tasks = max(int(partitions), df.sparkSession.sparkContext.defaultParallelism)
    return df.repartition(tasks, group).groupBy(group)


def _for_arrow(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain objects: pyspark cannot send pandas' Arrow-backed strings
    once they span several chunks.
    """
    return frame.astype(
        {
            name: object
            for name in frame.columns
            if pd.api.types.is_string_dtype(frame[name])
        }
    )


def train(
    df: DataFrame,
    spec: TrainSpec,
    *,
    runs_dir: str | Path,
    per_group: bool = True,
    name: str | None = None,
    detector: Any = None,
    overwrite: bool = False,
) -> Path:
    """One run per group of ``df``, each trained on an executor, into
    ``runs_dir/NAME/<group>/`` with ``fleet.json``.

    ``runs_dir`` must be a path every executor can write (a shared or
    mounted folder on a cluster). The folder appears complete or not at
    all. ``detector`` (a :class:`RareEventDetector`) gives the parameters;
    each group gets a fresh copy. The fleet model (one run over all groups)
    trains on one machine: ``rareevent train DATA --group COLUMN``.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        The rows of every group.
    spec : TrainSpec
        ``spec.input.group`` names the group column.
    runs_dir : str or Path
        A folder every executor can write.
    per_group : bool, default=True
        Must be True: one run per group.
    name : str, optional
        The ``--per-group`` run folder's name.
    detector : RareEventDetector, optional
        The parameters (default: ``RareEventDetector()``).
    overwrite : bool, default=False
        Replace a run folder of the same name.

    Returns
    -------
    Path
        The ``--per-group`` run folder.

    Raises
    ------
    RareEventError
        ``per_group=False``, a bad parameter or name, or a group that fails
        to train (the message names it).
    """
    from rareevent.estimator import RareEventDetector
    from rareevent.storage import atomic_folder, check_free, remove_stale_temporaries
    from rareevent.training import check_options

    if not per_group:
        raise RareEventError(
            "rareevent.spark.train fits one run per group (per_group=True)",
            hint="the fleet model (one run over all groups) trains on one machine: "
            "rareevent.fleet.train_fleet",
        )
    group = _group(df, spec.input)
    detector = detector or RareEventDetector()
    name = check_options(detector, name)
    remove_stale_temporaries(
        check_runs_dir(runs_dir)
    )  # what a killed training left, as save_run clears it for a plain run
    target = check_free(check_runs_dir(runs_dir) / name, overwrite)
    params = detector.get_params()
    with atomic_folder(target, overwrite=overwrite) as folder:
        shared = str(folder.resolve())

        def fit_group(frame: pd.DataFrame) -> pd.DataFrame:
            value = str(frame[group].iloc[0])
            series = Series(Path(f"{group}={value}"), value)
            raw = frame_table(frame, series.path, spec.input)
            with naming(series, raw.fmt):
                raw.frame = in_time_order(
                    raw.frame, raw.fmt, raw.columns.time, raw.reading
                )
            check_group_folder(series)
            data = validate_series(series, raw, raw.frame, spec.input.fill)
            result = train_series(
                [(series, data)], RareEventDetector(**params), spec, name=value
            )
            return _for_arrow(
                pd.DataFrame(
                    {
                        "group": [value],
                        "summary": [
                            json.dumps(
                                save_group_run(Path(shared), result, group),
                                allow_nan=False,
                            )
                        ],
                    }
                )
            )

        rows = _collect(
            _by_group(df, group).applyInPandas(
                fit_group, "group string, summary string"
            )
        )
        summary = {
            "format_version": 1,
            "name": name,
            "group_column": group,
            "runs": {
                row["group"]: json.loads(row["summary"])
                for row in sorted(rows, key=lambda r: r["group"])
            },
        }
        write_fleet_summary(folder, summary)
    return target


@contextmanager
def _executor_errors() -> Iterator[None]:
    """A RareEventError raised on an executor comes back as itself (one line), not as a
    Java stack.
    """
    try:
        yield
    except RareEventError:
        raise
    except (
        Exception
    ) as exc:  # pyspark wraps executor errors in PythonException / Py4JJavaError
        match = re.search(r"RareEventError: (.+)", str(exc))
        if match:
            raise RareEventError(match.group(1).strip()) from None
        raise


def _collect(df: DataFrame) -> list[Any]:
    with _executor_errors():
        return df.collect()


def read_files(
    session: SparkSession, inputs: Sequence[str | Path]
) -> tuple[DataFrame, int]:
    """The rows of ``inputs`` (files or globs, all CSV with a header or all Parquet) as
    one DataFrame, and how many files they were.
    """
    files = [str(path) for path in expand(inputs)]
    if len({is_table(path) for path in files}) > 1:
        raise RareEventError(
            "Spark reads either CSV or Parquet files, not both at once"
        )
    if is_table(files[0]):
        return session.read.parquet(*files), len(files)
    return session.read.option("header", True).csv(files), len(files)


def write_parquet(windows: DataFrame, output: str | Path) -> None:
    """Write the window scores to ``output`` as a Parquet folder, whole or not at all."""
    from rareevent.storage import atomic_folder

    with atomic_folder(output, overwrite=True) as folder, _executor_errors():
        windows.write.mode("overwrite").parquet(str(folder.resolve()))
