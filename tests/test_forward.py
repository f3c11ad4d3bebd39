"""Scoring without TensorFlow (issue 25): the numpy forward against Keras', and what each command imports.

TensorFlow's float32 forward is itself only good to about 1e-6 relative
(against a float64 forward of the same weights: 1.2e-6 at most on the
sample data), so scores are compared at ``RTOL`` and their median
difference at 1e-6; flags, alarm episodes and top sensors must be equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rareevent import forward
from rareevent.detector import WEIGHTS_FILE, RareEventDetector
from rareevent.errors import RareEventError
from rareevent.model import ARCHITECTURES, LSTM_ARCHS, build_model
from rareevent.options import ScoreSpec
from tests.conftest import synthetic_frame

RTOL = 1e-5
ROOT = Path(__file__).resolve().parents[1]
RAREEVENT = str(Path(sys.executable).with_name("rareevent"))
FRAMEWORKS = ("tensorflow", "keras", "jax")
VARIANTS = (
    *LSTM_ARCHS,
    "ae-masked",
)  # every architecture, and a model that reads mask channels
# runs the installed entry point, then prints which ML frameworks the process had imported
WRAPPER = (
    "import atexit, json, runpy, sys\n"
    "atexit.register(lambda: print('ML modules: ' + json.dumps(sorted(m for m in %r if m in sys.modules)), file=sys.stderr))\n"
    "sys.argv = [%r, *sys.argv[1:]]\n"
    "runpy.run_path(%r, run_name='__main__')\n"
) % (FRAMEWORKS, RAREEVENT, RAREEVENT)


def run_rareevent(
    *args: object, cwd: Path, forward_env: str | None = None, stdin: str | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The installed CLI in a fresh process with no backend chosen: its result and the ML frameworks it imported."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KERAS_BACKEND", forward.FORWARD_ENV)
    }
    env["KERAS_HOME"] = str(cwd / ".keras")  # no keras.json of the user's
    if forward_env is not None:
        env[forward.FORWARD_ENV] = forward_env
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, *map(str, args)],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = [
        text for text in result.stderr.splitlines() if text.startswith("ML modules: ")
    ]
    assert line, result.stderr
    return result, json.loads(line[-1].removeprefix("ML modules: "))


@pytest.fixture(scope="module")
def saved(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, pd.DataFrame, Path]]:
    """A tiny run of every LSTM architecture in the registry, trained and saved: its folder, its sensor rows and its CSV."""
    from rareevent.training import save, train

    root = tmp_path_factory.mktemp("forward")
    csv = root / "sensors.csv"
    frame = synthetic_frame(n=700, seed=1, events=(150, 480, 620))
    frame.to_csv(csv, index=False, float_format="%.5f")
    runs = {}
    for variant in VARIANTS:
        arch, _, masked = variant.partition("-")
        detector = RareEventDetector(
            arch=arch,
            lookback=3,
            units=(4, 2),
            epochs=2,
            batch_size=64,
            smooth=2,
            seed=0,
            mask_rate=0.5 if masked else 0.0,
        )
        runs[variant] = (
            save(train(csv, detector, name=variant), root / "runs"),
            pd.read_csv(csv)[["s1", "s2", "s3"]],
            csv,
        )
    return runs


def loaded(
    folder: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> RareEventDetector:
    monkeypatch.setenv(forward.FORWARD_ENV, how)
    return RareEventDetector.load(folder)


def assert_close(numpy_scores: np.ndarray, keras_scores: np.ndarray) -> None:
    rel = np.abs(numpy_scores.astype(np.float64) - keras_scores) / np.abs(keras_scores)
    assert rel.max() < RTOL and np.median(rel) < 1e-6, (rel.max(), np.median(rel))


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_numpy_forward_scores_like_keras_for_every_architecture(
    variant: str, saved: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, X, _ = saved[variant]
    arch = variant.partition("-")[0]
    fast, slow = (
        loaded(folder, "numpy", monkeypatch),
        loaded(folder, "keras", monkeypatch),
    )
    assert isinstance(fast.model_.net, forward.NumpyModel) and not isinstance(
        slow.model_.net, forward.NumpyModel
    )
    assert fast.model_.count_params() == slow.model_.count_params()
    scores = slow.window_scores(X)
    assert_close(fast.window_scores(X), scores)
    np.testing.assert_array_equal(fast.predict(X), slow.predict(X))
    assert (
        0 < slow.predict(X).sum() < len(scores)
    )  # some windows flagged, not all: the comparison means something
    if ARCHITECTURES[arch].has_bottleneck:
        np.testing.assert_allclose(
            fast.encode(X.to_numpy()), slow.encode(X.to_numpy()), rtol=RTOL, atol=1e-6
        )


@pytest.mark.slow
@pytest.mark.parametrize("arch", LSTM_ARCHS)
def test_chunked_scoring_gives_the_same_windows_episodes_and_sensors_at_any_chunk_size(
    arch: str, saved: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rareevent.runs import load_run
    from rareevent.scoring import score_csv

    folder, _, csv = saved[arch]

    def scored(how: str, chunk_rows: int) -> tuple[pd.DataFrame, list[dict]]:
        monkeypatch.setenv(forward.FORWARD_ENV, how)
        record, detector = load_run(folder)
        parts: list[pd.DataFrame] = []
        result = score_csv(
            csv, record, detector, ScoreSpec(chunk_rows=chunk_rows), sink=parts.append
        )
        return pd.concat(parts, ignore_index=True), result.alarms

    expected, episodes = scored("keras", 10_000)
    assert len(expected) == 698 and expected["flagged"].any() and episodes
    for chunk_rows in (1, 7, 64, 10_000):
        got, alarms = scored("numpy", chunk_rows)
        assert_close(got["error"].to_numpy(), expected["error"].to_numpy())
        pd.testing.assert_frame_equal(
            got.drop(columns="error"), expected.drop(columns="error")
        )
        assert [
            {k: v for k, v in a.items() if not isinstance(v, float)} for a in alarms
        ] == [
            {k: v for k, v in a.items() if not isinstance(v, float)} for a in episodes
        ]


@pytest.mark.slow
def test_update_from_a_numpy_loaded_run_trains_on_from_the_same_weights(
    saved: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``update`` loads a run for scoring, then trains: Keras gets the weights the numpy model holds."""
    folder, X, _ = saved["ae"]
    fast, slow = (
        loaded(folder, "numpy", monkeypatch),
        loaded(folder, "keras", monkeypatch),
    )
    for detector in (fast, slow):
        detector.set_params(warm_start=True, epochs=1)
        detector.fit(X)
    assert not isinstance(fast.model_.net, forward.NumpyModel)
    np.testing.assert_array_equal(fast.decision_scores_, slow.decision_scores_)


