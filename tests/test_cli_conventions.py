"""CLI habits: --version, choices the parser checks, completion, TOML recipes, --json, --quiet, plain output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Annotated

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import rareevent
from rareevent.cli.main import app
from rareevent.cli.options import Activation, Arch, LstmArch, Fill, ScoreKind
from rareevent.cli import recipe
from rareevent.record import RunView
from tests.conftest import TINY, TINY_PCA, synthetic_frame
from tests.test_errors import assert_one_error_line

runner = CliRunner()
RAREEVENT = str(Path(sys.executable).with_name("rareevent"))
# the same run given as flags, and as a recipe (epochs 1 in the file, overridden by --epochs 2 on the command line)
FLAGS = [*TINY, "--seed", "3", "--score", "last", "--smooth", "2", "--drop", "s3"]
RECIPE = '[train]\nlookback = 3\nunits = "4,2"\nepochs = 1\nbatch-size = 64\nseed = 3\nscore = "last"\nsmooth = 2\ndrop = "s3"\n'


def invoke(*args: object) -> object:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def run_cli(
    *args: object, cwd: Path, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAREEVENT, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def record(folder: Path) -> RunView:
    """The run as ``report`` shows it: run.json's metadata with the detector's settings and learned values."""
    from rareevent.runs import read_run

    return read_run(folder)


@pytest.fixture(scope="module")
def constant_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic sensors plus a constant column ``c``: training warns about it."""
    path = tmp_path_factory.mktemp("const") / "const.csv"
    synthetic_frame().assign(c=1.0).to_csv(path, index=False, float_format="%.5f")
    return path


@pytest.fixture(scope="module")
def flag_run(
    tmp_path_factory: pytest.TempPathFactory, constant_csv: Path
) -> tuple[Path, dict]:
    """A run trained from flags with ``--json``: its folder and the JSON printed on stdout."""
    runs = tmp_path_factory.mktemp("runs")
    result = invoke(
        "train", constant_csv, *FLAGS, "--runs-dir", runs, "--name", "flags", "--json"
    )
    assert result.exit_code == 0, result.stderr
    return runs / "flags", json.loads(result.stdout)


# ---------------------------------------------------------------- --version, choices, completion


def test_version_names_rareevent_keras_the_backend_and_the_forward() -> None:
    import keras

    backend = keras.backend.backend()
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    backend_version = sys.modules[backend].__version__
    # conftest sets KERAS_BACKEND: a chosen backend also scores
    assert (
        result.stdout
        == f"rareevent {rareevent.__version__}, keras {keras.__version__}, backend {backend} {backend_version}, scoring keras\n"
    )


