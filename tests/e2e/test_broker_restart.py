"""A Redis restart in the middle of a run: the run completes with every metric step, and the queue
works again afterwards.

The API (uvicorn subprocess) and a real `lowdino worker` use a private `redis-server` on a free port
(restarting the shared one would break other tests) and a fresh database on the local PostgreSQL.
Metrics and events never pass through the broker, so they keep flowing while it is down; the worker
reconnects once the run is over and takes the next one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2elib import FINAL_STATUSES, loss_rows_per_step, make_stack, tiny_pretrain, wait_for
from services import private_redis

pytestmark = [pytest.mark.slow, pytest.mark.services]


def step_of(run: dict[str, Any]) -> int:
    return int(run["progress"]["step"] or 0)


def test_redis_restart_mid_run_loses_no_step(tmp_path: Path) -> None:
    total = 24
    with private_redis() as redis:
        stack = make_stack(tmp_path / "home", "scaled", broker_url=redis.url)
        try:
            stack.start_api()
            stack.start_worker("r1")
            run_id = stack.submit(tiny_pretrain(n_epochs=6), name="redis-restart")
            wait_for(lambda: step_of(stack.run(run_id)) >= 2, "the first steps", deadline_s=180, every_s=0.2)
            redis.stop()  # the broker is gone: every connection to it is cut, its queues are lost
            at_stop = step_of(stack.run(run_id))
            # Training and its metrics do not need the broker: steps keep arriving while it is down.
            wait_for(
                lambda: step_of(stack.run(run_id)) >= min(total, at_stop + 3),
                "steps while Redis is down",
                deadline_s=120,
                every_s=0.2,
            )
            redis.start()
            run = stack.wait_status(run_id, FINAL_STATUSES, deadline_s=240)
            assert run["status"] == "completed", run.get("error")
            assert step_of(run) == total
            assert loss_rows_per_step(stack.database_url, run_id) == dict.fromkeys(range(1, total + 1), 1)

            # The API publishes to the restarted broker and the worker consumes from it again.
            after = stack.submit(tiny_pretrain(n_epochs=1), name="after-redis-restart")
            run = stack.wait_status(after, FINAL_STATUSES, deadline_s=240)
            assert run["status"] == "completed", run.get("error")
        finally:
            stack.stop()
