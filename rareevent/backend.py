"""Which Keras backend runs the models, how Keras is imported, and on which device.

The bottom of the model layer. ``rareevent.model`` builds Keras models;
``rareevent.forward`` records the same builders without Keras. Both read
here which backend the user chose and what stands in for Keras while a
builder is recorded, so that neither imports the other to learn them.
This is the only module that imports Keras, and it does so on first use
(``import_keras``), so the CLI starts fast.
It also says whether a saved model scores through the numpy forward or
through Keras (:func:`use_numpy`, ``RAREEVENT_FORWARD``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import rareevent
from rareevent.errors import RareEventError

FORWARD_ENV = "RAREEVENT_FORWARD"
FORWARDS = ("auto", "numpy", "keras")


def configured_backend() -> str | None:
    """The Keras backend the user chose: ``KERAS_BACKEND``, else ``keras.json``'s, else None.

    Keras writes ``keras.json`` itself on first import, with its default
    ``tensorflow``: that value says nothing about the user, so it counts as
    no choice. Any other backend in the file was put there by someone.
    """
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "keras.json"
    try:
        backend = json.loads(config.read_text(encoding="utf-8")).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) and backend != "tensorflow" else None


def use_numpy() -> bool:
    """Whether saved models are scored in numpy: ``RAREEVENT_FORWARD`` (auto, numpy,
    keras), else unless the user chose a Keras backend.
    """
    choice = os.environ.get(FORWARD_ENV, "auto").strip().lower() or "auto"
    if choice not in FORWARDS:
        raise RareEventError(
            f"{FORWARD_ENV} must be one of {', '.join(FORWARDS)}, got {os.environ[FORWARD_ENV]!r}"
        )
    if choice == "auto":
        return configured_backend() is None
    return choice == "numpy"


_building_with: ContextVar[Any] = ContextVar("rareevent_building_with", default=None)


@contextmanager
def building_with(api: Any) -> Iterator[None]:
    """Within the block, ``import_keras()`` returns ``api`` instead of Keras.

    The numpy forward (``rareevent.forward``) runs the registry's builders on
    a recorder of the ``keras.Input``/``keras.layers``/``keras.Model`` calls
    they make: one description of each architecture serves both.
    """
    token = _building_with.set(api)
    try:
        yield
    finally:
        _building_with.reset(token)


def stand_in() -> Any:
    """What ``building_with`` put in Keras' place in this context, or None."""
    return _building_with.get()


def pick_backend(
    configured: str | None,
    tensorflow_installed: bool,
    jax_installed: bool,
    jax_has_gpu: Callable[[], bool],
) -> str | None:
    """The Keras backend rareevent sets before Keras loads, or None to leave Keras' own choice.

    A backend the user configured always wins. Otherwise JAX is chosen when
    it can see a GPU, or when TensorFlow is not installed at all: a GPU
    machine often has JAX with CUDA and no CUDA build of TensorFlow, and the
    ``gpu`` extra installs exactly that. ``jax_has_gpu`` is only called when
    the answer depends on it, since importing JAX takes about a second.
    """
    if configured or not jax_installed:
        return None
    if not tensorflow_installed or jax_has_gpu():
        return "jax"
    return None


