"""`export(config)`: the whole `lowdino export`, from a source to a checked artifact and its manifest.

Steps: load the backbone (run directory, checkpoint or registry name) -> resolve the input size ->
write the fp32 artifact into a scratch folder beside its destination -> run it in its own runtime on
real training images and compare with PyTorch (fp32: within the tolerance or the export fails) -> for
int8, quantize on calibration images (ONNX Runtime from the checked fp32 graph; ExecuTorch from the
PyTorch graph through PT2E) and measure the difference -> move artifact and manifest into place.
Nothing appears at the output path unless every step passed.

With ``--output FILE`` only the artifact and ``FILE.manifest.json`` are written. Otherwise the run
directory follows `lowdino.contract.rundir`: config.yaml first, train.log, then the artifact and its
manifest, and summary.json last (status, artifact and manifest names, parity).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from lowdino.backbones import check_input_size, get_spec
from lowdino.config.export import ExportConfig
from lowdino.config.loading import dump_config
from lowdino.contract.rundir import RunDir, atomic_write_text
from lowdino.errors import ConfigError, LowDinoError
from lowdino.export.availability import require_format
from lowdino.export.images import image_sample
from lowdino.export.manifest import manifest_path, runtime_versions, write_manifest
from lowdino.export.onnx import INPUT_NAME, export_onnx
from lowdino.export.parity import compare, reference_features, require_parity
from lowdino.export.quantize import Int8Settings, quantize_int8
from lowdino.export.runtime import ONNX_SUFFIX, PTE_SUFFIX, TORCHSCRIPT_SUFFIX, load_runtime
from lowdino.export.source import ExportSource, load_source
from lowdino.export.torchscript import export_torchscript
from lowdino.hashing import file_hash

log = logging.getLogger("lowdino.export")
SUFFIXES = {"onnx": ONNX_SUFFIX, "torchscript": TORCHSCRIPT_SUFFIX, "executorch": PTE_SUFFIX}


@dataclass
class ExportResult:
    artifact: Path
    manifest: Path
    manifest_fields: dict[str, Any]
    run_dir: Path | None = None
    notes: list[str] = field(default_factory=list)


def resolve_export_size(config: ExportConfig, source: ExportSource, backbone: torch.nn.Module) -> int:
    """--image-size, else the run's evaluation size, else the backbone's declared resolution; checked by
    the registry's rules and by one forward pass (a size the network cannot take fails here, in one line)."""
    spec = get_spec(source.backbone_name)
    size = config.image_size or source.run_image_size or spec.default_eval_size
    check_input_size(source.backbone_name, size)
    try:
        with torch.inference_mode():
            backbone(torch.zeros(2, 3, size, size))
    except Exception as exc:
        raise ConfigError(
            f"{source.backbone_name} cannot take {size} px inputs ({str(exc).splitlines()[0][:160]}); "
            f"use e.g. --image-size {spec.default_eval_size}"
        ) from exc
    return size