def test_choices_are_the_library_values_and_show_in_help() -> None:
    from rareevent.detector import SCORE_KINDS
    from rareevent.options import FILL_METHODS
    from rareevent.model import ACTIVATIONS, ARCHS, LSTM_ARCHS

    for choices, values in (
        (Arch, (*ARCHS, "auto")),
        (LstmArch, LSTM_ARCHS),
        (Activation, ACTIVATIONS),
        (ScoreKind, SCORE_KINDS),
        (Fill, FILL_METHODS),
    ):
        assert tuple(choices) == values
    shown = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).stdout
    for values in (ARCHS, ACTIVATIONS, SCORE_KINDS, FILL_METHODS):
        assert "|".join(values) in shown


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("train", "d.csv", "--arch", "cnn"), ("--arch", "'cnn'", "'plain'")),
        (
            ("train", "d.csv", "--activation", "sigmoid"),
            ("--activation", "'sigmoid'", "'relu'"),
        ),
        (("train", "d.csv", "--score", "median"), ("--score", "'median'", "'last'")),
        (("train", "d.csv", "--fill", "mean"), ("--fill", "'mean'", "'ffill'")),
        (("architecture", "--arch", "cnn"), ("--arch", "'cnn'", "'ae'")),
        (("score", "d.csv", "--fill", "zero"), ("--fill", "'zero'", "'interpolate'")),
        (
            ("encode", "d.csv", "--output", "o.csv", "--fill", "zero"),
            ("--fill", "'zero'", "'drop'"),
        ),
    ],
    ids=[
        "train-arch",
        "train-activation",
        "train-score",
        "train-fill",
        "architecture-arch",
        "score-fill",
        "encode-fill",
    ],
)
def test_a_bad_choice_is_a_parser_error(
    args: tuple[str, ...], fragments: tuple[str, ...], tmp_path: Path
) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stdout, result.stderr, fragments)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_completion_script_and_run_names_from_runs_dir(
    tmp_path: Path, trained_runs: dict[str, Path]
) -> None:
    # with shellingham, --show-completion detects the shell from the parent processes, which a test run may not have;
    # typer's own switch makes it take the shell named on the command line instead
    script = run_cli(
        "--show-completion",
        "bash",
        cwd=tmp_path,
        env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
    )
    assert (
        script.returncode == 0 and "_RAREEVENT_COMPLETE=complete_bash" in script.stdout
    )
    runs_dir = trained_runs["ae"].parent
    (runs_dir / "not-a-run").mkdir(exist_ok=True)

    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "_RAREEVENT_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (not words.endswith(" "))),
        }
        return run_cli(cwd=tmp_path, env=env).stdout.split()

    assert complete(f"rareevent score d.csv --runs-dir {runs_dir} --run ") == [
        "tiny-ae",
        "tiny-plain",
    ]
    assert complete(f"rareevent encode d.csv --runs-dir {runs_dir} --run tiny-p") == [
        "tiny-plain"
    ]
    assert complete(f"rareevent report --runs-dir {runs_dir} ") == [
        "tiny-ae",
        "tiny-plain",
    ]
    assert complete("rareevent score d.csv --run ") == []  # ./runs does not exist here


# ---------------------------------------------------------------- recipes


@pytest.mark.slow
def test_a_recipe_file_trains_the_same_run_as_the_flags(
    tmp_path: Path, constant_csv: Path, flag_run: tuple[Path, dict]
) -> None:
    folder, _ = flag_run
    (tmp_path / "recipe.toml").write_text(RECIPE, encoding="utf-8")
    result = invoke(
        "train",
        constant_csv,
        "--config",
        tmp_path / "recipe.toml",
        "--epochs",
        "2",
        "--runs-dir",
        tmp_path / "runs",
        "--name",
        "from-file",
        "--quiet",
    )
    assert result.exit_code == 0, result.stderr
    assert (
        result.stdout == f"{tmp_path / 'runs' / 'from-file'}\n" and result.stderr == ""
    )  # --quiet: the path only, no warning
    flags, from_file = record(folder), record(tmp_path / "runs" / "from-file")
    assert from_file.settings == flags.settings
    assert (
        from_file.settings["epochs"] == 2 and from_file.params["epochs"] == 2
    )  # the command line overrides the file
    assert (
        from_file.score_kind == "last"
        and from_file.smooth == 2
        and from_file.features == ["s1", "s2", "c"]
    )
    assert from_file.threshold == flags.threshold


@pytest.mark.slow
def test_report_recipe_round_trips_to_an_identical_run(
    tmp_path: Path, flag_run: tuple[Path, dict]
) -> None:
    folder, _ = flag_run
    shown = invoke("report", folder, "--recipe")
    assert shown.exit_code == 0, shown.stderr
    recipe = tomllib.loads(shown.stdout)["train"]
    assert (
        recipe["seed"] == 3
        and recipe["score"] == "last"
        and "threshold" not in recipe
        and "name" not in recipe
    )
    (tmp_path / "again.toml").write_text(shown.stdout, encoding="utf-8")
    result = invoke(
        "train",
        "--config",
        tmp_path / "again.toml",
        "--runs-dir",
        tmp_path,
        "--name",
        "again",
    )  # DATA from the recipe
    assert result.exit_code == 0, result.stderr
    original, again = record(folder), record(tmp_path / "again")
    assert again.settings == original.settings
    assert again.threshold == original.threshold
    assert again.input_sha256 == original.input_sha256
    assert (
        invoke("report", tmp_path / "again", "--recipe").stdout.split("\n", 1)[1]
        == shown.stdout.split("\n", 1)[1]
    )


