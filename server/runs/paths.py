"""Filesystem guards: nothing a client sends makes the server read or delete outside LowDINO's folders.

* Paths inside submitted configs (dataset, weights, checkpoints, caches) are resolved — symlinks
  included — and must lie under an allowed root; they are stored absolute, so the worker reads
  exactly what was checked. What a path must look like is in the API's schema (`USABLE_PATH`,
  `INSIDE_RUN_PATH`: 422 when it does not); where it leads depends on this server's roots and files,
  which no schema states (`ServerStateError`, 409). What a run reads (dataset folder, weights,
  checkpoint, teacher) must exist at submission: else 422 at the field, rather than a run that fails
  in the worker minutes later.
* Artifact names are relative paths that must resolve inside the run directory.
* A run directory is only ever created or deleted when it resolves inside `runs_dir`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from lowdino.config.base import DOWNLOADED_DATASETS, matches_pattern
from lowdino.contract.rundir import CHECKPOINT_FILE
from server.errors import ArtifactNotFoundError, InvalidRequestError, ServerStateError
from server.settings import Settings

# JSON Schema patterns (matched as JSON Schema validators do: `matches_pattern`), checked here and
# published for the path fields of request configs (server.http.request_schemas).
USABLE_PATH = r"^[^\x00]*[^\x00 \t\n\r\f\v][^\x00]*$"  # not blank, no NUL
_PART = r"([^/\\.\x00][^/\\\x00]*|\.([^/\\.\x00][^/\\\x00]*)?|\.\.[^/\\\x00]+)"  # not ".."
INSIDE_RUN_PATH = rf"^{_PART}([/\\]+{_PART})*[/\\]*$"  # relative, no ".." part, no NUL


class PathEscapeError(ArtifactNotFoundError):
    """A name that points outside the directory it must stay in: none of the run's files, so a 404 like
    any other name the run lacks (the document's path parameter is any text; nothing about the outside
    is revealed either way)."""


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _roots_text(roots: Sequence[Path]) -> str:
    return ", ".join(str(root) for root in roots) or "(none configured)"


def resolve_under(raw: str, roots: Sequence[Path], *, field: str, env_hint: str) -> str:
    """`raw` as an absolute real path under one of `roots`, else InvalidRequestError naming `field`.

    A relative path is taken against the current directory first, then against each root, preferring
    one that exists (a dataset may also be a folder that is yet to be downloaded into).
    """
    if not matches_pattern(USABLE_PATH, raw):
        raise InvalidRequestError.for_field(
            field, f"{raw!r} is not a usable path; give a path under {_roots_text(roots)}"
        )
    real_roots = [_real(root) for root in roots]
    try:
        given = Path(raw).expanduser()
    except (
        RuntimeError
    ):  # "~name/..." where this server has no user `name`: its state, not the request's form
        raise ServerStateError.for_field(
            field,
            f"{raw}: this server has no user {raw[1:].split('/', 1)[0]!r} whose home '~' could mean; "
            f"give a path under {_roots_text(roots)}",
        ) from None
    candidates = (
        [given] if given.is_absolute() else [Path.cwd() / given] + [root / given for root in real_roots]
    )
    resolved = [_real(candidate) for candidate in candidates]
    allowed = [path for path in resolved if any(_inside(path, root) for root in real_roots)]
    existing = [path for path in allowed if path.exists()]
    if existing or allowed:
        return str((existing or allowed)[0])
    raise ServerStateError.for_field(
        field,
        f"{raw} resolves to {resolved[0]}, outside the allowed directories "
        f"({_roots_text(real_roots)}); move it under one of them or add its folder to {env_hint}",
    )


def read_roots(settings: Settings) -> list[Path]:
    """Where configs may read datasets, weights and checkpoints from."""
    return [*settings.data_roots, settings.run_root]


# field -> what it is. "data": read-only input; "cache": written, must stay in LOWDINO_HOME;
# "inside_run": relative to the run directory; "model_or_path": a registry name or a file;
# "source": what an export reads now (a run, a run directory, a checkpoint or a registry name): it must exist.
PATH_FIELDS: dict[str, str] = {
    "data_path": "data",
    "weights": "data",
    "teacher_weights": "data",
    "calibration_data": "data",
    "parity_data": "data",
    "checkpoint": "checkpoint",
    "teacher": "model_or_path",
    "source": "source",
    "cache_dir": "cache",
    "tensorboard_dir": "inside_run",
}


def _looks_like_path(value: str) -> bool:
    return value.endswith((".pth", ".pt", ".bin", ".safetensors")) or "/" in value or os.sep in value


def resolve_config_paths(
    config: dict[str, Any],
    settings: Settings,
    *,
    run_dir_of: Callable[[str], Path | None] = lambda _run_id: None,
) -> dict[str, Any]:
    """A copy of a validated config (JSON dict) with every path field checked and made absolute.

    `run_dir_of(value)` maps a run id to its directory, so `checkpoint` / `teacher` may name a run.
    Raises InvalidRequestError (422) for a path of the wrong form, ServerStateError (409) for one
    that leads outside this server's roots, each naming the field and the fix.
    """
    config = dict(config)
    roots = read_roots(settings)
    hint = "LOWDINO_DATA_ROOTS"
    for field, kind in PATH_FIELDS.items():
        value = config.get(field)
        if value is None or not isinstance(value, str):
            continue
        if kind == "inside_run":
            if not matches_pattern(INSIDE_RUN_PATH, value):
                raise InvalidRequestError.for_field(
                    field, f"{value!r} must be a relative path inside the run directory, e.g. 'logs'"
                )
            continue
        if not matches_pattern(USABLE_PATH, value):
            raise InvalidRequestError.for_field(
                field, f"{value!r} is not a usable path; give a file or folder"
            )
        if field == "data_path" and config.get("dataset") == "synthetic":
            continue  # generated in memory: the path is never read
        if kind == "cache":
            config[field] = resolve_under(value, [settings.home], field=field, env_hint="LOWDINO_HOME")
            continue
        if kind == "source":
            config[field] = _resolve_source(value, roots, run_dir_of)
            continue
        if kind in ("checkpoint", "model_or_path"):
            run_dir = run_dir_of(value)
            if run_dir is not None:
                config[field] = str(run_dir / CHECKPOINT_FILE) if kind == "model_or_path" else str(run_dir)
                continue
            if kind == "model_or_path" and not _looks_like_path(value):
                _require_backbone(field, value)
                continue
        config[field] = resolve_under(value, roots, field=field, env_hint=hint)
        if field == "data_path" and config.get("dataset") in DOWNLOADED_DATASETS:
            continue  # torchvision downloads into it (creating it) on a machine that is online
        _require_existing(field, value, Path(config[field]), kind)
    return config


def _require_backbone(field: str, value: str) -> None:
    """A registry name that the registry has: a typo would otherwise fail in the worker, minutes later."""
    names = _backbone_names()
    if value not in names:
        raise ServerStateError.for_field(
            field,
            f"{value!r} is neither a backbone name, a run id nor a checkpoint file; give one of those "
            f"(backbones: {', '.join(names)})",
        )


def _require_existing(field: str, value: str, path: Path, kind: str) -> None:
    """What a run reads must be there when it is submitted, not only when a worker starts it (409 at the
    field, instead of a failed run minutes later). A run directory counts as a checkpoint when it holds
    one."""
    if kind == "checkpoint" and path.is_dir():
        if (path / CHECKPOINT_FILE).is_file():
            return
        raise ServerStateError.for_field(
            field,
            f"{value} is a directory without {CHECKPOINT_FILE}; give a run that has finished training "
            "(its id or directory) or a checkpoint file",
        )
    if path.exists():
        return
    fix = {
        "data_path": "give the folder that holds the dataset",
        "checkpoint": "give an existing checkpoint file, or the id or directory of a run that has one",
        "teacher": "give an existing checkpoint file, a run id or a backbone name",
    }.get(field, "give an existing file")
    raise ServerStateError.for_field(field, f"{value} does not exist ({path}); {fix}")


def _backbone_names() -> list[str]:
    from lowdino.backbones import backbone_names  # torch: imported only when an export is submitted

    return backbone_names()


def _resolve_source(value: str, roots: Sequence[Path], run_dir_of: Callable[[str], Path | None]) -> str:
    """An export's `source`: a run id -> its directory (which must hold a checkpoint), a registry name
    as given, else a run directory or checkpoint file under the allowed roots that exists now.

    Every refusal here depends on what this server holds (its runs, its files, its registry), which the
    field's schema (one string for all three forms) cannot state: 409, like a path outside the roots."""
    run_dir = run_dir_of(value)
    if run_dir is not None:
        if not (run_dir / CHECKPOINT_FILE).is_file():
            raise ServerStateError.for_field(
                "source",
                f"run {value} has no {CHECKPOINT_FILE} yet; export it once it has completed "
                "(or name a checkpoint file)",
            )
        return str(run_dir)
    if not _looks_like_path(value):
        names = _backbone_names()
        if value in names:
            return value
        raise ServerStateError.for_field(
            "source",
            f"{value!r} is neither a run id, a run directory, a checkpoint file nor a backbone name; "
            f"give one of those (backbones: {', '.join(names)})",
        )
    path = Path(resolve_under(value, roots, field="source", env_hint="LOWDINO_DATA_ROOTS"))
    if path.is_dir() and not (path / CHECKPOINT_FILE).is_file():
        raise ServerStateError.for_field(
            "source",
            f"{value} is a directory without {CHECKPOINT_FILE}; give a run directory or a checkpoint file",
        )
    if not path.exists():
        raise ServerStateError.for_field(
            "source", f"{value} does not exist ({path}); give an existing run directory or checkpoint file"
        )
    return str(path)


