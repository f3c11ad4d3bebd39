"""Scoring a fleet: every series scored alone, on all cores, written in a stable order.

Each series (a file, or one group of a file) is scored exactly as it would be
on its own: a CSV file streams through :func:`rareevent.scoring.score_csv`;
a group or a Parquet table goes through the same stream scorer from a frame.
With ``jobs`` above 1 the series are shared among worker processes (each
loads the run once); every worker writes its series' windows to a part file
of its own and the parts are joined in the order of the series, so the
output is the same for any ``jobs`` and no process holds the whole fleet.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from rareevent import gaps
from rareevent.errors import RareEventError
from rareevent.fleet import group_run, read_fleet
from rareevent.forward import one_thread
from rareevent.load import (
    Columns,
    CsvFormat,
    Reading,
    SensorData,
    columns_for_model,
    sniff,
    validate_frame,
)
from rareevent.model import PREDICT_BATCH
from rareevent.options import ScoreSpec
from rareevent.record import RunView
from rareevent.runs import load_scorer
from rareevent.scoring import ScoreResult, StreamScorer, score_csv, to_the_end
from rareevent.series import (
    Series,
    expand,
    group_values,
    groups_of,
    in_time_order,
    is_table,
    naming,
    read_table,
    read_whole,
    table_format,
    table_header,
    table_reading,
)
from rareevent.storage import temp_beside
from rareevent.window_stream import trained_columns
from rareevent.window_writer import WindowWriter

_LOADED: dict[
    str, tuple[RunView, Any]
] = {}  # run folder -> (record, detector), once per process


@dataclass(frozen=True)
class ScoreJob:
    """One unit of work for any process: series of one file, each with its run; all plain values.

    A CSV long table is one job (read once, its groups scored in turn); a
    Parquet group is a job of its own (read alone with a filter).
    """

    path: Path
    series: tuple[Series, ...]
    runs: tuple[Path, ...]
    column: str  # the name of the series column the windows open with
    spec: ScoreSpec = field(
        default_factory=ScoreSpec
    )  # its input's group: the group column
    part: Path | None = None  # where the windows go (CSV); None: not written
    report: bool = False  # keep what an HTML report draws of each series


@dataclass
class SeriesScore:
    """What scoring one series returns to the parent process."""

    series: Series
    run: str
    n_rows: int
    n_windows: int
    n_flagged: int
    n_segments: int
    n_filled: int
    threshold: float
    n_alarms: int
    metrics: dict[str, Any] | None
    ignored: list[str]
    alarms: list[dict[str, Any]] = field(
        default_factory=list
    )  # the episodes, as ScoreResult.alarms
    drawn: tuple[pd.DataFrame, SensorData, Path] | None = (
        None  # with ``ScoreJob.report``: windows (row, time, error, flagged), raw rows, run
    )

    def summary(self) -> dict[str, Any]:
        """The line of this series in ``--metrics-out`` and the printed table."""
        return {
            "series": self.series.name,
            "file": str(self.series.path),
            "run": self.run,
            "rows": self.n_rows,
            "windows": self.n_windows,
            "flagged": self.n_flagged,
            "alarms": self.n_alarms,
            "threshold": self.threshold,
            "segments": self.n_segments,
            "metrics": self.metrics,
        }


def loaded_run(folder: Path) -> tuple[RunView, Any]:
    """A run folder's record and detector, loaded once per process."""
    key = str(Path(folder).resolve())
    if key not in _LOADED:
        _LOADED[key] = load_scorer(folder)
    return _LOADED[key]


def plan(
    inputs: Sequence[str | Path], run: Path, spec: ScoreSpec | None = None
) -> list[ScoreJob]:
    """The jobs that score every series of ``inputs``, in a stable order (files as
    listed or globbed; groups sorted).

    A ``--per-group`` run gives each group its own run; a group it has no
    run for is an error before anything is scored.
    """
    spec = spec or ScoreSpec()
    group = spec.input.group
    fleet = read_fleet(run)
    if fleet is not None and group is None:
        raise RareEventError(
            f"{run}: is a per-group run: name the group column with `group={fleet['group_column']}`"
        )
    jobs: list[ScoreJob] = []
    names: set[str] = set()
    for path in expand(inputs):
        found = _series_of(path, group, spec.input.read.encoding)
        for series in found:
            if series.name in names:
                raise RareEventError(
                    f"{series.where}: this group appears in another file too",
                    hint="a series must come from one file",
                )
            names.add(series.name)
        runs = tuple(
            run if fleet is None else group_run(run, fleet, series) for series in found
        )
        job = ScoreJob(path, tuple(found), runs, column=group or "file", spec=spec)
        if group is not None and is_table(path):
            jobs += [
                replace(job, series=(series,), runs=(folder,))
                for series, folder in zip(found, runs, strict=True)
            ]
        else:
            jobs.append(job)
    return jobs


