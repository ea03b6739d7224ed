"""`PretrainConfig`: every option of `lowdino pretrain`, shared by the CLI, REST API and worker.

Defaults match the original LowDINO trainer flag for flag (batch 1024, momentum 0.9995, 4 crops,
50 epochs, out_dim 1024, clip 2.0, weight decay 0.4, teacher temperature 0.04), so the bare command
means what it meant there. Settings known to work for small data live in `configs/*.yaml`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lowdino.config.base import DataOptions, RuntimeOptions, cli, options_conflict
from lowdino.config.names import BackboneName

MethodName = Literal["dino", "byol"]
Centering = Literal["center", "sinkhorn_knopp"]


class TrainOptions(DataOptions, RuntimeOptions):
    """Options every training run kind (pretrain, distill) has."""

    batch_size: int = Field(
        1024,
        ge=1,
        le=65536,
        description="Images per step over all devices. The learning rate scales with batch_size / 256.",
        json_schema_extra=cli("-b", group="optimisation"),
    )
    batch_size_eval: int = Field(
        8,
        ge=1,
        le=65536,
        description="Batch size for feature extraction in the kNN monitor (the original trainer's eval batch).",
        json_schema_extra=cli(group="monitor"),
    )
    n_epochs: int = Field(
        50,
        ge=1,
        le=10000,
        description="Training epochs. Schedules (lr, weight decay, momentum) span all of them.",
        json_schema_extra=cli("-e", group="optimisation"),
    )
    max_steps: int | None = Field(
        None,
        ge=1,
        description="Stop after this many optimiser steps (schedules still span n_epochs unless the run "
        "is shorter, in which case they are compressed to max_steps). For smoke tests and benchmarks.",
        json_schema_extra=cli(group="optimisation"),
    )
    max_minutes: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="Also stop once training has run this many wall-clock minutes (a resumed run counts its "
        "earlier time): the step then counts as the last one (kNN measured, checkpoint saved, the run "
        "completed), as at max_steps. Schedules still span max_steps / n_epochs, so a run cut by time ends "
        "before its learning rate has decayed. For time-boxed searches and benchmarks.",
        json_schema_extra=cli(group="optimisation"),
    )
    lr: float = Field(
        5e-4,
        gt=0,
        le=10,
        description="Base learning rate for a batch of 256; the peak is lr * batch_size / 256 "
        "(DINO: 5e-4). Reached after warmup_epochs, then cosine decay to min_lr.",
        json_schema_extra=cli(group="optimisation"),
    )
    min_lr: float = Field(1e-6, ge=0, description="Final learning rate of the cosine schedule.")
    warmup_epochs: float = Field(
        10,
        ge=0,
        description="Linear learning-rate warm-up, in epochs (DINO: 10). Clipped to the run length.",
        json_schema_extra=cli(group="optimisation"),
    )
    weight_decay: float = Field(
        0.4,
        ge=0,
        le=10,
        description="AdamW weight decay (original LowDINO: 0.4 constant; DINO: cosine 0.04 -> 0.4 with "
        "--weight-decay 0.04 --weight-decay-end 0.4). Not applied to biases and norm parameters.",
        json_schema_extra=cli(group="optimisation"),
    )
    weight_decay_end: float | None = Field(
        None,
        ge=0,
        le=10,
        description="Final weight decay of a cosine schedule; unset keeps weight_decay constant.",
        json_schema_extra=cli(group="optimisation"),
    )
    clip_grad: float = Field(
        2.0,
        ge=0,
        description="Clip each parameter tensor's gradient norm to this value; 0 disables (DINO: 3.0).",
        json_schema_extra=cli(group="optimisation"),
    )
    logging_freq: int = Field(
        1,
        ge=1,
        description="Run the kNN monitor and write a periodic checkpoint every this many epochs.",
        json_schema_extra=cli("-l", group="monitor"),
    )
    tensorboard_dir: str = Field(
        "logs",
        description="TensorBoard event directory; a relative path is taken inside the run directory.",
        json_schema_extra=cli("-t", group="monitor"),
    )
    knn_monitor: bool = Field(
        True,
        description="Measure weighted kNN top-1 (k=20, T=0.07) of the teacher backbone during training, "
        "on a validation split held out of the training set (--val-fraction); the test split is never "
        "looked at during training.",
        json_schema_extra=cli(group="monitor"),
    )
    val_fraction: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        description="With the kNN monitor: this fraction of every class of the training split (the same "
        "images for every run: seed 0) is the validation split. It is left out of the pretraining data "
        "and of the kNN memory bank, so tuning on the monitor never sees the test split.",
        json_schema_extra=cli(group="monitor"),
    )
    knn_every_steps: int | None = Field(
        None,
        ge=1,
        description="Also run the kNN monitor every this many steps (besides every logging_freq epochs and "
        "the last step): a recipe search reads these measurements to stop poor trials early.",
        json_schema_extra=cli(group="monitor"),
    )
    knn_max_train: int | None = Field(
        10000,
        ge=10,
        description="Memory-bank images for the kNN monitor (a fixed stratified subset); unset uses all.",
        json_schema_extra=cli(group="monitor"),
    )
    knn_max_val: int | None = Field(
        2000,
        ge=10,
        description="Validation images the kNN monitor queries (a fixed stratified subset); unset uses all.",
        json_schema_extra=cli(group="monitor"),
    )
    resume: bool = Field(
        False,
        description="Continue from <output_dir>/checkpoint.pth exactly where it stopped (same config).",
        json_schema_extra=cli(group="runtime"),
    )
    compile: bool = Field(
        False,
        description="torch.compile the student and teacher backbones (first steps pay the compilation; "
        "see the README for the measured effect).",
        json_schema_extra=cli(group="runtime"),
    )
    checkpoint_every_steps: int | None = Field(
        None,
        ge=1,
        description="Also save checkpoint.pth every this many steps (besides every logging_freq epochs), "
        "so that an interrupted run loses at most this many steps.",
        json_schema_extra=cli(group="runtime"),
    )
    memory_check: bool = Field(
        True,
        description="On a CPU device, before the first step: measure the memory of the trainer's step on "
        "probes of 2 and 4 images, scale it to the batch and refuse (naming the batch that fits) when it "
        "exceeds the memory available, instead of being killed by the kernel's out-of-memory killer mid-run. "
        "Takes a few seconds; LOWDINO_AVAILABLE_MEMORY_GB overrides the available memory it reads.",
        json_schema_extra=cli(group="runtime"),
    )
    system_metrics_every_seconds: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="Record the run's CPU %, resident memory, the share of step time spent waiting for data "
        "and, on a GPU, its utilisation, memory and power, every this many seconds (sys_* metric series: "
        "the Run page's System charts); 0 records none.",
        json_schema_extra=cli(group="monitor"),
    )
    checkpoint_every_minutes: float | None = Field(
        5.0,
        ge=0,
        description="Also save checkpoint.pth once this much wall-clock time has passed since the last "
        "save, so that a killed run (out of memory, a lost machine) loses at most this many minutes "
        "whatever its step speed. Each save costs about a second per 100 MB of weights and optimiser "
        "state: keep it at a few minutes; 0 (or null) saves on steps and epochs only.",
        json_schema_extra=cli(group="runtime"),
    )


class PretrainConfig(TrainOptions):
    """Self-supervised pretraining of one backbone with DINO or BYOL."""

    method: MethodName = Field(
        "dino",
        description="Self-supervised method: dino (self-distillation with centering) or byol.",
        json_schema_extra=cli(group="method"),
    )
    backbone: BackboneName = Field(
        "mobilevit_s",
        description="Backbone name from `lowdino backbones` (e.g. mobilevit_xxs, mobilenetv2_100, resnet5m).",
        json_schema_extra=cli(group="model"),
    )
    pretrained: bool = Field(
        False,
        description="Start from pretrained weights (timm's local cache or --weights); never silently random.",
        json_schema_extra=cli(group="model"),
    )
    weights: str | None = Field(
        None,
        description="Weights file for --pretrained (a timm/torch state dict).",
        json_schema_extra=cli(group="model"),
    )

    # Multi-crop augmentation.
    n_crops: int = Field(
        4,
        ge=2,
        le=32,
        description="Total crops per image: 2 global + (n_crops - 2) local. More local crops help DINO "
        "but cost compute (DINO: 2 + 8).",
        json_schema_extra=cli("-c", group="augmentation"),
    )
    global_crop_size: int = Field(
        224,
        ge=8,
        le=1024,
        description="Side of the global crops in pixels (ImageNet 224; CIFAR at native resolution 32).",
        json_schema_extra=cli(group="augmentation"),
    )
    local_crop_size: int = Field(
        96,
        ge=8,
        le=1024,
        description="Side of the local crops in pixels (ImageNet 96; CIFAR 16).",
        json_schema_extra=cli(group="augmentation"),
    )
    global_crop_scale_min: float = Field(
        0.4, gt=0, le=1, description="Smallest area fraction of a global crop (DINO: 0.4; max is 1)."
    )
    local_crop_scale_max: float = Field(
        0.4, gt=0, le=1, description="Largest area fraction of a local crop (DINO: 0.4; min is 0.05)."
    )

    # DINO head and loss.
    out_dim: int = Field(
        1024,
        ge=2,
        le=262144,
        description="Prototypes of the DINO head (DINO ImageNet: 65536; small datasets: 1024-4096).",
        json_schema_extra=cli("-o", group="method"),
    )
    hidden_dim: int = Field(2048, ge=8, description="Hidden width of the projection MLP.")
    bottleneck_dim: int = Field(256, ge=8, description="Bottleneck before the weight-normalised last layer.")
    norm_last_layer: bool = Field(
        False,
        description="Freeze the weight-norm gain of the last layer to 1 (more stable; DINO uses it for ViT-S).",
        json_schema_extra=cli(group="method"),
    )
    use_bn_in_head: bool = Field(False, description="BatchNorm in the projection MLP (DINO: off for ViTs).")
    freeze_last_layer: float = Field(
        1, ge=0, description="Epochs during which the head's last layer gets no update (DINO: 1)."
    )
    momentum_teacher: float = Field(
        0.9995,
        ge=0,
        le=1,
        description="Starting EMA momentum of the teacher, raised to 1 on a cosine schedule "
        "(DINO: 0.996 for batch 1024; lower values such as 0.99 suit short runs and small batches).",
        json_schema_extra=cli(group="method"),
    )
    teacher_temp: float = Field(
        0.04,
        gt=0,
        le=1,
        description="Teacher softmax temperature after warm-up (DINO: 0.04; above 0.07 is unstable; "
        "small datasets do better around 0.02-0.04).",
        json_schema_extra=cli(group="method"),
    )
    warmup_teacher_temp: float = Field(
        0.04, gt=0, le=1, description="Teacher temperature at the start of its linear warm-up."
    )
    warmup_teacher_temp_epochs: float = Field(
        0, ge=0, description="Epochs of the teacher-temperature warm-up (DINO boosted: 30)."
    )
    student_temp: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Student softmax temperature (DINO: 0.1).",
        json_schema_extra=cli(group="method"),
    )
    center_momentum: float = Field(0.9, ge=0, lt=1, description="EMA momentum of the teacher-output center.")
    centering: Centering = Field(
        "center",
        description="How teacher outputs are kept from collapsing: center (DINO: subtract a running mean) "
        "or sinkhorn_knopp (DINOv2: balance prototype usage within each batch, 3 iterations). In a 1 250-step "
        "CIFAR-10 run of configs/cifar10_mobilevit_xxs.yaml it scored 0.8 kNN points below center.",
        json_schema_extra=cli(group="method"),
    )
    koleo_weight: float = Field(
        0.0,
        ge=0,
        le=10,
        description="Weight of DINOv2's KoLeo regulariser on the student's global-crop backbone features, "
        "which spreads them over the sphere and helps kNN retrieval (DINOv2: 0.1; 0 disables).",
        json_schema_extra=cli(group="method"),
    )

    # BYOL.
    byol_projection_dim: int = Field(256, ge=8, description="BYOL projector / predictor output size.")
    byol_hidden_dim: int = Field(4096, ge=8, description="BYOL projector / predictor hidden size.")

    @model_validator(mode="after")
    def _check_crops(self) -> PretrainConfig:
        # Comparisons between two options, which JSON Schema cannot state: `options_conflict` errors.
        if self.local_crop_size > self.global_crop_size:
            raise options_conflict(
                f"local_crop_size ({self.local_crop_size}) must not exceed global_crop_size "
                f"({self.global_crop_size})"
            )
        if self.warmup_teacher_temp_epochs > self.n_epochs:
            raise options_conflict(
                f"warmup_teacher_temp_epochs ({self.warmup_teacher_temp_epochs}) must not exceed "
                f"n_epochs ({self.n_epochs})"
            )
        return self

    @property
    def n_local_crops(self) -> int:
        return self.n_crops - 2
