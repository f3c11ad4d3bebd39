"""The size of the source: modules, classes and lines small enough to read (CONTRIBUTING.md).

A module of ``rareevent/`` or ``cli/`` holds at most 800 lines, a class at
most 400, and no line runs past 100 characters (ruff's E501 says so too;
here the rule shows in the test suite).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    path for package in ("rareevent", "cli") for path in (ROOT / package).rglob("*.py")
)
MAX_MODULE_LINES = 800
MAX_CLASS_LINES = 400
MAX_LINE = 100


def test_the_packages_are_found() -> None:
    assert ROOT / "rareevent" / "model.py" in MODULES
    assert ROOT / "cli" / "main.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_a_module_its_classes_and_its_lines_stay_short(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= MAX_MODULE_LINES, f"{len(lines)} lines"
    classes = {
        f"class {node.name} (line {node.lineno})": node.end_lineno - node.lineno + 1
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None
    }
    assert {name: n for name, n in classes.items() if n > MAX_CLASS_LINES} == {}
    long = [number for number, line in enumerate(lines, 1) if len(line) > MAX_LINE]
    assert long == [], f"lines over {MAX_LINE} characters: {long}"
