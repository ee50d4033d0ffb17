"""Fault injection: rate limits, 5xx responses, latency, the hibernating page, short pages.

Every fault is off unless ``instance.faults`` settings or
``RunningInstance.set_faults(...)`` turn it on. Random faults draw from a
generator seeded with ``faults.seed``, so a test gets the same sequence on
every run. ``fail_next`` gives a fully scripted sequence instead.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from config.errors import ConfigError
from config.settings import FaultSchema, Section

logger = logging.getLogger(__name__)

# A fixed sys_id standing for the sys_rate_limit_rules record that matched.
RATE_LIMIT_RULE = "4d1b3c5e7f9a4b6c8d0e2f4a6b8c0d1e"
HOUR = 3600

HIBERNATING_PAGE = """<!DOCTYPE html>
<html><head><title>Instance Hibernating page</title></head>
<body><h1>Your instance is hibernating</h1>
<p>Instance Hibernating page: sign in to the developer portal to wake it up.</p>
</body></html>
"""


@dataclass(frozen=True)
class RateDecision:
    """Rate-limit headers for one request, and whether it is refused."""

    headers: dict[str, str]
    limited: bool = False


def _describe(error: ValidationError, values: dict[str, Any]) -> str:
    """Return "field: message (got value)" for each invalid fault setting."""
    problems = []
    for key, messages in error.normalized_messages().items():
        text = " ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
        problems.append(f"{key}: {text} (got {values.get(key)!r})")
    return "; ".join(problems)


class FaultController:
    """Holds the active fault settings and the counters they need; thread-safe."""

    def __init__(self, faults: Section, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counts: dict[tuple[str, int], int] = {}
        self._window_start = clock()
        self._apply(faults)

    def _apply(self, faults: Section) -> None:
        self.faults = faults
        self._random = random.Random(faults.seed)
        self._fail_next = list(faults.fail_next)
        self._latency_left = faults.latency_requests

    def update(self, **changes: Any) -> Section:
        """Change some fault settings; raise ConfigError naming a bad field and value."""
        values = self.faults.to_dict(masked=False)
        values.update(changes)
        try:
            loaded = FaultSchema().load(values)
        except ValidationError as error:
            raise ConfigError(
                f"Invalid instance fault settings: {_describe(error, values)}. "
                "See docs/instance.md for the fault knobs.",
                errors={key: str(messages) for key, messages in error.normalized_messages().items()},
            ) from None
        with self._lock:
            self._apply(loaded)
            self._counts.clear()
            self._window_start = self._clock()
        logger.info("Instance faults set: %s", changes)
        return loaded

    def release(self) -> None:
        """Let a held write response go at once, because the server is stopping."""
        self._stopping.set()

    @property
    def hibernating(self) -> bool:
        return self.faults.hibernating

    def check_rate(self, user_name: str) -> RateDecision:
        """Count a request of a user against the hourly limit."""
        limit = self.faults.rate_limit_per_hour
        if limit <= 0:
            return RateDecision({})
        # Windows are hours counted from when the faults were set, not clock
        # hours, so a test never straddles a reset by chance.
        now = self._clock()
        window = int((now - self._window_start) // HOUR)
        reset = int(self._window_start) + (window + 1) * HOUR
        with self._lock:
            count = self._counts.get((user_name, window), 0) + 1
            self._counts[(user_name, window)] = count
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Rule": RATE_LIMIT_RULE,
        }
        if count <= limit:
            return RateDecision(headers)
        retry_after = self.faults.retry_after or int(reset - now) + 1
        headers["Retry-After"] = str(retry_after)
        return RateDecision(headers, limited=True)

    def next_failure(self) -> int | None:
        """Return the status this request must fail with, or None."""
        with self._lock:
            if self._fail_next:
                return self._fail_next.pop(0)
            rate = self.faults.error_rate
            if rate > 0 and self._random.random() < rate:
                return self._random.choice(self.faults.error_statuses or [500])
        return None

    def delay(self) -> None:
        """Sleep for the configured latency, counting down ``latency_requests``."""
        latency = self.faults.latency_ms
        if latency <= 0:
            return
        with self._lock:
            if self.faults.latency_requests > 0:
                if self._latency_left <= 0:
                    return
                self._latency_left -= 1
        self._sleep(latency / 1000)

    def take_write_failure(self) -> str:
        """Return "delay" or "drop" once after fail_after_write is set, else ""."""
        with self._lock:
            if not self.faults.fail_after_write:
                return ""
            mode = self.faults.fail_after_write_mode
            self.faults = self.faults.replace(fail_after_write=False)
        return mode

    def hold_response(self) -> None:
        """Wait long enough that a client's read timeout expires first, or until release()."""
        self._stopping.wait(self.faults.fail_after_write_delay_ms / 1000)

    def insert_denied(self, table: str) -> bool:
        return table in self.faults.deny_insert_tables

    def read_denied(self, table: str) -> bool:
        return table in self.faults.deny_read_tables

    def trim_page(self, rows: list) -> list:
        """Drop a share of a page's rows, as ACL filtering after the limit does."""
        rate = self.faults.short_page_rate
        if rate <= 0:
            return rows
        with self._lock:
            return [row for row in rows if self._random.random() >= rate]
