"""Option groups shared by every run kind.

Each run kind (pretrain, eval, distill) is one flat pydantic model assembled from these groups, so
the CLI, the REST API and the worker all read the same fields, defaults, ranges and help texts.
Field names are the long CLI flags in snake_case; `cli_flags` in `json_schema_extra` adds short
aliases. The help text (``description``) is what `lowdino <kind> --help` and the dashboard show.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

# The error type of a rule between options that the model's JSON schema cannot state (it compares two
# values); the REST API answers these 409 rather than 422, as its schema cannot refuse them beforehand.
OPTIONS_CONFLICT = "options_conflict"


def options_conflict(message: str) -> PydanticCustomError:
    """A model validator's error for options that are valid one by one but not together."""
    return PydanticCustomError(OPTIONS_CONFLICT, message)


DatasetName = Literal["cifar10", "cifar100", "stl10", "imagefolder", "webdataset", "synthetic"]
# torchvision fetches these into --data-path (creating it) when the machine is online.
DOWNLOADED_DATASETS = frozenset({"cifar10", "cifar100", "stl10"})
DataLoadingName = Literal["auto", "memory", "stream"]
DecodeDeviceName = Literal["cpu", "cuda"]
AugmentPlaceName = Literal["auto", "workers", "process"]
DeviceName = Literal["auto", "cpu", "cuda"]
PrecisionName = Literal["auto", "fp32", "bf16", "fp16"]


def cli(*flags: str, **extra: Any) -> dict[str, Any]:
    """`json_schema_extra` payload: short CLI aliases plus any UI hints (e.g. group)."""
    return {"cli_flags": list(flags), **extra}


class TextForm:
    """JSON-schema marker of a list option that also takes one comma-separated string (the CLI's form).

    The schema becomes ``anyOf: [<the list>, ...also, {"type": "string", "pattern": pattern}]``, so that the
    REST API's schema accepts exactly what `split_text` accepts. Patterns are anchored with ^ and $ and
    matched as JSON Schema does (`matches_pattern`), here and by every client that validates with the schema.
    """

    def __init__(self, pattern: str, *also: dict[str, Any]) -> None:
        self.pattern = pattern
        self.also = list(also)

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        variants = schema.pop("anyOf", None) or [schema]
        real = [variant for variant in variants if variant.get("type") != "null"]
        nulls = [variant for variant in variants if variant.get("type") == "null"]
        return {"anyOf": [*real, *self.also, {"type": "string", "pattern": self.pattern}, *nulls]}


