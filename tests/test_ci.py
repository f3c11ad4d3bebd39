"""``.ci/run`` runs exactly the README's test command (checks, the site's strict build, tests), and CONTRIBUTING.md quotes the same one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    """The second command of the README's "Two commands" section (the first trains on the sample data)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[
        text.index("## Two commands") : text.index(
            "\n## ", text.index("## Two commands") + 1
        )
    ]
    commands = [
        body.strip()
        for body in re.findall(r"^```bash\n(.*?)^```", section, flags=re.M | re.S)
    ]
    assert len(commands) >= 2, commands
    return commands[1]


def test_ci_runs_the_readme_test_command_with_the_checks_before_the_tests() -> None:
    command = readme_test_command()
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci_lines, (
        f".ci/run does not run the README's test command {command!r}"
    )
    steps = [step.strip() for step in command.split("&&")]
    assert steps[1] == ".venv/bin/pip install -q -e '.[test,check,docs]'"
    checks = [
        ".venv/bin/ruff check rareevent cli",
        ".venv/bin/ruff format --check rareevent cli",
        ".venv/bin/mypy",
        ".venv/bin/mkdocs build --strict",
    ]
    order = [
        steps.index(check)
        for check in [*checks, ".venv/bin/python -m pytest -q -n auto"]
    ]
    assert order == sorted(order), steps


def test_contributing_quotes_the_same_commands() -> None:
    assert (
        readme_test_command()
        in (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8").splitlines()
    )