def _series_of(
    path: Path, group: str | None, encoding: str | None = None
) -> list[Series]:
    """The series of one file: the file itself, or one per value of ``group`` (read from
    that column alone).
    """
    if group is None:
        return [Series(path)]
    if is_table(path):
        fmt = table_format(path, table_header(path, group))
        read = lambda: read_table(path, [group])  # noqa: E731
    else:
        fmt = sniff(path, encoding)
        read = functools.partial(
            pd.read_csv,
            path,
            sep=fmt.delimiter,
            usecols=[group],
            dtype=str,
            encoding=fmt.codec,
            skipinitialspace=True,
        )
    if group not in fmt.header:
        raise RareEventError(
            f"{path}: `group` names unknown column {group!r}",
            hint=f"columns are {', '.join(fmt.header)}",
        )
    return [Series(path, value) for value in group_values(read()[group], fmt, group)]


def score_job(job: ScoreJob) -> list[SeriesScore]:
    """Score the series of one job, each alone; their windows (opening with the series
    column) go to ``job.part``.
    """
    scores = []
    with _part_writer(job.part) as writer:
        if job.spec.input.group is None:
            series, folder = job.series[0], job.runs[0]
            record, detector = loaded_run(folder)
            sink = (
                None
                if writer is None
                else _series_sink(writer, job.column, series.name)
            )
            if is_table(job.path):
                frame = read_table(job.path)
                result = score_frame(frame, series, folder, job.spec, sink=sink)[1]
                raw = _drawn_rows(job, frame, series, folder, None)
            else:
                result = score_csv(job.path, record, detector, job.spec, sink=sink)
                raw = _drawn_rows(job, None, series, folder, None)
            scores.append(_score(series, record, result, None, (raw, folder)))
        else:
            for series, folder, frame, reading in _group_frames(job):
                sink = (
                    None
                    if writer is None
                    else _series_sink(writer, job.column, series.name)
                )
                result = score_frame(
                    frame, series, folder, job.spec, sink=sink, reading=reading
                )[1]
                raw = _drawn_rows(job, frame, series, folder, reading)
                scores.append(
                    _score(
                        series,
                        loaded_run(folder)[0],
                        result,
                        job.spec.input.group,
                        (raw, folder),
                    )
                )
    return scores


def _group_frames(
    job: ScoreJob,
) -> Iterator[tuple[Series, Path, pd.DataFrame, Reading | None]]:
    """The raw rows of each group of a job, and how to read them: a Parquet group read
    alone, or a CSV read once and split.
    """
    group = job.spec.input.group
    assert group is not None, "a job with a group column"
    if is_table(job.path):
        series, folder = job.series[0], job.runs[0]
        yield (
            series,
            folder,
            read_table(job.path, group=group, value=series.group),
            None,
        )
        return
    record = loaded_run(job.runs[0])[0]
    raw = read_whole(
        job.path,
        job.spec.input,
        trained=trained_columns(record, job.spec.input),
        base=Reading.from_record(record.reading),
    )
    frames = dict(groups_of(raw, group))
    for series, folder in zip(job.series, job.runs, strict=True):
        assert series.group is not None, (
            "a job with a group column holds one series per group value"
        )
        yield series, folder, frames[series.group], raw.reading


def _drawn_rows(
    job: ScoreJob,
    frame: pd.DataFrame | None,
    series: Series,
    folder: Path,
    reading: Reading | None,
) -> SensorData | None:
    """With ``job.report``: the raw rows of a series as the report's traces show them."""
    if not job.report:
        return None
    record = loaded_run(folder)[0]
    if frame is None:  # a CSV file of its own, read as `score --html` reads it
        from rareevent.html_report import read_raw

        return read_raw(job.path, record, job.spec.input)
    frame, fmt, columns, reading = _frame_roles(
        frame, series, folder, job.spec, reading
    )
    with naming(series, fmt):
        data = validate_frame(
            frame, fmt, columns, fill=job.spec.input.fill, reading=reading
        )
    return gaps.regrid(data, gaps.run_grid(record.resample), job.spec.input.fill)[0]


def _score(
    series: Series,
    record: RunView,
    result: ScoreResult,
    group: str | None,
    rows: tuple[SensorData | None, Path] | None = None,
) -> SeriesScore:
    drawn = None
    raw, folder = rows if rows is not None else (None, None)
    if raw is not None and folder is not None:
        windows = {"row": result.rows, "error": result.error, "flagged": result.flagged}
        if result.time is not None:
            windows["time"] = result.time
        drawn = (pd.DataFrame(windows).astype({"flagged": "int8"}), raw, folder)
    return SeriesScore(
        series=series,
        run=record.name,
        n_rows=result.n_rows,
        n_windows=result.n_windows,
        n_flagged=int(result.flagged.sum()),
        n_segments=result.n_segments,
        n_filled=result.n_filled,
        threshold=result.threshold,
        n_alarms=len(result.alarms),
        metrics=result.metrics,
        ignored=[c for c in result.columns.ignored if c != group],
        alarms=result.alarms,
        drawn=drawn,
    )


