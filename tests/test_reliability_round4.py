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


# 7. a model's size is bounded before anything is allocated


@pytest.fixture(scope="module")
def pca_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pca run ``runs/p`` on ``d.csv`` (trained once; tests copy it before tampering)."""
    folder = tmp_path_factory.mktemp("pca")
    write_base(folder / "d.csv")
    done = invoke(
        "train", folder / "d.csv", *PCA, "--runs-dir", folder / "runs", "--name", "p",
        "-q",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    return folder


def tampered(pca_run: Path, tmp_path: Path) -> Path:
    """A copy of the pca run to damage."""
    run = tmp_path / "p"
    shutil.copytree(pca_run / "runs" / "p", run)
    return run


def npy_member(shape: tuple[int, ...], data: bytes, dtype: str = "<f8") -> bytes:
    """An ``.npy`` file whose header declares ``shape`` but which holds ``data``."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue() + data


def write_npz(path: Path, members: dict[str, bytes], deflate: bool) -> None:
    import zipfile

    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, content in members.items():
            archive.writestr(f"{name}.npy", content)


def score_refused(run: Path, data: Path) -> str:
    done = invoke("score", data, "--run", run, "--output", run.parent / "o.csv", "-q")
    assert done.exit_code == 2, done.output
    assert not (run.parent / "o.csv").exists()
    return done.output


def test_a_model_declaring_gigabytes_is_refused_from_its_header(
    pca_run: Path, tmp_path: Path
) -> None:
    run = tampered(pca_run, tmp_path)
    write_npz(
        run / "model.npz",
        {
            "mean": npy_member((3,), bytes(24)),
            "components": npy_member((20000, 20000), bytes(64)),  # 3.2 GB declared
            "targets": npy_member((3,), bytes(24), "<i8"),
        },
        deflate=False,
    )
    output = score_refused(run, pca_run / "d.csv")
    assert "model.npz: the model would take 3,052 MB in memory" in output
    assert "at most 1,024 MB" in output and "RAREEVENT_MAX_MODEL_MB" in output


def test_a_deflated_model_member_is_refused_by_its_ratio(
    pca_run: Path, tmp_path: Path
) -> None:
    run = tampered(pca_run, tmp_path)
    zeros = bytes(8 * 2000 * 2000)  # 32 MB of zeros: a few KB deflated
    write_npz(
        run / "model.npz",
        {
            "mean": npy_member((3,), bytes(24)),
            "components": npy_member((2000, 2000), zeros),
            "targets": npy_member((3,), bytes(24), "<i8"),
        },
        deflate=True,
    )
    output = score_refused(run, pca_run / "d.csv")
    assert "more than 20 times; rareevent stores models uncompressed" in output


