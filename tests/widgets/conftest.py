"""Fixtures for the widget API and page tests: a seeded instance, a synced index and the app."""

from __future__ import annotations

import pytest

from tests.widgets.helpers import build_app, seed_platform, token_for, widget_settings


@pytest.fixture
def seeded(instance):
    """Seed agents, knowledge bases, articles and cases on the embedded instance."""
    return seed_platform(instance.store)


@pytest.fixture
def settings(instance, tmp_path, seeded):
    return widget_settings(instance, tmp_path)


@pytest.fixture
def app_and_services(settings):
    app, services = build_app(settings)
    yield app, services
    services.close()


@pytest.fixture
def app(app_and_services):
    return app_and_services[0]


@pytest.fixture
def services(app_and_services):
    return app_and_services[1]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(settings):
    """Return a function that builds the Authorization header for a seeded user."""

    def headers(user_name: str = "alice.agent") -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(settings, user_name)}"}

    return headers
