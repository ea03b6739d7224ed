"""`ExportConfig`: options of `lowdino export` (a backbone as an ONNX / TorchScript / ExecuTorch artifact,
optionally int8)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from lowdino.config.base import StrictModel, cli

ExportFormat = Literal["onnx", "torchscript", "executorch"]
INT8_FORMATS = ("onnx", "executorch")  # the formats with an int8 path (ONNX Runtime, XNNPACK)
QuantizeName = Literal["none", "int8"]
WhichNetwork = Literal["teacher", "student"]


def declare_int8_formats(schema: dict[str, Any]) -> None:
    """`_check_combinations`' first rule in JSON Schema, so the REST API's document refuses it too."""
    schema["anyOf"] = [
        {"properties": {"quantize": {"const": "none"}}},
        {"properties": {"format": {"enum": list(INT8_FORMATS)}}},
    ]


class ExportConfig(StrictModel):
    """Export a run's backbone, a checkpoint or a registry backbone for deployment, with a parity check."""

    model_config = ConfigDict(json_schema_extra=declare_int8_formats)

    source: str = Field(
        description="What to export: a run directory, a checkpoint file (checkpoint.pth) or a registry "
        "backbone name (random init unless --pretrained or --weights).",
        json_schema_extra=cli(group="model"),
    )
    which: WhichNetwork = Field(
        "teacher",
        description="Which network of a DINO/BYOL checkpoint: teacher (the EMA network evaluation uses) or "
        "student. A distill run trains only its student.",
        json_schema_extra=cli(group="model"),
    )
    pretrained: bool = Field(
        False,
        description="With a backbone name: load its pretrained weights (timm's local cache).",
        json_schema_extra=cli(group="model"),
    )
    weights: str | None = Field(
        None,
        description="With a backbone name: a weights file to load.",
        json_schema_extra=cli(group="model"),
    )
    format: ExportFormat = Field(
        "onnx",
        description="onnx (ONNX Runtime), torchscript (torch.jit), executorch (a .pte delegated to XNNPACK, "
        "run by the ExecuTorch runtime; needs the [executorch] extra).",
        json_schema_extra=cli(group="export"),
    )
    image_size: int | None = Field(
        None,
        ge=8,
        le=1024,
        description="Input side of the artifact (fixed; the batch axis is dynamic). Default: the run's "
        "evaluation size (its global crop size), else the backbone's declared resolution.",
        json_schema_extra=cli(group="export"),
    )
    opset: int = Field(18, ge=13, le=23, description="ONNX opset.", json_schema_extra=cli(group="export"))
    dynamic_batch: bool = Field(
        True,
        description="Leave the batch axis dynamic (else the artifact takes exactly the parity batch size). "
        "executorch programs always take a fixed batch: 1 image per call here, the parity batch without it.",
        json_schema_extra=cli(group="export"),
    )
    quantize: QuantizeName = Field(
        "none",
        description="int8: static quantization calibrated on training images (--calibration-data), per-channel "
        "weights: ONNX Runtime's (QDQ) for onnx, PT2E with the XNNPACK quantizer for executorch.",
        json_schema_extra=cli(group="quantization"),
    )
    calibration_data: str | None = Field(
        None,
        description="Image folder whose TRAINING split calibrates int8 activations (root with train/, or "
        "one folder of class sub-folders). Default: a run checkpoint's own image folder. Never test images.",
        json_schema_extra=cli(group="quantization"),
    )
    calibration_images: int = Field(
        128,
        ge=1,
        le=100_000,
        description="Training images (class-stratified, seeded) used to calibrate int8 activations.",
        json_schema_extra=cli(group="quantization"),
    )
    parity_data: str | None = Field(
        None,
        description="Image folder whose images check the artifact against PyTorch. Default: the "
        "calibration data, else a run checkpoint's image folder, else a fixed-seed random batch (said so "
        "in the manifest).",
        json_schema_extra=cli(group="parity"),
    )
    parity_images: int = Field(
        16, ge=1, le=4096, description="Images in the parity batch.", json_schema_extra=cli(group="parity")
    )
    parity_tolerance: float = Field(
        1e-4,
        gt=0,
        description="Largest max-absolute feature difference an fp32 artifact may show against PyTorch; "
        "above it the export fails and nothing is written.",
        json_schema_extra=cli(group="parity"),
    )
    output: str | None = Field(
        None,
        description="Artifact file for a one-off export (its manifest is written beside it as "
        "FILE.manifest.json). Without it the artifact goes into --output-dir.",
        json_schema_extra=cli(group="runtime"),
    )
    output_dir: str | None = Field(
        None,
        description="Run directory (config.yaml, train.log, summary.json naming the artifact, the artifact "
        "and its manifest). Default: runs/export-<model>-<timestamp>, unless --output is given.",
        json_schema_extra=cli(group="runtime"),
    )
    seed: int = Field(0, ge=0, description="Seed of a random-init backbone and of the image samples.")

    @model_validator(mode="after")
    def _check_combinations(self) -> ExportConfig:
        if self.quantize == "int8" and self.format not in INT8_FORMATS:
            raise ValueError(
                f"quantize int8 needs format onnx or executorch (got {self.format}); change one of the two"
            )
        if self.output is not None and self.output_dir is not None:
            raise ValueError("give output (a file, one-off export) or output_dir (a run directory), not both")
        return self
