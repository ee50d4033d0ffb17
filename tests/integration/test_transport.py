"""Transport against the embedded instance: retries, faults, timeouts and OAuth."""

from __future__ import annotations

import logging
import socket

import pytest

from integration.client import PlatformClient
from integration.errors import (
    AuthenticationFailed,
    PlatformTimeout,
    PlatformUnavailable,
    RateLimited,
)


def platform_settings(instance, **changes):
    """Return the instance's settings with some ``platform`` values changed."""
    settings = instance.platform_settings()
    platform = settings.platform
    for name in ("timeout", "retry"):
        if name in changes:
            changes[name] = getattr(platform, name).replace(**changes[name])
    return settings.replace(platform=platform.replace(**changes))


class Clock:
    """A settable time source for token expiry."""

    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def connect():
    """Return a factory of clients for the instance; every client is closed afterwards."""
    clients = []

    def factory(instance, sleeps, *, sleep=None, clock=None, **changes):
        options = {"sleep": sleep or sleeps.append}
        if clock is not None:
            options["clock"] = clock
        client = PlatformClient.from_settings(platform_settings(instance, **changes), **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def read_incidents(client):
    return client.transport.get_records("incident", "", limit=10)


def test_rate_limit_retried_after_retry_after(instance, sleeps, connect):
    def wait(seconds):
        sleeps.append(seconds)
        # The rate-limit window passes while the client waits.
        instance.set_faults(rate_limit_per_hour=0)

    instance.store.insert("incident", {"short_description": "x"})
    client = connect(instance, sleeps, sleep=wait)
    instance.set_faults(rate_limit_per_hour=1, retry_after=3)
    read_incidents(client)

    rows = read_incidents(client)

    assert len(rows) == 1
    assert sleeps == [3.0]


def test_rate_limit_gives_up_after_policy(instance, sleeps, caplog, connect):
    client = connect(instance, sleeps, retry={"attempts": 3})
    instance.set_faults(rate_limit_per_hour=1, retry_after=2)
    read_incidents(client)

    with caplog.at_level(logging.WARNING, logger="integration.transport"):
        with pytest.raises(RateLimited, match="Rate limit") as caught:
            read_incidents(client)

    assert caught.value.retry_after == 2.0
    assert caught.value.context["status"] == 429
    assert sleeps == [2.0, 2.0]
    assert "Giving up on GET incident after 3 attempts" in caplog.text


def test_retry_after_longer_than_cap_not_waited(instance, sleeps, connect):
    client = connect(instance, sleeps, retry={"cap": 30.0})
    instance.set_faults(rate_limit_per_hour=1, retry_after=600)
    read_incidents(client)

    with pytest.raises(RateLimited) as caught:
        read_incidents(client)

    assert caught.value.retry_after == 600.0
    assert sleeps == []


def test_gateway_failures_retried_then_succeed(instance, sleeps, connect):
    client = connect(instance, sleeps, retry={"attempts": 4, "backoff": 0.5, "jitter": 0.0})
    instance.set_faults(fail_next=[503, 502, 504])

    assert read_incidents(client) == []
    assert sleeps == [0.5, 1.0, 2.0]


def test_hibernating_instance_is_unavailable(instance, sleeps, connect):
    client = connect(instance, sleeps)
    instance.set_faults(hibernating=True)

    with pytest.raises(PlatformUnavailable, match="hibernating") as caught:
        read_incidents(client)

    assert caught.value.retryable is False
    assert sleeps == []


def test_wrong_password_is_authentication_failure(instance, sleeps, connect):
    client = connect(instance, sleeps, password="wrong-password")

    with pytest.raises(AuthenticationFailed, match="platform.user") as caught:
        read_incidents(client)

    assert caught.value.context["status"] == 401
    assert sleeps == []


def test_read_timeout_on_get_retried(instance, sleeps, connect):
    client = connect(instance, sleeps, timeout={"read": 0.3})
    instance.set_faults(latency_ms=1500, latency_requests=1)

    assert read_incidents(client) == []
    assert len(sleeps) == 1


def test_read_timeout_gives_platform_timeout(instance, sleeps, connect):
    client = connect(instance, sleeps, timeout={"read": 0.3}, retry={"attempts": 1})
    instance.set_faults(latency_ms=1500, latency_requests=1)

    with pytest.raises(PlatformTimeout, match="platform.timeout.read") as caught:
        read_incidents(client)

    assert caught.value.retryable is True


def test_connection_refused_is_unavailable(instance, sleeps, connect):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = connect(instance, sleeps, url=f"http://127.0.0.1:{closed_port}", retry={"attempts": 2})

    with pytest.raises(PlatformUnavailable, match="Could not reach the platform"):
        read_incidents(client)

    assert len(sleeps) == 1


def test_oauth_token_obtained(instance, sleeps, connect):
    client = connect(instance, sleeps, auth="oauth")

    read_incidents(client)
    read_incidents(client)

    assert client.transport.auth.grants == ["password"]


def test_oauth_token_refreshed_before_expiry(instance, sleeps, connect):
    clock = Clock()
    client = connect(instance, sleeps, clock=clock, auth="oauth")
    read_incidents(client)
    first_token = client.transport.auth.access_token()

    clock.now += 1800
    read_incidents(client)

    assert client.transport.auth.grants == ["password", "refresh_token"]
    assert client.transport.auth.access_token() != first_token


def test_oauth_token_expired_on_platform_renewed(instance, sleeps, connect):
    client = connect(instance, sleeps, auth="oauth")
    read_incidents(client)
    instance.expire_tokens()

    read_incidents(client)

    assert client.transport.auth.grants == ["password", "refresh_token"]
    assert sleeps == []


def test_oauth_wrong_client_secret(instance, sleeps, connect):
    client = connect(instance, sleeps, auth="oauth", client_secret="not-the-secret")

    with pytest.raises(AuthenticationFailed, match="platform.client_secret"):
        read_incidents(client)


def test_log_lines_carry_no_secrets(instance, sleeps, caplog, connect):
    settings = platform_settings(instance, auth="oauth")
    client = connect(instance, sleeps, auth="oauth")
    instance.store.insert("incident", {"short_description": "x"})

    with caplog.at_level(logging.DEBUG):
        read_incidents(client)
        client.records.patch("incident", read_incidents(client)[0]["sys_id"], {"short_description": "y"})

    lines = [r.getMessage() for r in caplog.records if r.name == "integration.transport"]
    assert lines[0].startswith("POST /oauth_token.do 200")
    assert [line.split(" ")[0] for line in lines[1:]] == ["GET", "GET", "PATCH"]
    for secret in (instance.password, settings.platform.client_secret.reveal(),
                   client.transport.auth.access_token()):
        assert secret not in caplog.text


def test_oauth_on_hibernating_instance(instance, sleeps, connect):
    client = connect(instance, sleeps, auth="oauth")
    instance.set_faults(hibernating=True)

    with pytest.raises(PlatformUnavailable, match="hibernating"):
        read_incidents(client)

    assert client.transport.auth.grants == ["password"]
