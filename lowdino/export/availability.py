"""Which export formats work here: each optional runtime says how to get it instead of a traceback.

onnx and torchscript need the ``[export]`` extra (torch.jit comes with torch). executorch needs the
``[executorch]`` extra: executorch 1.5.1 (with torchao 0.18) installs beside torch 2.14.1 without
replacing it (checked with `pip list` after `pip install executorch`, 2026-12-06). `lowdino.export.pte`
lowers a backbone to XNNPACK (after rewriting timm's fused attention and LayerNorm into operators XNNPACK
takes: mobilevit_xxs went from 99 delegated partitions to 28) with a fixed batch of one image per call,
and `lowdino.export.executorch_runtime` runs the .pte through ExecuTorch's C++ runtime (its Python
bindings); fp32 programs agree with PyTorch within the 1e-4 parity tolerance on real CIFAR-10 images
(mobilevit_xxs and mobilenetv2_100, max |diff| ~1e-6). int8 is PT2E with the XNNPACKQuantizer. On this
CPU the fp32 XNNPACK program of mobilevit_xxs at 224 px was slower than ONNX Runtime's and its int8 one
did not reach 1.5x fp32 ONNX Runtime (README, "Deploy"). Without the package ``--format executorch``
answers in one line and writes nothing.
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
