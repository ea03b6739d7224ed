"""A publish-only Celery client: the API sends "lowdino.run" by name and never imports worker/.

Publishing retries only briefly (a few hundred ms): when the broker is down the request answers
503 with the cause instead of hanging for Celery's default retry schedule.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from server.errors import BrokerUnavailableError
from server.queues import TASK_NAME

PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.5}


# Wait for the SQLite broker's lock instead of failing while the worker polls it (as the worker does).
SQLITE_BROKER_TIMEOUT_S = 30


def transport_options(broker_url: str) -> dict[str, Any]:
    if broker_url.lower().startswith(("sqla+sqlite", "sqlalchemy+sqlite")):
        return {"connect_args": {"timeout": SQLITE_BROKER_TIMEOUT_S}}
    return {}


def make_celery(broker_url: str) -> Celery:
    app = Celery("lowdino-api", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_transport_options=transport_options(broker_url),
        broker_connection_timeout=2.0,
        broker_connection_retry_on_startup=False,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


def send_run(celery_app: Celery, *, run_id: str, queue: str) -> str:
    """Publish the run's task to `queue`; returns the Celery task id."""
    try:
        result = celery_app.send_task(
            TASK_NAME, args=[run_id], queue=queue, retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception as exc:  # kombu raises OperationalError, ConnectionError, socket errors...
        raise BrokerUnavailableError(
            f"could not queue run {run_id}: broker {_safe_url(celery_app)} is unreachable "
            f"({exc.__class__.__name__}); start it or fix LOWDINO_BROKER_URL, then POST /resume or resubmit"
        ) from exc
    return str(result.id)


def broker_reachable(celery_app: Celery, *, timeout: float = 1.0) -> tuple[bool, str | None]:
    """(reachable, error) by opening and closing one broker connection."""
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return True, None
    except Exception as exc:
        return False, f"{exc.__class__.__name__}: {exc}"[:300]


def _safe_url(celery_app: Celery) -> str:
    """The broker URL without its password."""
    url: Any = celery_app.conf.broker_url
    try:
        from kombu.utils.url import maybe_sanitize_url

        return str(maybe_sanitize_url(url))
    except Exception:
        return "(configured broker)"
