"""PlatformClient construction from settings."""

from __future__ import annotations

import pytest

from config.settings import settings_for_tests
from integration.client import PlatformClient, resolve_platform
from integration.errors import InvalidQueryValue


def test_empty_url_uses_embedded_instance(instance):
    settings = settings_for_tests(instance={"port": instance.port})

    with PlatformClient.from_settings(settings) as client:
        rows = list(client.records.list("sys_user", fields=["user_name"]))

    assert client.transport.address.base_url == instance.url
    assert [row["user_name"] for row in rows] == [instance.user]


def test_platform_password_kept_for_embedded_url():
    settings = settings_for_tests(platform={"password": "own-password"}, instance={"port": 8123})

    platform = resolve_platform(settings)

    assert platform.url == "http://127.0.0.1:8123"
    assert platform.user == "inward.integration"
    assert platform.password.reveal() == "own-password"


def test_configured_url_unchanged():
    settings = settings_for_tests(platform={"url": "https://acme.service-now.com"})

    assert resolve_platform(settings) is settings.platform


@pytest.mark.parametrize("page_size", [0, -1, 2.5, True])
def test_bad_page_size_rejected(instance, page_size):
    with PlatformClient.from_settings(instance.platform_settings()) as client:
        with pytest.raises(InvalidQueryValue, match="page size"):
            client.transport.get_records("incident", "", limit=page_size)
