"""The app factory: JSON errors under /api/, request limits and /healthz."""

from __future__ import annotations

import pytest

from config.errors import InwardError
from inward.store import Store, set_cursor
from tests.inward.helpers import app, client, directory, settings  # noqa: F401


def add_route(app, path, error):
    def view():
        raise error

    app.add_url_rule(path, path, view)


def test_api_not_found_is_json(client):
    response = client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_page_not_found_is_html(client):
    response = client.get("/widgets/nothing-here")

    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_api_method_not_allowed_is_json(client):
    response = client.delete("/api/v1/auth/whoami")

    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_api_bad_request_is_json(app):
    from werkzeug.exceptions import BadRequest

    add_route(app, "/api/test/bad", BadRequest("The body must be JSON."))

    response = app.test_client().get("/api/test/bad")

    assert response.status_code == 400
    assert response.json["error"] == {"code": "bad_request", "message": "The body must be JSON."}


def test_unexpected_error_hides_trace(app):
    add_route(app, "/api/test/crash", RuntimeError("secret internals at line 42"))

    response = app.test_client().get("/api/test/crash")

    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    assert "internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_inward_error_with_field_is_400(app):
    add_route(app, "/api/test/field", InwardError("limit 0 is out of range; pass 1 to 50.", field="limit"))

    response = app.test_client().get("/api/test/field")

    assert response.status_code == 400
    assert response.json["error"] == {
        "code": "inward_error",
        "message": "limit 0 is out of range; pass 1 to 50.",
        "field": "limit",
    }


def test_record_not_found_is_404(app):
    from integration.errors import RecordNotFound

    add_route(app, "/api/test/missing", RecordNotFound("No incident abc.", table="incident", sys_id="abc"))

    response = app.test_client().get("/api/test/missing")

    assert response.status_code == 404
    assert response.json["error"]["code"] == "record_not_found"


def test_rate_limited_is_503_with_retry_after(app):
    from integration.errors import RateLimited

    add_route(app, "/api/test/busy", RateLimited("The platform rate limit was hit.", retry_after=30))

    response = app.test_client().get("/api/test/busy")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"


def test_other_platform_error_is_502(app):
    from integration.errors import AccessDenied

    add_route(app, "/api/test/acl", AccessDenied("The integration user may not read sys_user."))

    response = app.test_client().get("/api/test/acl")

    assert response.status_code == 502


def test_large_body_rejected(app):
    from flask import request

    @app.post("/api/test/echo")
    def echo():
        return {"size": len(request.get_data())}

    response = app.test_client().post("/api/test/echo", data=b"x" * (2 * 1024 * 1024))

    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_entity_too_large"


def test_healthz_unavailable_before_migration(client):
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json["store"] == {"reachable": True, "migrated": False}
    assert response.json["index"] == {"present": False, "synced": False}


def mark_knowledge_synced(store_url):
    store = Store(store_url)
    store.upgrade()
    with store.session() as session:
        set_cursor(session, name="knowledge", cursor={"sys_id": "", "last_run_on": "2026-12-04"})


def test_healthz_unavailable_before_first_sync(client, settings, tmp_path):
    Store(settings.store.url).upgrade()
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "MAIN.toc").write_text("")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json["index"] == {"present": True, "synced": False}


def test_healthz_ok_when_store_and_index_ready(client, settings, tmp_path):
    mark_knowledge_synced(settings.store.url)
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "MAIN.toc").write_text("")

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json["status"] == "ok"


def test_healthz_needs_no_token(client):
    response = client.get("/healthz")

    assert response.status_code != 401


def test_create_app_builds_no_connections(settings):
    from inward.app import create_app

    app = create_app(settings)

    assert app.extensions["inward"]._built == {}


def client_address_route(app):
    from flask import request

    @app.get("/api/test/client")
    def client_address():
        return {"address": request.remote_addr, "scheme": request.scheme}


def test_forwarded_headers_ignored_by_default(app):
    client_address_route(app)

    response = app.test_client().get(
        "/api/test/client", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    )

    assert response.json == {"address": "127.0.0.1", "scheme": "http"}


def test_forwarded_headers_trusted_behind_proxy(tmp_path, directory):
    from tests.inward.helpers import build_app, shell_settings

    app = build_app(shell_settings(tmp_path, server={"trusted_proxies": 1}), directory)
    client_address_route(app)

    response = app.test_client().get(
        "/api/test/client", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    )

    assert response.json == {"address": "203.0.113.9", "scheme": "https"}


@pytest.mark.parametrize(
    "status, code",
    [(400, "bad_request"), (401, "unauthorized"), (403, "forbidden"), (404, "not_found"),
     (409, "conflict"), (500, "internal_server_error")],
)
def test_api_abort_is_json(app, status, code):
    from flask import abort

    @app.get(f"/api/test/abort/{status}")
    def aborting():
        abort(status)

    response = app.test_client().get(f"/api/test/abort/{status}")

    assert response.status_code == status
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]
