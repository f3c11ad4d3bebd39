"""mkdocs hook: a ``|`` inside a code span of a table row is written ``\\|`` for GitHub.

GitHub's tables need the escape even inside backticks, so the pages keep it
(they are read on GitHub too); Python-Markdown's tables already ignore a pipe
inside a code span and would show the backslash. The hook drops it there.
"""

from __future__ import annotations

import re
from typing import Any

CODE_SPAN = re.compile(r"`[^`\n]*`")


def unescape_code_pipes(markdown: str) -> str:
    """Table rows (lines starting with ``|``) with ``\\|`` in code spans made ``|``."""
    lines = []
    for line in markdown.split("\n"):
        if line.startswith("|"):
            line = CODE_SPAN.sub(lambda m: m.group(0).replace("\\|", "|"), line)
        lines.append(line)
    return "\n".join(lines)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return unescape_code_pipes(markdown)
