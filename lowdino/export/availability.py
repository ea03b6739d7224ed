"""Which export formats work here: each optional runtime says how to get it instead of a traceback.

onnx and torchscript need the ``[export]`` extra (torch.jit comes with torch). executorch needs the
``[executorch]`` extra: executorch 1.5.1 (with torchao 0.18) installs beside torch 2.14.1 without
replacing it, lowers the backbones to XNNPACK (`lowdino.export.pte`) and runs the .pte through its C++
runtime's Python bindings (`lowdino.export.executorch_runtime`); fp32 programs agree with PyTorch within
the 1e-4 parity tolerance on real images, like the ONNX ones. Without the package, ``--format
executorch`` answers in one line and writes nothing.
"""

from __future__ import annotations

import importlib.util

from lowdino.errors import ConfigError


def require_onnx() -> None:
    """The ONNX packages are an optional extra: say how to get them instead of a traceback."""
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"ONNX export and runtime need {', '.join(missing)}: pip install 'lowdino[export]'")


def require_executorch() -> None:
    missing = [name for name in ("executorch", "torchao") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"--format executorch is unavailable: {', '.join(missing)} is not installed; "
            "pip install 'lowdino[executorch]', or use --format onnx (ONNX Runtime) or --format torchscript"
        )


def require_format(name: str) -> None:
    if name == "onnx":
        require_onnx()
    if name == "executorch":
        require_executorch()