def _read_demo_config(ctx: typer.Context, value: Path | None) -> Path | None:
    if value is not None:
        ctx.default_map = recipe.read_defaults(value, ctx, leave_out=("config",))
    return value


demo = typer.Typer()


@demo.command()
def _demo(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option(is_eager=True, callback=_read_demo_config)
    ] = None,
    time_format: Annotated[str | None, typer.Option()] = None,
    dayfirst: Annotated[bool, typer.Option()] = False,
    decimal: Annotated[float, typer.Option()] = 0.5,
) -> None:
    """A command wired like ``train``, with options the recipe code has never heard of."""
    typer.echo(json.dumps(recipe.settings(ctx, leave_out=("config",))))


@pytest.mark.slow
def test_a_new_option_is_a_recipe_key_without_recipe_code(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text(
        '[train]\ntime-format = "%d.%m.%Y"\ndayfirst = true\ndecimal = 2\n',
        encoding="utf-8",
    )
    result = runner.invoke(
        demo, ["--config", str(tmp_path / "r.toml"), "--decimal", "3"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "time-format": "%d.%m.%Y",
        "dayfirst": True,
        "decimal": 3.0,
    }
    assert (
        tomllib.loads(recipe.to_toml("train", json.loads(result.stdout)))["train"][
            "time-format"
        ]
        == "%d.%m.%Y"
    )


def test_report_recipe_needs_stored_settings(
    tmp_path: Path, trained_runs: dict[str, Path]
) -> None:
    result = invoke(
        "report", trained_runs["ae"], "--recipe"
    )  # trained through the library: no settings
    assert result.exit_code == 2
    assert_one_error_line(
        result.stdout, result.stderr, ("run.json", "no training settings", "hint:")
    )
    damaged = tmp_path / "damaged"
    shutil.copytree(trained_runs["ae"], damaged)
    (damaged / "run.json").write_text(
        json.dumps(
            {
                **json.loads((damaged / "run.json").read_text(encoding="utf-8")),
                "settings": {"lookback": {"nested": 1}},
            }
        ),
        encoding="utf-8",
    )
    result = invoke("report", damaged, "--recipe")
    assert result.exit_code == 2
    assert_one_error_line(
        result.stdout,
        result.stderr,
        ("run.json", "field 'settings' has an invalid value"),
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "[train]\nlookback = 3\nlookbak = 4\n",
            (
                "recipe.toml",
                "unknown key 'lookbak'",
                "line 3",
                "did you mean 'lookback'",
            ),
        ),
        (
            "lookback = 3\n[train]\n",
            ("recipe.toml", "unknown key 'lookback'", "line 1", "[train]"),
        ),
        (
            "[train]\n[score]\nrun = 'x'\n",
            ("recipe.toml", "unknown key 'score'", "line 2"),
        ),
        ("[training]\n", ("recipe.toml", "unknown key 'training'", "line 1")),
        ("# nothing\n", ("recipe.toml", "no [train] table")),
        (
            '[train]\nlookback = "three"\n',
            ("recipe.toml", "lookback at line 2", "integer"),
        ),
        ("[train]\nlookback = 3.5\n", ("recipe.toml", "lookback at line 2", "integer")),
        (
            '[train]\narch = "cnn"\n',
            ("recipe.toml", "arch at line 2", "'cnn'", "'plain'"),
        ),
        (
            "[train]\nepochs = true\n",
            ("recipe.toml", "epochs at line 2", "not true/false"),
        ),
        (
            '[train]\nnormalize = "yes"\n',
            ("recipe.toml", "normalize at line 2", "true or false"),
        ),
        ("[train]\nunits = [4, 2]\n", ("recipe.toml", "units at line 2", "not a list")),
        ("[train]\nlookback = \n", ("recipe.toml", "not valid TOML", "line 2")),
    ],
    ids=[
        "unknown-key",
        "key-outside-table",
        "unknown-table",
        "wrong-table",
        "no-table",
        "text-for-int",
        "float-for-int",
        "bad-choice",
        "bool-for-int",
        "text-for-flag",
        "list",
        "bad-toml",
    ],
)
def test_a_bad_recipe_is_a_usage_error_naming_the_key(
    text: str, fragments: tuple[str, ...], tmp_path: Path, sensor_csv: Path
) -> None:
    (tmp_path / "recipe.toml").write_text(text, encoding="utf-8")
    result = run_cli(
        "train",
        sensor_csv,
        "--config",
        "recipe.toml",
        "--runs-dir",
        "runs",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stdout, result.stderr, fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.toml"]


@pytest.mark.slow
def test_a_missing_recipe_file_is_named(tmp_path: Path) -> None:
    result = run_cli("train", "--config", "gone.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert_one_error_line(result.stdout, result.stderr, ("gone.toml", "not found"))


scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(exclude_categories=["Cs"])),
)


