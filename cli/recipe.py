"""Training recipes: a TOML table of ``train`` options, read into the command and
written back from a run.

The keys are derived from the command's own parameters (``--batch-size`` is
``batch-size``, the DATA argument is ``data``), so a new option is a recipe
key without any code here. A file is read into click's ``default_map``: the
command line still wins, and every value is first converted by the option's
own type, the way the command line would be, so a bad value or an unknown key
is a usage error naming the file, the key and its line.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Container, Iterable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rareevent.errors import RareEventError

if TYPE_CHECKING:
    from rareevent.record import RunRecord

TABLE = "train"


def recipe_key(param: Any) -> str:
    """The recipe key of a click parameter: its long option without ``--``, or an
    argument's name.
    """
    long = [opt[2:] for opt in param.opts if opt.startswith("--")]
    return long[0] if long else param.name


def read_defaults(
    path: Path, ctx: typer.Context, leave_out: Container[str]
) -> dict[str, Any]:
    """The ``[train]`` table of ``path`` as a ``default_map`` for ``ctx``'s command
    (parameter name -> value).

    Raises ``typer.BadParameter`` (a usage error, exit code 2) for an unreadable
    file, bad TOML, an unknown table or key, a key of a parameter in
    ``leave_out`` (where and whether to write, how to print: the command
    line's decision, never a file's), or a value the option refuses.
    """
    text = _read_text(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise typer.BadParameter(f"{path}: not valid TOML: {exc}") from None
    for key in document:
        if key != TABLE:
            raise typer.BadParameter(
                f"{path}: unknown key {key!r}{_line(text, key)}; options go in the [{TABLE}] table"
            )
    table = document.get(TABLE)
    if not isinstance(table, dict):
        raise typer.BadParameter(f"{path}: no [{TABLE}] table")
    params = {recipe_key(p): p for p in _options(ctx) if p.name not in leave_out}
    command_line_only = {recipe_key(p) for p in _options(ctx) if p.name in leave_out}
    defaults = {}
    for key, value in table.items():
        if key in command_line_only:
            raise typer.BadParameter(
                f"{path}: key {key!r}{_line(text, key)} is not read from a recipe: "
                "where and whether to write, and how to print, are the command "
                f"line's decision (give --{key})"
            )
        param = params.get(key)
        if param is None:
            close = difflib.get_close_matches(key, params, n=1)
            hint = (
                f" (hint: did you mean {close[0]!r}?)"
                if close
                else f" (hint: keys are {', '.join(params)})"
            )
            raise typer.BadParameter(
                f"{path}: unknown key {key!r} in [{TABLE}]{_line(text, key)}{hint}"
            )
        defaults[param.name] = _checked(
            ctx, param, value, f"{path}: {key}{_line(text, key)}"
        )
    return defaults


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise typer.BadParameter(f"{path}: file not found") from None
    except IsADirectoryError:
        raise typer.BadParameter(f"{path}: is a folder, not a recipe file") from None
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise typer.BadParameter(f"{path}: cannot read ({exc.strerror})") from None


def _line(text: str, key: str) -> str:
    """`` at line N`` of the first line assigning ``key`` (bare or quoted), or nothing."""
    pattern = re.compile(rf"""^\s*(["']?){re.escape(key)}\1\s*[=.]""")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line) or line.strip() == f"[{key}]":
            return f" at line {number}"
    return ""


def _checked(ctx: typer.Context, param: Any, value: Any, where: str) -> Any:
    """``value`` as the command line would give it, once the option's type accepts it."""
    flag = bool(getattr(param, "is_flag", False))
    many = (
        param.multiple or param.nargs == -1
    )  # a repeatable option, or DATA (one or more files)
    if isinstance(value, dict):
        raise typer.BadParameter(f"{where}: must be a single value, not a table")
    if isinstance(value, list) and not many:
        raise typer.BadParameter(f"{where}: must be a single value, not a list")
    if isinstance(value, bool) != flag:
        raise typer.BadParameter(
            f"{where}: must be "
            f"{'true or false' if flag else 'a number or a string, not true/false'}"
        )
    given = (
        value
        if flag
        else [str(v) for v in value]
        if isinstance(value, list)
        else [str(value)]
        if many
        else str(value)
    )
    try:
        param.process_value(ctx, given)
    except typer.BadParameter as exc:
        raise typer.BadParameter(f"{where}: {exc.message}") from None
    return given


def settings(ctx: typer.Context, leave_out: Container[str]) -> dict[str, Any]:
    """The effective value of every parameter of ``ctx``'s command (but ``leave_out``),
    by recipe key, as JSON values.

    Paths are made absolute so that the recipe works from any folder;
    ``None`` stands for an option left to its automatic default.
    """
    return {
        recipe_key(p): _plain(ctx.params[p.name])
        for p in _options(ctx)
        if p.name not in leave_out
    }


def _options(ctx: typer.Context) -> list[Any]:
    """The parameters of ``ctx``'s command that carry a value (not ``--help`` or
    ``--install-completion``).
    """
    return [p for p in ctx.command.params if p.expose_value]


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def recipe_text(
    record: RunRecord, run_file: Path, leave_out: Container[str] = ()
) -> str:
    """The TOML recipe that trains ``record``'s run again (``report RUN --recipe``),
    without the keys in ``leave_out``.
    """
    values = record.settings
    if values is None:
        raise RareEventError(
            f"{run_file}: no training settings stored",
            hint="runs made by `rareevent update`, through the library or by an older "
            "rareevent have none; retrain with `rareevent train`",
        )
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and _tomlable(v) for k, v in values.items()
    ):
        raise RareEventError(
            f"{run_file}: field 'settings' has an invalid value",
            hint="retrain: the run folder was edited or damaged",
        )
    header = [
        f"rareevent recipe of run {record.name!r} (created {record.created}, data "
        f"sha256 {record.input_sha256})",
        "train again with: rareevent train --config THIS_FILE.toml --name NEW_NAME",
    ]
    return to_toml(
        TABLE,
        {key: value for key, value in values.items() if key not in leave_out},
        header,
    )


def _tomlable(value: Any) -> bool:
    if isinstance(value, list):
        return all(_tomlable(v) and v is not None for v in value)
    return (
        value is None
        or isinstance(value, (bool, int, str))
        or (isinstance(value, float) and math.isfinite(value))
    )


def to_toml(table: str, values: dict[str, Any], comments: Iterable[str] = ()) -> str:
    """One TOML table: ``comments`` as ``#`` lines, then ``key = value`` lines; ``None``
    values are listed in a comment.
    """
    lines = [f"# {_visible(comment)}" for comment in comments]
    lines.append(f"[{table}]")
    lines += [
        f"{_toml_key(key)} = {_toml_value(value)}"
        for key, value in values.items()
        if value is not None
    ]
    unset = [key for key, value in values.items() if value is None]
    if unset:
        lines.append(f"# not set (the option's default applies): {', '.join(unset)}")
    return "\n".join(lines) + "\n"


def _visible(text: str) -> str:
    """``text`` with every control character (a newline would end a comment) written as
    an escape.
    """
    return "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text
    )


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_string(str(value))


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    return '"' + _visible("".join(_ESCAPES.get(c, c) for c in text)) + '"'
