"""The configs that request bodies carry, as the API document states them: per run kind, as requests.

A request config is the kind's config model (`lowdino.config.CONFIG_MODELS`, components `PretrainConfig`,
`EvalConfig`, `DistillConfig`) as a client may send it (`<Kind>Request`):

* without the fields the server owns (`output_dir`, `resume`: refused when given);
* with the form every path field must have (`server.runs.paths`: not blank, no NUL; `tensorboard_dir`
  relative inside the run directory). Where a path leads (inside this server's data roots) is the
  server's state, which no schema states: `server.errors.ServerStateError`, 409.

Bodies that carry one (`RunCreate`, `SweepCreate`) are one variant per kind (`oneOf` with a `kind`
discriminator), so the document names the model that applies. Option sets merged over a base or over
an existing run (sweep grids and overrides, clone overrides, study overrides) are partial: every
option optional and checked field by field (`<Kind>Options`); the model's constraints between fields
(e.g. eval: exactly one of checkpoint / backbone) are stated on the base config, and checked again
by the server on each merged config of a run.

The routes still parse `config` as a JSON object and validate it with the model in strict JSON mode
(`server.runs.lifecycle.validate_config`), whose 422 names the field (`field_errors`).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import ValidationError
from pydantic.json_schema import models_json_schema

from lowdino.config import CONFIG_MODELS
from lowdino.config.study import study_presets
from lowdino.search.config import SEARCHABLE_KINDS
from server.campaigns.studies import STUDY_OWNED_PRETRAIN_FIELDS
from server.runs.lifecycle import CHAIN_OWNED_FIELDS, SERVER_OWNED_FIELDS, strict_validate
from server.runs.paths import INSIDE_RUN_PATH, PATH_FIELDS, USABLE_PATH
from server.vocabulary import TRAINING_KINDS, RunKind

REF = "#/components/schemas/{}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name)}


def model_name(kind: str) -> str:
    return CONFIG_MODELS[kind].__name__


def _with_path_forms(properties: dict[str, Any]) -> None:
    """The pattern each path field's string must match (server.runs.paths), on its string variants."""
    for field, what in PATH_FIELDS.items():
        prop = properties.get(field)
        if prop is None:
            continue
        pattern = INSIDE_RUN_PATH if what == "inside_run" else USABLE_PATH
        for variant in prop.get("anyOf", [prop]):
            if variant.get("type") == "string" and "enum" not in variant:
                variant["pattern"] = pattern


def _without(schema: dict[str, Any], fields: tuple[str, ...], *, partial: bool) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    for field in fields:
        schema["properties"].pop(field, None)
    _with_path_forms(schema["properties"])
    schema["additionalProperties"] = False
    if partial:  # every option optional, no constraints between options (they hold on the merged config)
        for key in ("required", "oneOf", "anyOf", "allOf", "if", "then", "else", "not"):
            schema.pop(key, None)
    return schema


@cache
def model_schemas() -> dict[str, dict[str, Any]]:
    """The config models' JSON schemas by model name, with every constraint they declare."""
    _, top = models_json_schema(
        [(model, "validation") for model in CONFIG_MODELS.values()], ref_template=REF.replace("{}", "{model}")
    )
    return dict(top["$defs"])


def needs_config(kind: str) -> bool:
    """Whether an empty config is refused (then a body must carry `config`)."""
    try:
        strict_validate(kind, {})
    except ValidationError:
        return True
    return False


def config_components() -> dict[str, Any]:
    """Components: the models, their request forms (`<Model>Request`), their partial option sets
    (`<Model>Options`), the chained-evaluation block and the study overrides."""
    models = model_schemas()
    components: dict[str, Any] = dict(copy.deepcopy(models))
    for kind in RunKind:
        name = model_name(kind)
        request = _without(models[name], SERVER_OWNED_FIELDS, partial=False)
        request["title"] = f"{name} (request)"
        components[f"{name}Request"] = request
        options = _without(models[name], SERVER_OWNED_FIELDS, partial=True)
        options["title"] = f"{name} options"
        options["description"] = "Options merged over a base config: each optional, checked field by field."
        components[f"{name}Options"] = options
    eval_name = model_name(RunKind.EVAL)
    evaluate = _without(models[eval_name], CHAIN_OWNED_FIELDS, partial=True)
    evaluate["title"] = "EvaluateOptions"
    evaluate["description"] = (
        "Eval options of a chained evaluation (the chain sets checkpoint; dataset and data_path default "
        "to the training run's)."
    )
    components["EvaluateOptions"] = evaluate
    pretrain = _without(models[model_name(RunKind.PRETRAIN)], STUDY_OWNED_PRETRAIN_FIELDS, partial=True)
    pretrain["title"] = "StudyPretrainOptions"
    pretrain["description"] = "Pretrain options over the study's and the scale's (the study sets backbone)."
    components["StudyPretrainOptions"] = pretrain
    return components