def deterministic_xla() -> None:
    """Ask XLA for deterministic GPU kernels (before JAX starts), unless ``XLA_FLAGS``
    already says otherwise.

    Without it, two trainings with the same seed on the same GPU gave
    thresholds 1.42068 and 1.41947 on the sample data; with it, identical
    ones. On the CPU the flag changes nothing.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()


def _jax_has_gpu() -> bool:
    import jax

    try:
        return any(device.platform == "gpu" for device in jax.devices())
    except RuntimeError:  # no backend could start
        return False


def import_keras() -> ModuleType:
    """Import Keras quietly, on the backend ``pick_backend`` chooses (or
    ``building_with``'s stand-in).

    TensorFlow's C++ start-up lines (absl, oneDNN notices) ignore
    ``TF_CPP_MIN_LOG_LEVEL``, so stderr is pointed at /dev/null while the
    backend loads; Python errors are still raised normally.
    """
    if stand_in() is not None:
        return stand_in()
    if "keras" in sys.modules:
        return sys.modules["keras"]
    installed = importlib.util.find_spec
    if installed("jax") is not None:
        deterministic_xla()
    backend = pick_backend(
        configured_backend(),
        installed("tensorflow") is not None,
        installed("jax") is not None,
        _jax_has_gpu,
    )
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if keras.backend.backend() == "jax":
        cache_compilations()
    return keras


def cache_compilations() -> None:
    """Keep JAX's compiled programs on disk, so that a later process with the same shapes skips XLA.

    Each ``train`` and ``score`` is a fresh process that compiles the same
    few programs. With the cache, the first training step on JAX's CPU
    backend took 4 to 6 s instead of 20 to 30 s here, and the first
    prediction 0.5 s instead of 4 s; what is left is tracing. The folder is
    ``$XDG_CACHE_HOME/rareevent/xla`` (``~/.cache/...``); JAX's own
    ``JAX_COMPILATION_CACHE_DIR`` moves it and ``JAX_ENABLE_COMPILATION_CACHE=false``
    turns it off.
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    import jax

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    jax.config.update("jax_compilation_cache_dir", str(base / "rareevent" / "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@functools.cache
def compute_device() -> str:
    """Where Keras runs models: ``cpu``, or ``gpu: <name>`` for the first accelerator
    the backend sees.
    """
    backend = import_keras().backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return (
            "cpu"
            if device.platform == "cpu"
            else f"{device.platform}: {device.device_kind}"
        )
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "cpu"
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"gpu: {details.get('device_name', gpus[0].name)}"
    if backend == "torch":
        import torch

        return (
            f"gpu: {torch.cuda.get_device_name(0)}"
            if torch.cuda.is_available()
            else "cpu"
        )
    return "cpu"


def on_accelerator() -> bool:
    """Whether models run on a GPU (or another accelerator) rather than the CPU."""
    return compute_device() != "cpu"


def versions() -> dict[str, str | None]:
    """rareevent's, Keras's and the Keras backend's versions, and the device
    (``tensorflow``: None under another backend).
    """
    keras = import_keras()
    backend = keras.backend.backend()
    backend_version = getattr(sys.modules.get(backend), "__version__", None)
    return {
        "rareevent": rareevent.__version__,
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": backend_version,
        "tensorflow": backend_version if backend == "tensorflow" else None,
        "device": compute_device(),
    }


def planned_versions() -> str:
    """What ``versions()`` would say, found without importing Keras or a backend
    (``rareevent --version``).

    The backend is ``pick_backend``'s choice; when it depends on whether JAX
    sees a GPU, which only importing JAX tells, both answers are named.
    Saved models are scored in numpy unless ``RAREEVENT_FORWARD`` or a
    chosen backend says otherwise (``rareevent.forward``).
    """
    from importlib import metadata

    def version(module: str) -> str:
        for dist in metadata.packages_distributions().get(module, []):
            return metadata.version(dist)
        return "(not installed)"

    def found(module: str) -> bool:
        return importlib.util.find_spec(module) is not None

    configured = configured_backend()
    choice = [
        pick_backend(configured, found("tensorflow"), found("jax"), partial(bool, gpu))
        or configured
        or "tensorflow"
        for gpu in (False, True)
    ]
    backend = f"{choice[0]} {version(choice[0])}" + (
        f" ({choice[1]} on a GPU)" if choice[1] != choice[0] else ""
    )
    return (
        f"rareevent {rareevent.__version__}, keras {version('keras')}, backend "
        f"{backend}, scoring {'numpy' if use_numpy() else 'keras'}"
    )
