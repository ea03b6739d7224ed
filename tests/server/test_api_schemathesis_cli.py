"""The schemathesis CLI against a real `lowdino serve --no-worker`: every check, coverage and fuzzing
phases, exactly as a user runs it (`st run URL/openapi.json -c all -n 30 --phases=coverage,fuzzing`).

Unlike test_api_schemathesis.py (in-process, one operation at a time, positive-data acceptance off for
config operations), nothing is exempted here: a config the document allows must be accepted, or refused
with the 409 that the document gives for what no schema can state (server.http.contract).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from services import free_port

ST_TIMEOUT_S = 1500  # a bound on a hang, not a speed target


def _st() -> str:
    found = Path(sys.executable).with_name("st")
    if found.is_file():
        return str(found)
    path = shutil.which("st")
    if path is None:
        message = "schemathesis's `st` command is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the contract check, never skip it
        pytest.skip(message)
    return path


def _wait_up(url: str, server: subprocess.Popen[bytes], log: Path, deadline_s: float = 90) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"lowdino serve exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"lowdino serve did not answer in {deadline_s} s:\n{log.read_text()[-4000:]}")


@pytest.mark.slow
@pytest.mark.timeout(ST_TIMEOUT_S + 300)
def test_schemathesis_cli_finds_no_failure(tmp_path: Path) -> None:
    st = _st()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    home = tmp_path / "home"
    # st reads each event stream until its 10 s request timeout, and the streams of queued runs never end
    # by themselves: with a 1 s stream lifetime (the client reconnects, nothing is lost; test_api_events_sse
    # checks it) the ~60 stream requests stop costing ten minutes of waiting.
    env = {**os.environ, "LOWDINO_HOME": str(home), "LOWDINO_SSE_MAX_STREAM_SECONDS": "1"}
    env.pop("LOWDINO_API_TOKEN", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "lowdino", "serve", "--no-worker", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_up(url, server, log)
        work = tmp_path / "st"
        work.mkdir()
        result = subprocess.run(
            [st, "run", f"{url}/openapi.json", "-c", "all", "-n", "30", "--phases=coverage,fuzzing"],
            cwd=work,  # st writes its reports and cassettes in the current directory
            capture_output=True,
            text=True,
            timeout=ST_TIMEOUT_S,
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    assert result.returncode == 0, f"st run failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
