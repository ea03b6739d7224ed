"""A .pte program run by ExecuTorch's C++ runtime through its Python bindings (`executorch.runtime`).

Threads: XNNPACK runs on ExecuTorch's one process-wide thread pool, and a delegate keeps the pool it was
initialised with (the program's method load). Resizing the pool destroys the old one, so a method loaded
before a resize must not run again: every load claims the pool at its own thread count, and a method
whose claim was overtaken by another runtime's reloads itself (re-claiming its count) before its next
call. Runtimes with the same thread count share the pool without reloads, as the paired latency
comparisons need.

Batches: the program says how many images it takes (`lowdino.export.pte`'s constant method), exactly;
a batch goes through it in chunks of that many, the last one padded with zeros and the padding's
features dropped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lowdino.errors import ConfigError
from lowdino.export.pte import BATCH_MAX_METHOD, executorch_version

# The pool's current size and how many times it was resized (a method loaded at generation g is stale
# once the generation has moved on).
_POOL: dict[str, int] = {"threads": 0, "generation": 0}


def _bindings() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "This API is experimental": said on every import
        from executorch.extension.pybindings import portable_lib

    return portable_lib


def _claim_pool(threads: int) -> int:
    """Size ExecuTorch's thread pool to ``threads``; returns the generation a method loaded now belongs to."""
    if _POOL["threads"] != threads:
        _bindings()._unsafe_reset_threadpool(threads)
        _POOL["threads"] = threads
        _POOL["generation"] += 1
    return _POOL["generation"]


def _constant(program: Any, name: str) -> int | None:
    if name not in program.method_names:
        return None
    return int(program.load_method(name).execute([])[0])


def _unloadable(path: Path, exc: Exception) -> ConfigError:
    first = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
    return ConfigError(
        f"{path} is not a loadable ExecuTorch program ({first}); export it again with "
        "`lowdino export --format executorch`"
    )


def load_pte(path: Path, threads: int | None) -> tuple[str, int | None, Callable[[np.ndarray], np.ndarray]]:
    """(executorch version, threads, run): ``run`` maps a float32 (B, 3, S, S) batch to (B, D) features."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from executorch.runtime import Runtime as EtRuntime

    try:
        program = EtRuntime.get().load_program(path)
        max_batch = _constant(program, BATCH_MAX_METHOD)
        if max_batch is None:  # a program written elsewhere: its input's first axis
            max_batch = int(program.metadata("forward").input_tensor_meta(0).sizes()[0])
    except Exception as exc:  # the bindings raise RuntimeError for any unreadable or foreign file
        raise _unloadable(path, exc) from exc
    bound: int = max_batch
    count = threads if threads is not None else len(os.sched_getaffinity(0))
    state: dict[str, Any] = {"generation": -1, "method": None, "program": program}

    def method() -> Any:
        if state["generation"] != _POOL["generation"] or _POOL["threads"] != count:
            state["method"] = None  # drop the delegate that holds the old pool before the pool changes
            state["generation"] = _claim_pool(count)
            # `Program.load_method` caches the first method it loaded: a reload needs a fresh program.
            fresh = state.pop("program", None) or EtRuntime.get().load_program(path)
            state["method"] = fresh.load_method("forward")
        return state["method"]

    def call(chunk: np.ndarray) -> np.ndarray:
        output = method().execute([torch.from_numpy(chunk)])[0]
        return output.numpy() if isinstance(output, torch.Tensor) else np.asarray(output)

    def run(batch: np.ndarray) -> np.ndarray:
        features = []
        for start in range(0, len(batch), bound):
            chunk = np.ascontiguousarray(batch[start : start + bound])
            if len(chunk) < bound:
                padding = np.zeros((bound - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
                features.append(call(np.concatenate([chunk, padding]))[: len(chunk)].copy())
            else:
                features.append(call(chunk))
        return np.concatenate(features).astype(np.float32, copy=False)

    try:
        method()  # load (and initialise XNNPACK) now, so that a broken program fails here, in one line
    except Exception as exc:
        raise _unloadable(path, exc) from exc
    return executorch_version(), threads, run
