"""The rq jobs backend: periodic jobs enqueued on Redis and run by ``inward worker``.

With ``jobs.backend: rq`` the scheduler thread in each ``inward serve``
process does not run a due job itself. It enqueues the job's function, by
its import path, on the RQ queue ``inward``, and ``inward worker``
processes run it. Several sidecar replicas share one Redis, so each
enqueue is guarded by a Redis key per job, set with ``SET NX`` and an
expiry of the job's interval: only the process that sets the key enqueues
the job in that interval. A job whose previous run is still queued or
running is not enqueued again, so two workers never run it at once.

Job functions run in the worker process. They take no arguments and build
their ``Services`` once per worker process from the settings that
``inward worker`` loaded (``configure_worker``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any


logger = logging.getLogger(__name__)

QUEUE_NAME = "inward"
# Redis key prefix of the per-job enqueue guard and of the id of its last rq job.
GUARD_PREFIX = "inward:jobs:guard:"
LAST_JOB_PREFIX = "inward:jobs:last:"
# Seconds to wait for a Redis connection and for each reply. rq's worker
# raises the reply timeout of its own connection above its blocking dequeue time.
REDIS_CONNECT_TIMEOUT = 5.0
REDIS_SOCKET_TIMEOUT = 10.0
# Seconds rq keeps a finished job's result and a failed job's traceback.
RESULT_TTL = 24 * 3600
FAILURE_TTL = 7 * 24 * 3600
# rq job states in which a run is still pending or in progress.
ACTIVE_STATES = frozenset({"queued", "started", "deferred", "scheduled"})

KNOWLEDGE_SYNC_PATH = "inward.rq_jobs.run_knowledge_sync"
RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def connect(url: str) -> Any:
    """Return a Redis client for ``url`` with connect and reply timeouts; nothing connects yet."""
    import redis

    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
    )


class RqDispatcher:
    """A job enqueuer for the rq queue, with a Redis guard key that admits one enqueue per job and interval."""

    def __init__(self, connection: Any, *, job_timeout: int, queue_name: str = QUEUE_NAME) -> None:
        from rq import Queue

        self.connection = connection
        self.job_timeout = job_timeout
        self.queue = Queue(queue_name, connection=connection)
        # The guard token of this process's last enqueue of each job, to tell its own guard from another's.
        self._guard_tokens: dict[str, str] = {}

    def enqueue_once(self, name: str, interval: float, func_path: str) -> str | None:
        """Enqueue ``func_path`` as job ``name`` unless it was enqueued within ``interval`` seconds.

        Returns the rq job id, or None when a process holds the guard for
        this interval or the previous run is still queued or running. Logs
        the outcome either way.
        """
        guard_key = GUARD_PREFIX + name
        token = uuid.uuid4().hex
        # SET NX EX is atomic, so of several processes one sets the key per interval.
        if not self.connection.set(guard_key, token, nx=True, ex=max(1, int(interval))):
            logger.info("%s not enqueued because %s", name, self._guard_holder(name, guard_key, interval))
            return None
        try:
            previous = self._active_job(name)
            if previous is not None:
                job_id, state = previous
                logger.warning(
                    "%s not enqueued because its previous rq job %s is still %s. Check that `inward worker` runs",
                    name, job_id, state,
                )
                return None
            job = self.queue.enqueue(
                func_path,
                job_timeout=self.job_timeout,
                result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL,
                description=name,
            )
            self.connection.set(LAST_JOB_PREFIX + name, job.id, ex=self.job_timeout + max(1, int(interval)))
        except Exception:
            # Release the guard so the next scheduler pass, here or elsewhere, retries.
            self._release(guard_key, token)
            raise
        self._guard_tokens[name] = token
        logger.info("Enqueued %s on queue %s (job id %s)", name, self.queue.name, job.id)
        return job.id

    def _guard_holder(self, name: str, guard_key: str, interval: float) -> str:
        """Return why the guard is held: by an enqueue of this process or of another one."""
        import redis

        try:
            raw_token = self.connection.get(guard_key)
        except redis.RedisError:
            raw_token = None
        token = raw_token.decode() if isinstance(raw_token, bytes) else raw_token
        if token is None:
            # The guard expired, or Redis failed, between the SET and this GET.
            holder = "a sidecar"
        elif token == self._guard_tokens.get(name):
            holder = "this sidecar"
        else:
            holder = "another sidecar"
        return f"{holder} enqueued it within the last {interval:.0f} s"

    def job(self, name: str, interval: float, func_path: str):
        """Return a no-argument function for ``Scheduler.add`` that enqueues the job."""

        def enqueue() -> str | None:
            return self.enqueue_once(name, interval, func_path)

        return enqueue

    def _active_job(self, name: str) -> tuple[str, str] | None:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        raw_id = self.connection.get(LAST_JOB_PREFIX + name)
        if raw_id is None:
            return None
        job_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        try:
            job = Job.fetch(job_id, connection=self.connection)
        except NoSuchJobError:
            return None
        state = job.get_status(refresh=False)
        state_name = getattr(state, "value", state)
        if state_name in ACTIVE_STATES:
            return job_id, state_name
        return None

    def _release(self, key: str, token: str) -> None:
        import redis

        # Compare and delete in one script, because after expiry another process may own the key.
        try:
            self.connection.eval(RELEASE_SCRIPT, 1, key, token)
        except redis.RedisError as error:
            logger.warning(
                "Guard %s not released (%s: %s). It expires after the job's interval", key, type(error).__name__, error
            )


# -- worker side ---------------------------------------------------------------

_worker_lock = threading.Lock()
_worker_settings: Any = None
_worker_services: Any = None


def configure_worker(settings: Any) -> None:
    """Set the settings that job functions in this process use, closing services built from earlier ones."""
    global _worker_settings
    close_worker_services()
    with _worker_lock:
        _worker_settings = settings


def worker_services() -> Any:
    """Return this process's ``Services``, built once, from ``configure_worker`` or ``load_settings()``."""
    global _worker_services, _worker_settings
    with _worker_lock:
        if _worker_services is None:
            from config import load_settings
            from inward.services import Services

            if _worker_settings is None:
                _worker_settings = load_settings()
            _worker_services = Services(_worker_settings)
        return _worker_services


def close_worker_services() -> None:
    """Close the services built by ``worker_services``, if any."""
    global _worker_services
    with _worker_lock:
        services, _worker_services = _worker_services, None
    if services is not None:
        services.close()


def run_knowledge_sync() -> dict[str, Any]:
    """Run one knowledge sync in the worker process and return its report as plain data."""
    from knowledge.sync import sync_knowledge

    report = sync_knowledge(worker_services())
    return report.to_dict()


def schedule_rq_jobs(scheduler: Any, settings: Any, dispatcher: RqDispatcher) -> None:
    """Register the periodic jobs on ``scheduler`` so each due run is enqueued through ``dispatcher``.

    The intervals and first runs match ``knowledge.sync.schedule_knowledge_sync``
    of the thread backend.
    """
    seconds = settings.knowledge.sync_interval_minutes * 60
    scheduler.add(
        "knowledge.sync",
        seconds,
        dispatcher.job("knowledge.sync", seconds, KNOWLEDGE_SYNC_PATH),
        first_delay=0,
        enqueues=True,
    )
