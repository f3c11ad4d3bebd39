"""The model builder: unrolled short windows compute what the step loop computes."""

from __future__ import annotations

import numpy as np
import pytest

from rareevent.model import UNROLL_MAX_LOOKBACK, build_model


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["ae", "plain"])
def test_unrolled_model_matches_the_looped_one(arch: str) -> None:
    looped = build_model(arch, 6, 3, (4, 2), unroll=False)
    unrolled = build_model(arch, 6, 3, (4, 2))
    assert all(
        layer.unroll for layer in unrolled.layers if type(layer).__name__ == "LSTM"
    )
    unrolled.set_weights(looped.get_weights())
    x = np.random.default_rng(0).normal(size=(8, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(
        unrolled.predict_on_batch(x), looped.predict_on_batch(x), rtol=1e-5, atol=1e-6
    )


def test_long_windows_keep_the_step_loop() -> None:
    model = build_model("ae", UNROLL_MAX_LOOKBACK + 1, 2, (4, 2))
    assert not any(
        layer.unroll for layer in model.layers if type(layer).__name__ == "LSTM"
    )
