"""Which export formats work here.

ExecuTorch (XNNPACK) is not wired in: `pip install executorch` (1.5.1) would install beside torch
2.14.1 without replacing it, and in a trial venv layered over this project's it lowered mobilenetv2_100
to XNNPACK and ran it (max |diff| 9.3e-6 against PyTorch at 224 px), but it pulls torchao, coremltools
and pandas into the environment, and writing / checking .pte files is not implemented yet. Until then
`--format executorch` answers why, in one line, and writes nothing.
"""

from __future__ import annotations

import importlib.util

from lowdino.errors import ConfigError


def require_onnx() -> None:
    """The ONNX packages are an optional extra: say how to get them instead of a traceback."""
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"ONNX export and runtime need {', '.join(missing)}: pip install 'lowdino[export]'")


def require_format(name: str) -> None:
    if name == "onnx":
        require_onnx()
    if name == "executorch":
        installed = importlib.util.find_spec("executorch") is not None
        state = "is installed but not supported" if installed else "is not installed"
        raise ConfigError(
            f"--format executorch is unavailable: the executorch package {state} by `lowdino export` yet "
            "(.pte writing and its parity check are not implemented); use --format onnx (ONNX Runtime) "
            "or --format torchscript"
        )
