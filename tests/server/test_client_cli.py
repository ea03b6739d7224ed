"""`lowdino runs ...` against a real API served by uvicorn (SQLite and PostgreSQL), in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from serverlib import serving

from lowdino.cli.main import main
from server.http.app import create_app
from server.settings import Settings

TINY = {"dataset": "synthetic", "batch_size": 16, "backbone": "resnet5m", "max_steps": 5}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_submit_list_show_cancel_over_http(
    live_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A run's own config.yaml, server-owned fields included: they are left out, with a note.
    config = tmp_path / "config.yaml"
    # `lr: 1e-3` is text to YAML 1.1: read as `lowdino pretrain --config` reads it, it is a number.
    config.write_text(yaml.safe_dump({**TINY, "output_dir": "runs/old", "resume": False}) + "lr: 1e-3\n")
    code, out, err = run_cli(
        capsys,
        "runs",
        "submit",
        "--config",
        str(config),
        "--name",
        "from cli",
        "--tag",
        "cli",
        "--server",
        live_server,
    )
    assert code == 0, err
    assert "left out output_dir, resume" in err
    run_id = out.split()[3]
    assert out.startswith(f"queued pretrain run {run_id}")

    code, out, _ = run_cli(
        capsys, "runs", "list", "--where", "backbone = 'resnet5m'", "--server", live_server
    )
    assert code == 0
    assert out.splitlines()[0].split() == [
        "ID",
        "NAME",
        "STATUS",
        "KIND",
        "BACKBONE",
        "DONE",
        "KNN",
        "TOP-1",
        "TAGS",
    ]
    assert run_id in out
    assert "from cli" in out
    assert "queued" in out
    code, out, _ = run_cli(
        capsys, "runs", "list", "--where", "backbone = 'other'", "--json", "--server", live_server
    )
    assert json.loads(out)["count"] == 0

    code, out, _ = run_cli(capsys, "runs", "show", run_id, "--server", live_server)
    assert code == 0
    assert "status  queued" in out
    assert "tags  cli" in out
    code, out, _ = run_cli(capsys, "runs", "cancel", run_id, "--server", live_server)
    assert (code, out.strip()) == (0, f"run {run_id}: cancelled")
    code, out, _ = run_cli(capsys, "runs", "show", run_id, "--json", "--server", live_server)
    shown = json.loads(out)
    assert shown["status"] == "cancelled"
    assert shown["config"]["lr"] == 0.001
    # A cancelled run ends `watch` at once, with the cancelled exit status.
    code, out, _ = run_cli(capsys, "runs", "watch", run_id, "--server", live_server)
    assert code == 75
    assert "cancelled" in out


def test_refusals_are_one_line_errors(
    live_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOWDINO_SERVER", live_server)
    code, _, err = run_cli(capsys, "runs", "list", "--where", "knn_top > 3")
    assert code == 2
    assert err.startswith("lowdino runs: error: GET /api/runs: where: unknown key 'knn_top' at position 0")
    assert err.count("\n") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY, "batch_size": -3}))
    code, _, err = run_cli(capsys, "runs", "submit", "--config", str(bad))
    assert code == 2
    assert "batch_size" in err
    code, _, err = run_cli(capsys, "runs", "submit", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "does not exist" in err
    code, _, err = run_cli(capsys, "runs", "show", "nosuchrun")
    assert code == 2
    assert "does not exist" in err
    code, _, err = run_cli(capsys, "runs", "list", "--server", "http://127.0.0.1:9")
    assert code == 2
    assert "no answer from http://127.0.0.1:9" in err


def test_the_token_comes_from_the_flag_or_the_environment(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app: FastAPI = create_app(settings.model_copy(update={"api_token": "s3cret"}))
    try:
        with serving(app) as base:
            code, _, err = run_cli(capsys, "runs", "list", "--server", base)
            assert code == 2
            assert "LOWDINO_API_TOKEN" in err
            code, _, err = run_cli(capsys, "runs", "list", "--server", base, "--token", "s3cret")
            assert code == 0, err
            monkeypatch.setenv("LOWDINO_API_TOKEN", "s3cret")
            assert run_cli(capsys, "runs", "list", "--server", base)[0] == 0
    finally:
        app.state.engine.dispose()
