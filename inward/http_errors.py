"""JSON error responses: ``{"error": {"code", "message", "field"?}}``.

Under ``/api/`` every HTTP error is JSON. An ``InwardError`` raised by any
view becomes a JSON error with no stack trace. Its ``status`` attribute
sets the HTTP status when it has one. Otherwise an error naming a ``field``
is a 400, and platform errors map to the statuses in ``PLATFORM_STATUS``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from config.errors import ConfigError, InwardError
from inward.auth import AuthError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

# Class name -> HTTP status for errors from integration/; anything else from the
# platform is a 502 because the sidecar's own request to it failed.
PLATFORM_STATUS = {
    "RecordNotFound": 404,
    "InvalidQueryValue": 400,
    "PlatformUnavailable": 503,
    "RateLimited": 503,
}


def error_response(status: int, code: str, message: str, *, field: str | None = None) -> Response:
    """Build the JSON error response used by every endpoint."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    response = jsonify(error=body)
    response.status_code = status
    return response


def _code_for(error: Exception) -> str:
    code = getattr(error, "code", None)
    if isinstance(code, str) and code:
        return code
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def _status_for(error: InwardError) -> int:
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return status
    for cls in type(error).__mro__:
        if cls.__name__ in PLATFORM_STATUS:
            return PLATFORM_STATUS[cls.__name__]
    if "field" in error.context:
        return 400
    if isinstance(error, ConfigError):
        return 500
    module = type(error).__module__
    return 502 if module.startswith("integration") else 500


class RepeatLimiter:
    """Allow at most ``limit`` log lines per key in each ``window`` seconds and count the rest.

    A widget retrying with an expired token, or a scanner, would otherwise
    write one line per request.
    """

    def __init__(self, *, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def allow(self, key: str) -> tuple[bool, int]:
        """Count one event for ``key``; return whether to log it and how many the last window suppressed."""
        now = self._clock()
        with self._lock:
            started, count = self._windows.get(key, (now, 0))
            suppressed = 0
            if now - started >= self._window:
                suppressed = max(0, count - self._limit)
                started, count = now, 0
            count += 1
            self._windows[key] = (started, count)
        return count <= self._limit, suppressed


# Rejections logged per error code and minute; the rest are counted in one summary line.
REJECTION_LOG_LIMIT = 20


def handle_auth_error(error: AuthError) -> Response:
    """Return the 401/403 JSON error; a 401 also carries the RFC 6750 challenge."""
    _log_rejection(error)
    response = error_response(error.status, error.code, error.message)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{error.code}"'
    return response


def _log_rejection(error: AuthError) -> None:
    allowed, suppressed = current_app.extensions["inward_rejection_log"].allow(error.code)
    if suppressed:
        logger.warning("Suppressed %d more rejected requests with code %s in the last minute", suppressed, error.code)
    if not allowed:
        return
    # A replayed token may be a stolen one, so it is logged louder than an expired one.
    level = logging.WARNING if error.code == "token_replayed" else logging.INFO
    logger.log(
        level, "Rejected %s %s: %s (user %s)",
        request.method, request.path, error.code, error.context.get("user_name", "unknown"),
    )


def handle_inward_error(error: InwardError) -> Response:
    """Return an InwardError as JSON, logging server-side failures with their context."""
    status = _status_for(error)
    if status >= 500:
        logger.error("%s on %s %s: %s %s", type(error).__name__, request.method, request.path, error, error.context)
    else:
        logger.info("%s on %s %s: %s", type(error).__name__, request.method, request.path, error)
    response = error_response(status, _code_for(error), error.message, field=error.context.get("field"))
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(int(retry_after))
    return response


def handle_http_error(error: HTTPException) -> Response | HTTPException:
    """Return HTTP errors under /api/ as JSON; other paths keep Werkzeug's page."""
    if not request.path.startswith(API_PREFIX):
        return error
    code = re.sub(r"\W+", "_", (error.name or "error").lower()).strip("_")
    response = error_response(error.code or 500, code, error.description or error.name)
    if error.code == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def handle_unexpected_error(error: Exception) -> Response | HTTPException:
    """Log an unhandled exception and return a 500 with no stack trace."""
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    logger.exception("Unhandled error on %s %s", request.method, request.path)
    if request.path.startswith(API_PREFIX):
        return error_response(500, "internal_error", "The sidecar failed to handle the request; see its log.")
    return InternalServerError()


def register_error_handlers(app: Flask) -> None:
    """Register the JSON error handlers on ``app``."""
    app.extensions["inward_rejection_log"] = RepeatLimiter(limit=REJECTION_LOG_LIMIT, window=60.0)
    app.register_error_handler(AuthError, handle_auth_error)
    app.register_error_handler(InwardError, handle_inward_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected_error)
