"""The HTML report (``score --html``, ``report --html``) opened in a real headless Chromium, and ``score --episodes``.

The browser tests drive Debian's ``chromium`` with playwright-python
(``executable_path``: no downloaded browser); they are skipped, with the
reason, only when chromium or playwright is missing. ``.ci/run`` installs
chromium where it is missing.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from rareevent.html_report import minmax_indices

runner = CliRunner()
RAREEVENT = str(Path(sys.executable).with_name("rareevent"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def run_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAREEVENT, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.fixture(scope="module")
def scored(
    tmp_path_factory: pytest.TempPathFactory,
    sensor_csv: Path,
    trained_runs: dict[str, Path],
) -> dict[str, object]:
    """One run of the installed entry point: ``score`` with ``--html``, ``--episodes`` and ``--output`` (JSON), piped."""
    folder = tmp_path_factory.mktemp("scored")
    done = run_cli(
        "score",
        sensor_csv,
        "--run",
        trained_runs["ae"],
        "--html",
        "report.html",
        "--episodes",
        "episodes.csv",
        "--output",
        "windows.json",
        "--show",
        "1000",
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    return {
        "folder": folder,
        "stdout": done.stdout,
        "episodes": pd.read_csv(folder / "episodes.csv"),
        "json": json.loads((folder / "windows.json").read_text()),
    }


def _alarm_lines(stdout: str) -> list[list[str]]:
    """The cells of the printed alarm table's rows (full width off a terminal: one line per row)."""
    lines = stdout.split("alarms (top", 1)[1].splitlines()
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in lines
        if line.startswith("│") and re.match(r"│ \d{4}-", line)
    ]


@pytest.mark.slow
def test_episodes_csv_is_the_alarm_lines_of_score(scored: dict[str, object]) -> None:
    episodes, stdout = scored["episodes"], scored["stdout"]
    count = int(re.search(r"(\d+) alarm episode\(s\)", stdout).group(1))
    assert count >= 2 and len(episodes) == count == len(scored["json"]["alarms"])
    assert list(episodes.columns) == [
        "series",
        "start",
        "end",
        "start_line",
        "end_line",
        "duration_s",
        "windows",
        "peak_score",
        "peak_over_threshold",
        "top_sensors",
    ]
    lines = _alarm_lines(stdout)
    assert len(lines) == count
    threshold = scored["json"]["summary"]["threshold"]
    for line, (_, row), alarm in zip(
        lines, episodes.iterrows(), scored["json"]["alarms"]
    ):
        start, end, duration, rows, windows, peak, top = line
        assert (
            (row["start"], row["end"])
            == (start, end)
            == (alarm["start_time"], alarm["end_time"])
        )
        # the table and the CSV count file lines (header: line 1), the JSON 0-based rows
        assert rows == f"{row['start_line']}-{row['end_line']}"
        assert row["start_line"] == alarm["start_row"] + 2
        assert int(windows) == row["windows"] == alarm["windows"]
        assert f"{row['peak_score']:.3g}" == peak and row[
            "peak_score"
        ] == pytest.approx(alarm["peak_error"])
        assert row["peak_over_threshold"] == pytest.approx(
            alarm["peak_error"] / threshold
        )
        assert top.split() == [
            f"{name}:{share:.2f}"
            for name, share in json.loads(row["top_sensors"]).items()
        ]  # the console shows the window CSV's text; the episodes CSV a JSON object
        minutes = (
            pd.Timestamp(row["end"]) - pd.Timestamp(row["start"])
        ).total_seconds() / 60  # the synthetic file has 1-minute steps
        assert row["duration_s"] == 60 * minutes and duration == (
            f"{int(minutes)}min" if minutes else "0s"
        )


@pytest.mark.slow
def test_alarm_table_is_not_cropped_off_a_terminal(scored: dict[str, object]) -> None:
    """Piped, the table is as wide as its cells: every top-sensor cell whole, no ellipsis."""
    assert "…" not in scored["stdout"]
    assert all(len(line[-1].split()) == 3 for line in _alarm_lines(scored["stdout"]))