def test_the_model_limit_can_be_raised_and_is_checked(
    pca_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rareevent.protocol import check_model_size, max_model_bytes

    assert max_model_bytes() == 1 << 30
    monkeypatch.setenv("RAREEVENT_MAX_MODEL_MB", "4096")
    assert max_model_bytes() == 4 << 30
    check_model_size(Path("m"), 3 << 30)  # raised: a 3 GB model loads
    monkeypatch.setenv("RAREEVENT_MAX_MODEL_MB", "0")
    output = score_refused(tampered(pca_run, tmp_path), pca_run / "d.csv")
    assert "RAREEVENT_MAX_MODEL_MB='0': give a whole number of megabytes" in output


def test_a_keras_model_is_bounded_by_its_parameters_and_its_file(
    tmp_path: Path,
) -> None:
    import h5py

    from rareevent.errors import RareEventError
    from rareevent.model import KerasModel
    from rareevent.protocol import ModelConfig

    path = tmp_path / KerasModel.file
    with h5py.File(path, "w") as fh:
        fh.create_dataset("w", data=np.zeros((4000, 4000)), compression="gzip")
    huge = ModelConfig("ae", 5, 20000, tuple(range(20000)), units=(4096, 4096))
    with pytest.raises(RareEventError, match="MB in memory; rareevent loads models"):
        KerasModel.load(tmp_path, huge)  # refused before Keras builds it
    small = ModelConfig("ae", 5, 3, (0, 1, 2), units=(4, 2))
    with pytest.raises(RareEventError, match="expand to 128,000,000, more than 20"):
        KerasModel.load(tmp_path, small)


def test_a_header_over_64_kib_is_refused_not_cut(tmp_path: Path) -> None:
    names = [f"sensor_with_a_long_tag_name_{i:05d}" for i in range(2500)]  # ~85 KB
    path = tmp_path / "wide.csv"
    rows = ",".join(["t", *names]) + "\n" + ",".join(["1", *["0.5"] * 2500]) + "\n"
    path.write_text(rows * 1, encoding="utf-8")
    done = invoke("train", path, *PCA, "--runs-dir", tmp_path / "runs", "-q")
    assert done.exit_code == 2
    assert "wide.csv: the header (line 1) is longer than 65,536 bytes" in done.output
    assert not (tmp_path / "runs").exists()


# 8 and 5. tampered values in detector.json and run.json are refused


def edit_json(path: Path, change) -> None:  # noqa: ANN001 - a function of the dict
    content = json.loads(path.read_text(encoding="utf-8"))
    change(content)
    path.write_text(json.dumps(content), encoding="utf-8")


def one_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("scaler_", {"scale": [1e-320, 1, 1]}), ("threshold_", -1.0)],
)
def test_tampered_detector_values_are_refused(
    pca_run: Path, tmp_path: Path, field: str, value: object
) -> None:
    run = tampered(pca_run, tmp_path)

    def change(content: dict) -> None:
        if isinstance(value, dict):
            content["fitted"][field].update(value)
        else:
            content["fitted"][field] = value

    edit_json(run / "detector.json", change)
    line = one_error(score_refused(run, pca_run / "d.csv"))
    assert "detector.json" in line and field in line


@pytest.mark.parametrize(
    "command", [["score", "{data}", "--run", "{run}"], ["report", "{run}", "--html", "{out}"],
                ["update", "{run}", "{data}", "--runs-dir", "{runs}", "--name", "u"]],
)  # fmt: skip
@pytest.mark.parametrize(
    ("path", "value"), [(("valid_frac",), 2), (("reading", "time_format"), "%Q")]
)
def test_tampered_run_values_are_refused_by_every_command(
    pca_run: Path, tmp_path: Path, command: list[str], path: tuple[str, ...],
    value: object,
) -> None:  # fmt: skip
    if "report" in command:
        pytest.importorskip("plotly")
    run = tampered(pca_run, tmp_path)

    def change(content: dict) -> None:
        target = content
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    edit_json(run / "run.json", change)
    args = [
        part.format(
            data=pca_run / "d.csv", run=run, out=tmp_path / "r.html",
            runs=tmp_path / "runs",
        )
        for part in command
    ]  # fmt: skip
    done = invoke(*args)
    assert done.exit_code == 2, done.output
    line = one_error(done.output)
    assert "run.json" in line and path[0] in line
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "runs").exists()


# 4. --encoding takes text encodings only; UTF-16 is refused with the fix


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_base(tmp_path_factory.mktemp("data") / "d.csv")


@pytest.mark.parametrize("encoding", ["utf-16", "rot13", "base64", "hex", "idna"])
def test_encodings_that_cannot_read_a_csv_are_refused_by_name(
    data_csv: Path, tmp_path: Path, encoding: str
) -> None:
    done = invoke(
        "train", data_csv, *PCA, "--encoding", encoding, "--runs-dir", tmp_path / "r"
    )
    assert done.exit_code == 2
    line = one_error(done.output)
    assert f"encoding '{encoding}'" in line
    hint = "iconv -f UTF-16 -t UTF-8" if encoding == "utf-16" else "use utf-8"
    assert hint in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le"])
def test_a_utf16_file_is_refused_with_the_fix(
    data_csv: Path, tmp_path: Path, codec: str
) -> None:
    path = tmp_path / "u16.csv"
    path.write_bytes(data_csv.read_text(encoding="utf-8").encode(codec))
    done = invoke("train", path, *PCA, "--runs-dir", tmp_path / "r")
    assert done.exit_code == 2
    line = one_error(done.output)
    assert "u16.csv: is UTF-16 (or UTF-32) text" in line
    assert "iconv -f UTF-16 -t UTF-8" in line


