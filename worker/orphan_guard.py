"""`python -m worker.orphan_guard PARENT_PID SIGNAL -- COMMAND...`: exec COMMAND so that it dies with its parent.

A worker killed with SIGKILL cannot stop its training child, and an orphaned trainer would keep
writing into the run directory while a resumed attempt (on another worker) writes there too. Linux's
PR_SET_PDEATHSIG makes the kernel send SIGNAL to this process when the thread that started it dies;
the setting survives exec, so the trainer itself (same pid) inherits it. Done here, after fork+exec
in a fresh interpreter, instead of in a `preexec_fn`, which is unsafe in a multi-threaded worker.
Elsewhere than Linux the command is exec'ed unguarded.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send `signum` when our parent thread exits; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m worker.orphan_guard PARENT_PID SIGNAL -- COMMAND...", file=sys.stderr)
        return 2
    parent_pid, signum, command = int(argv[0]), int(argv[1]), argv[3:]
    set_parent_death_signal(signum)
    # The parent may have died between fork and prctl; then no signal will ever come.
    if os.getppid() != parent_pid:
        return 128 + signal.SIGKILL
    os.execvp(command[0], command)
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