def test_minmax_buckets_keep_a_one_window_spike_in_a_million() -> None:
    values = np.random.default_rng(0).normal(0, 0.01, 1_000_000)
    values[654_321] = 50.0
    keep = minmax_indices(values, 1500)
    assert len(keep) <= 3000 and 654_321 in keep and np.all(np.diff(keep) > 0)
    assert np.array_equal(
        minmax_indices(values[:100], 1500), np.arange(100)
    )  # short: every point


def test_html_option_refuses_other_names_and_writes_nothing(
    tmp_path: Path, sensor_csv: Path, trained_runs: dict[str, Path]
) -> None:
    result = runner.invoke(
        app,
        [
            "score",
            str(sensor_csv),
            "--run",
            str(trained_runs["ae"]),
            "--html",
            str(tmp_path / "report.txt"),
        ],
    )
    assert (
        result.exit_code == 2
        and "report.txt" in result.stderr
        and ".html" in result.stderr
    )
    assert list(tmp_path.iterdir()) == []


def test_html_without_plotly_names_the_extra(
    tmp_path: Path,
    sensor_csv: Path,
    trained_runs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        sys.modules, "plotly", None
    )  # import plotly now fails as if it were not installed
    result = runner.invoke(
        app,
        [
            "score",
            str(sensor_csv),
            "--run",
            str(trained_runs["ae"]),
            "--html",
            str(tmp_path / "r.html"),
        ],
    )
    assert (
        result.exit_code == 2
        and "rareevent[plot]" in result.stderr
        and "Traceback" not in result.output
    )
    assert list(tmp_path.iterdir()) == []


def test_runs_save_the_training_range(
    trained_runs: dict[str, Path], sensor_csv: Path
) -> None:
    record = json.loads((trained_runs["ae"] / "run.json").read_text())
    frame = pd.read_csv(sensor_csv)
    train = frame.iloc[slice(*record["splits"]["train"])]
    normal = train[train["label"] == 0][["s1", "s2", "s3"]].to_numpy()
    assert record["train_range"]["percentiles"] == [1.0, 99.0]
    assert np.allclose(record["train_range"]["low"], np.percentile(normal, 1, axis=0))
    assert np.allclose(record["train_range"]["high"], np.percentile(normal, 99, axis=0))


# --- in the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201 - a playwright Browser
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium; .ci/run does it)"
        )
    playwright_api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright is not installed (pip install -e '.[test]')",
    )
    with playwright_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


class Opened:
    """A report open in a fresh offline page, with every request and console message it caused."""

    def __init__(self, browser, path: Path) -> None:  # noqa: ANN001
        self.context = browser.new_context(
            offline=True, viewport={"width": 1280, "height": 900}
        )
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on(
            "console",
            lambda message: (
                self.errors.append(message.text)
                if message.type in ("error", "warning")
                else None
            ),
        )
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

        def route(request_route) -> None:  # noqa: ANN001
            self.requests.append(request_route.request.url)
            if request_route.request.url == path.as_uri():
                request_route.continue_()
            else:
                request_route.abort()

        self.page.route("**/*", route)
        self.page.goto(path.as_uri())

    def close(self) -> None:
        self.context.close()


def _drawn(page, selector: str) -> list[int]:  # noqa: ANN001
    """Per plot under ``selector``: the points of its score trace (else its first) once the SVG line is drawn; 0 before."""
    return page.eval_on_selector_all(
        selector,
        "divs => divs.map(d => (d.data && d.querySelector('.scatterlayer path.js-line') && d.querySelector('.scatterlayer path.js-line').getAttribute('d')) ? (d.data.find(t => t.name === 'window score') || d.data[0]).y.filter(v => v !== null).length : 0)",
    )


