"""Exact HTTP fault cases for the transport, played back with ``responses``.

Everything else about the transport is tested against the embedded
instance. These cases need byte-exact responses that the instance does not send.
"""

from __future__ import annotations

import logging

import pytest
import requests
import responses

from config.settings import settings_for_tests
from integration.errors import (
    AccessDenied,
    AuthenticationFailed,
    BadPlatformRequest,
    InvalidTable,
    PlatformError,
    PlatformTimeout,
    PlatformUnavailable,
    RateLimited,
    RecordNotFound,
    UnexpectedResponse,
)
from integration.transport import Transport, parse_platform_url

BASE = "http://127.0.0.1:9"
TABLE_URL = f"{BASE}/api/now/table/incident"
SYS_ID = "0123456789abcdef0123456789abcdef"
PASSWORD = "s3cret-password-value"
ROW = {"sys_id": SYS_ID, "number": "INC0010001"}
HIBERNATING_PAGE = "<html><head><title>Instance Hibernating page</title></head><body></body></html>"


def error_body(message, detail=None):
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def transport(sleeps):
    settings = settings_for_tests(
        platform={"url": BASE, "user": "inward.integration", "password": PASSWORD,
                  "retry": {"attempts": 3, "backoff": 0.5, "jitter": 0.0}}
    )
    created_transport = Transport(settings.platform, sleep=sleeps.append)
    yield created_transport
    created_transport.close()


def get_page(transport):
    return transport.get_records("incident", "active=true", limit=10)


@responses.activate
def test_rate_limit_retried_after_header(transport, sleeps):
    responses.get(TABLE_URL, status=429, json=error_body("Rate limit exceeded"),
                  headers={"Retry-After": "2"})
    responses.get(TABLE_URL, json={"result": [ROW]})

    assert get_page(transport) == [ROW]
    assert sleeps == [2.0]


@responses.activate
def test_rate_limit_gives_up_after_attempts(transport, sleeps):
    responses.get(TABLE_URL, status=429, json=error_body("Rate limit exceeded"),
                  headers={"Retry-After": "1"})

    with pytest.raises(RateLimited) as caught:
        get_page(transport)

    assert caught.value.retry_after == 1.0
    assert caught.value.context["status"] == 429
    assert sleeps == [1.0, 1.0]
    assert len(responses.calls) == 3


@pytest.mark.parametrize("status", [502, 503, 504])
@responses.activate
def test_gateway_errors_retried_with_backoff(transport, sleeps, status):
    responses.get(TABLE_URL, status=status, body="")
    responses.get(TABLE_URL, status=status, body="")
    responses.get(TABLE_URL, json={"result": [ROW]})

    assert get_page(transport) == [ROW]
    assert sleeps == [0.5, 1.0]


@responses.activate
def test_server_error_500_not_retried(transport, sleeps):
    responses.get(TABLE_URL, status=500, json=error_body("Transaction cancelled", "maximum execution time exceeded"))

    with pytest.raises(PlatformUnavailable, match="maximum execution time exceeded") as caught:
        get_page(transport)

    assert caught.value.retryable is False
    assert sleeps == []


@responses.activate
def test_connection_error_retried_on_get(transport, sleeps):
    responses.get(TABLE_URL, body=requests.ConnectionError("refused"))
    responses.get(TABLE_URL, json={"result": []})

    assert get_page(transport) == []
    assert sleeps == [0.5]


@pytest.mark.parametrize(
    ("status", "body", "error_class", "text"),
    [
        (401, error_body("User Not Authenticated", "Required to provide Auth information"),
         AuthenticationFailed, "Required to provide Auth information"),
        (403, error_body("Insufficient rights to query records"), AccessDenied, "Insufficient rights"),
        (404, error_body("No Record found", "Record doesn't exist or ACL restricts the record retrieval"),
         RecordNotFound, "No Record found"),
        (400, error_body("Invalid table incidnt"), InvalidTable, "Invalid table incidnt"),
        (400, error_body("Invalid value given for sysparm_limit"), BadPlatformRequest, "sysparm_limit"),
        (415, "", BadPlatformRequest, "415"),
    ],
)
@responses.activate
def test_http_errors_translated(transport, sleeps, status, body, error_class, text):
    if isinstance(body, dict):
        responses.get(TABLE_URL, status=status, json=body)
    else:
        responses.get(TABLE_URL, status=status, body=body)

    with pytest.raises(error_class, match=text) as caught:
        get_page(transport)

    assert caught.value.context["status"] == status
    assert caught.value.retryable is False
    assert sleeps == []


