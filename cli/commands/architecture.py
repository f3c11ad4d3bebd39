"""``rareevent architecture``: the layer table of a model, built without data."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import JustifyMethod
from rich.table import Table

from rareevent.errors import RareEventError

from ..console import consoles, errors
from ..options import Activation, LstmArch, parse_units


def architecture(
    arch: Annotated[
        LstmArch,
        typer.Option(help="LSTM autoencoder, plain LSTM stack or forecasting LSTM."),
    ] = LstmArch["ae"],
    lookback: Annotated[int, typer.Option(help="Rows per window (T).")] = 5,
    horizon: Annotated[
        int, typer.Option(help="--arch forecast: rows predicted at the window's end.")
    ] = 1,
    features: Annotated[int, typer.Option(help="Number of sensors (F).")] = 8,
    units: Annotated[
        str, typer.Option(help="LSTM units u1,u2 (1 to 4096 each).")
    ] = "32,16",
    activation: Annotated[
        Activation, typer.Option(help="LSTM activation.")
    ] = Activation.tanh,
    context: Annotated[
        int,
        typer.Option(
            help="How many of the features are context (read, not reconstructed)."
        ),
    ] = 0,
) -> None:
    """Print the layer table of a model: name, type, output shape, parameters."""
    with errors():
        from rareevent.model import build_model, check_model_options, layer_table

        u = parse_units(units, auto=False)
        check_model_options(arch, activation, u, lookback, horizon)
        if features < 1:
            raise RareEventError(f"--features must be at least 1, got {features}")
        if not 0 <= context < features:
            raise RareEventError(
                f"--context must be in 0..{features - 1} (at least one feature is "
                f"reconstructed), got {context}"
            )
        model = build_model(
            arch,
            lookback,
            features,
            u,
            activation,
            n_outputs=features - context,
            horizon=horizon,
        )
        title = f"{arch}: lookback {lookback}, {features} features" + (
            f" ({context} context)" if context else ""
        )
        table = Table(title=f"{title}, units {u[0]},{u[1]}")
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("layer", "left"),
            ("type", "left"),
            ("output shape", "left"),
            ("parameters", "right"),
        )
        for column, justify in columns:
            table.add_column(column, justify=justify)
        table.add_row("window", "Input", str((lookback, features)), "0")
        for layer_name, kind, shape, params in layer_table(model):
            table.add_row(layer_name, kind, shape, f"{params:,}")
        table.add_section()
        table.add_row("total", "", "", f"{model.count_params():,}")
        consoles.out.print(table)
