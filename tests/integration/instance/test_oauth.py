"""OAuth password and refresh_token grants on /oauth_token.do, and bearer access."""

from __future__ import annotations

import time

import pysnow
import pytest
import requests

from tests.integration.instance.conftest import table_url

CLIENT_ID = "inward-dev-client"
CLIENT_SECRET = "inward-dev-secret"


def password_grant(instance, **overrides):
    form = {"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "username": instance.user, "password": instance.password, **overrides}
    return requests.post(f"{instance.url}/oauth_token.do", data=form)


def bearer_get(instance, token):
    return requests.get(table_url(instance, "incident"), headers={"Authorization": f"Bearer {token}"})


def test_password_grant_returns_tokens(instance):
    response = password_grant(instance)

    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "useraccount"
    assert 1790 <= body["expires_in"] <= 1800
    assert body["access_token"] and body["refresh_token"]
    assert bearer_get(instance, body["access_token"]).status_code == 200


def test_second_password_grant_returns_the_same_valid_token(instance):
    first = password_grant(instance).json()
    second = password_grant(instance).json()

    assert second["access_token"] == first["access_token"]


@pytest.mark.parametrize("overrides", [
    {"password": "wrong"}, {"client_secret": "wrong"}, {"client_id": "other"},
])
def test_bad_credentials_are_401(instance, overrides):
    assert password_grant(instance, **overrides).status_code == 401


def test_json_body_is_rejected(instance):
    response = requests.post(f"{instance.url}/oauth_token.do", json={
        "grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "username": instance.user, "password": instance.password,
    })

    assert response.status_code == 401


def test_unknown_grant_type_is_400(instance):
    response = password_grant(instance, grant_type="client_credentials")

    assert response.status_code == 400
    assert "grant_type" in response.json()["error_description"]


def test_expired_token_is_401_until_refreshed(instance):
    tokens = password_grant(instance).json()
    instance.expire_tokens()

    expired = bearer_get(instance, tokens["access_token"])
    refreshed = requests.post(f"{instance.url}/oauth_token.do", data={
        "grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": tokens["refresh_token"],
    }).json()

    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "User Not Authenticated"
    assert "refresh_token" not in refreshed
    assert refreshed["access_token"] != tokens["access_token"]
    assert bearer_get(instance, refreshed["access_token"]).status_code == 200


def test_unknown_refresh_token_is_401(instance):
    response = requests.post(f"{instance.url}/oauth_token.do", data={
        "grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": "never-issued",
    })

    assert response.status_code == 401


def test_unknown_bearer_token_is_401(instance):
    assert bearer_get(instance, "never-issued").status_code == 401


@pytest.fixture
def oauth_client(instance, monkeypatch):
    # oauthlib rejects plain http unless OAUTHLIB_INSECURE_TRANSPORT is set; the instance is on loopback.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    host = instance.url.split("://", 1)[1]
    return pysnow.OAuthClient(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, host=host,
                              use_ssl=False)


def test_pysnow_oauth_client_reads_records(instance, oauth_client):
    instance.store.insert("incident", {"short_description": "via oauth"})

    oauth_client.set_token(oauth_client.generate_token(instance.user, instance.password))
    rows = oauth_client.resource(api_path="/table/incident").get(query={}).all()

    assert [row["short_description"] for row in rows] == ["via oauth"]


def test_pysnow_oauth_client_refreshes_an_expired_token(instance, oauth_client):
    updated = []
    oauth_client.token_updater = updated.append
    token = oauth_client.generate_token(instance.user, instance.password)
    instance.expire_tokens()
    oauth_client.set_token({**token, "expires_at": time.time() - 60})

    rows = oauth_client.resource(api_path="/table/incident").get(query={}).all()

    assert rows == []
    assert len(updated) == 1
    assert updated[0]["access_token"] != token["access_token"]


def test_client_credentials_in_basic_auth(instance):
    response = requests.post(f"{instance.url}/oauth_token.do", auth=(CLIENT_ID, CLIENT_SECRET), data={
        "grant_type": "password", "username": instance.user, "password": instance.password,
    })

    assert response.status_code == 200
    assert response.json()["access_token"]


def test_non_ascii_client_secret_is_401(instance):
    assert password_grant(instance, client_secret="s\u00e9cret").status_code == 401


def test_bearer_of_deactivated_user_is_401(instance):
    instance.store.insert("sys_user", {"user_name": "leaver", "user_password": "pw"})
    token = password_grant(instance, username="leaver", password="pw").json()["access_token"]
    leaver = instance.store.find_user("leaver")
    instance.store.update("sys_user", leaver["sys_id"], {"active": "false"})

    assert bearer_get(instance, token).status_code == 401
