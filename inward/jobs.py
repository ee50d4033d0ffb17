"""The in-process job scheduler: named periodic jobs on a daemon thread.

One scheduler thread wakes every ``tick`` seconds, finds the jobs whose
next run is due and starts each on its own daemon worker thread, so a slow
job does not delay the others. A job never runs twice at once: a run that
comes due while the previous one is still going is skipped and counted.
Exceptions raised by a job are logged with the job name and counted; they
never stop the scheduler thread.

A job added with ``enqueues=True`` only hands the work to another process
(the rq backend). Its function returns the queue's job id, or None when it
did not enqueue. Such a job counts enqueues and skips instead of runs, and
its function logs what it did, so the scheduler logs no "finished" line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class JobError(Exception):
    """A job name or interval is invalid, or a job with that name is missing."""


@dataclass
class Job:
    """One named periodic job and its run statistics."""

    name: str
    interval: float
    func: Callable[[], Any]
    next_run: float
    enqueues: bool = False
    runs: int = 0
    enqueued: int = 0
    failures: int = 0
    skipped: int = 0
    last_error: str | None = None
    last_duration: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stats(self) -> dict[str, Any]:
        """Return the run counters as plain data for the admin pages and the CLI."""
        return {
            "interval": self.interval,
            "enqueues": self.enqueues,
            "runs": self.runs,
            "enqueued": self.enqueued,
            "failures": self.failures,
            "skipped": self.skipped,
            "running": self.lock.locked(),
            "last_error": self.last_error,
            "last_duration": self.last_duration,
        }


class Scheduler:
    """Run named jobs periodically on daemon threads inside this process.

    ``clock`` returns seconds (``time.monotonic`` by default); tests inject a
    fake clock and call ``run_pending`` themselves instead of ``start``.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, tick: float = 1.0) -> None:
        if tick <= 0:
            raise JobError(f"Scheduler tick must be positive, got {tick!r}.")
        self._clock = clock
        self._tick = tick
        self._jobs: dict[str, Job] = {}
        self._workers: set[threading.Thread] = set()
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add(
        self,
        name: str,
        interval: float,
        func: Callable[[], Any],
        *,
        first_delay: float | None = None,
        enqueues: bool = False,
    ) -> Job:
        """Register ``func`` to run every ``interval`` seconds, first after ``first_delay``.

        ``first_delay`` defaults to the interval; pass 0 to run on the first tick.
        With ``enqueues``, ``func`` enqueues the work elsewhere and returns the
        queue's job id, or None when it did not enqueue.
        """
        if not name:
            raise JobError("Job name is empty; pass a name such as 'knowledge.sync'.")
        if interval <= 0:
            raise JobError(f"Job {name!r} interval must be positive seconds, got {interval!r}.")
        delay = interval if first_delay is None else first_delay
        with self._guard:
            if name in self._jobs:
                raise JobError(f"Job {name!r} is already registered; pick another name.")
            job = Job(name=name, interval=interval, func=func, next_run=self._clock() + delay, enqueues=enqueues)
            self._jobs[name] = job
        logger.info("Job %s registered, every %.0f s", name, interval)
        return job

    def job(self, name: str) -> Job:
        """Return the job registered as ``name``."""
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(sorted(self._jobs)) or "none"
            raise JobError(f"No job named {name!r}; registered jobs: {known}.") from None

    def stats(self) -> dict[str, dict[str, Any]]:
        """Return the counters of every job, keyed by name."""
        return {name: job.stats() for name, job in sorted(self._jobs.items())}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the scheduler thread; a second call while it runs does nothing."""
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="inward-scheduler", daemon=True)
        self._thread.start()
        logger.info("Scheduler started with jobs: %s", ", ".join(sorted(self._jobs)) or "none")

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the scheduler and wait up to ``timeout`` seconds for running jobs.

        Returns False when a job was still running at the deadline; its daemon
        thread then ends with the process.
        """
        self._stopping.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._guard:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        still_running = [worker.name for worker in workers if worker.is_alive()]
        if still_running:
            logger.warning("Scheduler stopped with jobs still running: %s", ", ".join(still_running))
        else:
            logger.info("Scheduler stopped")
        self._thread = None
        return not still_running

    def run_pending(self) -> list[threading.Thread]:
        """Start every due job on a worker thread and return the threads started."""
        now = self._clock()
        started = []
        for job in list(self._jobs.values()):
            if job.next_run > now:
                continue
            # Schedule from now, not from the missed time, so a long pause
            # (a suspended laptop, a slow job) does not cause a burst of runs.
            job.next_run = now + job.interval
            worker = self._start_worker(job)
            if worker is not None:
                started.append(worker)
        return started

    def run_now(self, name: str) -> bool:
        """Run job ``name`` in the calling thread; return False if it is already running."""
        job = self.job(name)
        if not job.lock.acquire(blocking=False):
            logger.info("Job %s is already running; run request skipped", name)
            job.skipped += 1
            return False
        try:
            self._run(job)
        finally:
            job.lock.release()
        return True

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_pending()
            except Exception:  # noqa: BLE001 - the scheduler thread must survive anything
                logger.exception("Scheduler pass failed; retrying in %.1f s", self._tick)
            self._stopping.wait(self._tick)

    def _start_worker(self, job: Job) -> threading.Thread | None:
        if not job.lock.acquire(blocking=False):
            job.skipped += 1
            logger.warning("Job %s is still running; this run is skipped", job.name)
            return None
        worker = threading.Thread(
            target=self._run_locked, args=(job,), name=f"inward-job-{job.name}", daemon=True
        )
        with self._guard:
            self._workers.add(worker)
        worker.start()
        return worker

    def _run_locked(self, job: Job) -> None:
        try:
            self._run(job)
        finally:
            job.lock.release()
            with self._guard:
                self._workers.discard(threading.current_thread())

    def _run(self, job: Job) -> None:
        if job.enqueues:
            self._enqueue(job)
            return
        started = time.monotonic()
        logger.info("Job %s started", job.name)
        try:
            job.func()
        except Exception as error:  # noqa: BLE001 - a failing job must not kill its thread
            job.failures += 1
            job.last_error = f"{type(error).__name__}: {error}"
            logger.exception("Job %s failed (failure %d)", job.name, job.failures)
        else:
            job.last_error = None
            logger.info("Job %s finished in %.2f s", job.name, time.monotonic() - started)
        finally:
            job.runs += 1
            job.last_duration = time.monotonic() - started

    def _enqueue(self, job: Job) -> None:
        """Call an enqueuing job's function and count the outcome; the function logs it."""
        try:
            job_id = job.func()
        except Exception as error:  # noqa: BLE001 - a failing enqueue must not kill its thread
            job.failures += 1
            job.last_error = f"{type(error).__name__}: {error}"
            logger.exception("Enqueuing job %s failed (failure %d)", job.name, job.failures)
            return
        job.last_error = None
        if job_id is None:
            job.skipped += 1
        else:
            job.enqueued += 1
