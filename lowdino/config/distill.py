"""`DistillConfig`: options of `lowdino distill` (teacher -> small student)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from lowdino.config.base import cli
from lowdino.config.names import BackboneName, registered_backbones
from lowdino.config.pretrain import TrainOptions

DistillLossName = Literal["kl", "cosine", "mse"]
DEFAULT_TEACHER = "dinov2_vits14"
DEFAULT_STUDENT = "mobilevit_s"


def declare_distinct_models(schema: dict[str, Any]) -> None:
    """`_check_models` in JSON Schema: teacher and student (given or default) are not the same backbone."""
    schema["allOf"] = [
        {
            "not": {
                "required": ["teacher", "student"],
                "anyOf": [
                    {"properties": {"teacher": {"const": name}, "student": {"const": name}}}
                    for name in registered_backbones()
                ],
            }
        },
        {
            "if": {"not": {"required": ["student"]}},
            "then": {"properties": {"teacher": {"not": {"const": DEFAULT_STUDENT}}}},
        },
        {
            "if": {"not": {"required": ["teacher"]}},
            "then": {"properties": {"student": {"not": {"const": DEFAULT_TEACHER}}}},
        },
    ]


class DistillConfig(TrainOptions):
    """Distil a frozen teacher (registry backbone or checkpoint) into a small student backbone."""

    model_config = ConfigDict(json_schema_extra=declare_distinct_models)

    teacher: str = Field(
        DEFAULT_TEACHER,
        description="Teacher: a registry backbone (dinov2_vits14, resnet50, ...) or a run checkpoint path.",
        json_schema_extra=cli(group="model"),
    )
    teacher_pretrained: bool = Field(
        True, description="Load the teacher's pretrained weights (timm cache or --teacher-weights)."
    )
    teacher_weights: str | None = Field(None, description="Weights file for a registry teacher.")
    teacher_image_size: int | None = Field(
        None,
        ge=8,
        le=1024,
        description="Resize the view to this size for the teacher only (patch-14 ViTs need a multiple of 14).",
    )
    student: BackboneName = Field(
        DEFAULT_STUDENT, description="Student backbone name.", json_schema_extra=cli(group="model")
    )
    loss: DistillLossName = Field(
        "kl",
        description="kl: KL between temperature-softened teacher and projected student embeddings (original "
        "work, T=3); cosine or mse: feature distillation on the same view.",
        json_schema_extra=cli(group="method"),
    )
    temperature: float = Field(3.0, gt=0, le=100, description="Softening temperature of the KL loss.")
    label_loss_weight: float = Field(
        0.0, ge=0, le=100, description="Weight of an extra cross-entropy on labels (0 disables)."
    )
    crop_size: int = Field(
        224, ge=8, le=1024, description="Side of the augmented view seen by both networks."
    )
    crop_scale_min: float = Field(0.4, gt=0, le=1, description="Smallest area fraction of the random crop.")

    @model_validator(mode="after")
    def _check_models(self) -> DistillConfig:
        if self.teacher == self.student and not self.teacher.endswith(".pth"):
            raise ValueError("teacher and student are the same backbone; pick a smaller student")
        return self
