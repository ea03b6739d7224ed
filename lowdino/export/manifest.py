"""`<artifact>.manifest.json`: everything a deployment needs to feed the artifact and trust its output.

Backbone and parameters, input size and normalisation (mean / std on 0-1 pixels, RGB, NCHW float32),
feature dimension, where the weights came from (with the source file's sha256), the format and opset
(ExecuTorch: the delegate, the batch bound and the operators left outside XNNPACK), the runtime versions
it was checked with, the parity figures, and for int8 how it was calibrated.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any

from lowdino.contract.rundir import atomic_write_text
from lowdino.errors import ConfigError

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1


def manifest_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


def runtime_versions() -> dict[str, str]:
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for module in ("onnx", "onnxruntime", "onnxscript"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            continue
    # Read from the installed metadata: importing them costs seconds and an ONNX export needs neither.
    for package in ("executorch", "torchao"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def write_manifest(path: Path, fields: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps({"manifest_format": MANIFEST_FORMAT, **fields}, indent=2) + "\n")


def read_manifest(artifact: str | Path) -> dict[str, Any]:
    """The manifest beside ``artifact``; an artifact without one cannot be evaluated (no size, no mean/std)."""
    path = manifest_path(Path(artifact).expanduser())
    if not path.is_file():
        raise ConfigError(
            f"no manifest at {path}; evaluate artifacts written by `lowdino export` (it writes the manifest "
            "beside the artifact: input size, mean / std, backbone)"
        )
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); export the artifact again") from exc
    if not isinstance(data, dict) or "backbone" not in data or "image_size" not in data:
        raise ConfigError(f"{path} is not a LowDINO export manifest; export the artifact again")
    return data
