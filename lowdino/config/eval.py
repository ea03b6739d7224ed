"""`EvalConfig`: options of `lowdino eval` (kNN, linear probe and fine-tuning at label fractions)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from lowdino.config.base import (
    INTEGERS_TEXT,
    DataOptions,
    RuntimeOptions,
    TextForm,
    cli,
    options_conflict,
    split_text,
)
from lowdino.config.names import BackboneName

ProtocolName = Literal["knn", "linear", "finetune", "latency"]
KnnProtocolName = Literal["dino", "seed", "both"]
LatencyRuntimeName = Literal["torch", "onnxruntime", "executorch"]


def declare_model_source(schema: dict[str, Any]) -> None:
    """`_check_model_source` in JSON Schema, so that the REST API's schema (GET /api/schema/eval, the
    OpenAPI document) refuses what the model refuses: exactly one of checkpoint / backbone / artifact is
    a string (the others absent or null), and a checkpoint or an artifact comes without pretrained /
    weights (it carries its own).
    """
    no_weights = {"pretrained": {"const": False}, "weights": {"type": "null"}}
    schema["oneOf"] = [
        {
            "required": ["checkpoint"],
            "properties": {"checkpoint": {"type": "string"}, **no_weights},
        },
        {"required": ["backbone"], "properties": {"backbone": {"type": "string"}}},
        {"required": ["artifact"], "properties": {"artifact": {"type": "string"}, **no_weights}},
    ]


PROTOCOLS_TEXT = r"^ *(knn|linear|finetune|latency) *(, *(knn|linear|finetune|latency) *)*$"
RUNTIMES_TEXT = r"^ *(torch|onnxruntime|executorch) *(, *(torch|onnxruntime|executorch) *)*$"
POSITIVE_INTEGERS_TEXT = r"^ *[1-9][0-9]* *(, *[1-9][0-9]* *)*$"
# Thread counts: 0 means every core.
NATURAL_INTEGERS_TEXT = r"^ *[0-9]+ *(, *[0-9]+ *)*$"
# Decimals from 0.01 to 1 (0.01-0.09..., 0.1-0.9..., 1, 1.0...): the range is in the pattern.
_FRACTION = r"(0\.(0[1-9]|[1-9])[0-9]*|1(\.0*)?)"
FRACTIONS_TEXT = rf"^ *{_FRACTION} *(, *{_FRACTION} *)*$"
LabelFraction = Annotated[float, Field(ge=0.01, le=1.0)]


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ValueError(f"label fraction {text!r} is not a number; pass e.g. 0.1,0.3") from exc
    if not 0.01 <= value <= 1.0:
        raise ValueError(f"label fraction {value} is outside 0.01-1.0; pass e.g. 0.1,0.3")
    return value


def _fractions(value: object) -> object:
    if isinstance(value, str):
        for part in value.split(","):  # each checked first, for a message naming it
            if part.strip():
                _fraction(part.strip())
        return split_text(value, FRACTIONS_TEXT, float, "write label fractions as decimals like 0.1,0.3")
    return value


class EvalConfig(DataOptions, RuntimeOptions):
    """Evaluate a run's checkpoint or a named (pretrained) backbone on a labelled dataset."""

    model_config = ConfigDict(json_schema_extra=declare_model_source)

    checkpoint: str | None = Field(
        None,
        description="A pretrain/distill run's checkpoint.pth (or its run directory). Its backbone is evaluated.",
        json_schema_extra=cli(group="model"),
    )
    backbone: BackboneName | None = Field(
        None,
        description="A registry backbone to evaluate instead of a checkpoint, e.g. dinov2_vits14.",
        json_schema_extra=cli(group="model"),
    )
    artifact: str | None = Field(
        None,
        description="An exported model (.onnx or TorchScript .pt from `lowdino export`, with its manifest) "
        "to evaluate in its own runtime instead of PyTorch: what int8 costs in accuracy and gains in speed.",
        json_schema_extra=cli(group="model"),
    )
    pretrained: bool = Field(
        False,
        description="Load the backbone's pretrained weights (timm cache or --weights).",
        json_schema_extra=cli(group="model"),
    )
    weights: str | None = Field(
        None, description="Weights file for --backbone.", json_schema_extra=cli(group="model")
    )
    protocols: Annotated[list[ProtocolName], TextForm(PROTOCOLS_TEXT)] = Field(
        ["knn", "linear"],
        description="Comma-separated protocols: knn (frozen features), linear (probe on frozen features), "
        "finetune (end to end), latency (milliseconds per image at each --latency-batch-sizes and "
        "--latency-threads, in each runtime).",
        json_schema_extra=cli(group="protocol"),
    )
    label_fractions: Annotated[list[LabelFraction], TextForm(FRACTIONS_TEXT)] = Field(
        [0.1, 0.3],
        description="Fractions of the training labels for linear / finetune (each in 0.01-1.0); subsets "
        "are class-stratified, seeded and identical for every model.",
        json_schema_extra=cli(group="protocol"),
    )
    image_size: int | None = Field(
        None,
        ge=8,
        le=1024,
        description="Resize images to this side for evaluation (patch-14 ViTs need a multiple of 14, "
        "e.g. 224). Default: with --pretrained, the resolution the weights were trained at (224; "
        "MobileViT 256); otherwise the dataset's native size, rounded up to the backbone's multiple.",
        json_schema_extra=cli(group="protocol"),
    )
    k: int = Field(20, ge=1, le=1000, description="Neighbours for weighted kNN (DINO: 20 works best).")
    knn_temperature: float = Field(0.07, gt=0, le=10, description="Vote weight exp(sim / T) (DINO: 0.07).")
    knn_protocol: KnnProtocolName = Field(
        "dino",
        description="dino: weighted cosine kNN; seed: the original LowDINO 1-NN Euclidean on raw features; "
        "both: report the two side by side.",
        json_schema_extra=cli(group="protocol"),
    )
    seeds: Annotated[list[int], TextForm(INTEGERS_TEXT)] = Field(
        [0, 1, 2], description="Seeds for label subsets and probe initialisation."
    )
    batch_size: int = Field(256, ge=1, le=65536, description="Batch size for feature extraction and probes.")
    linear_epochs: int = Field(100, ge=1, le=10000, description="Epochs of the linear probe.")
    linear_lr: float = Field(1e-3, gt=0, description="Learning rate of the linear probe (Adam).")
    finetune_epochs: int = Field(10, ge=1, le=10000, description="Epochs of end-to-end fine-tuning.")
    finetune_lr: float = Field(1e-4, gt=0, description="Learning rate of fine-tuning (AdamW).")
    max_train_samples: int | None = Field(
        None,
        ge=10,
        description="Cap the training pool (memory bank / probe pool), stratified; unset uses all.",
    )
    max_test_samples: int | None = Field(
        None, ge=10, description="Cap the evaluation set, stratified; unset uses all."
    )
    latency_batch_sizes: Annotated[list[Annotated[int, Field(ge=1)]], TextForm(POSITIVE_INTEGERS_TEXT)] = (
        Field(
            [1, 32],
            description="Batch sizes the latency protocol times.",
            json_schema_extra=cli(group="latency"),
        )
    )
    latency_threads: Annotated[list[Annotated[int, Field(ge=0)]], TextForm(NATURAL_INTEGERS_TEXT)] = Field(
        [1, 0],
        description="Intra-op thread counts the latency protocol times; 0 means every core.",
        json_schema_extra=cli(group="latency"),
    )
    latency_repetitions: int = Field(
        50,
        ge=50,
        le=100_000,
        description="Timed calls per latency row.",
        json_schema_extra=cli(group="latency"),
    )
    latency_warmup: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Untimed calls before each latency row.",
        json_schema_extra=cli(group="latency"),
    )
    latency_runtimes: Annotated[list[LatencyRuntimeName], TextForm(RUNTIMES_TEXT)] = Field(
        ["torch", "onnxruntime"],
        description="Runtimes timed for a checkpoint or backbone: torch (eager), onnxruntime and executorch "
        "(XNNPACK; the [executorch] extra): an fp32 export made for the measurement. An --artifact is timed "
        "in its own runtime.",
        json_schema_extra=cli(group="latency"),
    )
    cache_dir: str | None = Field(
        None, description="Feature cache directory. Default: $LOWDINO_HOME/cache/features."
    )

    @field_validator("protocols", mode="before")
    @classmethod
    def _parse_protocols(cls, value: Any) -> Any:
        return split_text(
            value, PROTOCOLS_TEXT, str, "must be a list or comma-separated protocols like knn,linear"
        )

    @field_validator("label_fractions", mode="before")
    @classmethod
    def _parse_fractions(cls, value: Any) -> Any:
        return _fractions(value)

    @field_validator("seeds", mode="before")
    @classmethod
    def _parse_integers(cls, value: Any) -> Any:
        return split_text(value, INTEGERS_TEXT, int, "must be a list or comma-separated integers like 0,1,2")

    @field_validator("latency_batch_sizes", mode="before")
    @classmethod
    def _parse_batch_sizes(cls, value: Any) -> Any:
        return split_text(
            value, POSITIVE_INTEGERS_TEXT, int, "must be a list or comma-separated sizes like 1,32"
        )

    @field_validator("latency_threads", mode="before")
    @classmethod
    def _parse_threads(cls, value: Any) -> Any:
        return split_text(
            value, NATURAL_INTEGERS_TEXT, int, "must be a list or comma-separated counts like 1,0"
        )

    @field_validator("latency_runtimes", mode="before")
    @classmethod
    def _parse_runtimes(cls, value: Any) -> Any:
        return split_text(
            value, RUNTIMES_TEXT, str, "must be a list or comma-separated runtimes like torch,onnxruntime"
        )

    @model_validator(mode="after")
    def _check_model_source(self) -> EvalConfig:
        given = [value for value in (self.checkpoint, self.backbone, self.artifact) if value is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of checkpoint (a run id, run directory or checkpoint file), backbone "
                "(a registry name) or artifact (an exported .onnx / .pt file)"
            )
        if self.backbone is None and (self.pretrained or self.weights is not None):
            raise ValueError(
                "pretrained and weights go with backbone; a checkpoint or artifact carries its own weights"
            )
        if self.artifact is not None and "finetune" in self.protocols:
            raise options_conflict(  # a rule between two options, which the JSON Schema does not state
                "an artifact cannot be fine-tuned (its graph has no gradients); drop finetune from protocols"
            )
        return self
