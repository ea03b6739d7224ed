"""docker-compose.yml, docker/Dockerfile and .env.example: they validate and say what docs/deploy.md promises.

`docker-compose config` (Debian's docker-compose, no engine needed) validates the file against the
Compose schema; the YAML-level tests pin the services, their health checks, the GPU reservation and
the shared volumes; .env.example must list every setting of server/settings.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SERVICES = {"redis", "postgres", "migrate", "api", "worker", "worker-cpu"}
WORKERS = ("worker", "worker-cpu")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def health_test(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test[1:]) if isinstance(test, list) else str(test)


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("docker-compose is missing; CI must install it (apt-get install -y docker-compose)")
    pytest.skip("docker-compose is not installed (apt-get install -y docker-compose); under CI this fails")


@pytest.mark.parametrize("profile", [None, "cpu", "gpu"])
def test_compose_file_validates(profile: str | None) -> None:
    command = [docker_compose(), "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE)]
    command += ["--profile", profile] if profile else []
    result = subprocess.run([*command, "config", "-q"], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_compose_names_the_missing_password(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "POSTGRES_PASSWORD"}
    empty = tmp_path / ".env"
    empty.write_text("")
    result = subprocess.run(
        [docker_compose(), "-f", str(COMPOSE), "--env-file", str(empty), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def test_every_service_is_there_with_a_health_check(compose: dict[str, Any]) -> None:
    found = services(compose)
    assert set(found) == SERVICES
    assert "redis-cli ping" in health_test(found["redis"])
    assert "pg_isready" in health_test(found["postgres"])
    assert "server.http.healthcheck api" in health_test(found["api"])
    assert "/api/health" in health_test(found["api"])
    for name in WORKERS:
        worker = found[name]
        # The health check asks about this very worker's heartbeat.
        assert f"server.http.healthcheck worker --name {option(worker['command'], '--name')}" in health_test(
            worker
        )
    # The one-shot migration has no health check: its exit status is its health, and everything that
    # touches the database waits for it to complete.
    assert "healthcheck" not in found["migrate"]
    assert found["migrate"]["command"] == ["lowdino", "serve", "--migrate-only"]
    for name in ("api", *WORKERS):
        assert found[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert found[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert found["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_api_is_api_only_on_all_interfaces_with_allowed_hosts(compose: dict[str, Any]) -> None:
    api = services(compose)["api"]
    assert api["command"][:3] == ["lowdino", "serve", "--no-worker"]
    assert option(api["command"], "--host") == "0.0.0.0"
    assert "api" in api["environment"]["LOWDINO_ALLOWED_HOSTS"].split(",")
    assert api["ports"] == ["${LOWDINO_PUBLISH:-127.0.0.1:8000}:8000"]


def test_gpu_worker_reserves_its_gpu_and_cpu_worker_needs_none(compose: dict[str, Any]) -> None:
    found = services(compose)
    gpu = found["worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]}]
    assert gpu["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert option(gpu["command"], "--gpus") == "0"
    assert "gpu" in option(gpu["command"], "--queues").split(",")
    assert gpu["profiles"] == ["gpu"]
    assert "/whl/cu" in gpu["build"]["args"]["TORCH_INDEX_URL"]
    cpu = found["worker-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert "deploy" not in cpu
    assert option(cpu["command"], "--gpus") == "none"
    assert option(cpu["command"], "--queues") == "cpu"
    assert cpu["build"]["args"]["TORCH_INDEX_URL"].endswith("/whl/cpu")
    # Without a profile, `up` starts no worker that needs a GPU.
    assert all("profiles" in found[name] for name in WORKERS)


def test_runs_and_datasets_are_shared_by_api_and_workers(compose: dict[str, Any]) -> None:
    found = services(compose)
    for name in ("api", *WORKERS):
        service = found[name]
        env = service["environment"]
        volumes = service["volumes"]
        assert f"runs:{env['LOWDINO_RUNS_DIR']}" in volumes
        assert any(volume.endswith(f":{env['LOWDINO_DATA_ROOTS']}:ro") for volume in volumes)
        assert env["LOWDINO_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["LOWDINO_BROKER_URL"].startswith("redis://redis:6379/")
    assert "postgres:/var/lib/postgresql/data" in found["postgres"]["volumes"]
    assert {"postgres", "redis", "runs"} <= set(compose["volumes"])


def test_env_example_lists_every_setting_and_compose_passes_them(compose: dict[str, Any]) -> None:
    listed = dict(re.findall(r"^#? ?(LOWDINO_[A-Z_]+)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    expected = {f"LOWDINO_{name.upper()}" for name in Settings.model_fields}
    assert expected - set(listed) == set()
    # The defaults shown are the real ones, where they are plain values.
    for name, field in Settings.model_fields.items():
        if isinstance(field.default, (int, float)) and not isinstance(field.default, bool):
            assert float(listed[f"LOWDINO_{name.upper()}"]) == field.default, name
    api_env = services(compose)["api"]["environment"]
    assert expected - set(api_env) == set(), "a setting the API cannot receive under compose"


def test_dockerfile_installs_the_wheel_with_the_chosen_torch_build() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "pip wheel" in dockerfile
    assert "[server,export]" in dockerfile  # the workers in the image run export runs and ONNX latency
    assert '--index-url "$TORCH_INDEX_URL"' in dockerfile
    assert "USER lowdino" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    for needed in ("pyproject.toml", "lowdino/", "server/", "worker/", "frontend/", "configs/"):
        assert f"!{needed}" in ignored


@pytest.mark.slow
def test_the_wheel_ships_the_dashboard_presets_and_migrations(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ next to the sources.
    source = tmp_path / "src"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    for package in ("lowdino", "server", "worker", "frontend"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("lowdino-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("frontend", "server/storage/migrations", "lowdino/presets"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert path.relative_to(ROOT).as_posix() in shipped
    assert "server/storage/alembic.ini" in shipped
    assert "lowdino/presets/quickstart.yaml" in shipped  # the dashboard's preset cards


def migrate_only(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("LOWDINO_")}
    return subprocess.run(
        [sys.executable, "-m", "lowdino", "serve", "--migrate-only"],
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_migrate_service_command_migrates_and_exits(tmp_path: Path) -> None:
    from server.storage.engine import create_db_engine, current_revision

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = migrate_only({"LOWDINO_HOME": str(tmp_path), "LOWDINO_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    engine = create_db_engine(url)
    revision = current_revision(engine)
    engine.dispose()
    assert revision is not None
    assert result.stderr.strip().endswith(f"is at revision {revision}")
    down = migrate_only(
        {"LOWDINO_HOME": str(tmp_path), "LOWDINO_DATABASE_URL": "postgresql+psycopg://lowdino@127.0.0.1:1/x"}
    )
    assert down.returncode == 2
    assert down.stderr.startswith("lowdino serve: error: cannot migrate the database postgresql+psycopg://")
    assert "start it or fix LOWDINO_DATABASE_URL" in down.stderr
    assert "Traceback" not in down.stderr
