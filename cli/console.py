"""What every command prints through: the consoles, ``error:`` lines and their exit
codes, library terms as options.

Nothing here imports a command: ``main`` hands over the app (``terms.app``)
once it has registered them.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from rareevent.errors import RareEventError

EXIT_DATA = 2
EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 130
UNLIMITED_WIDTH = (
    100_000  # the console width off a terminal: a table is as wide as its cells
)
# the one mapping from library parameters to options: the option's name where it differs
# (others: the same name, --with-dashes)
OPTION_OF_PARAM = {
    "score_kind": "score",
    "validation_fraction": "valid-frac",
    "workers": "jobs",
}


def plain() -> bool:
    """Plain text (no colour, no style, no progress bar): ``NO_COLOR`` is set or stdout
    is not a terminal.
    """
    return bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()


class Consoles:
    """The output of the running command: ``out`` (stdout, replaced by ``set_output``
    for each command), ``--debug`` and ``--quiet``.

    Every command and table prints through ``consoles.out``, never a copy of it: a
    copy would keep the console of an earlier command.
    """

    def __init__(self) -> None:
        # markup off: column, file and run names print as they are (`Flow [m³/h]`); the
        # few styled lines of our own pass markup=True and escape what they quote
        self.out = Console(highlight=False, markup=False)
        self.debug = False
        self.quiet = False

    def set_output(self, quiet: bool = False) -> None:
        """Set up ``out`` (stdout) for this command: rich on a terminal, plain text
        otherwise; silent with ``--quiet``.

        Off a terminal (a pipe, a log) nothing limits the line length, so tables
        print at their full width instead of cropping cells at 80 columns.
        """
        self.out = Console(
            highlight=False,
            markup=False,
            color_system=None if plain() else "auto",
            quiet=quiet,
            width=None if sys.stdout.isatty() else UNLIMITED_WIDTH,
        )
        self.quiet = quiet


consoles = Consoles()


def bars(console: Console) -> bool:
    """Whether a progress bar may be drawn on ``console``: a terminal, and no ``NO_COLOR``."""
    return console.is_terminal and not os.environ.get("NO_COLOR")


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Turn every failure into one ``error:`` line and an exit code."""
    try:
        yield
    except RareEventError as exc:
        if consoles.debug:
            traceback.print_exc()
        fail(terms.error_line(exc), EXIT_DATA)
    except KeyboardInterrupt:
        fail("interrupted; nothing was written", EXIT_INTERRUPTED)
    except (typer.Exit, typer.TyperException):
        raise
    except Exception as exc:  # anything else is a bug: one line, traceback with --debug
        if consoles.debug:
            traceback.print_exc()
        text = " ".join(str(exc).split())[:200]
        fail(
            f"unexpected {type(exc).__name__}: {text} (run with --debug for the traceback)",
            EXIT_UNEXPECTED,
        )


# a parameter the library marks inside a message, hint or note: `max_gap`, or
# `fill=drop` with the value to pass
_MARKED_PARAM = re.compile(r"`([a-z][a-z_]*)(?:=([^`]*))?`")


def option_of(param: str) -> str:
    """The option that sets a library parameter (``max_gap`` -> ``--max-gap``)."""
    return "--" + OPTION_OF_PARAM.get(param, param).replace("_", "-")


class OptionTerms:
    """Library text in CLI terms: every parameter it marks as the option that sets it.

    ``app`` is the Typer app whose options count; ``main`` sets it once the
    commands are registered, so that this module imports no command.
    """

    def __init__(self) -> None:
        self.app: typer.Typer | None = None

    def options(self) -> set[str]:
        """Every option of every command (``--max-gap``)."""
        assert self.app is not None, (
            "main sets the app once it has registered the commands"
        )
        group = typer.main.get_command(self.app)
        assert isinstance(group, TyperGroup)  # an app of several commands is a group
        return {
            name
            for command in group.commands.values()
            for param in command.params
            for name in param.opts
        }

    def text(self, text: str) -> str:
        """Library text with every marked parameter as its option: `` `max_gap` `` ->
        ``--max-gap``, `` `fill=drop` `` -> ``--fill drop``.

        A marked name that is no option (a column named in backticks, say) stays as it is.
        """
        options = self.options()

        def as_option(found: re.Match[str]) -> str:
            option = option_of(found[1])
            if option not in options:
                return found[0]
            return option if found[2] is None else f"{option} {found[2]}"

        return _MARKED_PARAM.sub(as_option, text)

    def error_line(self, exc: RareEventError) -> str:
        """The error's one line in CLI terms: the parameter it begins with
        (``margin must be ...``) and every marked one as options.
        """
        text = self.text(str(exc))
        if exc.param and text.startswith(f"{exc.param} "):
            return option_of(exc.param) + text[len(exc.param) :]
        return text


terms = OptionTerms()


def warn(message: str) -> None:
    if not consoles.quiet:
        typer.echo(f"warning: {message}", err=True)


def note(message: str) -> None:
    if not consoles.quiet:
        typer.echo(f"note: {message}", err=True)


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Python warnings (pandas, Keras) as ``warning:`` lines like rareevent's own."""
    warn(" ".join(str(message).split()))
