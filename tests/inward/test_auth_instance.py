"""Agent authentication against the embedded instance: real sys_user, roles and groups."""

from __future__ import annotations

import pytest

from config import Secret
from inward.app import create_app
from tests.inward.helpers import AUDIENCE, ISSUER, JWT_SECRET, make_token


def seed_user(store, user_name: str, *, roles: list[str], groups: list[str], active: bool = True) -> dict:
    """Insert a sys_user with role and group memberships; return the user record."""
    user = store.insert("sys_user", {
        "user_name": user_name, "name": user_name.replace(".", " ").title(),
        "email": f"{user_name}@example.com", "active": "true" if active else "false",
    })
    for role_name in roles:
        found = store.query("sys_user_role", f"name={role_name}")
        role = found[0] if found else store.insert("sys_user_role", {"name": role_name})
        store.insert("sys_user_has_role", {"user": user["sys_id"], "role": role["sys_id"]})
    for group_name in groups:
        group = store.insert("sys_user_group", {"name": group_name})
        store.insert("sys_user_grmember", {"user": user["sys_id"], "group": group["sys_id"]})
    return user


@pytest.fixture
def client(instance, tmp_path):
    settings = instance.platform_settings()
    settings = settings.replace(
        auth=settings.auth.replace(jwt_secret=Secret(JWT_SECRET), jwt_issuer=ISSUER, jwt_audience=AUDIENCE),
        store=settings.store.replace(url=f"sqlite:///{tmp_path}/inward.db"),
    )
    app = create_app(settings)
    yield app.test_client()
    app.extensions["inward"].close()


def whoami(client, user_name: str):
    return client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {make_token({'sub': user_name})}"})


def test_agent_resolved_with_roles_and_groups(client, instance):
    user = seed_user(instance.store, "abel.tuter", roles=["itil", "knowledge"], groups=["Service Desk", "Network"])

    response = whoami(client, "abel.tuter")

    assert response.status_code == 200, response.json
    assert response.json["sys_id"] == user["sys_id"]
    assert response.json["roles"] == ["itil", "knowledge"]
    assert response.json["group_names"] == ["Network", "Service Desk"]
    assert len(response.json["groups"]) == 2
    assert response.json["admin"] is False


def test_unknown_user_gets_401(client):
    response = whoami(client, "nobody.here")

    assert response.status_code == 401
    assert response.json["error"]["code"] == "unknown_user"


def test_inactive_user_gets_401(client, instance):
    seed_user(instance.store, "gone.user", roles=["itil"], groups=[], active=False)

    response = whoami(client, "gone.user")

    assert response.status_code == 401
    assert response.json["error"]["code"] == "unknown_user"


def test_user_name_with_query_operator_gets_401(client, instance):
    seed_user(instance.store, "abel.tuter", roles=["itil"], groups=[])

    response = whoami(client, "nobody^ORuser_name=abel.tuter")

    assert response.status_code == 401
    assert response.json["error"]["code"] == "unknown_user"


def test_user_without_agent_role_gets_403(client, instance):
    seed_user(instance.store, "carol.customer", roles=["snc_external"], groups=[])

    response = whoami(client, "carol.customer")

    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"


def test_seeded_admin_is_admin(client):
    response = whoami(client, "admin")

    assert response.status_code == 200
    assert response.json["admin"] is True