def default_output_dir(source: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    path = Path(source)
    name = (path.parent.name if path.suffix == ".pth" else path.name) if path.exists() else source
    return Path("runs") / f"export-{name}-{stamp}"


def _destination(config: ExportConfig, source: ExportSource) -> tuple[Path, Path | None]:
    """(artifact path, run directory or None for a one-off export)."""
    suffix = SUFFIXES.get(config.format, "")
    if config.output is not None:
        artifact = Path(config.output).expanduser()
        if artifact.suffix != suffix:
            raise ConfigError(
                f"--output {artifact} must end in {suffix} for --format {config.format}; "
                f"e.g. {artifact.with_suffix(suffix).name}"
            )
        if artifact.is_dir():
            raise ConfigError(f"--output {artifact} is a folder; pass a file name such as model{suffix}")
        return artifact, None
    run_dir = Path(config.output_dir) if config.output_dir else default_output_dir(config.source)
    tag = ".int8" if config.quantize == "int8" else ""
    return run_dir / f"{source.backbone_name}{tag}{suffix}", run_dir


def _data_folders(config: ExportConfig, source: ExportSource) -> tuple[str | None, str | None]:
    """(parity folder, calibration folder): given, else the run's own image folder when it still exists."""
    run_data = source.run_data_path if source.run_data_path and Path(source.run_data_path).is_dir() else None
    calibration = config.calibration_data or run_data
    parity = config.parity_data or calibration
    if config.quantize == "int8" and calibration is None:
        raise ConfigError(
            "--quantize int8 needs training images to calibrate on: pass --calibration-data FOLDER "
            "(an image folder; only its train split is read)"
        )
    return parity, calibration


def _check_artifact(path: Path, threads: int | None, batch: torch.Tensor) -> Any:
    return load_runtime(path, threads)(batch.numpy())


def export(config: ExportConfig) -> ExportResult:
    """Export ``config.source``; raises a `LowDinoError` (and writes no artifact) on any failure."""
    started = time.perf_counter()
    require_format(config.format)
    source = load_source(config)
    size = resolve_export_size(config, source, source.backbone)
    artifact, run_dir = _destination(config, source)
    parity_folder, calibration_folder = _data_folders(config, source)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        resolved = config.model_copy(update={"output_dir": str(run_dir)})
        atomic_write_text(RunDir(run_dir).config, dump_config(resolved))
        handlers.append(logging.FileHandler(RunDir(run_dir).log))
    for handler in handlers:
        handler.setFormatter(logging.Formatter("[lowdino export] %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        result = _export(config, source, size, artifact, run_dir, parity_folder, calibration_folder)
    except LowDinoError as exc:
        if run_dir is not None:
            _write_summary(run_dir, None, time.perf_counter() - started, error=str(exc))
        raise
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
    if run_dir is not None:
        _write_summary(run_dir, result, time.perf_counter() - started)
    return result


def _export(
    config: ExportConfig,
    source: ExportSource,
    size: int,
    artifact: Path,
    run_dir: Path | None,
    parity_folder: str | None,
    calibration_folder: str | None,
) -> ExportResult:
    spec = get_spec(source.backbone_name)
    log.info(
        "exporting %s at %d px as %s%s",
        source.label,
        size,
        config.format,
        " int8" if config.quantize == "int8" else "",
    )

    sample = image_sample(parity_folder, config.parity_images, config.seed, source.backbone_name, size)
    reference = reference_features(source.backbone, sample.batch)
    artifact.parent.mkdir(parents=True, exist_ok=True)
    fields: dict[str, Any] = {
        "backbone": source.backbone_name,
        "source": {
            "kind": source.kind,
            "path": source.path,
            "sha256": source.sha256,
            "network": source.which,
        },
        "params": source.params,
        "feature_dim": source.feature_dim,
        "image_size": size,
        "input": {
            "name": INPUT_NAME,
            "layout": "NCHW",
            "dtype": "float32",
            "channels": "RGB",
            "range": "0-1 then (x - mean) / std",
        },
        "mean": list(spec.mean),
        "std": list(spec.std),
        "format": config.format,
        "dynamic_batch": config.dynamic_batch,
        "runtime_versions": runtime_versions(),
        "parity_images": sample.source,
        "parity_images_are_random": parity_folder is None,
    }
    with tempfile.TemporaryDirectory(dir=artifact.parent, prefix=f".{artifact.name}.") as scratch:
        staged = Path(scratch) / artifact.name
        example = sample.batch[:2] if len(sample.batch) >= 2 else sample.batch.repeat(2, 1, 1, 1)
        if not config.dynamic_batch:
            example = sample.batch
        if config.format == "onnx":
            fp32 = Path(scratch) / f"fp32{ONNX_SUFFIX}"
            info = export_onnx(
                source.backbone, example, fp32, opset=config.opset, dynamic=config.dynamic_batch
            )
            fields.update(opset=info.opset, exporter=info.exporter)
            if info.fallback_reason:
                fields["exporter_fallback_reason"] = info.fallback_reason
        elif config.format == "executorch":
            from lowdino.export.pte import export_pte

            # A fixed batch (see pte.py): one image per call, or the parity batch without --dynamic-batch.
            example = sample.batch[:1] if config.dynamic_batch else sample.batch
            fp32 = Path(scratch) / f"fp32{PTE_SUFFIX}"
            fields.update(export_pte(source.backbone, example, fp32).manifest_fields(), dynamic_batch=False)
        else:
            fp32 = staged
            export_torchscript(source.backbone, example, fp32)
            fields.update(opset=None, exporter="torch.jit.trace")
        parity = compare(reference, _check_artifact(fp32, None, sample.batch), sample.source)
        log.info(
            "fp32 parity: max |diff| %.3g, cosine >= %.6f on %s",
            parity.max_abs_diff,
            parity.cosine_min,
            sample.source,
        )
        require_parity(
            parity, config.parity_tolerance, f"the {config.format} artifact of {source.backbone_name}"
        )
        fields["parity"] = {**parity.as_dict(), "tolerance": config.parity_tolerance, "precision": "fp32"}
        if config.quantize == "int8":
            assert calibration_folder is not None
            calibration = image_sample(
                calibration_folder, config.calibration_images, config.seed + 1, source.backbone_name, size
            )
            if config.format == "executorch":
                from lowdino.export.pte import quantize_pte

                written, details = quantize_pte(source.backbone, example, calibration.batch, staged)
                fields.update(written.manifest_fields())
            else:
                details = quantize_int8(fp32, staged, calibration.batch.numpy(), INPUT_NAME, Int8Settings())
            int8 = compare(reference, _check_artifact(staged, None, sample.batch), sample.source)
            log.info(
                "int8 vs PyTorch: max |diff| %.3g, cosine mean %.5f min %.5f",
                int8.max_abs_diff,
                int8.cosine_mean,
                int8.cosine_min,
            )
            fields["parity_fp32_before_quantization"] = fields.pop("parity")
            fields["parity"] = {**int8.as_dict(), "tolerance": None, "precision": "int8"}
            fields["quantization"] = {
                **details,
                "calibration_images": calibration.count,
                "calibration_source": calibration.source,
                "calibration_split": "train",
            }
        elif config.format in ("onnx", "executorch"):
            os.replace(fp32, staged)
        fields["artifact"] = artifact.name
        fields["artifact_bytes"] = staged.stat().st_size
        fields["artifact_sha256"] = file_hash(staged)
        write_manifest(Path(scratch) / "manifest.json", fields)
        # The artifact first, then its manifest: a reader that finds a manifest finds its artifact.
        os.replace(staged, artifact)
        os.replace(Path(scratch) / "manifest.json", manifest_path(artifact))
    log.info("wrote %s and %s", artifact, manifest_path(artifact))
    return ExportResult(artifact, manifest_path(artifact), fields, run_dir)


def _write_summary(
    run_dir: Path, result: ExportResult | None, seconds: float, error: str | None = None
) -> None:
    """summary.json last: what was written (or, after a refusal, why nothing was)."""
    if result is None:
        summary = {
            "status": "failed",
            "kind": "export",
            "error": error,
            "artifact": None,
            "wall_time_s": seconds,
        }
        atomic_write_text(RunDir(run_dir).summary, json.dumps(summary, indent=2) + "\n")
        return
    fields = result.manifest_fields
    summary = {
        "status": "completed",
        "kind": "export",
        "backbone": fields["backbone"],
        "params": fields["params"],
        "format": fields["format"],
        "quantization": "int8" if "quantization" in fields else None,
        "image_size": fields["image_size"],
        "artifact": result.artifact.name,
        "manifest": result.manifest.name,
        "parity": fields["parity"],
        "wall_time_s": seconds,
        "output_dir": str(run_dir),
    }
    atomic_write_text(RunDir(run_dir).summary, json.dumps(summary, indent=2) + "\n")
