"""The ``rareevent`` command line: the app, its commands and the entry point.

Each command lives in ``commands/`` (parse, build what the library needs, call
it, render); what they share is in ``console``, ``options``, ``render`` and
``signals``. Library imports happen inside the commands so that
``rareevent --help`` never loads TensorFlow, pandas or scikit-learn.
"""

from __future__ import annotations

import inspect
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Annotated

import typer

from .commands.architecture import architecture
from .commands.encode import encode
from .commands.report import report
from .commands.score import score
from .commands.train import train
from .commands.update import update
from .console import EXIT_DATA, EXIT_INTERRUPTED, consoles, errors, show_warning, terms

app = typer.Typer(
    name="rareevent",
    help="Find rare events in multivariate sensor time series with LSTM reconstruction models.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
_typed = typer.core.TyperOption.display_type_rich
# an on/off flag takes no value: its help line shows no `<bool>` type (the one place
# Typer's help is changed)


def _display_type(self: typer.core.TyperOption, ctx: typer.Context) -> object:
    return None if self.is_flag else _typed(self, ctx)


def _help(command: Callable[..., object]) -> str:
    """A command's docstring as its ``--help``: each paragraph one line, as the help flows it.

    Typer's rich help keeps the line breaks of a docstring, which the source
    wraps at 100 characters; the terminal's width is the help's own.
    """
    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


typer.core.TyperOption.display_type_rich = _display_type  # type: ignore[method-assign,assignment]
for command in (
    train,
    update,
    architecture,
    score,
    encode,
    report,
):  # the order of `rareevent --help`
    app.command(help=_help(command))(command)
terms.app = app


def _print_version(value: bool) -> None:
    if value:
        from rareevent.model import planned_versions

        with errors():
            typer.echo(planned_versions())
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the versions of rareevent, Keras and its backend, the device "
            "models run on, and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    consoles.debug = debug
    consoles.set_output()
    warnings.showwarning = show_warning


def main() -> None:
    """Console entry point: usage errors become one ``error:`` line with exit code 2.

    SIGTERM stops a command as Ctrl-C does; the handler that was there before
    is put back on the way out, so a program that calls ``main()`` in-process
    keeps its own.
    """

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="rareevent", standalone_mode=False)
    except typer.Abort:
        typer.echo("error: interrupted; nothing was written", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (
        typer.TyperException
    ) as exc:  # usage errors: unknown option, bad value, missing argument
        if not exc.format_message().strip():  # bare `rareevent`: the help was printed
            sys.exit(getattr(exc, "exit_code", EXIT_DATA))
        typer.echo(
            f"error: {' '.join(exc.format_message().split())} (see --help)", err=True
        )
        sys.exit(getattr(exc, "exit_code", EXIT_DATA))
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
