"""The transport: the one place that talks HTTP to the platform, through pysnow.

It owns the ``requests`` session (basic auth or an OAuth bearer token), the
pysnow ``Client``, the connect and read timeouts, the retry policy and the
translation of every ``requests``, pysnow and JSON parsing exception into
the ``PlatformError`` tree. Layers above it never see a library exception.

pysnow facts this module relies on (pysnow 0.7.17):

* A ``Resource`` keeps the parameters of its last ``get()``, so a fresh
  resource is built for every call.
* HTTP 4xx and 5xx come out of pysnow as ``requests.HTTPError``; the
  platform's ``{"error": {"message", "detail"}}`` body is read from it here.
* pysnow's own ``OAuthClient`` fails once a token expires, so the OAuth
  token is kept by ``OAuthTokenAuth`` below and handed to pysnow as a
  ready session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ijson.common
import pysnow
import pysnow.exceptions
import requests
from requests.auth import AuthBase, HTTPBasicAuth

from config.secrets import Secret
from integration.errors import (
    AccessDenied,
    AuthenticationFailed,
    BadPlatformRequest,
    InvalidQueryValue,
    InvalidTable,
    PlatformError,
    PlatformTimeout,
    PlatformUnavailable,
    RateLimited,
    RecordNotFound,
    UnexpectedResponse,
)
from integration.queries import FIELD_NAME, validate_sys_id
from integration.retry import RetryPolicy, parse_retry_after

logger = logging.getLogger(__name__)

T = TypeVar("T")
TABLE_NAME = FIELD_NAME  # table names follow the same pattern, without the dots
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
TOKEN_PATH = "/oauth_token.do"
RETRYABLE_STATUSES = {429, 502, 503, 504}
# Exceptions the libraries below raise; each is translated into a PlatformError.
LIBRARY_ERRORS = (
    requests.RequestException,
    # The legacy pysnow API and its separate exception classes are not used.
    pysnow.exceptions.PysnowException,
    ijson.common.JSONError,
    ValueError,
    # pysnow calls .get() on the decoded body, which fails on a JSON list.
    AttributeError,
)


@dataclass(frozen=True)
class PlatformAddress:
    """The parts of ``platform.url`` that pysnow needs."""

    base_url: str
    host: str
    use_ssl: bool


def parse_platform_url(url: str) -> PlatformAddress:
    """Split ``platform.url`` into host and scheme, rejecting anything pysnow cannot use."""
    parts = urlsplit(url.strip())
    hostname = parts.hostname or ""
    problem = None
    if parts.scheme not in {"http", "https"} or not hostname:
        problem = "expected the instance's base address, such as https://acme.service-now.com"
    elif parts.path not in {"", "/"} or parts.query or parts.fragment:
        problem = "remove the path and query; the Table API path is added by the client"
    elif parts.scheme == "http" and hostname not in LOOPBACK_HOSTS:
        problem = "plain http would send the credentials unencrypted; use https"
    if problem:
        raise PlatformError(f"Invalid platform.url {url!r}: {problem}.", field="platform.url")
    return PlatformAddress(
        base_url=f"{parts.scheme}://{parts.netloc}", host=parts.netloc, use_ssl=parts.scheme == "https"
    )


def validate_table(table: object) -> str:
    """Check that ``table`` is a table name and return it."""
    if isinstance(table, str) and TABLE_NAME.fullmatch(table) and "." not in table:
        return table
    raise InvalidQueryValue(
        f"Invalid table name {table!r}: use lowercase letters, digits and '_' "
        "(for example incident or kb_knowledge).",
        field="table",
        value=table,
    )


class Transport:
    """Send Table API calls through pysnow with timeouts, retries and error translation."""

    def __init__(
        self,
        platform: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.address = parse_platform_url(platform.url)
        self.timeout = (float(platform.timeout.connect), float(platform.timeout.read))
        self.policy = RetryPolicy.from_settings(platform.retry)
        self.page_size = int(platform.page_size)
        self.case_tables = tuple(platform.case_tables)
        self._sleep = sleep
        self._last_response = threading.local()
        self.auth = build_auth(platform, self.address, timeout=self.timeout, clock=clock,
                               hook=self._remember_response)
        self.session = requests.Session()
        self.session.auth = self.auth
        self.session.hooks["response"].append(self._remember_response)
        self._client = pysnow.Client(
            host=self.address.host, use_ssl=self.address.use_ssl, session=self.session
        )

    def close(self) -> None:
        """Close the HTTP session and its pooled connections."""
        self._client.close()
        self.auth.close()

    def get_records(
        self,
        table: str,
        query: str,
        *,
        limit: int,
        fields: Sequence[str] = (),
        display_value: bool | str = False,
        exclude_reference_link: bool = False,
    ) -> list[dict]:
        """Return one page of raw rows of ``table`` matching the encoded ``query``."""
        table = validate_table(table)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            # Instances since the London release reject sysparm_limit=0 with a 400 error.
            raise InvalidQueryValue(
                f"Invalid page size {limit!r}: pass a whole number of rows of at least 1.",
                field="limit",
                value=repr(limit),
            )

        def fetch(resource: pysnow.Resource) -> list[dict]:
            # The total count costs the platform a second query and is not used.
            resource.parameters.add_custom({"sysparm_no_count": "true"})
            response = resource.get(
                query=query,
                limit=limit,
                offset=0,
                fields=list(fields),
                display_value=display_value,
                exclude_reference_link=exclude_reference_link,
            )
            return _require_rows(response.all(), table)

        return self._run("GET", table, None, fetch, idempotent=True)

    def create_record(
        self, table: str, values: Mapping[str, object], *, recover: Callable[[], T | None] | None = None
    ) -> dict | T:
        """Insert one record and return the raw row the platform echoes.

        POST is retried only when ``recover`` is given: before each retry it
        is called, and a non-None result (the record an earlier attempt
        already created) is returned instead of posting again.
        """
        table = validate_table(table)
        payload = dict(values)

        def post(resource: pysnow.Resource) -> dict:
            return _require_row(resource.create(payload).one(), table)

        return self._run("POST", table, None, post, idempotent=False, recover=recover)

    def patch_record(
        self,
        table: str,
        sys_id: str,
        values: Mapping[str, object],
        *,
        recover: Callable[[], T | None] | None = None,
    ) -> dict | T:
        """Update the given fields of one record and return the raw row; retried like POST."""
        table = validate_table(table)
        sys_id = validate_sys_id(sys_id)
        payload = dict(values)

        def patch(resource: pysnow.Resource) -> dict:
            response = resource.request("PATCH", path_append="/" + sys_id, json=payload)
            return _require_row(response.one(), table)

        return self._run("PATCH", table, sys_id, patch, idempotent=False, recover=recover)

    def _run(
        self,
        method: str,
        table: str,
        sys_id: str | None,
        operation: Callable[[pysnow.Resource], T],
        *,
        idempotent: bool,
        recover: Callable[[], T | None] | None = None,
    ) -> T:
        retry_number = 0
        token_renewed = False
        while True:
            try:
                if retry_number and recover is not None:
                    earlier = recover()
                    if earlier is not None:
                        logger.info("%s %s %s was applied by an earlier attempt; not repeated",
                                    method, table, sys_id or "")
                        return earlier
                return self._attempt(method, table, sys_id, operation)
            except AuthenticationFailed:
                # A revoked or expired bearer token gets one fresh token. The
                # platform rejected the request unread, so repeating a write is safe.
                if token_renewed or not self.auth.renew():
                    raise
                token_renewed = True
                continue
            except PlatformError as error:
                retry_number += 1
                wait = self._wait_before_retry(error, retry_number, method, idempotent, recover)
                if wait is None:
                    raise
                reason = f"{type(error).__name__}: {error}"
            logger.warning(
                "Retrying %s %s (sys_id %s) in %.2f s, retry %d of %d, after %s",
                method, table, sys_id or "-", wait, retry_number, self.policy.attempts - 1, reason,
            )
            self._sleep(wait)

    def _wait_before_retry(
        self,
        error: PlatformError,
        retry_number: int,
        method: str,
        idempotent: bool,
        recover: Callable[[], object] | None,
    ) -> float | None:
        """Return how long to wait before retrying after ``error``, or None to raise it."""
        if not error.retryable:
            return None
        if not idempotent and recover is None:
            _mark_write_outcome(error)
            return None
        wait = self.policy.delay(retry_number, getattr(error, "retry_after", None))
        if wait is None:
            logger.warning("Giving up on %s %s after %d attempts: %s",
                           method, error.context.get("table"), retry_number, error)
        return wait

    def _attempt(
        self, method: str, table: str, sys_id: str | None, operation: Callable[[pysnow.Resource], T]
    ) -> T:
        resource = self._client.resource(api_path=f"/table/{table}", timeout=self.timeout)
        self._last_response.value = None
        started = time.monotonic()
        try:
            return operation(resource)
        except LIBRARY_ERRORS as error:
            elapsed_ms = (time.monotonic() - started) * 1000
            response = getattr(error, "response", None)
            if response is None:
                response = self._last_response.value
            translated = translate_error(
                error, response, method=method, table=table, sys_id=sys_id, timeout=self.timeout
            )
            if response is None:
                logger.info("%s /api/now/table/%s failed after %.0f ms: %s",
                            method, table, elapsed_ms, type(error).__name__)
            raise translated from error

    def _remember_response(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        """Log the call and keep the response so a parse failure can be explained."""
        self._last_response.value = response
        log_response(response)


def log_response(response: requests.Response, *args: object, **kwargs: object) -> None:
    """Write one INFO line per HTTP exchange: method, path, status and milliseconds."""
    request = response.request
    path = urlsplit(request.url or "").path
    elapsed_ms = response.elapsed.total_seconds() * 1000
    logger.info("%s %s %s %.0f ms", request.method, path, response.status_code, elapsed_ms)


def _require_rows(rows: object, table: str) -> list[dict]:
    if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
        return rows
    raise UnexpectedResponse(
        f"The platform returned {type(rows).__name__} for a query on {table} instead of a list "
        "of records; check that platform.url points at the instance.",
        table=table,
    )


def _require_row(row: object, table: str) -> dict:
    if isinstance(row, dict):
        return row
    raise UnexpectedResponse(
        f"The platform returned {type(row).__name__} for a write to {table} instead of a record.",
        table=table,
    )


def _mark_write_outcome(error: PlatformError) -> None:
    """Mark a failed write whose outcome is unknown as not retryable."""
    if isinstance(error, RateLimited) or error.context.get("status"):
        # The platform responded with an HTTP status, so it rejected the write unapplied.
        return
    error.retryable = False
    error.message = (
        f"{error.message} The write may have been applied; check the record before repeating it."
    )
    error.args = (error.message,)


# Error translation.


def translate_error(
    error: BaseException,
    response: requests.Response | None,
    *,
    method: str,
    table: str,
    sys_id: str | None = None,
    timeout: tuple[float, float] = (0.0, 0.0),
) -> PlatformError:
    """Translate a ``requests``, pysnow or JSON error into a ``PlatformError``."""
    context = {"method": method, "table": table, "sys_id": sys_id}
    if isinstance(error, requests.ConnectTimeout):
        return PlatformTimeout(
            f"Connecting to the platform for {method} {table} timed out after {timeout[0]:g} s; "
            "check platform.url and the network, or raise platform.timeout.connect.",
            **context,
        )
    if isinstance(error, requests.ReadTimeout):
        return PlatformTimeout(
            f"The platform did not answer {method} {table} within {timeout[1]:g} s; "
            "try again later or raise platform.timeout.read.",
            **context,
        )
    if isinstance(error, requests.ConnectionError):
        return PlatformUnavailable(
            f"Could not reach the platform for {method} {table} ({type(error).__name__}); "
            "check platform.url and that the instance is running.",
            **context,
        )
    if response is not None and _is_hibernating(response):
        return PlatformUnavailable(
            "The platform instance is hibernating and answered with its wake-up page; "
            "wake the instance from the developer portal, then try again.",
            retryable=False,
            status=response.status_code,
            **context,
        )
    if isinstance(error, requests.HTTPError) and response is not None:
        return translate_status(response, **context)
    if isinstance(error, pysnow.exceptions.NoResults | pysnow.exceptions.MultipleResults):
        return UnexpectedResponse(
            f"The platform answered {method} {table} with {error}; expected exactly one record.",
            **context,
        )
    return _describe_unexpected(error, response, context)


def _describe_unexpected(
    error: BaseException, response: requests.Response | None, context: dict[str, Any]
) -> UnexpectedResponse:
    content_type = response.headers.get("Content-Type", "unknown") if response is not None else ""
    described = f" with content type {content_type}" if content_type else ""
    return UnexpectedResponse(
        f"The platform answered {context['method']} {context['table']}{described}, which is not "
        f"the Table API's JSON ({type(error).__name__}: {error}); check that platform.url "
        "points at the instance itself and not at a proxy or login page.",
        status=response.status_code if response is not None else None,
        **context,
    )


# Statuses that map to one error class. In the templates, {target} is
# "METHOD table" followed by the sys_id when there is one.
STATUS_ERRORS = {
    401: (AuthenticationFailed, "The platform rejected the credentials for {target} (401 {reason}); "
          "check platform.user and the password or OAuth client settings."),
    403: (AccessDenied, "The platform denied {target} (403 {reason}); grant the integration user "
          "access to {table} through an ACL or role."),
    404: (RecordNotFound, "The platform found no record for {target} (404 {reason}); check the "
          "sys_id, or that an ACL does not hide the record from the integration user."),
}


def translate_status(
    response: requests.Response, *, method: str, table: str, sys_id: str | None = None
) -> PlatformError:
    """Translate an HTTP error status and the platform's error body into a ``PlatformError``."""
    status = response.status_code
    reason = platform_error_text(response)
    context = {"method": method, "table": table, "sys_id": sys_id, "status": status}
    target = f"{method} {table}" + (f" {sys_id}" if sys_id else "")
    if status in STATUS_ERRORS:
        error_class, template = STATUS_ERRORS[status]
        return error_class(template.format(target=target, reason=reason, table=table), **context)
    if status == 429:
        return _rate_limited(response, target, reason, context)
    if status == 400 and "invalid table" in reason.lower():
        return InvalidTable(
            f"The platform has no table {table!r} (400 {reason}); check the table name "
            "and that its plugin is active.",
            **context,
        )
    if status >= 500:
        return PlatformUnavailable(
            f"The platform failed {target} with {status} {reason}; try again later.",
            retryable=status in RETRYABLE_STATUSES,
            **context,
        )
    return BadPlatformRequest(
        f"The platform rejected {target} with {status} {reason}; check the fields and values sent.",
        **context,
    )