@pytest.mark.slow
def test_score_report_in_chromium(
    browser, scored: dict[str, object], sensor_csv: Path
) -> None:  # noqa: ANN001
    path = Path(scored["folder"]) / "report.html"
    opened = Opened(browser, path)
    page = opened.page
    try:
        page.wait_for_function(
            "window.rareevent && window.rareevent.plots >= 2", timeout=30_000
        )  # timeline and PR curve
        sections = page.locator("section.episode")
        assert (
            sections.count() == len(scored["episodes"]) == len(scored["json"]["alarms"])
        )
        page.evaluate("window.rareevent.drawAll()")
        page.wait_for_function(
            "document.querySelectorAll('section.episode[data-rendered]').length === window.rareevent.episodes",
            timeout=30_000,
        )
        assert _drawn(page, "#timeline")[0] > 100 and _drawn(page, "#pr")[0] > 2
        assert opened.requests == [
            path.as_uri()
        ]  # nothing but the file itself was asked for
        assert opened.errors == []

        frame = pd.read_csv(sensor_csv, parse_dates=["timestamp"]).set_index(
            "timestamp"
        )
        traces = page.evaluate(
            "() => Array.from(document.querySelectorAll('section.episode')).map(s => Array.from(s.querySelectorAll('.sensor-plot')).map(d => { var t = d.data.find(t => t.name === d.getAttribute('data-sensor')); return {name: t.name, x: t.x, y: t.y, drawn: !!d.querySelector('path.js-line')}; }))"
        )
        for (_, episode), plots in zip(scored["episodes"].iterrows(), traces):
            top = list(json.loads(episode["top_sensors"]))
            assert [
                plot["name"] for plot in plots
            ] == top  # the run has no context columns
            for plot in plots:
                assert plot["drawn"]
                points = [(x, y) for x, y in zip(plot["x"], plot["y"]) if x is not None]
                times = pd.to_datetime([x for x, _ in points], unit="ms")
                assert (
                    len(points) > 30
                    and times[0] <= pd.Timestamp(episode["start"])
                    and times[-1] >= pd.Timestamp(episode["end"])
                )
                assert np.array_equal(
                    frame.loc[times, plot["name"]].to_numpy(), [y for _, y in points]
                )  # the file's raw values at those times

        page.locator("section.episode").first.scroll_into_view_if_needed()
        _assert_not_blank(page.screenshot())
    finally:
        opened.close()


def _assert_not_blank(png: bytes) -> None:
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.std() > 10 and len(np.unique(image.reshape(-1, 3), axis=0)) > 50


@pytest.mark.slow
def test_report_html_of_a_run_in_chromium(
    browser, tmp_path: Path, trained_runs: dict[str, Path]
) -> None:  # noqa: ANN001
    path = tmp_path / "run.html"
    result = runner.invoke(
        app, ["report", str(trained_runs["ae"]), "--html", str(path)]
    )
    assert result.exit_code == 0, result.output
    model = json.loads(
        re.search(
            r'<script id="report-data" type="application/json">(.*?)</script>',
            path.read_text(),
            re.S,
        ).group(1)
    )
    assert [split[0] for split in model["splits"]] == ["train", "valid", "test"]
    opened = Opened(browser, path)
    try:
        opened.page.wait_for_function(
            "window.rareevent && window.rareevent.plots >= 2", timeout=30_000
        )
        opened.page.evaluate("window.rareevent.drawAll()")
        opened.page.wait_for_function(
            "document.querySelectorAll('section.episode[data-rendered]').length === window.rareevent.episodes",
            timeout=30_000,
        )
        assert (
            opened.page.locator("section.episode").count() == len(model["episodes"]) > 0
        )
        assert all(n > 0 for n in _drawn(opened.page, "section.episode .sensor-plot"))
        assert (
            "validation part" in opened.page.inner_text("body")
            and opened.page.locator("table.metrics").count() == 1
        )
        assert opened.requests == [path.as_uri()] and opened.errors == []
    finally:
        opened.close()


