"""The shell commands of the README and of the site's getting-started page work as written.

Every command after the setup section of either page (in ```bash and ```shell
blocks, and the ``$ `` lines of ```text blocks) must call the venv's programs
(``.venv/bin/…``), never a bare ``rareevent``, ``python`` or ``pip``. The quick
ones are run as written, as subprocesses, in a folder where ``.venv`` is the
test venv and ``sample_data`` the repository's, so what they write stays in a
temporary folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
PAGES = (README, GETTING_STARTED)
# every page of the site: its commands are held to the same rules, and its quick ones run too
SITE = sorted((ROOT / "docs").rglob("*.md"))
BARE = ("rareevent", "python", "python3", "pip", "pip3")
# commands quick enough to run here: none trains an LSTM
QUICK = re.compile(
    r"^\.venv/bin/rareevent (score sample_data/pump_sensors\.csv --run pump-ae|report( pump-ae --(plot|recipe)\b|\s*(#|$)))"
)


def page_commands(page: Path) -> list[str]:
    """The commands of a page after its setup section (from "## Worked example" on, where it has one), in order."""
    text = page.read_text(encoding="utf-8")
    if page in PAGES:
        text = text[text.index("## Worked example") :]
    commands = []
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S):
        lines = body.replace("\\\n", " ").splitlines()
        if lang in ("bash", "shell", "sh"):
            commands += [
                line.strip()
                for line in lines
                if line.strip() and not line.lstrip().startswith("#")
            ]
        elif lang == "text":
            commands += [line[2:].strip() for line in lines if line.startswith("$ ")]
    return commands


def readme_commands() -> list[str]:
    """The commands of the README and of every page of the site, each once, in order."""
    pages = [README, *SITE]
    return list(dict.fromkeys(c for page in pages for c in page_commands(page)))


def programs(command: str) -> list[str]:
    """The program each part of a shell line runs (``a | b && c``: a, b, c)."""
    command = command.split(" #", 1)[0]
    return [
        part.split()[0] for part in re.split(r"\|\|?|&&|;", command) if part.split()
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_the_pages_have_the_worked_example_after_the_setup_section(page: Path) -> None:
    commands = page_commands(page)
    assert len(commands) >= 5
    assert (
        ".venv/bin/rareevent score sample_data/pump_sensors.csv --run pump-ae "
        "--output alarms.csv" in commands
    )


def setup_train(page: Path = README) -> str:
    """The ``train`` part of a page's setup command (its first ```bash block before "## Worked example")."""
    text = page.read_text(encoding="utf-8")
    section = text[: text.index("## Worked example")]
    setup = re.search(r"^```bash\n(.*?)\n```", section, flags=re.M | re.S)
    assert setup is not None
    return setup.group(1).split(" && ")[-1]


def test_the_readme_is_a_landing_page() -> None:
    """At most 250 lines, and every link into the repository names a file that exists."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert len(local) >= 20, local
    missing = [link for link in local if not (ROOT / link).is_file()]
    assert not missing, missing


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_run_a_command_names_was_made_by_an_earlier_one(page: Path) -> None:
    """Issue 33.3: the worked example follows from the setup command as written.

    Each page that has the setup command and the worked example (the README and
    the site's getting-started page) is walked on its own, in page order; other
    site pages use runs made elsewhere and are not walked.
    """
    assert (
        setup_train(page)
        == ".venv/bin/rareevent train sample_data/pump_sensors.csv --name pump-ae"
    )
    made: set[str] = set()
    for command in [setup_train(page), *page_commands(page)]:
        command = command.split(" #", 1)[0]
        named = re.search(r"--run (\S+)|rareevent report (?!-)(\S+)", command)
        if named:
            run_name = named.group(1) or named.group(2)
            assert run_name in made, f"{command!r} needs a run {run_name!r}: none made"
        trained = re.search(r" train .*--name (\S+)", command)
        if trained:  # a train without --name makes a run no later command can name
            assert trained.group(1) not in made, f"{command!r}: run exists already"
            made.add(trained.group(1))
    assert {"pump-ae", "pump-plain"} <= made


@pytest.mark.parametrize("command", readme_commands())
def test_every_command_names_the_venvs_programs(command: str) -> None:
    bare = [program for program in programs(command) if program in BARE]
    assert not bare, (
        f"README command {command!r} runs {bare[0]!r}: write .venv/bin/{bare[0]}"
    )


def test_the_check_catches_a_bare_command() -> None:
    assert [p for p in programs("rareevent train x.csv | jq .f1") if p in BARE] == [
        "rareevent"
    ]
    assert [
        p
        for p in programs(".venv/bin/rareevent train x.csv && python -c 1")
        if p in BARE
    ] == ["python"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that looks like the checkout after the setup command: ``.venv`` (the test venv) and ``sample_data``."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (folder / "sample_data").symlink_to(ROOT / "sample_data", target_is_directory=True)
    return folder


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A README line run as written by a shell without the venv on its PATH."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "NO_COLOR": "1"},
        timeout=600,
    )


@pytest.mark.slow
def test_version_and_help_run_from_the_venv_entry_point(workdir: Path) -> None:
    version = run(".venv/bin/rareevent --version", workdir)
    assert version.returncode == 0 and version.stdout.startswith("rareevent "), (
        version.stderr
    )
    helped = run(".venv/bin/rareevent --help", workdir)
    assert (
        helped.returncode == 0 and "train" in helped.stdout and "score" in helped.stdout
    )
    assert (
        run("rareevent --help", workdir).returncode == 127
    )  # what the README's commands used to meet


@pytest.mark.slow
def test_the_quick_readme_commands_run_as_written(workdir: Path) -> None:
    # the setup command's run, as pca (seconds, not a minute of LSTM training)
    trained = run(f"{setup_train()} --arch pca -q", workdir)
    assert trained.returncode == 0, trained.stderr
    quick = [command for command in readme_commands() if QUICK.match(command)]
    assert len(quick) >= 4, quick
    for command in quick:
        result = run(command, workdir)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    windows = (workdir / "alarms.csv").read_text().splitlines()
    assert (
        windows[0] == "row,time,error,flagged,top_features,label"
        and len(windows) == 1 + 30_000  # lookback 1: every row ends a window
    )
    assert (workdir / "pump-ae.png").read_bytes()[:4] == b"\x89PNG"
    assert "[train]" in (workdir / "pump-ae.toml").read_text()
    # a mistyped run name: the error lists the runs that do exist
    missing = run(".venv/bin/rareevent score sample_data/toy.csv --run pump", workdir)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: run 'pump' not found")
    assert "hint: runs in runs, newest first: pump-ae)" in missing.stderr
