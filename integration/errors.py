"""Errors raised by the platform client.

::

    InwardError                         config/errors.py
    └── PlatformError                   any failed exchange with the platform
        ├── PlatformUnavailable         connection refused, 5xx, hibernating page (retryable)
        │   ├── PlatformTimeout         connect or read timed out; a write's outcome is unknown
        │   └── RateLimited             429; carries retry_after seconds (retryable)
        ├── AuthenticationFailed        401, or an OAuth token that cannot be obtained
        ├── AccessDenied                403 from an ACL
        ├── RecordNotFound              404, or a lookup that matched nothing
        ├── InvalidTable                400 "Invalid table"
        ├── BadPlatformRequest          any other 4xx
        ├── UnexpectedResponse          a 2xx answer that is not the Table API's JSON
        └── InvalidQueryValue           a value that would change an encoded query

``integration.transport`` translates every ``requests`` and pysnow exception
into this tree, so no library exception escapes the client.
"""

from __future__ import annotations

from config.errors import InwardError


class PlatformError(InwardError):
    """A call to the platform failed; context contains method, table, sys_id and status."""


class PlatformUnavailable(PlatformError):
    retryable = True


class PlatformTimeout(PlatformUnavailable):
    """The platform did not respond within the configured timeout.

    For a GET this is retryable. For a POST or PATCH the write may have been
    applied, so the transport marks it not retryable unless the caller gave a
    way to check for the earlier write first.
    """


class RateLimited(PlatformUnavailable):
    def __init__(self, message: str, *, retry_after: float | None = None, **context: object) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class AuthenticationFailed(PlatformError):
    pass


class AccessDenied(PlatformError):
    pass


class RecordNotFound(PlatformError):
    pass


class InvalidTable(PlatformError):
    pass


class BadPlatformRequest(PlatformError):
    pass


class UnexpectedResponse(PlatformError):
    pass


class InvalidQueryValue(PlatformError):
    """A field name or value was rejected before any request was sent."""
