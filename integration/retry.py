"""The retry policy for platform calls: attempts, exponential backoff, jitter, cap.

The transport applies one ``RetryPolicy`` to every call. The code that
raises an error decides whether it may be retried (``InwardError.retryable``).
This module decides only how long to wait and when to give up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failed call.

    ``attempts`` counts the first try. The wait before retry ``n`` (1-based)
    is ``backoff * 2 ** (n - 1)`` seconds plus up to ``jitter`` times that,
    at most ``cap`` seconds. A ``Retry-After`` from the platform replaces the
    computed wait. When it is longer than ``cap``, the policy gives up, so a
    request thread never sleeps for an hour-long rate-limit window.
    """

    attempts: int = 4
    backoff: float = 0.5
    cap: float = 30.0
    jitter: float = 0.25
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    @classmethod
    def from_settings(cls, retry_settings) -> RetryPolicy:
        """Build the policy from the ``platform.retry`` settings section."""
        return cls(
            attempts=retry_settings.attempts,
            backoff=retry_settings.backoff,
            cap=retry_settings.cap,
            jitter=retry_settings.jitter,
        )

    def delay(self, retry_number: int, retry_after: float | None = None) -> float | None:
        """Return the seconds to wait before retry ``retry_number``, or None to give up."""
        if retry_number >= self.attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.cap else None
        base = self.backoff * 2 ** (retry_number - 1)
        return min(self.cap, base * (1 + self.jitter * self.random()))


def parse_retry_after(header: str | None, *, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header given in seconds or as an HTTP date; None if absent or bad."""
    if not header:
        return None
    header = header.strip()
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (moment - now).total_seconds())