def _evaluate_property(kind: str, description: str | None) -> dict[str, Any]:
    if kind in TRAINING_KINDS:
        return {"anyOf": [_ref("EvaluateOptions"), {"type": "null"}], "description": description or ""}
    return {"type": "null", "description": f"{kind} runs have no chained evaluation."}


def _variants(
    schemas: dict[str, Any],
    body: str,
    build: Any,
    description: str | None = None,
    *,
    kinds: tuple[RunKind, ...] = tuple(RunKind),
    keep_required: bool = False,
) -> dict[str, Any]:
    """`body` as oneOf its per-kind variants `<body><Kind>` (discriminator `kind`)."""
    base = schemas[body]
    mapping = {}
    for kind in kinds:
        variant_name = f"{body}{kind.value.capitalize()}"
        properties = copy.deepcopy(base["properties"])
        properties["kind"] = {"type": "string", "const": kind.value, "description": "The run kind."}
        required = ["kind"] + [
            name for name in base.get("required", []) if keep_required and name not in ("kind", "config")
        ]
        build(kind, properties, required)
        schemas[variant_name] = {
            "title": variant_name,
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        mapping[kind.value] = REF.format(variant_name)
    schemas[body] = {
        "title": body,
        "description": description or base.get("description", ""),
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "kind", "mapping": mapping},
    }
    return schemas


def rewrite_request_bodies(schemas: dict[str, Any]) -> None:
    """RunCreate, SweepCreate, SearchCreate, RunClone and StudyCreate with their configs stated (in place)."""
    schemas.update(config_components())

    def run_variant(kind: RunKind, properties: dict[str, Any], required: list[str]) -> None:
        name = model_name(kind)
        properties["config"] = {
            **_ref(f"{name}Request"),
            "description": f"Options of {name} (GET /api/schema/{kind.value}); unset ones take defaults.",
        }
        properties["evaluate"] = _evaluate_property(kind, properties["evaluate"].get("description"))
        if needs_config(kind):
            required.append("config")

    _variants(schemas, "RunCreate", run_variant)

    def sweep_variant(kind: RunKind, properties: dict[str, Any], required: list[str]) -> None:
        name = model_name(kind)
        options = schemas[f"{name}Options"]["properties"]
        properties["config"] = {
            **_ref(f"{name}Request"),
            "description": "The base config every run starts from (a valid config by itself).",
        }
        properties["grid"] = {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        field: {"type": "array", "items": prop, "minItems": 1, "maxItems": 1000}
                        for field, prop in options.items()
                    },
                    "additionalProperties": False,
                    "maxProperties": 20,
                },
                {"type": "null"},
            ],
            "description": properties["grid"].get("description", ""),
        }
        properties["overrides"] = {
            "anyOf": [
                {"type": "array", "items": _ref(f"{name}Options"), "maxItems": 1000},
                {"type": "null"},
            ],
            "description": properties["overrides"].get("description", ""),
        }
        properties["evaluate"] = _evaluate_property(kind, properties["evaluate"].get("description"))
        if needs_config(kind):
            required.append("config")

    _variants(schemas, "SweepCreate", sweep_variant)

    def search_variant(kind: RunKind, properties: dict[str, Any], required: list[str]) -> None:
        properties["config"] = {
            **_ref(f"{model_name(kind)}Request"),
            "description": "The base config of every trial; the space's options vary over it.",
        }

    _variants(schemas, "SearchCreate", search_variant, kinds=SEARCHABLE_KINDS, keep_required=True)

    clone = schemas["RunClone"]["properties"]
    clone["config"] = {
        "anyOf": [_ref(f"{model_name(kind)}Options") for kind in RunKind],
        "description": clone["config"].get("description", "")
        + " The options of the original's kind (a run's config may still be refused in combination "
        "with the original's: 422 naming the field).",
    }

    study = schemas["StudyCreate"]["properties"]
    presets = study_presets()
    study["study"]["enum"] = list(presets)
    study["pretrain"] = {**_ref("StudyPretrainOptions"), "description": study["pretrain"].get("description")}
    study["evaluate"] = {**_ref("EvaluateOptions"), "description": study["evaluate"].get("description")}
    default_study, default_scale = study["study"].get("default"), study["scale"].get("default")
    schemas["StudyCreate"]["anyOf"] = [
        {
            "properties": {"study": {"const": name}, "scale": {"enum": list(preset.scales)}},
            "required": [
                *(["study"] if name != default_study else []),
                *(["scale"] if default_scale not in preset.scales else []),
            ],
        }
        for name, preset in presets.items()
    ]