@responses.activate
def test_hibernating_page_is_platform_unavailable(transport, sleeps):
    responses.get(TABLE_URL, body=HIBERNATING_PAGE, content_type="text/html")

    with pytest.raises(PlatformUnavailable, match="hibernating") as caught:
        get_page(transport)

    assert caught.value.retryable is False
    assert sleeps == []


@responses.activate
def test_login_page_is_unexpected_response(transport):
    responses.get(TABLE_URL, body="<html><body>Log in</body></html>", content_type="text/html")

    with pytest.raises(UnexpectedResponse, match="text/html"):
        get_page(transport)


@responses.activate
def test_patch_read_timeout_without_recovery_not_retried(transport, sleeps):
    responses.patch(f"{TABLE_URL}/{SYS_ID}", body=requests.ReadTimeout("read timed out"))

    with pytest.raises(PlatformTimeout, match="may have been applied") as caught:
        transport.patch_record("incident", SYS_ID, {"work_notes": "text"})

    assert caught.value.retryable is False
    assert len(responses.calls) == 1
    assert sleeps == []


@responses.activate
def test_post_503_without_recovery_not_retried(transport, sleeps):
    responses.post(TABLE_URL, status=503, body="")

    with pytest.raises(PlatformUnavailable) as caught:
        transport.create_record("incident", {"short_description": "x"})

    assert caught.value.retryable is True
    assert len(responses.calls) == 1


@responses.activate
def test_patch_with_recovery_returns_earlier_write(transport, sleeps):
    responses.patch(f"{TABLE_URL}/{SYS_ID}", body=requests.ReadTimeout("read timed out"))
    checks = []

    def recover():
        checks.append(1)
        return {"sys_id": SYS_ID, "recovered": True}

    result = transport.patch_record("incident", SYS_ID, {"work_notes": "text"}, recover=recover)

    assert result == {"sys_id": SYS_ID, "recovered": True}
    assert len(responses.calls) == 1
    assert checks == [1]


@responses.activate
def test_patch_with_recovery_retries_when_nothing_written(transport, sleeps):
    url = f"{TABLE_URL}/{SYS_ID}"
    responses.patch(url, body=requests.ReadTimeout("read timed out"))
    responses.patch(url, json={"result": ROW})

    result = transport.patch_record("incident", SYS_ID, {"work_notes": "text"}, recover=lambda: None)

    assert result == ROW
    assert len(responses.calls) == 2
    assert sleeps == [0.5]


@responses.activate
def test_failed_recovery_check_counts_as_attempt(transport, sleeps):
    url = f"{TABLE_URL}/{SYS_ID}"
    responses.patch(url, body=requests.ReadTimeout("read timed out"))
    responses.patch(url, json={"result": ROW})
    outcomes = [PlatformUnavailable("check failed"), None]

    def recover():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = transport.patch_record("incident", SYS_ID, {"work_notes": "text"}, recover=recover)

    assert result == ROW
    assert outcomes == []
    assert len(responses.calls) == 2
    assert sleeps == [0.5, 1.0]


