"""The Celery app of the job service, configured from `server.settings.Settings` (LOWDINO_* variables).

Broker
    Embedded default: kombu's SQLAlchemy transport on a SQLite file (``sqla+sqlite:///<home>/broker.db``).
    Chosen over the filesystem transport because (a) its whole configuration is the URL, so the API
    (publisher) and the worker (consumer) cannot disagree about folders; (b) a message is claimed
    inside a ``BEGIN IMMEDIATE`` transaction, so two workers never take the same message, whereas the
    filesystem transport claims by moving a file into the temp folder, which is a non-atomic copy
    when /tmp is another filesystem; (c) it needs no directory set-up. What it lacks (fanout, so no
    `celery inspect` / remote control) we do not use: cancel goes through the database and the STOP
    file, never through revoke. At scale: ``LOWDINO_BROKER_URL=redis://host:6379/0``.

No result backend
    The database, not the broker, is the source of truth for run state (the supervisor writes status,
    metrics, logs and errors there), so task results are ignored.

Delivery: late ack, prefetch 1, concurrency 1
    A worker owns one GPU set and runs one run at a time. The message is acknowledged when the task
    returns (``task_acks_late``), and prefetch is 1, so while a run trains for hours the worker holds
    exactly that one message and the next one stays in the broker for any idle worker. (Early ack
    with prefetch 1 would let the busy worker reserve a second message and sit on it for hours.)
    The price of late ack is redelivery: of an unacked message when a worker dies (Redis after the
    visibility timeout, which is set to 7 days, longer than any run, so a healthy long run is never
    redelivered). A redelivered message is harmless: the supervisor claims a run with an atomic
    ``UPDATE runs SET status='running' WHERE id=? AND status='queued'``, and a run that is running,
    interrupted or finished is refused, so a run never executes twice. A worker killed mid-run leaves
    its run to the heartbeat reaper (-> interrupted) and the user's resume (-> queued again).
"""

from __future__ import annotations

from server.settings import get_settings
from server.workers.broker import make_celery
from server.workers.queues import TASK_NAME

app = make_celery(get_settings().broker_url, role="worker")

__all__ = ["TASK_NAME", "app"]
