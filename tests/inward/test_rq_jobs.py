"""The rq jobs backend against the real Redis at 127.0.0.1:6379 and the embedded instance."""

from __future__ import annotations

import logging
import socket

import pytest
from click.testing import CliRunner

from config import settings_for_tests
from config.settings import mask_url_password
from inward.cli import cli
from inward.jobs import Scheduler
from inward.rq_jobs import (
    GUARD_PREFIX,
    KNOWLEDGE_SYNC_PATH,
    QUEUE_NAME,
    RqDispatcher,
    close_worker_services,
    configure_worker,
    connect,
)
from inward.serve_cli import start_jobs
from inward.services import Services
from inward.store import Store
from knowledge.index import KnowledgeIndex

NOOP_PATH = "tests.inward.test_rq_jobs.noop_job"
REDIS_PASSWORD = "r3dis-Passw0rd-xyz"


def noop_job() -> str:
    """A job for the queue tests; the worker imports it by path."""
    return "done"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_connection(redis_url):
    """Yield a client on the test database, emptied before and after the test."""
    connection = connect(redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def queued_ids(connection) -> list[str]:
    from rq import Queue

    return Queue(QUEUE_NAME, connection=connection).job_ids


def run_burst_worker(connection) -> bool:
    from rq import Queue, SimpleWorker

    worker = SimpleWorker([Queue(QUEUE_NAME, connection=connection)], connection=connection)
    return worker.work(burst=True)


def run_pending_and_wait(scheduler: Scheduler) -> None:
    for thread in scheduler.run_pending():
        thread.join(10)


def test_two_schedulers_enqueue_once(redis_connection):
    clock = FakeClock()
    schedulers = []
    for _ in range(2):
        dispatcher = RqDispatcher(connect_like(redis_connection), job_timeout=60)
        scheduler = Scheduler(clock=clock)
        scheduler.add("test.noop", 60, dispatcher.job("test.noop", 60, NOOP_PATH), first_delay=0)
        schedulers.append(scheduler)

    for scheduler in schedulers:
        run_pending_and_wait(scheduler)

    assert len(queued_ids(redis_connection)) == 1
    ttl = redis_connection.ttl(GUARD_PREFIX + "test.noop")
    assert 0 < ttl <= 60

    # Both schedulers come due again while the guard key is still set.
    clock.now += 60
    for scheduler in schedulers:
        run_pending_and_wait(scheduler)

    assert len(queued_ids(redis_connection)) == 1
    assert [scheduler.job("test.noop").failures for scheduler in schedulers] == [0, 0]


def test_enqueue_logs_say_enqueued_or_skipped(redis_connection, caplog):
    clock = FakeClock()
    schedulers = []
    for _ in range(2):
        dispatcher = RqDispatcher(connect_like(redis_connection), job_timeout=60)
        scheduler = Scheduler(clock=clock)
        scheduler.add("test.noop", 60, dispatcher.job("test.noop", 60, NOOP_PATH), first_delay=0, enqueues=True)
        schedulers.append(scheduler)

    with caplog.at_level(logging.INFO):
        for scheduler in schedulers:
            run_pending_and_wait(scheduler)
    messages = [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO]

    job_id = queued_ids(redis_connection)[0]
    assert f"Enqueued test.noop on queue inward (job id {job_id})" in messages
    assert "test.noop not enqueued because another sidecar enqueued it within the last 60 s" in messages
    assert not [message for message in messages if "finished" in message]
    first, second = (scheduler.job("test.noop").stats() for scheduler in schedulers)
    assert (first["runs"], first["enqueued"], first["skipped"]) == (0, 1, 0)
    assert (second["runs"], second["enqueued"], second["skipped"]) == (0, 0, 1)


def test_own_guard_logged_as_this_sidecar(redis_connection, caplog):
    dispatcher = RqDispatcher(redis_connection, job_timeout=60)
    dispatcher.enqueue_once("test.noop", 60, NOOP_PATH)

    with caplog.at_level(logging.INFO):
        second = dispatcher.enqueue_once("test.noop", 60, NOOP_PATH)

    assert second is None
    assert "test.noop not enqueued because this sidecar enqueued it within the last 60 s" in caplog.messages


def connect_like(connection):
    """Return a second client on the same database, as another sidecar process would have."""
    import redis

    return redis.Redis(connection_pool=redis.ConnectionPool(**connection.connection_pool.connection_kwargs))


def test_queued_job_not_enqueued_again(redis_connection):
    dispatcher = RqDispatcher(redis_connection, job_timeout=60)

    first = dispatcher.enqueue_once("test.noop", 60, NOOP_PATH)
    # The guard has expired, but the first run still waits for a worker.
    redis_connection.delete(GUARD_PREFIX + "test.noop")
    second = dispatcher.enqueue_once("test.noop", 60, NOOP_PATH)

    assert first is not None
    assert second is None
    assert queued_ids(redis_connection) == [first]


def test_finished_job_enqueued_after_interval(redis_connection):
    from rq.job import Job

    dispatcher = RqDispatcher(redis_connection, job_timeout=60)
    first = dispatcher.enqueue_once("test.noop", 60, NOOP_PATH)

    assert run_burst_worker(redis_connection) is True
    assert Job.fetch(first, connection=redis_connection).return_value() == "done"

    redis_connection.delete(GUARD_PREFIX + "test.noop")
    second = dispatcher.enqueue_once("test.noop", 60, NOOP_PATH)

    assert second is not None
    assert second != first
    assert queued_ids(redis_connection) == [second]


def test_job_gets_configured_timeout(redis_connection):
    from rq.job import Job

    dispatcher = RqDispatcher(redis_connection, job_timeout=1234)
    job_id = dispatcher.enqueue_once("test.noop", 60, NOOP_PATH)

    job = Job.fetch(job_id, connection=redis_connection)
    assert job.timeout == 1234
    assert job.func_name == NOOP_PATH


def test_failed_enqueue_releases_guard(redis_connection, monkeypatch):
    import redis

    dispatcher = RqDispatcher(redis_connection, job_timeout=60)

    def fail(*args, **kwargs):
        raise redis.ConnectionError("connection lost while enqueuing")

    monkeypatch.setattr(dispatcher.queue, "enqueue", fail)
    with pytest.raises(redis.ConnectionError):
        dispatcher.enqueue_once("test.noop", 60, NOOP_PATH)

    assert redis_connection.get(GUARD_PREFIX + "test.noop") is None
    monkeypatch.undo()
    assert dispatcher.enqueue_once("test.noop", 60, NOOP_PATH) is not None


def test_release_keeps_other_process_guard(redis_connection):
    dispatcher = RqDispatcher(redis_connection, job_timeout=60)
    redis_connection.set(GUARD_PREFIX + "test.noop", "other-process-token", ex=60)

    dispatcher._release(GUARD_PREFIX + "test.noop", "this-process-token")

    assert redis_connection.get(GUARD_PREFIX + "test.noop") == b"other-process-token"


def test_serve_scheduler_enqueues_sync(redis_connection, redis_url, tmp_path):
    settings = settings_for_tests(
        jobs={"backend": "rq", "redis_url": redis_url},
        index={"path": str(tmp_path / "index")},
        store={"url": f"sqlite:///{tmp_path / 'state.db'}"},
    )
    services = Services(settings)
    scheduler = start_jobs(services)
    try:
        assert scheduler is not None
        job = scheduler.job("knowledge.sync")
        assert job.interval == settings.knowledge.sync_interval_minutes * 60
        scheduler.stop()
        if job.enqueued == 0:
            run_pending_and_wait(scheduler)
    finally:
        scheduler.stop()
        services.close()

    from rq.job import Job

    ids = queued_ids(redis_connection)
    assert len(ids) == 1
    assert Job.fetch(ids[0], connection=redis_connection).func_name == KNOWLEDGE_SYNC_PATH


def test_burst_worker_runs_knowledge_sync(redis_connection, redis_url, instance, tmp_path):
    base = instance.platform_settings()
    settings = base.replace(
        index=base.index.replace(path=str(tmp_path / "index")),
        store=base.store.replace(url=f"sqlite:///{tmp_path / 'state.db'}"),
        jobs=base.jobs.replace(backend="rq", redis_url=redis_url),
    )
    store = Store(settings.store.url)
    store.upgrade()
    store.close()
    kb = instance.store.insert("kb_knowledge_base", {"title": "IT Support"})["sys_id"]
    article_ids = {
        instance.store.insert(
            "kb_knowledge",
            {
                "short_description": title,
                "text": f"<p>{title} steps for agents.</p>",
                "kb_knowledge_base": kb,
                "workflow_state": "published",
                "active": "true",
            },
        )["sys_id"]
        for title in ("Reset a VPN token", "Unlock a mailbox")
    }
    # The sidecar's index is open before the worker writes, as in `inward serve`.
    sidecar_index = KnowledgeIndex(settings.index.path, settings=settings)
    dispatcher = RqDispatcher(redis_connection, job_timeout=settings.jobs.job_timeout)
    job_id = dispatcher.enqueue_once("knowledge.sync", 900, KNOWLEDGE_SYNC_PATH)

    configure_worker(settings)
    try:
        worked = run_burst_worker(redis_connection)
    finally:
        close_worker_services()

    from rq.job import Job

    job = Job.fetch(job_id, connection=redis_connection)
    try:
        assert worked is True
        assert job.get_status().value == "finished", job.latest_result().exc_string
        assert job.return_value()["indexed"] == 2
        assert set(sidecar_index.ids()) == article_ids
    finally:
        sidecar_index.close()


def cli_environment(tmp_path, **extra) -> dict[str, str]:
    env = {
        "INWARD_STORE__URL": f"sqlite:///{tmp_path / 'state.db'}",
        "INWARD_INDEX__PATH": str(tmp_path / "index"),
        "INWARD_LOGGING__LEVEL": "INFO",
    }
    env.update(extra)
    return env


@pytest.fixture
def cli_runner(monkeypatch):
    """A CliRunner with no INWARD_* variables from the outer environment."""
    import os

    for name in [name for name in os.environ if name.startswith("INWARD_")]:
        monkeypatch.delenv(name)
    return CliRunner()


def test_worker_rejects_thread_backend(cli_runner, tmp_path):
    result = cli_runner.invoke(cli, ["worker", "--burst"], env=cli_environment(tmp_path, INWARD_JOBS__BACKEND="thread"))

    assert result.exit_code == 1
    assert "jobs.backend is 'thread'" in result.output
    assert "INWARD_JOBS__BACKEND=rq" in result.output


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_worker_rejects_unreachable_redis(cli_runner, tmp_path):
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{closed_port()}/0"
    env = cli_environment(tmp_path, INWARD_JOBS__BACKEND="rq", INWARD_JOBS__REDIS_URL=url)

    result = cli_runner.invoke(cli, ["worker", "--burst"], env=env)

    assert result.exit_code == 1
    assert "is not reachable" in result.output
    assert mask_url_password(url) in result.output
    assert "INWARD_JOBS__REDIS_URL" in result.output
    assert REDIS_PASSWORD not in result.output


def test_worker_rejects_unmigrated_store(cli_runner, redis_connection, redis_url, tmp_path):
    env = cli_environment(tmp_path, INWARD_JOBS__BACKEND="rq", INWARD_JOBS__REDIS_URL=redis_url)

    result = cli_runner.invoke(cli, ["worker", "--burst"], env=env)

    assert result.exit_code == 1
    assert "inward store upgrade" in result.output


def test_worker_burst_exits_on_empty_queue(cli_runner, redis_connection, redis_url, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    store.close()
    env = cli_environment(tmp_path, INWARD_JOBS__BACKEND="rq", INWARD_JOBS__REDIS_URL=redis_url)

    result = cli_runner.invoke(cli, ["worker", "--burst"], env=env)

    assert result.exit_code == 0, result.output


def test_worker_burst_runs_queued_job(cli_runner, redis_connection, redis_url, tmp_path):
    from rq.job import Job

    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    store.close()
    job_id = RqDispatcher(redis_connection, job_timeout=60).enqueue_once("test.noop", 60, NOOP_PATH)
    env = cli_environment(tmp_path, INWARD_JOBS__BACKEND="rq", INWARD_JOBS__REDIS_URL=redis_url)

    result = cli_runner.invoke(cli, ["worker", "--burst"], env=env)

    assert result.exit_code == 0, result.output
    assert Job.fetch(job_id, connection=redis_connection).return_value() == "done"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:secretpw@127.0.0.1:6379/0", "redis://:********@127.0.0.1:6379/0"),
        ("rediss://user:secretpw@cache.example.com:6380/2", "rediss://user:********@cache.example.com:6380/2"),
    ],
)
def test_redis_url_password_masked(url, expected):
    assert mask_url_password(url) == expected