@given(
    st.dictionaries(
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1),
        st.one_of(scalars, st.lists(st.integers())),
    )
)
def test_recipe_toml_reads_back_as_written(values: dict) -> None:
    read = tomllib.loads(recipe.to_toml("train", values, ["a comment"]))
    assert read == {"train": values}


# ---------------------------------------------------------------- output for machines and logs


def test_train_json_is_the_run_summary(flag_run: tuple[Path, dict]) -> None:
    folder, summary = flag_run
    saved = record(folder)
    assert (
        summary["path"] == str(folder)
        and Path(summary["files"]["model"]).is_file()
        and Path(summary["files"]["run"]).is_file()
    )
    for key in (
        "name",
        "threshold",
        "threshold_strategy",
        "metrics",
        "windows",
        "settings",
    ):
        assert summary[key] == getattr(saved, key), key
    assert summary["metrics"]["test"]["events"] == 1
    assert summary["warnings"]["constant_features"] == ["c"]


@pytest.mark.slow
def test_train_piped_is_plain_text_and_warnings_go_to_stderr(
    tmp_path: Path, constant_csv: Path
) -> None:
    result = run_cli(
        "train",
        constant_csv,
        *TINY,
        "--runs-dir",
        "runs",
        "--name",
        "piped",
        cwd=tmp_path,
    )  # stdout and stderr are pipes
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert "training ae" not in result.stdout + result.stderr  # no progress bar
    assert "threshold" in result.stdout and "saved to" in result.stdout
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if line.startswith("warning: ")
    ]
    assert "warning: constant column(s) in the normal training rows: c" in result.stderr
    assert "warning" not in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pty")
def test_no_color_on_a_terminal_is_plain_text(tmp_path: Path, sensor_csv: Path) -> None:
    master, slave = os.openpty()
    try:
        done = subprocess.run(
            [
                RAREEVENT,
                "train",
                str(sensor_csv),
                *TINY,
                "--runs-dir",
                "runs",
                "--name",
                "nc",
            ],
            cwd=tmp_path,
            stdout=slave,
            stderr=subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
            timeout=300,
        )
        os.close(slave)
        shown = b""
        while chunk := _read(master):
            shown += chunk
    finally:
        os.close(master)
    assert done.returncode == 0, done.stderr
    text = shown.decode("utf-8")
    assert "saved to" in text and "\x1b" not in text and "training ae" not in text


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the child closed the pty
        return b""


@pytest.mark.slow
def test_python_warnings_get_the_warning_prefix(
    tmp_path: Path, sensor_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    from rareevent import training

    original = training.load_csv

    def load_and_warn(*args: object, **kwargs: object) -> object:
        warnings.warn("a library grumbles\n  over two lines", UserWarning, stacklevel=1)
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "load_csv", load_and_warn)
    result = invoke(
        "train", sensor_csv, *TINY_PCA, "--runs-dir", tmp_path, "--name", "w"
    )  # the warning comes from reading the file: any model shows it
    assert result.exit_code == 0, result.stderr
    assert "warning: a library grumbles over two lines\n" in result.stderr
    assert "UserWarning" not in result.stderr