LIBRARY_FAULTS = [
    pytest.param({"body": requests.exceptions.ChunkedEncodingError("broken")}, id="chunked"),
    pytest.param({"body": requests.exceptions.SSLError("bad certificate")}, id="ssl"),
    pytest.param({"body": requests.exceptions.TooManyRedirects("loop")}, id="redirects"),
    pytest.param({"body": requests.exceptions.ConnectTimeout("connect")}, id="connect-timeout"),
    pytest.param({"body": "{\"result\": [", "content_type": "application/json"}, id="truncated-json"),
    pytest.param({"body": "", "status": 202}, id="empty-202"),
    pytest.param({"json": {"error": {"message": "x"}}}, id="error-in-200"),
    pytest.param({"json": {}}, id="no-result"),
    pytest.param({"json": [1, 2]}, id="json-list"),
    pytest.param({"json": {"result": ["not a record"]}}, id="result-of-strings"),
    pytest.param({"body": "plain text", "content_type": "text/plain"}, id="plain-text"),
    pytest.param({"body": "", "status": 302, "headers": {"Location": "http://127.0.0.1:9/login.do"}},
                 id="redirect-to-missing-login"),
]


@pytest.mark.parametrize("fault", LIBRARY_FAULTS)
@responses.activate
def test_no_library_exception_escapes(transport, fault):
    responses.get(TABLE_URL, **fault)
    responses.get(f"{BASE}/login.do", body=requests.ConnectionError("refused"))
    responses.post(TABLE_URL, **fault)

    with pytest.raises(PlatformError) as read_error:
        get_page(transport)
    with pytest.raises(PlatformError) as write_error:
        transport.create_record("incident", {"short_description": "x"})

    assert read_error.type.__module__ == "integration.errors"
    assert write_error.type.__module__ == "integration.errors"


@responses.activate
def test_one_info_line_per_call_without_secrets(transport, caplog):
    responses.get(TABLE_URL, json={"result": [ROW]})

    with caplog.at_level(logging.INFO, logger="integration.transport"):
        get_page(transport)

    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1
    assert lines[0].startswith("GET /api/now/table/incident 200 ")
    assert lines[0].endswith(" ms")
    assert PASSWORD not in caplog.text
    assert "active=true" not in caplog.text


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("acme.service-now.com", "base address"),
        ("ftp://acme.service-now.com", "base address"),
        ("https://acme.service-now.com/api/now", "remove the path"),
        ("http://acme.service-now.com", "unencrypted"),
    ],
)
def test_bad_platform_url_rejected(url, reason):
    with pytest.raises(PlatformError, match=reason) as caught:
        parse_platform_url(url)

    assert caught.value.context["field"] == "platform.url"


def test_missing_password_rejected():
    settings = settings_for_tests(platform={"url": BASE})

    with pytest.raises(AuthenticationFailed, match="INWARD_PLATFORM__PASSWORD"):
        Transport(settings.platform)


def test_table_name_validated(transport):
    with pytest.raises(PlatformError, match="Invalid table name"):
        transport.get_records("incident/../sys_user", "", limit=1)


class Clock:
    """A settable time source for token expiry."""

    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def token_body(access_token):
    return {"access_token": access_token, "refresh_token": f"refresh-{access_token}",
            "token_type": "Bearer", "scope": "useraccount", "expires_in": 1799}


@responses.activate
def test_rejected_refresh_falls_back_to_password_grant(sleeps):
    clock = Clock()
    settings = settings_for_tests(platform={
        "url": BASE, "auth": "oauth", "user": "inward.integration", "password": PASSWORD,
        "client_id": "inward", "client_secret": "client-secret-value",
    })
    token_url = f"{BASE}/oauth_token.do"
    responses.post(token_url, json=token_body("first"))
    responses.post(token_url, status=401, json={"error": "invalid_grant", "error_description": "expired"})
    responses.post(token_url, json=token_body("second"))
    responses.get(TABLE_URL, json={"result": []})
    transport = Transport(settings.platform, sleep=sleeps.append, clock=clock)

    try:
        get_page(transport)
        clock.now += 1800
        get_page(transport)
    finally:
        transport.close()

    table_calls = [call for call in responses.calls if call.request.url.startswith(TABLE_URL)]
    assert transport.auth.grants == ["password", "refresh_token", "password"]
    assert table_calls[0].request.headers["Authorization"] == "Bearer first"
    assert table_calls[1].request.headers["Authorization"] == "Bearer second"
    assert "grant_type=refresh_token" in responses.calls[2].request.body
