"""A training child dies with the worker that started it (no orphan keeps writing into the run dir)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from workerlib import wait_for

from worker.orphan_guard import main as guard_main

# A stand-in worker: starts a guarded long sleeper, reports its pid, then waits to be killed.
PARENT = """
import subprocess, sys, time
from worker.command import guarded
child = subprocess.Popen(guarded([sys.executable, "-c", "import time; time.sleep(120)"]))
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its reaping parent is missing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_guarded_child_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.kill()
    parent.wait()
    wait_for(lambda: not _alive(child_pid), "the guarded child to die with its parent", deadline_s=20)


def test_guard_refuses_to_exec_when_the_parent_is_already_gone() -> None:
    not_our_parent = os.getppid() + 1 if os.getppid() != 1 else 2
    assert guard_main([str(not_our_parent), str(int(signal.SIGKILL)), "--", "true"]) == 128 + signal.SIGKILL


def test_guard_usage_error() -> None:
    assert guard_main(["1", "9", "true"]) == 2