def _rate_limited(
    response: requests.Response, target: str, reason: str, context: dict[str, Any]
) -> RateLimited:
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    wait = f"{retry_after:g} s" if retry_after is not None else "a while"
    return RateLimited(
        f"The platform rate limit was exceeded for {target} (429 {reason}); retry after {wait} "
        "or raise the rate limit rule for the integration user.",
        retry_after=retry_after,
        **context,
    )


def platform_error_text(response: requests.Response) -> str:
    """Return ``message: detail`` from the platform's error body, or the status reason."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return response.reason or ""
    message = str(error.get("message") or "").strip()
    detail = str(error.get("detail") or "").strip()
    return f"{message}: {detail}" if message and detail else message or detail or response.reason or ""


def _is_hibernating(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "")
    if "html" not in content_type.lower():
        return False
    try:
        return "hibernat" in response.text.lower()
    except (requests.RequestException, ValueError, RuntimeError):
        # The body was already consumed by a streaming reader.
        return False


# Authentication.


class BasicAuth(HTTPBasicAuth):
    """Basic auth that never renews, so a 401 is final."""

    def renew(self) -> bool:
        return False

    def close(self) -> None:
        pass


def build_auth(
    platform: Any,
    address: PlatformAddress,
    *,
    timeout: tuple[float, float],
    clock: Callable[[], float],
    hook: Callable[..., None] | None = None,
) -> BasicAuth | OAuthTokenAuth:
    """Build the ``requests`` auth object for ``platform.auth`` (basic or oauth)."""
    password = _reveal(platform.password)
    if not platform.user or not password:
        raise AuthenticationFailed(
            "platform.user and platform.password must both be set; set "
            "INWARD_PLATFORM__PASSWORD or platform.password_file.",
            field="platform.password",
        )
    if platform.auth == "basic":
        return BasicAuth(platform.user, password)
    client_secret = _reveal(platform.client_secret)
    if not platform.client_id or not client_secret:
        raise AuthenticationFailed(
            "platform.auth is oauth, so platform.client_id and platform.client_secret must be "
            "set; copy them from the instance's OAuth application registry.",
            field="platform.client_id",
        )
    return OAuthTokenAuth(
        token_url=address.base_url + TOKEN_PATH,
        client_id=platform.client_id,
        client_secret=client_secret,
        user=platform.user,
        password=password,
        timeout=timeout,
        refresh_margin=float(getattr(platform, "token_refresh_margin", 60.0)),
        clock=clock,
        hook=hook,
    )


def _reveal(value: Secret | str) -> str:
    return value.reveal() if isinstance(value, Secret) else str(value or "")


@dataclass
class Token:
    access_token: str
    refresh_token: str
    expires_at: float


class OAuthTokenAuth(AuthBase):
    """Bearer-token auth against the platform's ``/oauth_token.do``.

    The first request gets a token with the password grant. A token within
    ``refresh_margin`` seconds of expiry is replaced with the refresh grant,
    and with the password grant when the refresh token is no longer valid.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        user: str,
        password: str,
        timeout: tuple[float, float],
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
        hook: Callable[..., None] | None = None,
    ) -> None:
        self.token_url = token_url
        self._client = (client_id, client_secret)
        self._credentials = (user, password)
        self._timeout = timeout
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._session = requests.Session()
        self._session.hooks["response"].append(hook or log_response)
        self.grants: list[str] = []  # grant types used, oldest first (read by tests and logs)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Bearer " + self.access_token()
        return request

    def __repr__(self) -> str:
        return f"OAuthTokenAuth({self.token_url!r})"

    def access_token(self) -> str:
        """Return a valid access token, getting or refreshing one when needed."""
        with self._lock:
            if self._token is None:
                self._token = self._request_token(self._password_form())
            elif self._token.expires_at - self._refresh_margin <= self._clock():
                self._token = self._refresh(self._token)
            return self._token.access_token

    def renew(self) -> bool:
        """Expire the current token so the next request gets a new one; False if none was held."""
        with self._lock:
            if self._token is None:
                return False
            self._token.expires_at = 0.0
            return True

    def close(self) -> None:
        self._session.close()

    def _refresh(self, token: Token) -> Token:
        if token.refresh_token:
            try:
                return self._request_token(self._refresh_form(token.refresh_token))
            except AuthenticationFailed as error:
                logger.info("OAuth refresh grant rejected (%s); using the password grant", error)
        return self._request_token(self._password_form())

    def _password_form(self) -> dict[str, str]:
        client_id, client_secret = self._client
        user, password = self._credentials
        return {"grant_type": "password", "client_id": client_id, "client_secret": client_secret,
                "username": user, "password": password}

    def _refresh_form(self, refresh_token: str) -> dict[str, str]:
        client_id, client_secret = self._client
        return {"grant_type": "refresh_token", "client_id": client_id,
                "client_secret": client_secret, "refresh_token": refresh_token}

    def _request_token(self, form: dict[str, str]) -> Token:
        """POST a form-encoded grant to the token endpoint and return the token."""
        grant = form["grant_type"]
        try:
            response = self._session.post(self.token_url, data=form, timeout=self._timeout)
        except requests.RequestException as error:
            raise translate_error(error, None, method="POST", table="oauth_token.do",
                                  timeout=self._timeout) from error
        self.grants.append(grant)
        if _is_hibernating(response):
            raise translate_error(requests.HTTPError(response=response), response, method="POST",
                                  table="oauth_token.do")
        if response.status_code != 200:
            raise AuthenticationFailed(
                f"The platform rejected the OAuth {grant} grant ({response.status_code} "
                f"{_oauth_error_text(response)}); check platform.client_id, "
                "platform.client_secret, platform.user and platform.password.",
                status=response.status_code,
            )
        return self._parse_token(response, grant)

    def _parse_token(self, response: requests.Response, grant: str) -> Token:
        try:
            body = response.json()
            access_token = str(body["access_token"])
            expires_in = float(body.get("expires_in") or 1800)
        except (ValueError, KeyError, TypeError):
            raise UnexpectedResponse(
                f"The OAuth {grant} grant returned no access_token; check that "
                "platform.url points at the instance.",
                status=response.status_code,
            ) from None
        return Token(access_token, str(body.get("refresh_token") or ""), self._clock() + expires_in)


def _oauth_error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict):
        return str(body.get("error_description") or body.get("error") or response.reason or "")
    return response.reason or ""
