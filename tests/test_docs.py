"""The documentation site: the CLI reference cannot drift from ``--help``, and the built site works offline.

The CLI page is rendered by the mkdocs hook ``docs/_hooks/cli_reference.py``
from the Typer app; the test compares it with what ``rareevent --help`` and
each command's ``--help`` print. The site test builds the site with
``mkdocs build --strict``, serves it on 127.0.0.1 and opens it in Debian's
``chromium`` (as ``tests/test_html_report.py`` does): every navigation link
loads, none is a 404, and no request leaves the machine.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urljoin, urlsplit

import pytest
from typer.testing import CliRunner

from rareevent.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "docs" / "_hooks" / "cli_reference.py"
TABLES_HOOK = ROOT / "docs" / "_hooks" / "tables.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")


def hook(path: Path = HOOK) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def help_text(*command: str) -> str:
    """``rareevent [COMMAND] --help`` as a terminal of 200 columns shows it."""
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def listed_commands(text: str) -> list[str]:
    """The names in the Commands panel of ``rareevent --help``."""
    panel = text[text.index("Commands") :]
    return re.findall(r"^│ (\w[\w-]*) ", panel, flags=re.M)


def listed_options(text: str) -> set[str]:
    """Every option name of the Options panels: the leading names of each row (not its help)."""
    names = set()
    for line in text.splitlines():
        row = line.removeprefix("│")
        if len(row) - len(row.lstrip()) > 6:  # a wrapped line of the help column
            continue
        tokens = row.strip("│ ").removeprefix("* ").split()
        while tokens and OPTION.fullmatch(tokens[0].split("/")[0]):
            names |= set(tokens.pop(0).split("/"))
    return names


def sections(markdown: str) -> dict[str, str]:
    """The rendered page split at its ``## `rareevent ...` `` headings: command -> its text."""
    parts = re.split(r"^## `rareevent ?([\w-]*)`$", markdown, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_helpers_find_commands_and_options() -> None:
    text = (
        "╭─ Commands ─╮\n│ train   Train.\n│ score   Score.\n"
        "│    --run  -r  <str>  Run, see\n│               --config too.\n"
        "│ *  --a/--no-a  On.\n"
    )
    assert listed_commands(text) == ["train", "score"]
    assert listed_options(text) == {"--run", "-r", "--a", "--no-a"}


@pytest.mark.slow
def test_cli_reference_lists_every_command_and_option_of_help() -> None:
    rendered = sections(hook().render())
    top = help_text()
    commands = listed_commands(top)
    assert {"train", "score", "update", "report", "encode", "architecture"} <= set(
        commands
    )
    assert set(rendered) == {"", *commands}
    for command in ["", *commands]:
        options = listed_options(help_text(command) if command else top)
        assert "--help" in options and len(options) >= 4, (command, options)
        missing = [
            name
            for name in options
            if f"`{name}" not in rendered[command]
            and f", {name}" not in rendered[command]
            and f" / {name}" not in rendered[command]
        ]
        assert not missing, (
            f"rareevent {command} --help lists {missing}; the page does not"
        )


@pytest.mark.slow
def test_cli_page_holds_the_marker_the_hook_replaces() -> None:
    page = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    assert hook().MARKER in page


def test_a_star_in_help_text_is_not_emphasis() -> None:
    """``--master``'s help says ``local[*]``; Markdown would read ``*...*`` as italics."""
    escape = hook()._literal_help
    assert escape("* `--master <str>`: local[*] or [default: local[*]]") == (
        "* `--master <str>`: local[\\*] or [default: local[\\*]]"
    )
    assert escape("**Options**:") == "**Options**:"


def test_a_pipe_in_a_table_code_span_loses_only_its_escape() -> None:
    """GitHub needs ``\\|`` in a table's code span; the site shows ``|`` there."""
    unescape = hook(TABLES_HOOK).unescape_code_pipes
    page = "| `--arch ae\\|pca` | a \\| b |\n`x\\|y` outside a table\n"
    assert unescape(page) == "| `--arch ae|pca` | a \\| b |\n`x\\|y` outside a table\n"


# --- the built site in the browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip(
        "mkdocs",
        reason="mkdocs is not installed (pip install -e '.[docs]'; .ci/run does it)",
    )
    folder = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        """No access log on the test's stderr."""


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site on an HTTP server of this process, on 127.0.0.1 (a free port)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_built_html_fetches_nothing_from_elsewhere(site: Path) -> None:
    """No page loads a script, style sheet, font or picture from another host."""
    fetched = re.compile(
        r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=\"(https?:)?//", re.I
    )
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not fetched.search(text), page
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page


@pytest.mark.slow
def test_tables_show_their_code_as_written(site: Path) -> None:
    """``--arch ae|plain|...`` reads so in the built table, without GitHub's escape."""
    text = (site / "reference" / "cli-options.html").read_text(encoding="utf-8")
    assert "ae|plain|forecast|pca|auto" in text
    assert not [page for page in site.rglob("*.html") if "\\|" in page.read_text()]


@pytest.mark.slow
def test_every_navigation_link_loads_and_nothing_leaves_the_machine(
    served: str,
) -> None:
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium; .ci/run does it)"
        )
    playwright_api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright is not installed (pip install -e '.[test]')",
    )
    outside: list[str] = []
    failed: list[str] = []

    def route(request_route) -> None:  # a playwright Route
        url = request_route.request.url
        if url.startswith(served) or url.startswith("data:"):
            request_route.continue_()
        else:
            outside.append(url)
            request_route.abort()

    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.on(
                "response",
                lambda response: (
                    failed.append(f"{response.status} {response.url}")
                    if response.status >= 400
                    else None
                ),
            )
            first = page.goto(served + "index.html")
            assert first is not None and first.status == 200
            links = page.eval_on_selector_all(
                "nav.md-nav--primary a.md-nav__link[href]",
                "links => links.map(link => link.getAttribute('href'))",
            )
            pages = sorted(
                {
                    urljoin(served + "index.html", href).split("#")[0]
                    for href in links
                    if href and not href.startswith("#")
                }
            )
            assert len(pages) >= 25, pages
            for url in pages:
                assert urlsplit(url).netloc == urlsplit(served).netloc, url
                response = page.goto(url)
                assert response is not None and response.status == 200, url
                assert page.title() and "404" not in page.title(), url
                page.wait_for_load_state("networkidle")
        finally:
            browser.close()
    assert not failed, failed
    assert not outside, outside
