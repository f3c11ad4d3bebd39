"""Device choices: the Keras backend rareevent picks, the auto batch on a GPU, and what makes GPU training repeatable.

The GPU itself is measured by ``benchmarks/gpu.py`` on a GPU machine; these
tests pin the rules that run on every machine.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rareevent.model import (
    GPU_MAX_BATCH,
    auto_batch_size,
    learning_rate_schedule,
    whole_batches,
)
from rareevent.model import (
    configured_backend,
    deterministic_xla,
    import_keras,
    on_accelerator,
    pick_backend,
    versions,
)


def _never() -> bool:
    raise AssertionError("JAX was imported although the answer did not depend on it")


@pytest.mark.parametrize(
    ("configured", "tensorflow", "jax", "gpu", "expected"),
    [
        ("torch", True, True, _never, None),  # the user's choice always wins
        ("jax", False, True, _never, None),
        (None, True, False, _never, None),  # no JAX: Keras' own default
        (
            None,
            False,
            True,
            _never,
            "jax",
        ),  # JAX without TensorFlow: the gpu extra's install
        (
            None,
            True,
            True,
            lambda: True,
            "jax",
        ),  # a GPU JAX can see beats a CPU TensorFlow
        (None, True, True, lambda: False, None),
    ],
)
def test_pick_backend(configured, tensorflow, jax, gpu, expected) -> None:
    assert pick_backend(configured, tensorflow, jax, gpu) == expected


def test_configured_backend_ignores_the_keras_json_keras_writes_itself(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert configured_backend() is None  # no file
    config = tmp_path / "keras.json"
    config.write_text(json.dumps({"backend": "tensorflow", "floatx": "float32"}))
    assert configured_backend() is None  # Keras' default, written on first import
    config.write_text(json.dumps({"backend": "torch"}))
    assert configured_backend() == "torch"
    config.write_text("{not json")
    assert configured_backend() is None
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert configured_backend() == "jax"


def test_deterministic_xla_adds_the_flag_once_and_respects_the_users(
    monkeypatch,
) -> None:
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    deterministic_xla()
    deterministic_xla()
    import os

    assert (
        os.environ["XLA_FLAGS"]
        == "--xla_dump_to=/tmp/x --xla_gpu_deterministic_ops=true"
    )
    monkeypatch.setenv("XLA_FLAGS", "--xla_gpu_deterministic_ops=false")
    deterministic_xla()
    assert os.environ["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=false"


def test_auto_batch_on_a_gpu_grows_only_where_the_cpu_rule_caps() -> None:
    assert auto_batch_size(240_000) == 128  # the CPU rule is unchanged
    assert auto_batch_size(240_000, accelerator=True) == GPU_MAX_BATCH == 2048
    assert auto_batch_size(10**9, accelerator=True) == GPU_MAX_BATCH
    assert auto_batch_size(60_000, accelerator=True) == 512
    for n in range(
        1, 12_800, 97
    ):  # the sample data and every SKAB file: the same batch on both
        assert auto_batch_size(n, accelerator=True) == auto_batch_size(n)


def test_whole_batches_repeats_a_few_windows_up_to_full_batches() -> None:
    train = np.arange(1000 * 3 * 2, dtype=np.float32).reshape(1000, 3, 2)
    padded = whole_batches(train, 128, seed=7)
    assert len(padded) == 1024 and len(padded) % 128 == 0
    np.testing.assert_array_equal(padded[:1000], train)
    originals = {window.tobytes() for window in train}
    assert all(window.tobytes() in originals for window in padded[1000:])
    assert (
        len({window.tobytes() for window in padded[1000:]}) == 24
    )  # drawn without repeats
    np.testing.assert_array_equal(
        whole_batches(train, 128, seed=7), padded
    )  # same seed, same windows
    assert whole_batches(train, 100, seed=7) is train  # already whole
    tiny = whole_batches(train[:3], 8, seed=0)
    assert len(tiny) == 8


def test_learning_rate_warms_up_over_one_epoch_beyond_batch_128() -> None:
    keras = import_keras()
    assert (
        learning_rate_schedule(keras, 2.8e-3, 128, 10_000) == 2.8e-3
    )  # small batches: the constant rate, as before
    schedule = learning_rate_schedule(keras, 0.0113, 2048, 2048 * 50)
    rates = [float(schedule(step)) for step in (0, 25, 50, 51, 5000)]
    assert rates[0] == pytest.approx(0.00113)
    assert rates[0] < rates[1] < rates[2]
    assert rates[2:] == pytest.approx([0.0113] * 3)


def test_versions_name_the_device() -> None:
    assert on_accelerator() is False
    assert versions()["device"] == "cpu"
