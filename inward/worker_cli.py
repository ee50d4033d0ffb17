"""The ``inward worker`` command: an rq worker that runs the periodic jobs enqueued by ``inward serve``."""

from __future__ import annotations

import logging

import click

from config.errors import InwardError

logger = logging.getLogger(__name__)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty instead of waiting for new jobs.")
@click.pass_context
def worker_command(ctx: click.Context, burst: bool) -> None:
    """Run the jobs that `inward serve` enqueues on Redis (needs jobs.backend: rq).

    Runs until stopped (Ctrl+C or SIGTERM, which let the running job finish
    first), or with --burst until the queue is empty.
    """
    from inward.logging_setup import configure_logging
    from inward.rq_jobs import close_worker_services, configure_worker
    from inward.serve_cli import _settings

    settings = _settings(ctx)
    configure_logging(settings)
    _require_rq_backend(settings)
    connection = _connect_or_fail(settings.jobs.redis_url)
    configure_worker(settings)
    try:
        _require_store_ready(settings)
        _run_worker(connection, burst=burst)
    finally:
        close_worker_services()
        connection.close()
        logger.info("Inward worker stopped")


def _require_rq_backend(settings) -> None:
    backend = settings.jobs.backend
    if backend != "rq":
        raise click.ClickException(
            f"inward worker runs jobs only with jobs.backend: rq, but jobs.backend is {backend!r}, "
            "so `inward serve` runs the jobs itself. Set jobs.backend to rq (INWARD_JOBS__BACKEND=rq) "
            "for every `inward serve` and `inward worker` process, or do not start a worker."
        )


def _connect_or_fail(url: str):
    """Return a Redis client for ``url`` after a PING, or fail with the masked URL and the fix."""
    import redis

    from config.secrets import MASK
    from config.settings import mask_url_password, url_passwords
    from inward.rq_jobs import connect

    connection = connect(url)
    try:
        connection.ping()
    except redis.RedisError as error:
        connection.close()
        detail = f"{type(error).__name__}: {error}".rstrip(".")
        for password in url_passwords(url):
            detail = detail.replace(password, MASK)
        raise click.ClickException(
            f"Redis at {mask_url_password(url)} (jobs.redis_url) is not reachable: {detail}. "
            "Start Redis there, or set jobs.redis_url (INWARD_JOBS__REDIS_URL) to the Redis "
            "that `inward serve` uses."
        ) from None
    return connection


def _require_store_ready(settings) -> None:
    """Fail when the state store cannot be opened or lacks migrations, because the worker never migrates it."""
    from sqlalchemy.exc import SQLAlchemyError

    from inward.rq_jobs import worker_services
    from inward.serve_cli import _require_migrated

    store = None
    try:
        store = worker_services().store
        _require_migrated(store)
    except InwardError as error:
        raise click.ClickException(str(error)) from None
    except SQLAlchemyError as error:
        where = store.display_url if store is not None else "store.url"
        raise click.ClickException(f"State store at {where} failed: {error}") from None


def _run_worker(connection, *, burst: bool) -> None:
    from rq import Queue, SimpleWorker

    from inward.rq_jobs import QUEUE_NAME

    # SimpleWorker runs each job in this process instead of a forked child,
    # so the Services (index, store, platform client) are built once per worker.
    worker = SimpleWorker([Queue(QUEUE_NAME, connection=connection)], connection=connection)
    logger.info("Inward worker %s started on rq queue %s%s", worker.name, QUEUE_NAME, " (burst)" if burst else "")
    worker.work(burst=burst)
