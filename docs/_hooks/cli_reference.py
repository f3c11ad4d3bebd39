"""mkdocs hook: the CLI reference page is rendered from the Typer app at build time.

``docs/reference/cli.md`` holds the marker below; the hook replaces it with the
Markdown that Typer's own docs generator (``typer.cli.get_docs_for_click``, what
``typer MODULE utils docs`` prints) makes from the app's click commands: every
command, argument and option with its help, choices and default, as ``--help``
shows them. So the page cannot drift from ``rareevent --help``.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- rareevent-cli-reference -->"
PAGE = "reference/cli.md"


def render() -> str:
    """The Markdown of ``rareevent --help`` and of every command's ``--help``."""
    import typer
    import typer.cli
    from rareevent.cli.main import app

    command = typer.main.get_command(app)
    context = typer.Context(command, info_name="rareevent")
    text = typer.cli.get_docs_for_click(obj=command, ctx=context, name="rareevent")
    # the generator's first heading is the program itself; the page has its own title
    text = text.replace("# `rareevent`", "## `rareevent`", 1)
    return "\n".join(_literal_help(line) for line in text.splitlines())


def _literal_help(line: str) -> str:
    """An option's help as written: a ``*`` in it (``local[*]``) is not Markdown's emphasis.

    The generator escapes ``[`` but not ``*``. Only the items of its lists
    (``* `--name <type>`: help``) carry help text; the item keeps its marker
    and its code span.
    """
    if not line.startswith("* `"):
        return line
    end = line.index("`", 3) + 1
    return line[:end] + line[end:].replace("*", "\\*")


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost the marker {MARKER}")
    return markdown.replace(MARKER, render())
