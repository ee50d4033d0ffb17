"""Security headers on every response, whatever the status."""

from __future__ import annotations

import pytest

from inward.security import content_security_policy
from tests.inward.helpers import app, build_app, client, directory, make_token, settings, shell_settings  # noqa: F401

BASE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
    "base-uri 'none'; img-src 'self' data: http://127.0.0.1:8100; frame-ancestors 'self'"
)


def requests_to_check(client):
    token = make_token()
    return {
        "health": client.get("/healthz"),
        "api not found": client.get("/api/v1/missing"),
        "page not found": client.get("/widgets/missing"),
        "unauthorized": client.get("/api/v1/auth/whoami"),
        "method not allowed": client.post("/healthz"),
        "authorized": client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}),
    }


def test_headers_on_every_response(client):
    for name, response in requests_to_check(client).items():
        assert response.headers["Content-Security-Policy"] == BASE_CSP, name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] == "same-origin", name
        assert "X-Frame-Options" not in response.headers, name


def test_frame_ancestors_from_settings(tmp_path, directory):
    origins = ["https://acme.service-now.com", "https://help.acme.com"]
    client = build_app(shell_settings(tmp_path, server={"frame_ancestors": origins}), directory).test_client()

    policy = client.get("/healthz").headers["Content-Security-Policy"]

    assert policy.endswith("frame-ancestors 'self' https://acme.service-now.com https://help.acme.com")


def test_images_allowed_from_platform_origin(tmp_path, directory):
    platform = {"url": "https://acme.service-now.com/", "password": "x"}
    client = build_app(shell_settings(tmp_path, platform=platform), directory).test_client()

    policy = client.get("/healthz").headers["Content-Security-Policy"]

    assert "img-src 'self' data: https://acme.service-now.com;" in policy


def test_policy_allows_no_inline_script(settings):
    policy = content_security_policy(settings)

    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy


def test_view_cannot_add_x_frame_options(app):
    @app.get("/api/test/framed")
    def framed():
        return {"ok": True}, 200, {"X-Frame-Options": "DENY"}

    response = app.test_client().get("/api/test/framed")

    assert "X-Frame-Options" not in response.headers


@pytest.mark.parametrize("origin", ["https://acme.service-now.com/", "acme.service-now.com", "https://a.com; script-src *"])
def test_bad_frame_ancestor_rejected_at_load(tmp_path, origin):
    from config import ConfigError

    with pytest.raises(ConfigError, match="server.frame_ancestors.0") as raised:
        shell_settings(tmp_path, server={"frame_ancestors": [origin]})

    assert "scheme://host[:port]" in str(raised.value)
