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
        "start_row",
        "end_row",
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
        assert (
            rows == f"{row['start_row'] + 2}-{row['end_row'] + 2}" and int(windows)
        )  # the table counts file lines (header: line 1), the CSV 0-based data rows == row["windows"] == alarm["windows"]
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
            "() => Array.from(document.querySelectorAll('section.episode')).map(s => Array.from(s.querySelectorAll('.sensor-plot')).map(d => ({name: d.getAttribute('data-sensor'), x: d.data[0].x, y: d.data[0].y, drawn: !!d.querySelector('path.js-line')})))"
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
    tmp_path: Path, fleet_dir: Path, fleet_run: Path
) -> None:
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
    page = (tmp_path / "f.html").read_text()
    assert page.count('<section class="series"') == sum(1 for n in table.values() if n)
    assert "<script" not in page  # no plot: tables only


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
    assert (
        model["episodes"]
        and model["band_source"] == "percentiles 1 to 99 of the normal training rows"
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
