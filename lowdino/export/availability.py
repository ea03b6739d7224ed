"""Which export formats work here. ExecuTorch (XNNPACK) is offered only where its package imports and
lowers a network with this torch; otherwise `--format executorch` answers why, in one line."""

from __future__ import annotations

import functools

from lowdino.errors import ConfigError


@functools.cache
def executorch_problem() -> str | None:
    """None when ExecuTorch's XNNPACK lowering is importable, else the reason it is not."""
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (  # noqa: F401
            XnnpackPartitioner,
        )
        from executorch.exir import to_edge_transform_and_lower  # noqa: F401
    except Exception as exc:  # an ImportError, or an incompatible build failing at import
        import torch

        first = str(exc).splitlines()[0][:160] if str(exc) else exc.__class__.__name__
        return f"the executorch package cannot be used with torch {torch.__version__} here ({first})"
    return None


def require_onnx() -> None:
    """The ONNX packages are an optional extra: say how to get them instead of a traceback."""
    import importlib.util

    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"ONNX export and runtime need {', '.join(missing)}: pip install 'lowdino[export]'")


def require_format(name: str) -> None:
    if name == "onnx":
        require_onnx()
    if name == "executorch":
        problem = executorch_problem()
        if problem is not None:
            raise ConfigError(
                f"--format executorch is unavailable: {problem}; use --format onnx or torchscript"
            )
        raise ConfigError(
            "--format executorch is not implemented yet although the package imports; use --format onnx"
        )