def owned_run_dir(settings: Settings, output_dir: str | None) -> Path | None:
    """The run directory if it lies inside runs_dir (the only place the server creates or deletes)."""
    if not output_dir:
        return None
    path = _real(Path(output_dir))
    root = _real(settings.run_root)
    if path == root or not _inside(path, root):
        return None
    return path


def artifact_path(run_dir: Path, name: str) -> Path:
    """The file `name` (relative, '/'-separated) inside `run_dir`; rejects '..', absolute and symlink escapes."""
    if not name or "\x00" in name or "\\" in name:
        raise PathEscapeError(f"artifact name {name!r} is not valid; use a name from GET .../artifacts")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or name.startswith("~"):
        raise PathEscapeError(
            f"artifact name {name!r} leaves the run directory; use a name from GET .../artifacts"
        )
    missing = ArtifactNotFoundError(f"run has no artifact {name!r}; list them with GET .../artifacts")
    root = _real(run_dir)
    try:
        path = _real(root / pure)
        if not _inside(path, root) or path == root:
            raise PathEscapeError(f"artifact {name!r} points outside the run directory; it cannot be served")
        if not path.is_file():
            raise missing
    except OSError as exc:  # e.g. a name longer than the filesystem allows: no such file either
        raise missing from exc
    return path


def list_artifacts(run_dir: Path, *, max_files: int = 2000) -> list[tuple[str, Path]]:
    """(name, path) of the regular files under `run_dir` that stay inside it, sorted by name."""
    root = _real(run_dir)
    if not root.is_dir():
        return []
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if filename.startswith(".") or not _inside(_real(path), root) or not path.is_file():
                continue  # temp files of atomic writes, and links that leave the run
            found.append((path.relative_to(root).as_posix(), path))
            if len(found) >= max_files:
                return sorted(found)
    return sorted(found)
