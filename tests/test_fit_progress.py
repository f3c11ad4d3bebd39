"""``fit(verbose=...)`` (issue 33, item 5): Keras-style epoch lines or a progress bar, and the option names.

The API's ``validation_fraction`` is the CLI's ``--valid-frac``: the Python API
page of the site (docs/reference/python-api.md) maps every option whose name
differs from its parameter in one table.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

from rareevent.detector import RareEventDetector
from rareevent.errors import RareEventError
from rareevent.progress import fit_progress
from tests.conftest import synthetic_frame

FEATURES = ["s1", "s2", "s3"]
API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "python-api.md"


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr in a shell does."""

    def isatty(self) -> bool:
        return True


def test_fit_is_silent_by_default_and_sums_itself_up_when_verbose(
    capsys: pytest.CaptureFixture[str],
) -> None:
    frame = synthetic_frame()  # an event in the validation part: threshold f1
    X, y = frame[FEATURES], frame["label"]
    RareEventDetector(arch="pca", lookback=3).fit(X, y)
    assert capsys.readouterr() == ("", "")
    detector = RareEventDetector(arch="pca", lookback=3).fit(X, y, verbose=2)
    out, err = capsys.readouterr()
    assert out == ""  # progress goes to stderr
    assert err == (
        f"fitted pca: in closed form, threshold {detector.threshold_:.6g} (f1), "
        f"{detector.train_seconds_:.1f}s\n"
    )
    with pytest.raises(RareEventError, match=r"^verbose must be 0, 1 or 2, got 3$"):
        RareEventDetector(arch="pca").fit(X, y, verbose=3)


def test_one_line_per_epoch_off_a_terminal_and_a_bar_in_one() -> None:
    logs = [{"loss": 0.5, "val_loss": 0.25}, {"loss": 0.125, "val_loss": 0.0625}]
    for verbose in (1, 2):  # 1 off a terminal (a log, a notebook) prints lines too
        stream = io.StringIO()
        with fit_progress(verbose, "fitting ae", 12, stream) as on_epoch:
            assert on_epoch is not None
            for epoch, values in enumerate(logs):
                on_epoch(epoch, values)
        lines = stream.getvalue().splitlines()
        assert [re.sub(r" - [\d.]+s$", "", line) for line in lines] == [
            "epoch  1/12 - loss 0.5 - val_loss 0.25",
            "epoch  2/12 - loss 0.125 - val_loss 0.0625",
        ]
    terminal = Terminal()
    with fit_progress(1, "fitting ae", 2, terminal) as on_epoch:
        assert on_epoch is not None
        for epoch, values in enumerate(logs):
            on_epoch(epoch, values)
    drawn = terminal.getvalue()
    assert "fitting ae" in drawn and "2/2" in drawn and "val_loss 0.0625" in drawn
    assert "epoch 1/2" not in drawn  # the bar, not the lines
    with fit_progress(0, "fitting ae", 2, terminal) as on_epoch:
        assert on_epoch is None


@pytest.mark.slow
def test_an_lstm_fit_prints_each_epoch_and_still_calls_on_epoch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 33 (5): fit was silent for 76 s."""
    frame = synthetic_frame(n=300, events=(100, 260))
    seen: list[int] = []
    detector = RareEventDetector(
        lookback=3, units=(4, 2), epochs=2, batch_size=64, patience=5, seed=0
    ).fit(
        frame[FEATURES],
        frame["label"],
        verbose=2,
        on_epoch=lambda epoch, logs: seen.append(epoch),
    )
    lines = capsys.readouterr().err.splitlines()
    assert seen == [0, 1] and detector.epochs_run_ == 2
    history = detector.history_
    for epoch in (0, 1):
        assert lines[epoch].startswith(
            f"epoch {epoch + 1}/2 - loss {history['loss'][epoch]:.4g} "
            f"- val_loss {history['val_loss'][epoch]:.4g} - "
        )
    assert lines[2].startswith(f"fitted ae: 2 epoch(s), best {detector.best_epoch_},")
    assert np.isfinite(detector.threshold_)


def test_the_api_page_maps_every_option_named_unlike_its_parameter() -> None:
    """One table: ``--valid-frac`` is ``validation_fraction``, and every other pair of ``OPTION_OF_PARAM``."""
    import typer
    from rareevent.cli.console import OPTION_OF_PARAM
    from rareevent.cli.main import app

    text = API_PAGE.read_text(encoding="utf-8")
    table = text[text.index("## Options and parameters") :]
    table = table[: table.index("\n\n", table.index("| CLI option |"))]
    rows = [line for line in table.splitlines() if line.startswith("| `--")]
    options = {
        name
        for command in typer.main.get_command(app).commands.values()  # type: ignore[attr-defined]
        for param in command.params
        for name in param.opts
    }
    pairs = {**OPTION_OF_PARAM, "validation_fraction": "valid-frac"}
    assert len(rows) == len(OPTION_OF_PARAM)
    for param, option in pairs.items():
        assert f"--{option}" in options, option
        row = next(line for line in rows if line.startswith(f"| `--{option}"))
        assert f"`{param}`" in row, row
    assert "validation_fraction" in RareEventDetector().get_params()
