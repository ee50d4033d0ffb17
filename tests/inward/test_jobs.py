"""Tests of the in-process scheduler: schedule, failures, overlap and stop."""

from __future__ import annotations

import logging
import threading

import pytest

from inward.jobs import JobError, Scheduler


class FakeClock:
    """A clock that moves only when the test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()


def test_job_runs_on_schedule_with_fake_clock():
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    calls = []
    scheduler.add("sync", 60, lambda: calls.append(clock()))

    join_all(scheduler.run_pending())
    assert calls == []

    clock.advance(59)
    join_all(scheduler.run_pending())
    assert calls == []

    clock.advance(1)
    join_all(scheduler.run_pending())
    assert calls == [1060.0]

    clock.advance(60)
    join_all(scheduler.run_pending())
    assert calls == [1060.0, 1120.0]
    assert scheduler.job("sync").runs == 2


def test_first_delay_zero_runs_on_first_pass():
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    calls = []
    scheduler.add("reconcile", 3600, lambda: calls.append("ran"), first_delay=0)

    join_all(scheduler.run_pending())

    assert calls == ["ran"]


def test_missed_runs_do_not_burst():
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    calls = []
    scheduler.add("sync", 10, lambda: calls.append(clock()))

    clock.advance(100)
    join_all(scheduler.run_pending())
    join_all(scheduler.run_pending())

    assert len(calls) == 1


def test_exception_is_logged_and_thread_survives(caplog):
    scheduler = Scheduler(tick=0.01)
    good_runs = threading.Event()
    attempts = []

    def failing_job():
        attempts.append(1)
        raise RuntimeError("platform unreachable")

    scheduler.add("broken", 0.02, failing_job, first_delay=0)
    scheduler.add("healthy", 0.02, good_runs.set, first_delay=0.05)

    with caplog.at_level(logging.ERROR, logger="inward.jobs"):
        scheduler.start()
        try:
            assert good_runs.wait(5)
            # Two failures prove the thread went on scheduling after the first.
            for _ in range(500):
                if scheduler.job("broken").failures >= 2:
                    break
                threading.Event().wait(0.01)
        finally:
            assert scheduler.stop(timeout=5)

    broken = scheduler.job("broken")
    assert broken.failures >= 2
    assert broken.last_error == "RuntimeError: platform unreachable"
    assert any("Job broken failed" in record.getMessage() for record in caplog.records)
    assert scheduler.job("healthy").failures == 0


def test_job_never_overlaps_itself():
    clock = FakeClock()
    scheduler = Scheduler(clock=clock)
    release = threading.Event()
    entered = threading.Event()
    scheduler.add("slow", 1, lambda: (entered.set(), release.wait(5)), first_delay=0)

    first = scheduler.run_pending()
    assert entered.wait(5)
    clock.advance(1)
    second = scheduler.run_pending()
    ran_now = scheduler.run_now("slow")
    release.set()
    join_all(first)

    assert len(first) == 1
    assert second == []
    assert ran_now is False
    assert scheduler.job("slow").skipped == 2
    assert scheduler.job("slow").runs == 1


def test_stop_joins_running_job():
    scheduler = Scheduler(tick=0.01)
    entered = threading.Event()
    finished = threading.Event()

    def job():
        entered.set()
        threading.Event().wait(0.2)
        finished.set()

    scheduler.add("slow", 100, job, first_delay=0)
    scheduler.start()
    assert entered.wait(5)

    assert scheduler.stop(timeout=5) is True
    assert finished.is_set()
    assert scheduler.running is False


def test_stop_reports_job_still_running():
    scheduler = Scheduler(tick=0.01)
    entered = threading.Event()
    release = threading.Event()
    scheduler.add("stuck", 100, lambda: (entered.set(), release.wait(5)), first_delay=0)
    scheduler.start()
    assert entered.wait(5)

    try:
        assert scheduler.stop(timeout=0.05) is False
    finally:
        release.set()


def test_run_now_runs_in_caller_and_counts_failure():
    scheduler = Scheduler()
    scheduler.add("manual", 3600, lambda: 1 / 0)

    assert scheduler.run_now("manual") is True

    stats = scheduler.stats()["manual"]
    assert stats["runs"] == 1
    assert stats["failures"] == 1
    assert stats["last_error"].startswith("ZeroDivisionError")


@pytest.mark.parametrize(
    ("name", "interval", "message"),
    [
        ("", 10, "name is empty"),
        ("sync", 0, "interval must be positive"),
        ("sync", -5, "interval must be positive"),
    ],
)
def test_add_rejects_invalid_job(name, interval, message):
    scheduler = Scheduler()

    with pytest.raises(JobError, match=message):
        scheduler.add(name, interval, lambda: None)


def test_add_rejects_duplicate_name():
    scheduler = Scheduler()
    scheduler.add("sync", 10, lambda: None)

    with pytest.raises(JobError, match="already registered"):
        scheduler.add("sync", 10, lambda: None)


def test_unknown_job_lists_registered_names():
    scheduler = Scheduler()
    scheduler.add("sync", 10, lambda: None)

    with pytest.raises(JobError, match="registered jobs: sync"):
        scheduler.job("missing")