@pytest.mark.slow
def test_fleet_episodes_and_report(
    browser, tmp_path: Path, fleet_dir: Path, fleet_run: Path
) -> None:  # noqa: ANN001
    result = runner.invoke(
        app,
        [
            "score",
            str(fleet_dir / "exports" / "*.csv"),
            "--run",
            str(fleet_run),
            "--jobs",
            "1",
            "--episodes",
            str(tmp_path / "e.csv"),
            "--html",
            str(tmp_path / "f.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    episodes = pd.read_csv(tmp_path / "e.csv")
    cells = [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    ]
    table = {
        row[0]: int(row[4]) for row in cells if row[0].endswith(".csv")
    }  # series (file) -> alarms
    assert len(table) == 3 and sum(table.values()) > 0
    assert episodes.groupby("series").size().to_dict() == {
        name: n for name, n in table.items() if n
    }
    assert f"report written to {tmp_path / 'f.html'}" in " ".join(result.stdout.split())
    path = tmp_path / "f.html"
    page = path.read_text()
    # issue 33.2: every series gets its timeline and episodes, as a file's report
    assert page.count('<section class="series"') == 3
    assert page.count('<script class="report-data"') == 3
    assert page.count('<section class="episode"') == len(episodes)
    opened = Opened(browser, path)
    try:
        opened.page.wait_for_function(
            "window.rareevent && document.querySelectorAll('section.episode[data-rendered]')"
            ".length === window.rareevent.episodes && window.rareevent.plots >= 3",
            timeout=60_000,
        )
        assert opened.errors == [] and opened.requests == [path.as_uri()]
        assert all(n > 100 for n in _drawn(opened.page, "section.series .timeline"))
        drawn = opened.page.eval_on_selector_all(
            "section.series",
            "ss => ss.map(s => [s.getAttribute('data-series'), "
            "s.querySelectorAll('section.episode[data-rendered]').length])",
        )
        assert {name: n for name, n in drawn if n} == {
            name: n for name, n in table.items() if n
        }
    finally:
        opened.close()


def test_html_refuses_standard_input(
    tmp_path: Path, trained_runs: dict[str, Path], sensor_csv: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "score",
            "-",
            "--run",
            str(trained_runs["ae"]),
            "--html",
            str(tmp_path / "r.html"),
        ],
        input=sensor_csv.read_text(),
    )
    assert (
        result.exit_code == 2
        and "--html" in result.stderr
        and "Traceback" not in result.output
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_context_columns_are_drawn_and_marked(tmp_path: Path, sensor_csv: Path) -> None:
    """A run with a context column: every episode shows it after the top sensors, marked as context, over its training band."""
    from tests.conftest import TINY

    trained = runner.invoke(
        app,
        [
            "train",
            str(sensor_csv),
            *TINY,
            "--context",
            "s1",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--name",
            "ctx",
        ],
    )
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(
        app,
        [
            "score",
            str(sensor_csv),
            "--run",
            str(tmp_path / "runs" / "ctx"),
            "--html",
            str(tmp_path / "r.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    model = json.loads(
        re.search(
            r'<script id="report-data" type="application/json">(.*?)</script>',
            page,
            re.S,
        ).group(1)
    )
    record = json.loads((tmp_path / "runs" / "ctx" / "run.json").read_text())
    assert model["episodes"] and model["band_source"].endswith(
        "for context columns the training range, percentiles 1 to 99 of the normal "
        "training rows"
    )
    for episode in model["episodes"]:
        *top, context = episode["traces"]
        assert (
            context["name"] == "s1" and context["context"] and context["share"] is None
        )
        assert context["band"] == pytest.approx(
            [record["train_range"]["low"][0], record["train_range"]["high"][0]],
            rel=1e-5,
        )
        assert all(
            not trace["context"] and trace["name"] in ("s2", "s3") for trace in top
        )
    assert page.count('class="sensor-plot context" data-sensor="s1"') == len(
        model["episodes"]
    )


@pytest.mark.slow
def test_report_plot_draws_against_the_time_column(
    tmp_path: Path, trained_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.figure

    seen: dict[str, object] = {}
    save = matplotlib.figure.Figure.savefig

    def spy(figure: matplotlib.figure.Figure, *args: object, **kwargs: object) -> None:
        seen["label"], seen["x"] = (
            figure.axes[0].get_xlabel(),
            figure.axes[0].lines[0].get_xdata(),
        )
        save(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    result = runner.invoke(
        app, ["report", str(trained_runs["ae"]), "--plot", str(tmp_path / "p.png")]
    )
    assert result.exit_code == 0, result.output
    valid = pd.read_csv(trained_runs["ae"] / "scores.csv").query("split == 'valid'")
    assert seen["label"] == "time (window end)"
    assert list(pd.to_datetime(seen["x"])) == list(pd.to_datetime(valid["time"]))
    assert (tmp_path / "p.png").stat().st_size > 10_000


def _pdf_line_segments(pdf: bytes) -> int:
    """How many straight segments (``x y l``) the PDF's compressed page streams draw."""
    import zlib

    count = 0
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            body = zlib.decompress(stream)
        except zlib.error:
            continue
        count += len(re.findall(rb"-?[\d.]+ -?[\d.]+ l\b", body))
    return count


@pytest.mark.slow
def test_hits_misses_expected_values_and_print_in_chromium(
    browser, tmp_path: Path, sensor_csv: Path, trained_runs: dict[str, Path]
) -> None:  # noqa: ANN001
    """Issue 33.2: is it real? hit/miss marks, what the model expected, charts in a PDF."""
    from rareevent.expected import expected_rows
    from rareevent.runs import load_run

    frame = pd.read_csv(sensor_csv)
    frame.loc[400:405, "label"] = (
        0  # the second event loses its label: its alarm is a miss
    )
    data = tmp_path / "relabelled.csv"
    frame.to_csv(data, index=False, float_format="%.5f")
    path = tmp_path / "r.html"
    done = run_cli(
        "score", data, "--run", trained_runs["ae"], "--html", path, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert f"report written to {path}" in " ".join(done.stdout.split())
    model = json.loads(
        re.search(
            r'<script id="report-data" type="application/json">(.*?)</script>',
            path.read_text(),
            re.S,
        ).group(1)
    )
    labels = frame["label"].to_numpy()
    verdicts = []
    for episode in model["episodes"]:
        first, last = (int(v) - 2 for v in re.findall(r"\d+", episode["covered"])[-2:])
        verdicts.append("hit" if labels[first : last + 1].any() else "miss")
    assert "hit" in verdicts and "miss" in verdicts
    assert [e["verdict"] for e in model["episodes"]] == verdicts

    record, detector = load_run(trained_runs["ae"])
    saved = dict(zip(record.normal_error["features"], record.normal_error["error"]))
    assert set(saved) == {"s1", "s2", "s3"} and all(v > 0 for v in saved.values())
    expected = pd.DataFrame(
        expected_rows(detector, frame[["s1", "s2", "s3"]].to_numpy()),
        columns=["s1", "s2", "s3"],
        index=pd.to_datetime(frame["timestamp"]),
    )

    opened = Opened(browser, path)
    page = opened.page
    try:
        # no scrolling, no drawAll: every chart is drawn in the background
        page.wait_for_function(
            "window.rareevent && document.querySelectorAll('section.episode[data-rendered]')"
            ".length === window.rareevent.episodes",
            timeout=60_000,
        )
        assert opened.errors == [] and opened.requests == [path.as_uri()]
        marks = page.eval_on_selector_all(
            "section.episode", "ss => ss.map(s => s.getAttribute('data-verdict'))"
        )
        assert marks == verdicts
        assert page.locator("section.episode h3 .miss").count() == verdicts.count(
            "miss"
        )
        spans = page.evaluate(
            "() => Object.fromEntries(document.getElementById('timeline').data"
            ".filter(t => t.name.startsWith('alarms')).map(t => [t.name, "
            "t.x.filter(v => v === null).length]))"
        )
        assert spans == {
            "alarms on a labelled event (hit)": verdicts.count("hit"),
            "alarms without a labelled event (miss)": verdicts.count("miss"),
        }
        ticks = page.eval_on_selector_all(
            "#timeline .ytick text", "ts => ts.map(t => t.textContent)"
        )
        low, high = page.evaluate(
            "() => document.getElementById('timeline')._fullLayout.yaxis.range"
        )
        # the labels are the report's own ticks in view (decades, or 1-2-5 over less than
        # two decades), never plotly's minor "2" and "5" beside unlabelled ones
        shown = [v for v in model["timeline"]["ticks"] if low <= np.log10(v) <= high]
        assert ticks and [float(t) for t in ticks] == shown
        title = page.locator("h3.plot-title").bounding_box()
        bar = page.locator("#pr .modebar").bounding_box()
        assert bar is None or bar["y"] >= title["y"] + title["height"]

        plots = page.evaluate(
            "() => Array.from(document.querySelectorAll('section.episode .sensor-plot'))"
            ".map(d => ({name: d.getAttribute('data-sensor'), x: d.data.find(t => "
            "t.name === 'expected').x, y: d.data.find(t => t.name === 'expected').y, "
            "low: d.data.find(t => t.name === 'normal low').y, lines: "
            "d.querySelectorAll('.scatterlayer path.js-line').length}))"
        )
        assert len(plots) == 3 * len(verdicts)
        for plot in plots:
            assert plot["lines"] >= 2  # the reading and what the model expected
            points = [(x, y) for x, y in zip(plot["x"], plot["y"]) if y is not None]
            times = pd.to_datetime([x for x, _ in points], unit="ms")
            assert len(points) > 30
            assert np.allclose(
                [y for _, y in points],
                expected.loc[times, plot["name"]].to_numpy(),
                rtol=1e-5,
                atol=1e-6,
            )
            low = [v for v in plot["low"] if v is not None]
            assert np.allclose(
                np.array([y for _, y in points]) - np.array(low),
                saved[plot["name"]],
                rtol=1e-4,
            )

        drawn = page.pdf()
        page.evaluate(
            "() => document.querySelectorAll('section.episode .sensor-plot')"
            ".forEach(d => Plotly.purge(d))"
        )
        empty = page.pdf()
        # every episode chart is in the print: each adds its traces' segments
        assert _pdf_line_segments(drawn) - _pdf_line_segments(empty) > 30 * len(plots)
    finally:
        opened.close()


def test_the_score_axis_is_labelled_at_decades_only() -> None:
    from rareevent.html_report import log_ticks

    assert log_ticks(np.array([0.003, 0.2, 40.0])) == [
        0.001,
        0.01,
        0.1,
        1.0,
        10.0,
        100.0,
    ]
    # less than two decades: 2 and 5 times them too, as full labels
    assert log_ticks(np.array([0.03, 0.2])) == [
        0.01,
        0.02,
        0.05,
        0.1,
        0.2,
        0.5,
        1.0,
        2.0,
        5.0,
    ]
    assert log_ticks(np.array([np.nan, 0.0])) == []


def test_a_one_window_episode_shows_its_windows_span_not_0s(tmp_path: Path) -> None:
    from rareevent.html_report import _covered_text
    from rareevent.load import Columns, SensorData

    time = pd.date_range("2026-01-01", periods=10, freq="2min").to_numpy()
    data = SensorData(
        path=tmp_path / "x.csv",
        columns=Columns(features=["s"]),
        X=np.zeros((10, 1)),
        y=None,
        time=time,
        rows=np.arange(10),
    )
    # lookback 5: the one flagged window ends at row 6 and covers rows 2-6
    assert _covered_text(data, slice(2, 7)) == "8min (lines 4-8)"
    untimed = SensorData(
        path=data.path,
        columns=data.columns,
        X=data.X,
        y=None,
        time=None,
        rows=data.rows,
    )
    assert _covered_text(untimed, slice(2, 7)) == "5 rows (lines 4-8)"


def test_without_a_time_column_everything_counts_file_lines(tmp_path: Path) -> None:
    """Issue 33.2: the terminal, the HTML and the episodes CSV name the same lines."""
    from tests.conftest import synthetic_frame

    data = tmp_path / "untimed.csv"
    synthetic_frame().drop(columns=["timestamp", "label"]).to_csv(
        data, index=False, float_format="%.5f"
    )
    runs = tmp_path / "runs"
    args = ["--runs-dir", str(runs)]
    trained = runner.invoke(
        app, ["train", str(data), "--arch", "pca", "--lookback", "3", *args]
    )
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(
        app,
        ["score", str(data), *args, "--episodes", str(tmp_path / "e.csv"),
         "--output", str(tmp_path / "w.json"), "--html", str(tmp_path / "r.html"),
         "--shortest-event", "off"],  # every window over the threshold alarms
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    episodes = pd.read_csv(tmp_path / "e.csv")
    alarms = json.loads((tmp_path / "w.json").read_text())["alarms"]
    assert len(episodes) == len(alarms) >= 1
    for (_, row), alarm in zip(episodes.iterrows(), alarms, strict=True):
        line = alarm["start_row"] + 2
        assert row["start"] == row["start_line"] == line
        assert f"line {line}" in result.stdout
    model = json.loads(
        re.search(
            r'<script id="report-data" type="application/json">(.*?)</script>',
            (tmp_path / "r.html").read_text(),
            re.S,
        ).group(1)
    )
    assert model["axis"]["name"] == "line"
    starts = [e["covered"] for e in model["episodes"]]
    assert all(text.endswith(")") and "lines " in text for text in starts)
    windows = json.loads((tmp_path / "w.json").read_text())["windows"]
    assert model["timeline"]["x"][0] == windows[0]["row"] + 2
