"""Fixtures and helpers shared by the service shell's tests (import them explicitly)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from config import settings_for_tests
from integration.schemas import Agent
from inward.app import create_app
from inward.auth import AgentDirectory, require_admin
from inward.services import Services

JWT_SECRET = "test-jwt-secret-0123456789abcdef-0123"
ISSUER = "https://acme.service-now.com"
AUDIENCE = "inward-tests"

def make_agent(user_name: str, roles: set[str], groups: dict[str, str] | None = None) -> Agent:
    """Build an Agent with the given role names and {group sys_id: group name}."""
    groups = groups or {}
    return Agent(
        sys_id=uuid.uuid4().hex,
        user_name=user_name,
        name=user_name.replace(".", " ").title(),
        email=f"{user_name}@example.com",
        active=True,
        roles=frozenset(roles),
        groups=frozenset(groups),
        group_names=frozenset(groups.values()),
    )


def shell_settings(tmp_path, **overrides: Any):
    """Return test settings with an HS256 secret and the store and index under tmp_path."""
    sections: dict[str, Any] = {
        "auth": {"jwt_secret": JWT_SECRET, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE},
        "store": {"url": f"sqlite:///{tmp_path}/var/inward.db"},
        "index": {"path": str(tmp_path / "index")},
    }
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return settings_for_tests(**sections)


def make_token(claims: dict[str, Any] | None = None, *, key: Any = JWT_SECRET, algorithm: str = "HS256",
               drop: tuple[str, ...] = ()) -> str:
    """Sign a token like the platform's JWT provider; ``claims`` override the defaults."""
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "abel.tuter", "iat": now, "nbf": now, "exp": now + 300,
               "jti": uuid.uuid4().hex}
    payload.update(claims or {})
    for name in drop:
        payload.pop(name, None)
    return jwt.encode(payload, key, algorithm=algorithm)


class FakeDirectory:
    """An agent resolver over a dict that counts its lookups."""

    def __init__(self, agents: dict[str, Agent]) -> None:
        self.agents = agents
        self.lookups: list[str] = []

    def __call__(self, user_name: str) -> Agent:
        from integration.errors import RecordNotFound

        self.lookups.append(user_name)
        if user_name not in self.agents:
            raise RecordNotFound(f"No active sys_user {user_name!r}", table="sys_user")
        return self.agents[user_name]


def build_app(settings, resolver=None):
    """Create the app with an injected agent resolver and an admin-only test route."""
    resolver = resolver or FakeDirectory({})
    services = Services(settings, agents=AgentDirectory(resolver, ttl=60))
    app = create_app(settings, services=services)

    @app.get("/api/test/admin")
    @require_admin
    def admin_only():
        return {"ok": True}

    return app


@pytest.fixture
def directory():
    return FakeDirectory(
        {
            "abel.tuter": make_agent("abel.tuter", {"itil"}, {"a" * 32: "Service Desk"}),
            "beth.anglin": make_agent("beth.anglin", {"admin"}),
            "carol.customer": make_agent("carol.customer", {"snc_external"}),
            "dana.csm": make_agent("dana.csm", {"sn_customerservice_agent", "inward_admin"}),
        }
    )


@pytest.fixture
def settings(tmp_path):
    return shell_settings(tmp_path)


@pytest.fixture
def app(settings, directory):
    return build_app(settings, directory)


@pytest.fixture
def client(app):
    return app.test_client()
