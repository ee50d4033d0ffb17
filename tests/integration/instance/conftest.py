"""Helpers shared by the instance tests: a pysnow client and a requests session on the instance."""

from __future__ import annotations

import pysnow
import pytest
import requests


@pytest.fixture
def snow(instance):
    """Return a real pysnow Client talking to the instance over its socket."""
    host = instance.url.split("://", 1)[1]
    client = pysnow.Client(host=host, use_ssl=False, user=instance.user, password=instance.password)
    yield client
    client.close()


@pytest.fixture
def http(instance):
    """Return a requests Session authenticated as the instance's admin."""
    session = requests.Session()
    session.auth = (instance.user, instance.password)
    session.headers["Accept"] = "application/json"
    yield session
    session.close()


def table_url(instance, table: str, sys_id: str = "") -> str:
    url = f"{instance.url}/api/now/table/{table}"
    return f"{url}/{sys_id}" if sys_id else url
