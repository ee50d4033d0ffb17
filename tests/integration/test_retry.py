"""Tests for the retry policy's waits and the Retry-After parser."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from integration.retry import RetryPolicy, parse_retry_after


def test_backoff_doubles_without_jitter():
    policy = RetryPolicy(attempts=5, backoff=0.5, cap=30.0, jitter=0.0)

    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]


def test_gives_up_after_attempts():
    policy = RetryPolicy(attempts=3, backoff=0.5, jitter=0.0)

    assert policy.delay(2) == 1.0
    assert policy.delay(3) is None


def test_backoff_capped():
    policy = RetryPolicy(attempts=20, backoff=1.0, cap=5.0, jitter=0.0)

    assert policy.delay(10) == 5.0


def test_jitter_adds_share_of_backoff():
    policy = RetryPolicy(attempts=4, backoff=2.0, cap=30.0, jitter=0.25, random=lambda: 1.0)

    assert policy.delay(1) == 2.5


def test_retry_after_replaces_backoff():
    policy = RetryPolicy(attempts=4, backoff=0.5, cap=30.0, jitter=0.25)

    assert policy.delay(1, retry_after=7.0) == 7.0


def test_retry_after_beyond_cap_gives_up():
    policy = RetryPolicy(attempts=4, cap=30.0)

    assert policy.delay(1, retry_after=3600.0) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_parse_retry_after_seconds(header, expected):
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)

    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
