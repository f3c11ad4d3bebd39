"""Every way rareevent could destroy or half-write a file (issue 21, items 1-7 and 17).

``--overwrite`` replaces only a run; a recipe never says where to write;
outputs never land inside a run or on the input; ``score --follow``
validates before it writes, loses no rows on rotation and hears Ctrl-C on
a FIFO; a full disk, a read-only folder or a file-size limit is "cannot
write here" (exit 2) with the old output kept; a ``kill -9`` leaves
nothing the next run does not clear. CLI tests use ``--arch pca``: it
trains in a fraction of a second and needs no TensorFlow.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rareevent.cli.main import app
from tests.conftest import snapshot, synthetic_frame

RAREEVENT = str(Path(sys.executable).with_name("rareevent"))
EVENTS = (100, 260, 350)  # one event in each of train, validation and test of 400 rows
PCA = ["--arch", "pca", "--lookback", "3"]


def write_base(path: Path, n: int = 400) -> Path:
    synthetic_frame(n, events=EVENTS).to_csv(path, index=False, float_format="%.5f")
    return path


def invoke(*args: object):  # noqa: ANN201 - a typer Result
    return CliRunner().invoke(app, [str(a) for a in args])


def invoke_follow(*args: object, seconds: float = 30):  # noqa: ANN201 - a typer Result
    """``invoke`` for a ``score --follow`` that should end by itself: after ``seconds`` a SIGINT stops it (exit 130) instead of a test that hangs."""
    previous = signal.signal(
        signal.SIGALRM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT)
    )
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return invoke(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def one_error_line(stderr: str, *fragments: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} missing from {lines[0]!r}"
    return lines[0]


def refused(work: Path, args: list[object], *fragments: str) -> str:
    """``rareevent ARGS`` in ``work`` exits 2 with one error line holding ``fragments``, and changes nothing under ``work``."""
    before = snapshot(work)
    result = invoke(*args)
    assert result.exit_code == 2, result.stderr
    line = one_error_line(result.stderr, *fragments)
    assert snapshot(work) == before
    return line


@pytest.fixture(scope="module")
def pca_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pca run ``runs/base`` trained by the CLI on ``base.csv`` (400 rows, three events), both in one folder."""
    folder = tmp_path_factory.mktemp("pca")
    write_base(folder / "base.csv")
    result = invoke(
        "train",
        folder / "base.csv",
        *PCA,
        "--runs-dir",
        folder / "runs",
        "--name",
        "base",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    return folder / "runs" / "base"


@pytest.fixture
def work(tmp_path: Path, pca_run: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as working folder with ``base.csv`` and the run ``runs/base``."""
    shutil.copytree(pca_run, tmp_path / "runs" / "base")
    shutil.copy(pca_run.parents[1] / "base.csv", tmp_path / "base.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------- 1. --overwrite replaces only a run


def test_overwrite_refuses_a_data_folder(work: Path) -> None:
    """The reproduction: ``data/`` held the input and another file; it was replaced by a run."""
    (work / "data").mkdir()
    shutil.copy(work / "base.csv", work / "data" / "in.csv")
    (work / "data" / "other.csv").write_text("keep\n")
    refused(
        work,
        [
            "train",
            "data/in.csv",
            "--runs-dir",
            ".",
            "--name",
            "data",
            "--overwrite",
            *PCA,
            "-q",
        ],
        "data",
        "not a rareevent run",
        "--overwrite replaces only a run folder",
    )


def test_update_overwrite_refuses_the_runs_folder(work: Path) -> None:
    """The reproduction: ``update runs/base ... --runs-dir . --name runs --overwrite`` replaced the whole runs folder."""
    (work / "runs" / "notes.txt").write_text("mine\n")
    refused(
        work,
        [
            "update",
            "runs/base",
            "base.csv",
            "--runs-dir",
            ".",
            "--name",
            "runs",
            "--overwrite",
        ],
        "runs",
        "not a rareevent run",
    )


def test_update_overwrite_refuses_the_per_group_run_holding_its_parent(
    work: Path,
) -> None:
    """A group's run updated into the name of the per-group run that holds it would delete the parent with its siblings."""
    frame = synthetic_frame(400, events=EVENTS)
    both = pd.concat(
        [frame.assign(asset="a"), frame.assign(asset="b")], ignore_index=True
    )
    both.to_csv(work / "fleet.csv", index=False, float_format="%.5f")
    assert (
        invoke(
            "train",
            "fleet.csv",
            *PCA,
            "--group",
            "asset",
            "--per-group",
            "--runs-dir",
            "runs",
            "--name",
            "fleet",
            "-q",
        ).exit_code
        == 0
    )
    refused(
        work,
        [
            "update",
            "runs/fleet/a",
            "base.csv",
            "--runs-dir",
            "runs",
            "--name",
            "fleet",
            "--overwrite",
        ],
        "runs/fleet",
        "run being updated",
    )


def test_overwrite_refuses_a_symlink_and_leaves_no_temporary(work: Path) -> None:
    """``--name link --overwrite`` where ``runs/link`` is a symbolic link to a run: refused, and no ``.tmp-PID-new-link`` left."""
    (work / "runs" / "link").symlink_to("base")
    refused(
        work,
        [
            "train",
            "base.csv",
            *PCA,
            "--runs-dir",
            "runs",
            "--name",
            "link",
            "--overwrite",
            "-q",
        ],
        "runs/link",
        "symbolic link",
    )
    assert sorted(os.listdir(work / "runs")) == ["base", "link"]


def test_library_save_overwrite_replaces_a_detector_folder_only(work: Path) -> None:
    """``RareEventDetector.save(overwrite=True)`` goes through the same rule: a detector folder, not any folder."""
    from rareevent.detector import RareEventDetector
    from rareevent.errors import RareEventError

    detector = RareEventDetector.load(work / "runs" / "base")
    detector.save(work / "saved")
    detector.save(work / "saved", overwrite=True)
    (work / "plain").mkdir()
    (work / "plain" / "notes.txt").write_text("mine\n")
    with pytest.raises(RareEventError, match="not a rareevent run"):
        detector.save(work / "plain", overwrite=True)
    assert os.listdir(work / "plain") == ["notes.txt"]


SITUATIONS = [
    "absent",  # replaced (created)
    "run",  # replaced
    "per-group run",  # replaced
    "data folder",
    "empty folder",
    "runs folder",  # the folder holding the runs, among them the parent of an update
    "folder holding the input",
    "symlink to a run",
    "symlink to a data folder",
    "dangling symlink",
    "file",
    "run.json not JSON",
    "run.json a list",
    "run.json nested 100,000 deep",
]
REPLACED = {"absent", "run", "per-group run"}


def make_situation(root: Path, situation: str) -> tuple[Path, Path]:
    """Build ``situation`` under ``root`` (which holds ``base.csv`` and ``runs/base``); return the target and the input file."""
    data = root / "base.csv"
    target = root / "runs" / "target"
    if situation == "run":
        shutil.copytree(root / "runs" / "base", target)
    elif situation == "per-group run":
        shutil.copytree(root / "runs" / "base", target / "g1")
        (target / "fleet.json").write_text(
            json.dumps(
                {
                    "format_version": 1,
                    "name": "target",
                    "group_column": "g",
                    "runs": {"g1": {}},
                }
            )
        )
    elif situation in (
        "data folder",
        "empty folder",
        "folder holding the input",
    ) or situation.startswith("run.json"):
        target.mkdir()
        if situation == "data folder":
            (target / "other.csv").write_text("keep\n")
        contents = {
            "run.json not JSON": "{",
            "run.json a list": "[]",
            "run.json nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
        }
        if situation in contents:
            (target / "run.json").write_text(contents[situation])
        if situation == "folder holding the input":
            data = target / "in.csv"
            shutil.copy(root / "base.csv", data)
    elif situation == "runs folder":
        target = root / "runs"
        (target / "notes.txt").write_text("mine\n")
    elif situation == "symlink to a run":
        target.symlink_to(root / "runs" / "base")
    elif situation == "symlink to a data folder":
        (root / "elsewhere").mkdir()
        (root / "elsewhere" / "other.csv").write_text("keep\n")
        target.symlink_to(root / "elsewhere")
    elif situation == "dangling symlink":
        target.symlink_to(root / "gone")
    elif situation == "file":
        target.write_text("keep\n")
    return target, data


def outside(
    found: dict[str, str | None], root: Path, target: Path
) -> dict[str, str | None]:
    """The entries of a snapshot of ``root`` that are not ``target`` or under it."""
    prefix = os.path.relpath(target, root)
    return {
        path: digest
        for path, digest in found.items()
        if path != prefix and not path.startswith(prefix + os.sep)
    }


@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    situation=st.sampled_from(SITUATIONS),
    command=st.sampled_from(["train", "train --per-group", "update"]),
)
def test_overwrite_replaces_nothing_but_a_run(
    situation: str, command: str, pca_run: Path
) -> None:
    """Whatever is at the target, ``--overwrite`` replaces it only when it is a run; nothing outside the target is ever touched."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(pca_run, root / "runs" / "base")
        write_base(root / "base.csv")
        target, data = make_situation(root, situation)
        if command == "train --per-group":
            frame = synthetic_frame(400, events=EVENTS).assign(asset="a")
            frame.to_csv(data, index=False, float_format="%.5f")
        before = snapshot(root)
        where = ["--runs-dir", target.parent, "--name", target.name, "--overwrite"]
        if command == "update":
            result = invoke(
                "update", root / "runs" / "base", data, "--epochs", "1", *where
            )
        else:
            result = invoke(
                "train",
                data,
                *PCA,
                *(["--group", "asset", "--per-group"] if command != "train" else []),
                *where,
                "-q",
            )
        after = snapshot(root)
        if situation in REPLACED:
            assert result.exit_code == 0, result.stderr
            assert target.is_dir() and not target.is_symlink()
            assert (
                target
                / ("fleet.json" if command == "train --per-group" else "run.json")
            ).is_file()
            assert outside(after, root, target) == outside(before, root, target)
        else:
            assert result.exit_code == 2, result.stderr
            one_error_line(result.stderr)
            assert after == before


# ---------------------------------------------------------------- 2. a recipe never says where to write


@pytest.mark.parametrize(
    "line",
    [
        "overwrite = true",
        'runs-dir = "."',
        'name = "data"',
        "quiet = true",
        "json = true",
    ],
)
def test_a_recipe_never_sets_where_or_whether_to_write(line: str, work: Path) -> None:
    """The reproduction: a recipe with ``runs-dir``, ``name``, ``overwrite`` and ``quiet`` deleted a data folder silently."""
    (work / "data").mkdir()
    (work / "data" / "other.csv").write_text("keep\n")
    (work / "recipe.toml").write_text(
        f'[train]\ndata = "base.csv"\narch = "pca"\n{line}\n', encoding="utf-8"
    )
    before = snapshot(work)
    result = subprocess.run(
        [
            RAREEVENT,
            "train",
            "--config",
            "recipe.toml",
            "--runs-dir",
            ".",
            "--name",
            "data",
        ],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    key = line.split(" ")[0]
    one_error_line(
        result.stderr, "recipe.toml", f"key {key!r} at line 4", "not read from a recipe"
    )
    assert snapshot(work) == before


def test_report_recipe_leaves_out_where_to_write_and_escapes_its_header(
    work: Path,
) -> None:
    """Keys a run.json's settings hold are left out, and a newline in ``created`` or ``input_sha256`` stays in the comment."""
    path = work / "runs" / "base" / "run.json"
    record = json.loads(path.read_text())
    record["settings"].update(
        {
            "runs-dir": "/elsewhere",
            "name": "data",
            "overwrite": True,
            "quiet": True,
            "json": True,
        }
    )
    record["created"] = "2026\n[train]\noverwrite = true"
    record["input_sha256"] = "ab\r\nname = 'x'\x00"
    path.write_text(json.dumps(record))
    result = invoke("report", "runs/base", "--recipe")
    assert result.exit_code == 0, result.stderr
    recipe = tomllib.loads(result.stdout)
    assert list(recipe) == ["train"]
    assert not {"runs-dir", "name", "overwrite", "quiet", "json"} & set(recipe["train"])
    assert recipe["train"]["arch"] == "pca"
    header = result.stdout.split("[train]\n")[0].splitlines()
    assert all(line.startswith("# ") for line in header) and len(header) == 2
    assert (
        "2026\\u000a[train]" in header[0]
        and "ab\\u000d\\u000aname = 'x'\\u0000" in header[0]
    )


# ---------------------------------------------------------------- 3. no output inside a run


@pytest.mark.parametrize(
    "args",
    [
        ("score", "base.csv", "--run", "runs/base", "--output", "runs/base/run.json"),
        ("score", "base.csv", "--run", "runs/base", "--output", "runs/base/new.csv"),
        (
            "score",
            "base.csv",
            "--run",
            "runs/base",
            "--metrics-out",
            "runs/base/detector.json",
        ),
        (
            "score",
            "base.csv",
            "--run",
            "runs/base",
            "--follow",
            "--output",
            "runs/base/scores.csv",
        ),
        ("encode", "base.csv", "--run", "runs/base", "--output", "runs/base/codes.csv"),
        ("report", "runs/base", "--plot", "runs/base/plot.png"),
    ],
    ids=[
        "score-output-run-json",
        "score-output-new-file",
        "metrics-out",
        "follow-output",
        "encode-output",
        "report-plot",
    ],
)
def test_no_output_lands_inside_a_run(args: tuple[str, ...], work: Path) -> None:
    """The reproduction: ``score --output RUN/run.json`` replaced the run's own run.json with scores."""
    before = snapshot(work)
    result = invoke_follow(*args)
    assert result.exit_code == 2, result.stderr
    one_error_line(result.stderr, "runs/base", "inside the run folder")
    assert snapshot(work) == before


# ---------------------------------------------------------------- 4. score --follow checks before it writes


def test_follow_keeps_an_existing_output_when_the_followed_file_is_bad(
    work: Path,
) -> None:
    """The reproduction: ``out.csv`` was emptied to 0 bytes when the followed file lacked a sensor."""
    synthetic_frame(50).drop(columns=["s2"]).to_csv(work / "bad.csv", index=False)
    (work / "out.csv").write_text("row,error\n0,0.5\n")
    before = snapshot(work)
    result = invoke_follow(
        "score", "bad.csv", "--run", "runs/base", "--follow", "--output", "out.csv"
    )
    assert result.exit_code == 2, result.stderr
    one_error_line(result.stderr, "bad.csv", "s2")
    assert snapshot(work) == before


@pytest.mark.parametrize("link", ["hard", "symbolic", "same path"])
def test_follow_refuses_an_output_that_is_the_input(link: str, work: Path) -> None:
    """The reproduction: an ``--output`` hard-linked to the followed file truncated the input."""
    output = work / "out.csv"
    if link == "hard":
        os.link(work / "base.csv", output)
    elif link == "symbolic":
        output.symlink_to(work / "base.csv")
    else:
        output = work / "base.csv"
    before = snapshot(work)
    result = invoke_follow(
        "score", "base.csv", "--run", "runs/base", "--follow", "--output", output.name
    )
    assert result.exit_code == 2, result.stderr
    one_error_line(result.stderr, output.name, "is the input file")
    assert snapshot(work) == before


# ---------------------------------------------------------------- 5. score --follow loses no row on rotation


def test_follow_reads_a_rotated_file_to_its_end(work: Path) -> None:
    """The reproduction: rows appended just before the rename were never scored (32 rows of 42)."""
    from rareevent.follow import Follower
    from rareevent.runs import load_run

    lines = (work / "base.csv").read_text().splitlines(keepends=True)
    live = work / "live.csv"
    live.write_text("".join(lines[:31]))  # header and 30 rows
    record, detector = load_run(work / "runs" / "base")
    follower = Follower(live, record, detector)
    try:
        assert follower.poll().rows == 30
        with open(live, "a") as fh:  # the writer adds 12 rows, then the file is rotated
            fh.write("".join(lines[31:43]))
        live.rename(work / "live.csv.1")
        live.write_text(
            lines[0] + "".join(lines[43:53])
        )  # the new file: header and 10 rows
        for _ in range(5):
            follower.poll()
        summary = follower.summary()
    finally:
        follower.close()
    assert summary["rows"] == 52 and summary["restarts"] == 1


# ---------------------------------------------------------------- 6. a full disk, a read-only folder, a file-size limit


def run_in_small_tmpfs(
    folder: Path, setup: str, commands: str, size: str = "12k", readonly: bool = False
) -> subprocess.CompletedProcess[str]:
    """Mount a ``size`` tmpfs on ``folder`` in a user namespace, run the bash lines ``setup`` (the old outputs), then ``commands``.

    With ``readonly`` the tmpfs is made read-only between the two. The
    commands' stderr and what the tmpfs holds at the end are copied to
    ``folder.kept``. Skipped, with the reason, where the kernel refuses the
    namespace or the mount.
    """
    kept = folder.with_name(folder.name + ".kept")
    kept.mkdir()
    folder.mkdir(exist_ok=True)
    remount = 'mount -o remount,ro "$1" || exit 97' if readonly else ":"
    script = f'mount -t tmpfs -o size={size} tmpfs "$1" || exit 97\n{setup}\n{remount}\n{{ {commands}\n}} 2>"$2/stderr"\nrc=$?\ncp -a "$1/." "$2/"\nexit $rc'
    try:
        result = subprocess.run(
            ["unshare", "-rm", "bash", "-c", script, "bash", str(folder), str(kept)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if result.returncode == 97 or "unshare:" in result.stderr:
        pytest.skip(
            f"the kernel refuses a tmpfs in a user namespace: {result.stderr.strip()}"
        )
    result.stderr = (kept / "stderr").read_text()
    return result


def kept_files(folder: Path) -> dict[str, str]:
    kept = folder.with_name(folder.name + ".kept")
    return {
        path.name: path.read_text() for path in kept.iterdir() if path.name != "stderr"
    }


OLD = "old output\n"
WRITE_CASES = {
    "score-csv": ("score {base} --run {run} --output {dir}/out.csv", "out.csv"),
    "score-json": ("score {base} --run {run} --output {dir}/out.json", "out.json"),
    "score-metrics": (
        "score {base} --run {run} --metrics-out {dir}/out.json --output {dir}/windows.csv",
        "out.json",
    ),
    "fleet-score": (
        "score {base} {base2} --run {run} --output {dir}/out.csv --jobs 1",
        "out.csv",
    ),
    "follow": (
        "score {base} --run {run} --follow --output {dir}/out.csv -q",
        "out.csv",
    ),
    "train-pca": (
        "train {base} --arch pca --lookback 3 --runs-dir {dir} --name out --overwrite -q",
        "out",
    ),
    "report-plot": ("report {run} --plot {dir}/out.png", "out.png"),
}


def write_case(case: str, work: Path, folder: Path) -> tuple[str, str]:
    shutil.copy(work / "base.csv", work / "base2.csv")
    command, output = WRITE_CASES[case]
    return f"{RAREEVENT} " + command.format(
        base=work / "base.csv",
        base2=work / "base2.csv",
        run=work / "runs" / "base",
        dir=folder,
    ), output


def setup_old(output: str, work: Path) -> str:
    """A shell line that puts the old output in place: a small file, or for a run a copy of ``runs/base``."""
    if output == "out":
        return f'cp -a {work / "runs" / "base"} "$1/out"'
    return f'printf "{OLD}" > "$1/{output}"'


@pytest.mark.slow
@pytest.mark.parametrize("case", list(WRITE_CASES))
def test_a_full_disk_is_cannot_write_here_and_keeps_the_old_output(
    case: str, work: Path
) -> None:
    folder = work / "small"
    command, output = write_case(case, work, folder)
    size = (
        "32k" if output == "out" else "12k"
    )  # room for the old run (24 KiB in pages), not for a second one beside it
    result = run_in_small_tmpfs(folder, setup_old(output, work), command, size=size)
    assert result.returncode == 2, result.stderr
    one_error_line(
        result.stderr, str(folder), "cannot write here (No space left on device)"
    )
    assert "Traceback" not in result.stderr
    if output == "out":
        assert sorted(os.listdir(folder.with_name("small.kept") / "out")) == sorted(
            os.listdir(work / "runs" / "base")
        )
    elif case != "follow":  # a followed output grows as it goes: it is this run's
        assert kept_files(folder)[output] == OLD


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    ["score-csv", "score-json", "fleet-score", "follow", "train-pca", "report-plot"],
)
def test_a_read_only_folder_is_cannot_write_here_and_keeps_the_old_output(
    case: str, work: Path
) -> None:
    folder = work / "small"
    command, output = write_case(case, work, folder)
    result = run_in_small_tmpfs(
        folder, setup_old(output, work), command, size="1m", readonly=True
    )
    assert result.returncode == 2, result.stderr
    one_error_line(
        result.stderr, str(folder), "cannot write here (Read-only file system)"
    )
    if output != "out":
        assert kept_files(folder)[output] == OLD


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    ["score-csv", "score-json", "fleet-score", "follow", "train-pca", "report-plot"],
)
def test_a_file_size_limit_is_cannot_write_here_and_keeps_the_old_output(
    case: str, work: Path
) -> None:
    """``ulimit -f 4``: a write past 4 KiB fails with EFBIG (Python ignores SIGXFSZ)."""
    folder = work / "limited"
    folder.mkdir()
    command, output = write_case(case, work, folder)
    if output == "out":
        shutil.copytree(work / "runs" / "base", folder / "out")
    else:
        (folder / output).write_text(OLD)
    result = subprocess.run(
        ["bash", "-c", f"ulimit -f 4; {command}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    one_error_line(result.stderr, str(folder), "cannot write here (File too large)")
    if output == "out":
        assert sorted(os.listdir(folder / "out")) == sorted(
            os.listdir(work / "runs" / "base")
        )
        assert snapshot(folder / "out") == snapshot(work / "runs" / "base")
    elif case != "follow":
        assert (folder / output).read_text() == OLD
    assert not [name for name in os.listdir(folder) if name.startswith(".tmp-")]


@pytest.mark.slow
def test_a_full_disk_while_training_an_lstm_or_encoding_is_cannot_write_here(
    work: Path, trained_runs: dict[str, Path]
) -> None:
    """The ae model's weights (h5) and ``encode``'s output meet the full disk too."""
    folder = work / "small"
    run = trained_runs["ae"]
    commands = (
        f"{RAREEVENT} train {work / 'base.csv'} --lookback 3 --units 4,2 --epochs 1 --runs-dir {folder} --name ae -q; echo train=$? >&2\n"
        f"{RAREEVENT} encode {work / 'base.csv'} --run {run} --output {folder}/codes.csv; echo encode=$? >&2"
    )
    result = run_in_small_tmpfs(folder, ":", commands, size="8k")
    lines = result.stderr.splitlines()
    assert lines[1] == "train=2" and lines[3] == "encode=2", result.stderr
    one_error_line(
        lines[0], f"{folder}/ae", "cannot write here (No space left on device)"
    )
    one_error_line(
        lines[2], f"{folder}/codes.csv", "cannot write here (No space left on device)"
    )
    assert kept_files(folder) == {}


# ---------------------------------------------------------------- 7. score --follow on a FIFO hears SIGINT and SIGTERM


def _waiting_on(pid: int, fifo: Path) -> bool:
    """Whether process ``pid`` holds ``fifo`` open, or is blocked opening it (the old code: ``openat``, which never returned)."""
    try:
        if any(
            os.readlink(f"/proc/{pid}/fd/{fd}") == str(fifo)
            for fd in os.listdir(f"/proc/{pid}/fd")
        ):
            return True
        return Path(f"/proc/{pid}/syscall").read_text().split()[0] == "257"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"]
)
def test_follow_on_a_fifo_stops_on_a_signal(signum: int, work: Path) -> None:
    fifo = work / "pipe.csv"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [RAREEVENT, "score", str(fifo), "--run", "runs/base", "--follow"],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        steady, deadline = 0, time.monotonic() + 60
        while (
            steady < 10 and time.monotonic() < deadline
        ):  # one second in the same state: past the imports
            steady = steady + 1 if _waiting_on(proc.pid, fifo) else 0
            time.sleep(0.1)
        assert steady == 10, "score --follow never reached the FIFO"
        proc.send_signal(signum)
        try:
            _, stderr = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"score --follow ignored signal {signum} on a FIFO")
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, stderr
    assert "stopped following" in stderr


# ---------------------------------------------------------------- 17. what a kill -9 leaves is cleared


def kill_when(args: list[str], cwd: Path, appears: str, timeout: float = 60) -> None:
    """Start ``rareevent ARGS`` and ``kill -9`` it as soon as an entry matching the glob ``appears`` exists under ``cwd``."""
    proc = subprocess.Popen(
        [RAREEVENT, *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while not list(cwd.glob(appears)):
            assert proc.poll() is None, f"it ended before {appears} appeared"
            assert time.monotonic() < deadline, f"{appears} never appeared"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()


@pytest.mark.slow
def test_a_killed_fleet_score_leaves_no_parts_folder_after_the_next(work: Path) -> None:
    """The reproduction: ``.tmp-PID-new-.tmp-PID-new-kill.csv.parts/`` stayed after kill -9 of ``score --output kill.csv``."""
    for i in range(4):
        write_base(work / f"big{i}.csv", n=60_000)
    args = [
        "score",
        "big0.csv",
        "big1.csv",
        "big2.csv",
        "big3.csv",
        "--run",
        "runs/base",
        "--output",
        "kill.csv",
        "--jobs",
        "1",
    ]
    kill_when(args, work, ".tmp-*.parts/000001.csv")
    assert list(work.glob(".tmp-*"))  # the kill left its temporaries
    result = invoke("score", "base.csv", "--run", "runs/base", "--output", "kill.csv")
    assert result.exit_code == 0, result.stderr
    assert not list(work.glob(".tmp-*"))


@pytest.mark.slow
def test_a_killed_per_group_training_leaves_nothing_after_the_next(work: Path) -> None:
    """The reproduction: ``.tmp-PID-new-NAME`` and ``.tmp-lock-NAME`` stayed after kill -9 in ``--per-group`` (a plain ``train`` clears them)."""
    frame = synthetic_frame(400, events=EVENTS)
    frames = [frame.assign(asset=f"a{i:02d}") for i in range(40)]
    pd.concat(frames, ignore_index=True).to_csv(
        work / "fleet.csv", index=False, float_format="%.5f"
    )
    kill_when(
        [
            "train",
            "fleet.csv",
            *PCA,
            "--group",
            "asset",
            "--per-group",
            "--runs-dir",
            "runs",
            "--name",
            "fleet",
        ],
        work,
        "runs/.tmp-*-new-fleet/a01",
    )
    assert {p.name.split("-")[1] for p in (work / "runs").glob(".tmp-*")} >= {"lock"}
    result = invoke(
        "train",
        "fleet.csv",
        *PCA,
        "--group",
        "asset",
        "--per-group",
        "--runs-dir",
        "runs",
        "--name",
        "other",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(work / "runs")) == ["base", "other"]
