"""Helpers shared by the server tests (a plain module: `conftest` names collide across test folders)."""

from __future__ import annotations

from pathlib import Path

from services import extract_cifar  # noqa: F401  (re-exported: the server tests import it from here)


def make_run_files(run_dir: Path, *, checkpoint: bool = True) -> None:
    """What a stopped trainer leaves behind (the worker would have written these)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text("batch_size: 16\n")
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    if checkpoint:
        (run_dir / "checkpoint.pth").write_bytes(b"not really a checkpoint")
