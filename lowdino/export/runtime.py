"""Running an exported artifact in its own runtime: ONNX Runtime for .onnx, torch.jit for TorchScript,
ExecuTorch (its Python bindings over the C++ runtime, XNNPACK delegate) for .pte.

`load_runtime(path, threads)` returns a `Runtime` whose ``__call__`` maps a normalised float32 batch
(B, 3, S, S) to features (B, D) float32, both numpy. Parity checks, `lowdino eval --artifact` and the
latency protocol all go through this one seam, so what is measured is what is deployed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowdino.errors import ConfigError

ONNX_SUFFIX = ".onnx"
TORCHSCRIPT_SUFFIX = ".pt"
PTE_SUFFIX = ".pte"


@dataclass
class Runtime:
    name: str  # "onnxruntime", "torchscript" or "executorch"
    version: str
    threads: int | None
    run: Callable[[np.ndarray], np.ndarray]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run(np.ascontiguousarray(batch, dtype=np.float32))


def onnx_session_options(threads: int | None) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
        # One inter-op thread: these graphs are sequential, and a second pool only competes for cores.
        options.inter_op_num_threads = 1
    return options


def _onnx_runtime(path: Path, threads: int | None) -> Runtime:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(
            str(path), onnx_session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        first = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
        raise ConfigError(
            f"{path} is not a loadable ONNX model ({first}); export it again with `lowdino export`"
        ) from exc
    input_name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {input_name: batch})[0], dtype=np.float32)

    return Runtime("onnxruntime", ort.__version__, threads, run)


def _torchscript_runtime(path: Path, threads: int | None) -> Runtime:
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:
        raise ConfigError(
            f"{path} is not a loadable TorchScript model ({exc.__class__.__name__}); export it again with "
            "`lowdino export --format torchscript`"
        ) from exc

    def run(batch: np.ndarray) -> np.ndarray:
        previous = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                return module(torch.from_numpy(batch)).float().numpy()
        finally:
            torch.set_num_threads(previous)

    return Runtime("torchscript", torch.__version__, threads, run)


def _executorch_runtime(path: Path, threads: int | None) -> Runtime:
    from lowdino.export.executorch_runtime import load_pte

    return Runtime("executorch", *load_pte(path, threads))


def load_runtime(path: str | Path, threads: int | None = None) -> Runtime:
    """The artifact at ``path`` in its runtime; ``threads`` intra-op threads (None: the runtime's default)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"no artifact at {path}; pass a file written by `lowdino export`")
    if path.suffix == ONNX_SUFFIX:
        from lowdino.export.availability import require_onnx

        require_onnx()
        return _onnx_runtime(path, threads)
    if path.suffix == TORCHSCRIPT_SUFFIX:
        return _torchscript_runtime(path, threads)
    if path.suffix == PTE_SUFFIX:
        from lowdino.export.availability import require_executorch

        require_executorch()
        return _executorch_runtime(path, threads)
    raise ConfigError(
        f"{path} is not an ONNX ({ONNX_SUFFIX}), TorchScript ({TORCHSCRIPT_SUFFIX}) or ExecuTorch "
        f"({PTE_SUFFIX}) artifact; pass a file written by `lowdino export`"
    )