def test_a_builder_the_numpy_forward_cannot_run_falls_back_to_keras(
    saved: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rareevent import model

    def gru_builder(
        lookback: int,
        n_features: int,
        units: tuple,
        activation: str,
        unroll: bool,
        n_outputs: int,
        name: str,
    ) -> object:
        keras = model.import_keras()
        inputs = keras.Input(shape=(lookback, n_features))
        return keras.Model(
            inputs,
            keras.layers.GRU(n_outputs, return_sequences=True)(inputs),
            name=name,
        )

    monkeypatch.setitem(
        ARCHITECTURES, "ae", model.Architecture("GRU", model.KerasModel, gru_builder)
    )
    with pytest.raises(forward.Unsupported, match="GRU"):
        forward.load(
            saved["ae"][0] / WEIGHTS_FILE,
            "ae",
            lambda: model.build_model("ae", 3, 3, (4, 2)),
        )


@pytest.mark.parametrize("damage", ["truncated", "other shapes"])
def test_weights_that_do_not_fit_are_one_error_naming_the_file(
    damage: str, saved: dict, tmp_path: Path
) -> None:
    source = saved["ae"][0] / WEIGHTS_FILE
    path = tmp_path / WEIGHTS_FILE
    path.write_bytes(
        source.read_bytes()[: len(source.read_bytes()) // 2]
        if damage == "truncated"
        else source.read_bytes()
    )
    units = (4, 2) if damage == "truncated" else (5, 2)
    with pytest.raises(
        RareEventError, match=r"model.weights.h5: not the weights of this 'ae' model"
    ):
        forward.load(path, "ae", lambda: build_model("ae", 3, 3, units))


@pytest.mark.slow
def test_a_bad_forward_setting_is_an_error() -> None:
    result = subprocess.run(
        [RAREEVENT, "--version"],
        env={**os.environ, forward.FORWARD_ENV: "tf"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.startswith(
        "error: RAREEVENT_FORWARD must be one of auto, numpy, keras, got 'tf'"
    ), result.stderr


@pytest.mark.slow
def test_score_imports_no_framework_and_matches_the_tensorflow_path(
    tmp_path: Path,
) -> None:
    """The acceptance test: ``score`` in a fresh process, no TensorFlow at exit; same output as 0.3.0's TensorFlow path."""
    from rareevent.training import save, train

    data = pd.read_csv(ROOT / "sample_data" / "pump_sensors.csv", nrows=14_000)
    data.iloc[:6000].to_csv(tmp_path / "train.csv", index=False)
    sample = tmp_path / "pump.csv"
    data.iloc[6000:].to_csv(sample, index=False)  # two events
    detector = RareEventDetector(
        lookback=3, units=(4, 2), epochs=2, batch_size=64, seed=0
    )
    run = save(train(tmp_path / "train.csv", detector, name="tiny"), tmp_path / "runs")
    outputs = {}
    for how in ("auto", "keras"):
        result, imported = run_rareevent(
            "score",
            sample,
            "--run",
            run,
            "--output",
            tmp_path / f"{how}.csv",
            "--show",
            "50",
            "--chunk-rows",
            "700",
            cwd=tmp_path,
            forward_env=how,
        )
        assert result.returncode == 0, result.stderr
        assert imported == ([] if how == "auto" else ["keras", "tensorflow"])
        outputs[how] = (
            result.stdout.replace(f"{how}.csv", "OUT"),
            pd.read_csv(tmp_path / f"{how}.csv"),
        )
    (text, fast), (text_tf, slow) = outputs["auto"], outputs["keras"]
    assert (
        text == text_tf
    )  # flagged count, threshold, alarm episodes with their top sensors, metrics
    assert "alarm episode" in text and fast["flagged"].sum() > 0
    assert_close(fast["error"].to_numpy(), slow["error"].to_numpy())
    pd.testing.assert_frame_equal(
        fast.drop(columns=["error", "top_features"]),
        slow.drop(columns=["error", "top_features"]),
    )
    assert (
        fast["top_features"].str.replace(r":[0-9.]+", "", regex=True)
        == slow["top_features"].str.replace(r":[0-9.]+", "", regex=True)
    ).all()


@pytest.mark.slow
@pytest.mark.parametrize("command", ["encode", "score -"])
def test_encode_and_scoring_stdin_import_no_framework(
    command: str, trained_runs: dict[str, Path], sensor_csv: Path, tmp_path: Path
) -> None:
    run = trained_runs["ae"]
    if command == "encode":
        result, imported = run_rareevent(
            "encode",
            sensor_csv,
            "--run",
            run,
            "--output",
            tmp_path / "codes.csv",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert len(pd.read_csv(tmp_path / "codes.csv")) == 598
    else:
        result, imported = run_rareevent(
            "score", "-", "--run", run, cwd=tmp_path, stdin=sensor_csv.read_text()
        )
        assert result.returncode == 0, result.stderr
        assert "598 windows" in result.stdout
    assert imported == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("report", "--runs-dir", "RUNS"),
        ("score", "--help"),
    ],
    ids=["help", "version", "report", "score-help"],
)
def test_commands_that_run_no_model_import_no_framework(
    args: tuple[str, ...], trained_runs: dict[str, Path], tmp_path: Path
) -> None:
    runs_dir = trained_runs["ae"].parent
    result, imported = run_rareevent(
        *(str(runs_dir) if a == "RUNS" else a for a in args), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert imported == []
    if args[0] == "report":
        assert "tiny-ae" in result.stdout


@pytest.mark.slow
def test_completion_imports_no_framework(
    trained_runs: dict[str, Path], tmp_path: Path
) -> None:
    words = f"rareevent score d.csv --runs-dir {trained_runs['ae'].parent} --run tiny-"
    env = {
        **os.environ,
        "_RAREEVENT_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    env.pop("KERAS_BACKEND")
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split() == ["tiny-ae", "tiny-plain"], result.stderr
    assert "ML modules: []" in result.stderr


@pytest.mark.slow
def test_every_layer_type_the_recorder_offers_runs_like_keras(tmp_path: Path) -> None:
    """A builder made of each supported layer (as a future registry entry could be), run by Keras and by numpy from the same weights."""
    from rareevent import model

    def builder() -> object:
        keras = model.import_keras()
        layers = keras.layers
        inputs = keras.Input(shape=(4, 3), name="window")
        seq = layers.LSTM(5, activation="relu", return_sequences=True, name="a")(inputs)
        last = layers.LSTM(2, return_sequences=False, use_bias=False, name="b")(
            layers.Dropout(0.1)(seq)
        )
        wide = layers.Dense(8, activation="tanh")(last)
        repeated = layers.RepeatVector(4)(layers.Activation("sigmoid")(last))
        both = layers.Concatenate()([layers.Reshape((4, 2))(wide), repeated])
        steps = layers.TimeDistributed(layers.Dense(3, use_bias=False))(
            layers.Add()([both, both])
        )
        flat = layers.Dense(12, activation="relu")(layers.Flatten()(steps))
        return keras.Model(inputs, layers.Reshape((4, 3), name="output")(flat))

    keras_model = builder()
    rng = np.random.default_rng(0)
    keras_model.set_weights(
        [
            rng.normal(0, 0.5, w.shape).astype(np.float32)
            for w in keras_model.get_weights()
        ]
    )
    keras_model.save_weights(tmp_path / WEIGHTS_FILE)
    numpy_model = forward.load(tmp_path / WEIGHTS_FILE, "test", builder)
    windows = rng.normal(size=(50, 4, 3)).astype(np.float32)
    expected = np.asarray(keras_model.predict_on_batch(windows))
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(
        numpy_model.predict_on_batch(windows), expected, rtol=1e-5, atol=1e-6
    )
    assert numpy_model.count_params() == keras_model.count_params()