def matches_pattern(pattern: str, value: str) -> bool:
    """`value` matches the JSON-schema `pattern` as JSON Schema (ECMA-262) reads it: searched, and a final
    `$` is the end of the string (Python's `$` would also match before a final newline)."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.search(pattern, value) is not None


def split_text(value: Any, pattern: str, convert: Callable[[str], Any], refusal: str) -> Any:
    """A comma-separated string as a list of converted items (other values pass through unchanged).

    Refuses (ValueError with `refusal`) a string that does not match `pattern`, the string form its
    schema declares.
    """
    if not isinstance(value, str):
        return value
    if not matches_pattern(pattern, value):
        raise ValueError(refusal)
    return [convert(part.strip()) for part in value.split(",") if part.strip()]


INTEGERS_TEXT = r"^ *-?[0-9]+ *(, *-?[0-9]+ *)*$"
GPU_IDS_TEXT = r"^ *([0-9]+ *(, *[0-9]+ *)*)?$"


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a YAML file or REST body must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class DataOptions(StrictModel):
    @property
    def dataset_identity(self) -> str:
        """The dataset the figures are on (dataset_name when declared, else the dataset option)."""
        return self.dataset_name or self.dataset

    dataset: DatasetName = Field(
        "cifar10",
        description="Dataset: cifar10 / cifar100 / stl10 (torchvision, downloaded into --data-path when "
        "online), imagefolder (--data-path with train/ and val/ or test/, or one folder of class "
        "sub-folders split with a fixed seed), webdataset (--data-path holding the tar shards and index of "
        "`lowdino data shard`), synthetic (generated, no download; for demos and tests).",
        json_schema_extra=cli(group="data"),
    )
    data_path: str = Field(
        "data",
        description="Where the dataset lives (or is downloaded to). Ignored by the synthetic dataset.",
        json_schema_extra=cli(group="data"),
    )
    dataset_name: str | None = Field(
        None,
        max_length=50,
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="What the data is, for results and reports: e.g. cifar10 for an image folder or shards "
        "holding CIFAR-10, so its figures sit beside the published CIFAR-10 ones. Unset: the dataset option. "
        "Set it only when the images are that dataset's own train / test split.",
        json_schema_extra=cli(group="data"),
    )
    synthetic_size: int = Field(
        2000,
        ge=20,
        le=1_000_000,
        description="Number of training images of the synthetic dataset (test split: a quarter of it).",
        json_schema_extra=cli(group="data"),
    )
    data_loading: DataLoadingName = Field(
        "auto",
        description="memory: decode the whole dataset once into uint8 tensors (fastest for CIFAR-sized "
        "sets); stream: DataLoader workers decode each image's crops per step, memory bounded by batch "
        "and prefetch depth (imagefolder, webdataset); auto: stream an image folder whose decoded size "
        "exceeds memory_limit_gb or the free memory, and webdataset shards always. The choice is logged.",
        json_schema_extra=cli(group="data"),
    )
    memory_limit_gb: float = Field(
        8.0,
        gt=0,
        description="With data_loading auto: largest decoded image folder (GiB of uint8 tensors) held in "
        "memory; larger folders stream.",
        json_schema_extra=cli(group="data"),
    )
    num_workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="DataLoader worker processes that decode and crop images when streaming; unset: the "
        "resource plan logged at the start of a run (CPU training: one per 4 cores of this process's share, "
        "1 to 8; GPU: the share less one, up to 16). In-memory datasets decode once and need none.",
        json_schema_extra=cli(group="data"),
    )
    augment_in: AugmentPlaceName = Field(
        "auto",
        description="Where a streamed dataset's multi-crop augmentation runs on a CPU device: workers (the "
        "loader workers augment and hand over uint8 views; the training process only normalises them, "
        "beside its model step), process (the training process augments before each step) or auto "
        "(workers when this process has 2 or more cores). GPU runs augment on the GPU.",
        json_schema_extra=cli(group="data"),
    )
    prefetch_factor: int = Field(
        2,
        ge=1,
        le=64,
        description="Batches each streaming worker prepares ahead (host memory: workers x this x batch).",
        json_schema_extra=cli(group="data"),
    )
    persistent_workers: bool = Field(
        True,
        description="Keep image-folder streaming workers alive between epochs (shard workers restart "
        "each epoch, when their share of the shards changes).",
        json_schema_extra=cli(group="data"),
    )
    shuffle_buffer: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Samples each webdataset worker shuffles among (on top of shuffling the shard order "
        "every epoch); raw bytes, so about 110 MB per worker for ImageNet at 1000.",
        json_schema_extra=cli(group="data"),
    )
    decode_device: DecodeDeviceName = Field(
        "cpu",
        description="Where streamed JPEGs are decoded: cpu (loader workers, at the reduced DCT scale the "
        "crops need) or cuda (nvJPEG via torchvision.io.decode_jpeg on the training GPU; workers only "
        "read files and draw crop boxes). Not yet measured on a GPU.",
        json_schema_extra=cli(group="data"),
    )


class RuntimeOptions(StrictModel):
    device: DeviceName = Field(
        "auto",
        description="auto picks CUDA when available, else CPU. Asking for cuda where there is none is an error.",
        json_schema_extra=cli(group="runtime"),
    )
    device_ids: Annotated[list[int] | None, TextForm(GPU_IDS_TEXT, {"type": "integer"})] = Field(
        None,
        description="GPU ids for nn.DataParallel, e.g. 0,1. For several machines or processes prefer "
        "`torchrun --nproc_per_node N -m lowdino ...` (DistributedDataParallel).",
        json_schema_extra=cli("-d", group="runtime"),
    )
    precision: PrecisionName = Field(
        "auto",
        description="auto: bf16 autocast on GPUs that support it, fp16 with loss scaling on older GPUs, "
        "fp32 on CPU.",
        json_schema_extra=cli(group="runtime"),
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="torch intra-op threads of the training or evaluating process; unset: the resource plan "
        "logged at the start of a run (CPU device: every core of this process's share, i.e. the cores it "
        "may run on divided by torchrun's local processes; GPU device: 1).",
        json_schema_extra=cli(group="runtime"),
    )
    channels_last: bool = Field(
        True,
        description="Keep convolution weights and images in channels-last (NHWC) memory layout, which "
        "oneDNN and cuDNN run faster for convolutional backbones; leave it on unless a backbone is slower "
        "with it (the README's Results give the measured speed-up). Checkpoints load either way and "
        "training matches up to float rounding.",
        json_schema_extra=cli(group="runtime"),
    )
    seed: int = Field(0, ge=0, description="Random seed (data order, augmentation, initialisation).")
    output_dir: str | None = Field(
        None,
        description="Run directory (config.yaml, metrics.jsonl, checkpoints, summary.json). "
        "Default: runs/<kind>-<backbone>-<timestamp>.",
        json_schema_extra=cli(group="runtime"),
    )

    @field_validator("device_ids", mode="before")
    @classmethod
    def _parse_device_ids(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        if isinstance(value, str):  # "" (an unset form field) means none
            return (
                split_text(value, GPU_IDS_TEXT, int, "device_ids must be comma-separated integers like 0,1")
                or None
            )
        return value
