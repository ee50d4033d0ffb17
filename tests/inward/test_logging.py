"""Logging: secrets from the settings and tokens never reach the output."""

from __future__ import annotations

import io
import json
import logging

import pytest

from inward.logging_setup import SecretMaskingFilter, configure_logging, mask_text
from tests.inward.helpers import JWT_SECRET, build_app, directory, make_token, shell_settings  # noqa: F401

PLATFORM_PASSWORD = "pl4tform-Passw0rd!"


@pytest.fixture
def capture(tmp_path):
    """Configure logging into a buffer and restore the root logger afterwards."""
    root = logging.getLogger()
    level = root.level

    def configure(log_format: str = "text"):
        settings = shell_settings(
            tmp_path, platform={"password": PLATFORM_PASSWORD}, logging={"format": log_format}
        )
        stream = io.StringIO()
        handler = configure_logging(settings, stream=stream)
        handlers.append(handler)
        return settings, stream

    handlers: list[logging.Handler] = []
    yield configure
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secret_values_masked(capture, log_format):
    _, stream = capture(log_format)
    log = logging.getLogger("tests.platform")

    log.info("Connecting with password %s", PLATFORM_PASSWORD)
    log.warning("JWT key is %s", JWT_SECRET)

    output = stream.getvalue()
    assert output
    assert PLATFORM_PASSWORD not in output
    assert JWT_SECRET not in output
    assert "********" in output


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_tokens_masked(capture, log_format):
    _, stream = capture(log_format)
    token = make_token()
    log = logging.getLogger("tests.requests")

    log.info("GET /widgets/suggestions?case=INC0010001&token=%s", token)
    log.info("Authorization: Bearer %s", token)
    log.info("header value bearer opaque-access-token-123")

    output = stream.getvalue()
    assert token not in output
    assert token.split(".")[1] not in output
    assert "opaque-access-token-123" not in output
    assert "case=INC0010001" in output


def test_exception_text_masked(capture):
    _, stream = capture("text")
    log = logging.getLogger("tests.errors")

    try:
        raise ValueError(f"login failed for password {PLATFORM_PASSWORD}")
    except ValueError:
        log.exception("Platform call failed")

    output = stream.getvalue()
    assert "Traceback" in output
    assert PLATFORM_PASSWORD not in output


def test_json_lines_parse(capture):
    _, stream = capture("json")

    logging.getLogger("tests.json").info("Synced %d articles", 12)

    entry = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert entry["message"] == "Synced 12 articles"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "tests.json"


def test_configure_twice_writes_once(capture):
    capture("text")
    _, stream = capture("text")

    logging.getLogger("tests.once").info("only once")

    assert stream.getvalue().count("only once") == 1


def test_request_with_query_token_not_logged(capture, tmp_path, directory):
    settings, stream = capture("text")
    client = build_app(settings, directory).test_client()
    token = make_token({"aud": "wrong-audience"})

    client.get("/api/v1/auth/whoami", query_string={"token": token})
    client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})

    output = stream.getvalue()
    assert "wrong_audience" in output
    assert token not in output
    assert token.split(".")[1] not in output


def test_short_secret_does_not_mask_words():
    record = logging.LogRecord("tests", logging.INFO, __file__, 1, "GET /healthz 200 3 ms as %s", ("long-secret",), None)

    SecretMaskingFilter(["ms", "long-secret"]).filter(record)

    assert record.getMessage() == "GET /healthz 200 3 ms as ********"


def test_mask_text_masks_token_parameter():
    assert mask_text("GET /w?case=1&token=opaque123") == "GET /w?case=1&token=********"


def test_request_line_names_agent(capture, directory):
    settings, stream = capture("text")
    client = build_app(settings, directory).test_client()

    client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {make_token()}"})

    assert "GET /api/v1/auth/whoami 200" in stream.getvalue()
    assert "(abel.tuter)" in stream.getvalue()


def test_repeat_limiter_counts_suppressed_lines():
    from inward.http_errors import RepeatLimiter

    clock = [0.0]
    limiter = RepeatLimiter(limit=2, window=60, clock=lambda: clock[0])

    first_window = [limiter.allow("token_expired") for _ in range(5)]
    other_code = limiter.allow("bad_signature")
    clock[0] = 61.0
    next_window = limiter.allow("token_expired")

    assert first_window == [(True, 0), (True, 0), (False, 0), (False, 0), (False, 0)]
    assert other_code == (True, 0)
    assert next_window == (True, 3)


def test_rejection_flood_logged_once_per_limit(capture, directory):
    from inward.http_errors import REJECTION_LOG_LIMIT

    settings, stream = capture("text")
    client = build_app(settings, directory).test_client()

    for _ in range(REJECTION_LOG_LIMIT + 5):
        client.get("/api/v1/auth/whoami")

    assert stream.getvalue().count("Rejected GET /api/v1/auth/whoami: missing_token") == REJECTION_LOG_LIMIT


@pytest.mark.parametrize("url_form", ["redis://:{}@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0?password={}"])
def test_redis_url_password_masked(tmp_path, url_form):
    password = "r3dis-Passw0rd-xyz"
    settings = shell_settings(tmp_path, jobs={"redis_url": url_form.format(password)})
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(settings, stream=stream)
    try:
        logging.getLogger("tests.jobs").warning("Connecting to redis://:%s@127.0.0.1:6379/0", password)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)

    output = stream.getvalue()
    assert "Connecting to" in output
    assert password not in output
