"""The fourth reliability round (issue 32): each reproduction of the issue, as a test.

Data loss (items 1, 2) runs the installed entry point in a subprocess; the
rest use ``CliRunner`` or the library. CLI runs use ``--arch pca``: it
trains in a fraction of a second and needs no TensorFlow.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app
from tests.conftest import snapshot, synthetic_frame
from tests.test_html_report import Opened, browser  # noqa: F401 - a fixture

RAREEVENT = str(Path(sys.executable).with_name("rareevent"))
PCA = ["--arch", "pca", "--lookback", "3"]


def write_base(path: Path, n: int = 400) -> Path:
    synthetic_frame(n, events=(100, 260, 350)).to_csv(
        path, index=False, float_format="%.5f"
    )
    return path


def invoke(*args: object):  # noqa: ANN201 - a typer Result
    return CliRunner().invoke(app, [str(a) for a in args])


def run_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``rareevent`` entry point, in a subprocess."""
    return subprocess.run(
        [RAREEVENT, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A pca run ``runs/victim`` trained on ``d.csv``, in ``tmp_path``."""
    write_base(tmp_path / "d.csv")
    done = run_cli("train", "d.csv", *PCA, "--name", "victim", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / "runs" / "victim"


# 1. --overwrite deletes only what the run wrote


@pytest.mark.slow
def test_overwrite_refuses_a_run_folder_holding_the_input_and_user_files(
    tmp_path: Path, victim: Path
) -> None:
    shutil.copy(tmp_path / "d.csv", victim / "direct.csv")
    (victim / "sub").mkdir()
    shutil.copy(tmp_path / "d.csv", victim / "sub" / "mydata.csv")
    before = snapshot(tmp_path)
    done = run_cli(
        "train", "runs/victim/direct.csv", *PCA, "--name", "victim", "--overwrite",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: runs/victim: holds direct.csv")
    assert len(done.stderr.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before
    (victim / "direct.csv").unlink()  # the folder left: sub/ is still in the way
    done = run_cli(
        "train", "d.csv", *PCA, "--name", "victim", "--overwrite", cwd=tmp_path
    )
    assert done.returncode == 2
    assert "holds sub/" in done.stderr
    assert (victim / "sub" / "mydata.csv").read_bytes() == (
        tmp_path / "d.csv"
    ).read_bytes()
    shutil.rmtree(victim / "sub")  # a run folder holding only its own files: replaced
    done = run_cli(
        "train", "d.csv", *PCA, "--name", "victim", "--overwrite", "-q", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in victim.iterdir()) == [
        "detector.json",
        "model.npz",
        "run.json",
        "scores.csv",
    ]


@pytest.mark.slow
def test_update_overwrite_keeps_the_newer_data_inside_the_run(
    tmp_path: Path, victim: Path
) -> None:
    done = run_cli("train", "d.csv", *PCA, "--name", "upd", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    newer = tmp_path / "runs" / "upd" / "newer.csv"
    shutil.copy(tmp_path / "d.csv", newer)
    before = snapshot(tmp_path)
    done = run_cli(
        "update", "runs/victim", "runs/upd/newer.csv", "--name", "upd", "--overwrite",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "runs/upd: holds newer.csv" in done.stderr
    assert snapshot(tmp_path) == before


# 2. a run is never saved inside another run


@pytest.mark.slow
@pytest.mark.parametrize("runs_dir", ["runs/victim", "runs/victim/deeper"])
def test_a_runs_dir_inside_a_run_is_refused(
    tmp_path: Path, victim: Path, runs_dir: str
) -> None:
    before = snapshot(tmp_path)
    done = run_cli(
        "train", "d.csv", *PCA, "--runs-dir", runs_dir, "--name", "inner",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {runs_dir}: is ")
    assert "a run is never saved inside another run" in done.stderr
    assert snapshot(tmp_path) == before


# 3. any sensor name survives the episodes CSV and both HTML reports

OPC = {"s2": "ns=2;s=Flow", "s3": "ns=2;s=Temp:1"}  # OPC-UA tags: ';' and ':' in names


@pytest.fixture(scope="module")
def opc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pca run trained on the synthetic file with OPC-UA tag names as columns."""
    folder = tmp_path_factory.mktemp("opc")
    frame = synthetic_frame(400, events=(100, 260, 350)).rename(columns=OPC)
    frame.to_csv(folder / "opc.csv", index=False, float_format="%.5f")
    done = invoke(
        "train", folder / "opc.csv", *PCA, "--runs-dir", folder / "runs",
        "--name", "opc", "-q",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    return folder


@pytest.mark.slow
def test_tag_names_with_semicolons_survive_episodes_and_html(opc_run: Path) -> None:
    pytest.importorskip("plotly")
    done = invoke(
        "score", opc_run / "opc.csv", "--run", opc_run / "runs" / "opc",
        "--html", opc_run / "o.html", "--episodes", opc_run / "e.csv", "-q",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    episodes = pd.read_csv(opc_run / "e.csv")
    assert len(episodes) >= 3
    tops = [json.loads(text) for text in episodes["top_sensors"]]
    assert all(set(top) <= {"s1", *OPC.values()} and len(top) == 3 for top in tops)
    assert all(list(top.values()) == sorted(top.values(), reverse=True) for top in tops)
    assert all(0 <= share <= 1 for top in tops for share in top.values())
    page = (opc_run / "o.html").read_text(encoding="utf-8")
    assert "ns=2;s=Flow" in page
    done = invoke("report", opc_run / "runs" / "opc", "--html", opc_run / "r.html")
    assert done.exit_code == 0, done.output
    assert "ns=2;s=Temp:1" in (opc_run / "r.html").read_text(encoding="utf-8")


# 9. embedded JSON escapes <, > and &; only the report's own scripts may run

HOSTILE = {"s2": "<!--s2", "s3": "s3</script><script>alert(1)</script>&amp;"}


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``score --html`` of a pca run whose sensors are named to break a page."""
    pytest.importorskip("plotly")
    folder = tmp_path_factory.mktemp("hostile")
    frame = synthetic_frame(400, events=(100, 260, 350)).rename(columns=HOSTILE)
    frame.to_csv(folder / "h.csv", index=False, float_format="%.5f")
    done = invoke(
        "train", folder / "h.csv", *PCA, "--runs-dir", folder / "runs",
        "--name", "h", "-q",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    done = invoke(
        "score", folder / "h.csv", "--run", folder / "runs" / "h",
        "--html", folder / "h.html", "-q",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    return folder / "h.html"


def test_script_json_escapes_what_ends_a_script_element() -> None:
    from rareevent.html_report import script_json

    text = script_json({"<!--a": "</script>&x>"})
    assert text == '{"\\u003c!--a":"\\u003c/script\\u003e\\u0026x\\u003e"}'
    assert json.loads(text) == {"<!--a": "</script>&x>"}


@pytest.mark.slow
def test_hostile_sensor_names_stay_data_and_no_inline_script_is_allowed(
    hostile_report: Path,
) -> None:
    import base64
    import hashlib
    import re

    from rareevent.html_report import _SCRIPT

    page = hostile_report.read_text(encoding="utf-8")
    data = page.split('<script id="report-data" type="application/json">')[1]
    data = data.split("</script>")[0]
    assert "<" not in data and ">" not in data and "&" not in data
    assert {"<!--s2", HOSTILE["s3"]} <= {
        trace["name"]
        for episode in json.loads(data)["episodes"]
        for trace in episode["traces"]
    }
    policy = re.search(r'Content-Security-Policy" content="([^"]*)"', page)[1]
    script_src = next(
        part.split()[1:] for part in policy.split(";") if "script-src" in part
    )
    digest = hashlib.sha256(_SCRIPT.encode("utf-8")).digest()
    assert f"'sha256-{base64.b64encode(digest).decode()}'" in script_src
    assert "'unsafe-inline'" not in policy.split("style-src")[0]
    assert page.count("<script") == 3  # plotly (packed), the data, the renderer


@pytest.mark.slow
def test_hostile_sensor_names_draw_every_plot_in_chromium(
    browser,
    hostile_report: Path,  # noqa: ANN001
) -> None:
    opened = Opened(browser, hostile_report)
    try:
        opened.page.wait_for_function(
            "window.rareevent && window.rareevent.plots >= 2", timeout=30_000
        )  # the timeline and the PR curve: the page was not blanked
        opened.page.evaluate("window.rareevent.drawAll()")
        opened.page.wait_for_function(
            "document.querySelectorAll('section.episode[data-rendered]').length"
            " === window.rareevent.episodes",
            timeout=30_000,
        )
        assert opened.errors == []  # no script refused by the policy, no parse error
    finally:
        opened.close()