# 11. a wrong --encoding on a UTF-8 file is not taken silently

UMLAUT = {"s2": "Störung_m³"}


def test_a_utf8_file_named_cp1252_is_read_as_utf8_with_a_warning(
    tmp_path: Path,
) -> None:
    path = tmp_path / "u8.csv"
    synthetic_frame(400, events=(100, 260, 350)).rename(columns=UMLAUT).to_csv(
        path, index=False, float_format="%.5f"
    )
    runs = tmp_path / "runs"
    done = invoke(
        "train", path, *PCA, "--encoding", "cp1252", "--runs-dir", runs, "--name", "u"
    )
    assert done.exit_code == 0, done.output
    assert (
        "warning: " in done.output and "read as UTF-8 and not as cp1252" in done.output
    )
    assert "StÃ¶rung_mÂ³" in done.output  # what cp1252 would have made of the name
    detector = json.loads((runs / "u" / "detector.json").read_text(encoding="utf-8"))
    assert "Störung_m³" in detector["fitted"]["feature_names_in_"]
    done = invoke("score", path, "--run", runs / "u", "--output", tmp_path / "o.csv")
    assert done.exit_code == 0, done.output  # the run scores its own training file


def test_a_file_with_a_utf8_header_and_other_bytes_later_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mix.csv"
    synthetic_frame(400, events=(100, 260, 350)).rename(columns=UMLAUT).to_csv(
        path, index=False, float_format="%.5f"
    )
    with open(path, "ab") as fh:
        fh.write(b"2026-01-02 00:00:00,1,2,3,0\n# K\xf6ln\n")  # a cp1252 byte
    done = invoke(
        "train", path, *PCA, "--encoding", "cp1252", "--runs-dir", tmp_path / "runs"
    )
    assert done.exit_code == 2
    line = one_error(done.output)
    assert "mix.csv: line 1 is UTF-8 text" in line and "mixes encodings" in line


# 6. a pipe is read once


