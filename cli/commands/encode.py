"""``rareevent encode``: the bottleneck vector of every window, for use in other models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..console import consoles, errors, note
from ..options import (
    ENCODE_OPTIONS,
    QuietOption,
    RunOption,
    RunsDir,
    check_outputs,
    output_kind,
    score_spec,
    takes,
)
from ..render import print_paths

if TYPE_CHECKING:
    from rareevent.options import ScoreSpec


@takes("spec", ENCODE_OPTIONS, score_spec)
def encode(
    data: Annotated[
        Path, typer.Argument(help="Sensor CSV with the trained feature columns.")
    ],
    run: RunOption = None,
    # keyword-only from here, so that the required --output needs no default (Typer
    # calls a command with keywords)
    *,
    output: Annotated[
        Path,
        typer.Option(
            help="Write row, time and the encoded vector of every window to this .csv "
            "or .json file."
        ),
    ],
    runs_dir: RunsDir = Path("runs"),
    # --chunk-rows, --fill and the reading options (--decimal ... --encoding), built by
    # takes
    spec: ScoreSpec,
    quiet: QuietOption = False,
) -> None:
    """Write the encoded vector (length u2) of every window of DATA, for use in other
    models (ae runs only).
    """
    consoles.set_output(quiet)
    with errors():
        from rareevent.runs import load_scorer, read_run, resolve_run
        from rareevent.scoring import encode_csv
        from rareevent.storage import atomic_file
        from rareevent.window_scores import require_bottleneck
        from rareevent.window_writer import WindowWriter

        kind = output_kind(output, ("csv", "json"))
        check_outputs(data, {"--output": output})
        folder = resolve_run(run, runs_dir)
        require_bottleneck(read_run(folder).arch)  # before Keras is imported
        record, detector = load_scorer(folder)
        with atomic_file(output) as temp, WindowWriter(temp, kind) as writer:
            n, filled = encode_csv(data, record, detector, writer, spec)
            writer.finish({"run": record.name, "units": record.units[1]})
        if filled:
            note(f"repaired {filled} blank/NaN cell(s) with --fill {spec.input.fill}")
        consoles.out.print(
            f"wrote {n:,} encoded windows x {record.units[1]} values to {output}"
        )
        print_paths(quiet, output)