def _series_sink(
    writer: WindowWriter, column: str, name: str
) -> Callable[[pd.DataFrame], None]:
    """A sink that opens every block of windows with the series column."""

    def sink(frame: pd.DataFrame) -> None:
        frame.insert(0, column, name)
        writer(frame)

    return sink


@contextmanager
def _part_writer(part: Path | None) -> Iterator[WindowWriter | None]:
    if part is None:
        yield None
        return
    with WindowWriter(part, "csv") as writer:
        yield writer
        writer.finish()


def score_fleet(
    jobs: Sequence[ScoreJob], workers: int, output: Path | None = None
) -> list[SeriesScore]:
    """Score every job, in ``workers`` processes, and join their windows into ``output``
    (CSV) in job order.

    The parts are written next to ``output`` and removed afterwards; the
    result is the same for any ``workers``.
    """
    if workers < 1:
        raise RareEventError(
            f"workers must be at least 1, got {workers}", param="workers"
        )
    parts = None
    if output is not None:
        parts = temp_beside(output, ".parts")
        parts.mkdir()
        jobs = [replace(job, part=parts / f"{i:06d}.csv") for i, job in enumerate(jobs)]
    try:
        if workers == 1 or len(jobs) == 1:
            found = [score_job(job) for job in jobs]
        else:
            with ProcessPoolExecutor(
                max_workers=min(workers, len(jobs)),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=one_thread,
            ) as pool:
                found = list(pool.map(score_job, jobs))
        if output is not None:
            _join([job.part for job in jobs], output)
    finally:
        if parts is not None:
            shutil.rmtree(parts, ignore_errors=True)
    return [score for scores in found for score in scores]


def _join(parts: Sequence[Path | None], output: Path) -> None:
    """Concatenate CSV parts into ``output`` with one header (a part without windows is empty)."""
    with open(output, "w", encoding="utf-8", newline="") as target:
        header = None
        for part in parts:
            if part is None or not part.is_file() or part.stat().st_size == 0:
                continue
            with open(part, encoding="utf-8", newline="") as source:
                first = source.readline()
                if header is None:
                    header = first
                    target.write(first)
                shutil.copyfileobj(source, target, 1 << 20)


def default_jobs() -> int:
    """``--jobs`` by default: the cores this process may use."""
    return (
        len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count() or 1
    )


def _frame_roles(
    frame: pd.DataFrame,
    series: Series,
    folder: Path,
    spec: ScoreSpec,
    reading: Reading | None,
) -> tuple[pd.DataFrame, CsvFormat, Columns, Reading]:
    """A series' raw rows without the group column, numbered from 0; their roles and reading."""
    record = loaded_run(folder)[0]
    group = spec.input.group
    frame = frame.drop(columns=[group]) if group is not None else frame
    frame = frame.reset_index(drop=True)
    fmt = table_format(series.where, frame.columns)
    columns = columns_for_model(fmt, trained_columns(record, spec.input))
    if (
        reading is None
    ):  # a typed table: numbers need no decimal mark, times only a format when they are text
        reading = table_reading(
            frame, fmt, columns, spec.input.read, Reading.from_record(record.reading)
        )
    return frame, fmt, columns, reading


def score_frame(
    frame: pd.DataFrame,
    series: Series,
    folder: Path,
    spec: ScoreSpec,
    *,
    sink: Callable[[pd.DataFrame], None] | None = None,
    reading: Reading | None = None,
    sort_by_time: bool = False,
) -> tuple[pd.DataFrame | None, ScoreResult]:
    """Score the raw rows of one series (a group, a Parquet table, a Spark group) as one
    file of its own.

    The rows are numbered 0, 1, ... in the order given (the rows of the
    asset's own file), or with ``sort_by_time`` in the order of their
    times, read as the time column is read (day-first text dates included)
    and stable among equal times; errors name the series and that row. The
    model sees the same blocks of windows as :func:`score_csv`, so the
    windows equal those of the series written to a file and scored alone.
    Without ``sink`` the windows are returned. ``reading`` says how the
    cells are read when the file they come from settled it (default: as a
    typed table's).
    """
    record, detector = loaded_run(folder)
    frame, fmt, columns, reading = _frame_roles(frame, series, folder, spec, reading)
    if sort_by_time:
        with naming(series, fmt):
            frame = in_time_order(frame, fmt, columns.time, reading)
    scorer = StreamScorer(detector, record, series.where, spec, batch=PREDICT_BATCH)
    scorer.begin(fmt, reading)
    kept: list[pd.DataFrame] = []
    emit = sink or kept.append
    chunks = (
        frame.iloc[start : start + spec.chunk_rows]
        for start in range(0, len(frame), spec.chunk_rows)
    )
    with naming(series, fmt):
        for windows in to_the_end(scorer, chunks):
            if len(windows):
                emit(windows)
        result = scorer.close()
    return (
        None
        if sink is not None
        else pd.concat(kept, ignore_index=True)
        if kept
        else pd.DataFrame()
    ), result
