"""The Flask application factory."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from flask import Blueprint, Flask, current_app, g, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

from config import load_settings
from config.settings import Section
from inward import http_errors, security
from inward.auth import require_agent
from inward.services import Services
from inward.store import get_cursor

logger = logging.getLogger(__name__)

# Widget and API requests carry small JSON bodies; larger ones are refused with 413.
MAX_REQUEST_BYTES = 1024 * 1024

core = Blueprint("inward_core", __name__)


def create_app(settings: Section | None = None, *, services: Services | None = None) -> Flask:
    """Build the sidecar's Flask app; nothing connects until a request needs it."""
    if settings is None:
        settings = services.settings if services is not None else load_settings()
    if services is None:
        services = Services(settings)

    app = Flask("inward")
    hops = settings.server.trusted_proxies
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config["INWARD_SETTINGS"] = settings
    app.extensions["inward"] = services

    security.init_app(app, settings)
    http_errors.register_error_handlers(app)
    _log_requests(app)
    app.register_blueprint(core)
    _register_widgets(app)
    return app


def _register_widgets(app: Flask) -> None:
    import widgets

    init_app = getattr(widgets, "init_app", None)
    if init_app is None:
        logger.warning("widgets.init_app is missing, so no widget or API routes are served")
        return
    init_app(app)


def _log_requests(app: Flask) -> None:
    """Log one INFO line per request: method, path (never the query string), status, duration, agent."""

    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        started = g.get("request_started")
        elapsed_ms = (time.perf_counter() - started) * 1000 if started else 0.0
        agent = g.get("agent")
        user = f" ({agent.user_name})" if agent is not None else ""
        logger.info("%s %s %s %.0f ms%s", request.method, request.path, response.status_code, elapsed_ms, user)
        return response


@core.get("/healthz")
def healthz():
    """Report whether the store is migrated and the index was filled by a sync (no auth)."""
    services: Services = current_app.extensions["inward"]
    store = services.store
    store_ok = store.ping()
    revision = store.current_revision() if store_ok else None
    migrated = store_ok and revision == store.head_revision()
    index_ok = _index_present(services.settings.index.path)
    synced = migrated and _knowledge_synced(store)
    healthy = store_ok and migrated and index_ok and synced
    body = {
        "status": "ok" if healthy else "unavailable",
        "store": {"reachable": store_ok, "migrated": migrated},
        "index": {"present": index_ok, "synced": synced},
    }
    return jsonify(body), 200 if healthy else 503


def _index_present(path: str) -> bool:
    folder = Path(path)
    return folder.is_dir() and any(folder.iterdir())


def _knowledge_synced(store) -> bool:
    """Tell whether a knowledge sync has finished at least once against this store.

    An index folder exists from the first start, before any article is in it,
    so only a finished sync shows that suggestions can be served.
    """
    with store.session() as session:
        cursor = get_cursor(session, name="knowledge")
    return isinstance(cursor, dict) and bool(cursor.get("last_run_on"))


@core.get("/api/v1/auth/whoami")
@require_agent
def whoami():
    """Return the agent the request's token resolves to, for checking the JWT provider set-up."""
    agent = g.agent
    admin_roles = set(current_app.extensions["inward"].settings.auth.admin_roles)
    return jsonify(
        sys_id=agent.sys_id,
        user_name=agent.user_name,
        name=agent.name,
        roles=sorted(agent.roles),
        groups=sorted(agent.groups),
        group_names=sorted(agent.group_names),
        admin=bool(agent.roles & admin_roles),
    )