def invoke_within(seconds: int, *args: object):  # noqa: ANN201 - a typer Result
    """``invoke``, failing the test instead of hanging after ``seconds``."""
    import signal

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        return invoke(*args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def fifo_with(tmp_path: Path, data: Path) -> Path:
    """A FIFO that a thread fills with ``data`` once a reader opens it."""
    import os
    import threading

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as fh:  # blocks until the reader opens the FIFO
            fh.write(data.read_bytes())

    threading.Thread(target=write, daemon=True).start()
    return fifo


def test_score_reads_a_fifo_once_and_scores_it_as_the_file(
    pca_run: Path, tmp_path: Path
) -> None:
    run = pca_run / "runs" / "p"
    fifo = fifo_with(tmp_path, pca_run / "d.csv")
    done = invoke_within(
        60, "score", fifo, "--run", run, "--output", tmp_path / "pipe.json"
    )  # read twice, the second open would wait for a writer forever
    assert done.exit_code == 0, done.output
    done = invoke(
        "score", pca_run / "d.csv", "--run", run, "--output", tmp_path / "f.json"
    )
    assert done.exit_code == 0, done.output
    piped = json.loads((tmp_path / "pipe.json").read_text())
    direct = json.loads((tmp_path / "f.json").read_text())
    assert len(piped["windows"]) == 398
    assert piped["windows"] == direct["windows"] and piped["alarms"] == direct["alarms"]


def test_train_refuses_a_pipe_with_the_fix(pca_run: Path, tmp_path: Path) -> None:
    fifo = fifo_with(tmp_path, pca_run / "d.csv")
    done = invoke_within(
        60, "train", fifo, *PCA, "--runs-dir", tmp_path / "runs"
    )  # read twice, the second open would wait for a writer forever
    assert done.exit_code == 2
    line = one_error(done.output)
    assert "pipe.csv: is a pipe, which can be read only once" in line
    assert "save the data to a file first" in line
    assert not (tmp_path / "runs").exists()
    with open(fifo, "rb") as fh:  # let the writer thread finish
        fh.read()


@pytest.mark.slow
def test_process_substitution_is_scored_not_called_empty(
    pca_run: Path, tmp_path: Path
) -> None:
    run = pca_run / "runs" / "p"
    done = subprocess.run(
        ["bash", "-c", f'"{RAREEVENT}" score <(cat d.csv) --run "{run}" -q --output o.csv'],
        cwd=pca_run, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(pca_run / "o.csv")) == 398


# 12. messages say what happened


def test_a_huge_horizon_is_named_not_a_lookback_over_the_maximum(
    data_csv: Path, tmp_path: Path
) -> None:
    done = invoke(
        "train", data_csv, "--arch", "forecast", "--horizon", "99999999",
        "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert done.exit_code == 2
    line = one_error(done.output)
    assert "--horizon must be below 100000" in line and "99999999" in line
    assert "--lookback" not in line


def test_html_from_stdin_does_not_mention_follow(pca_run: Path, tmp_path: Path) -> None:
    done = CliRunner().invoke(
        app,
        ["score", "-", "--run", str(pca_run / "runs" / "p"), "--html", str(tmp_path / "x.html")],
        input=(pca_run / "d.csv").read_text(),
    )  # fmt: skip
    assert done.exit_code == 2
    line = one_error(done.output)
    assert "--follow" not in line and "not standard input" in line


def test_a_step_back_under_a_given_zone_does_not_ask_for_a_zone(tmp_path: Path) -> None:
    times = pd.date_range(
        "2025-10-26 00:00", "2025-10-26 05:00", freq="15min", tz="Europe/Berlin"
    )  # the autumn change: 02:00-02:45 twice in local time
    frame = synthetic_frame(len(times))
    frame["timestamp"] = times.strftime("%Y-%m-%d %H:%M:%S")
    frame.to_csv(tmp_path / "berlin.csv", index=False, float_format="%.5f")
    args = ("train", tmp_path / "berlin.csv", *PCA, "--runs-dir", tmp_path / "runs")
    plain = one_error(invoke(*args).output)
    assert "pass --tz ZONE" in plain  # without --tz the hint names the option
    done = invoke(*args, "--tz", "EST5EDT")
    assert done.exit_code == 2
    line = one_error(done.output)
    assert "goes backwards" in line and "read as EST5EDT" in line
    assert "pass --tz" not in line


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_report_html_names_what_is_at_the_input_path(
    pca_run: Path, tmp_path: Path, kind: str
) -> None:
    import os

    pytest.importorskip("plotly")
    data = tmp_path / "d.csv"
    shutil.copy(pca_run / "d.csv", data)
    done = invoke("train", data, *PCA, "--runs-dir", tmp_path / "runs", "--name", "r")
    assert done.exit_code == 0, done.output
    data.unlink()
    data.mkdir() if kind == "folder" else os.mkfifo(data)
    done = invoke("report", tmp_path / "runs" / "r", "--html", tmp_path / "r.html")
    assert done.exit_code == 2
    line = one_error(done.output)
    what = "is now a folder" if kind == "folder" else "is now a pipe or a device"
    assert f"input file {data} {what}" in line


def test_report_shows_the_folder_name_of_a_renamed_run(
    pca_run: Path, tmp_path: Path
) -> None:
    shutil.copytree(pca_run / "runs" / "p", tmp_path / "renamed")
    done = invoke("report", tmp_path / "renamed", "--json")
    assert done.exit_code == 0, done.output
    assert [row["name"] for row in json.loads(done.stdout)["runs"]] == ["renamed"]


# 13. the Python API: columns, --mask-rate, constant sensors


@pytest.fixture(scope="module")
def pca_detector():  # noqa: ANN201 - a fitted RareEventDetector
    from rareevent.detector import RareEventDetector

    frame = synthetic_frame(400)
    return RareEventDetector(arch="pca", lookback=3).fit(frame[["s1", "s2", "s3"]])


def test_extra_columns_are_refused_and_an_array_is_warned_about(
    pca_detector,  # noqa: ANN001
) -> None:
    from rareevent.errors import RareEventError

    frame = synthetic_frame(400)
    with pytest.raises(RareEventError, match=r"X has column\(s\) 'label'.*not fitted"):
        pca_detector.decision_function(frame[["s1", "s2", "s3", "label"]])
    shuffled = frame[["s3", "s1", "s2"]]  # by name: the order does not matter
    expected = pca_detector.decision_function(frame[["s1", "s2", "s3"]])
    np.testing.assert_array_equal(pca_detector.decision_function(shuffled), expected)
    with pytest.warns(UserWarning, match="taken as s1, s2, s3, in this order"):
        pca_detector.decision_function(shuffled.to_numpy())


@pytest.mark.parametrize("arch", ["pca", "forecast"])
def test_mask_rate_on_an_architecture_without_masking_is_refused(
    data_csv: Path, tmp_path: Path, arch: str
) -> None:
    done = invoke(
        "train", data_csv, "--arch", arch, "--mask-rate", "0.2",
        "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert done.exit_code == 2
    line = one_error(done.output)
    assert f"--mask-rate 0.2 applies to ae and plain only; the '{arch}' model" in line
    assert not (tmp_path / "runs").exists()


def test_the_api_refuses_mask_rate_for_pca_but_ae_keeps_a_pca_baseline() -> None:
    from rareevent.detector import RareEventDetector
    from rareevent.errors import RareEventError
    from rareevent.training import _as_arch

    frame = synthetic_frame(300)[["s1", "s2", "s3"]]
    with pytest.raises(RareEventError, match="mask_rate 0.2 applies to ae and plain"):
        RareEventDetector(arch="pca", lookback=3, mask_rate=0.2).fit(frame)
    masked = RareEventDetector(arch="ae", lookback=3, mask_rate=0.2)
    assert _as_arch(masked, "pca").mask_rate == 0.0  # its baseline hides nothing
    assert _as_arch(masked, "plain").mask_rate == 0.2


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["pca", "ae"])
def test_constant_sensors_flag_no_window_of_unchanged_data(arch: str) -> None:
    from rareevent.detector import RareEventDetector

    frame = pd.DataFrame({"s1": [1.5] * 300, "s2": [2.0] * 300, "s3": [3.0] * 300})
    settings = {"units": "auto", "epochs": 2, "batch_size": 64} if arch == "ae" else {}
    detector = RareEventDetector(arch=arch, lookback=3, seed=0, **settings).fit(frame)
    assert detector.predict(frame)[2:].sum() == 0  # was: every window flagged
    changed = frame.copy()
    changed.loc[200:205, "s2"] = 9.0
    flags = detector.predict(changed)
    assert flags[200:208].sum() > 0 and flags[2:195].sum() == 0


# 10. the kind of the first time holds for the whole file and every appended row


@pytest.fixture(scope="module")
def mixed_times(pca_run: Path) -> Path:
    """``d.csv`` with a ``+01:00`` offset on rows 0-149 and none from row 150 on."""
    frame = pd.read_csv(pca_run / "d.csv", dtype=str)
    frame.loc[:149, "timestamp"] = frame.loc[:149, "timestamp"] + "+01:00"
    path = pca_run / "mixed.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("chunk", ["150", "100", "100000"])
def test_mixed_offsets_are_refused_at_any_chunk_size(
    pca_run: Path, mixed_times: Path, tmp_path: Path, chunk: str
) -> None:
    done = invoke(
        "score", mixed_times, "--run", pca_run / "runs" / "p", "--chunk-rows", chunk,
        "--output", tmp_path / "o.csv",
    )  # fmt: skip
    assert done.exit_code == 2
    line = one_error(done.output)
    assert "at line 152 has no UTC offset, unlike the first time" in line
    assert "'2026-01-01 00:00:00+01:00'" in line
    assert not (tmp_path / "o.csv").exists()


def test_appended_naive_rows_are_refused_after_offset_rows(
    pca_run: Path, mixed_times: Path
) -> None:
    from rareevent.errors import RareEventError
    from rareevent.scoring import StreamScorer

    frame = pd.read_csv(mixed_times, dtype=str)
    scorer = StreamScorer.from_run(pca_run / "runs" / "p")
    assert len(scorer.update(frame.iloc[:150])) == 148  # as --follow takes rows
    with pytest.raises(RareEventError, match="has no UTC offset, unlike the first"):
        scorer.update(frame.iloc[150:160])
