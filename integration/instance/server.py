"""The embedded Table API instance: a development and test double of a ServiceNow instance.

``create_app`` builds the Flask app over an ``InstanceStore``;
``start_instance`` runs it on a background thread and returns a
``RunningInstance`` handle. The routes live in ``routes.py``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from config.secrets import Secret
from config.settings import Section
from integration.instance import attachments, routes
from integration.instance.auth import TokenRegistry
from integration.instance.faults import FaultController
from integration.instance.storage import InstanceStore, QueryOptions

logger = logging.getLogger(__name__)

DATABASE_FILE = "instance.sqlite3"
# How long stop() waits for requests already being handled.
STOP_GRACE_SECONDS = 5.0
DOUBLE_NOTICE = ("This is Inward's embedded Table API instance, a development and test double; "
                 "it is not a ServiceNow instance.")


@dataclass
class InstanceState:
    """Everything the routes share: settings, store, fault controller, tokens and open requests."""

    settings: Section
    store: InstanceStore
    faults: FaultController
    tokens: TokenRegistry
    in_flight: int = 0
    idle: threading.Condition = field(default_factory=threading.Condition)

    def request_started(self) -> None:
        with self.idle:
            self.in_flight += 1

    def request_finished(self) -> None:
        with self.idle:
            self.in_flight -= 1
            self.idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled; return False if timeout seconds pass first."""
        with self.idle:
            return self.idle.wait_for(lambda: self.in_flight == 0, timeout)


def open_store(settings: Section, data_dir: str | Path) -> InstanceStore:
    """Open (or create) the store in ``data_dir`` and make sure the admin user exists."""
    instance = settings.instance
    options = QueryOptions(
        time_zone=instance.user_time_zone,
        case_insensitive=instance.case_insensitive,
        invalid_query_returns_no_rows=instance.invalid_query_returns_no_rows,
    )
    store = InstanceStore(Path(data_dir) / DATABASE_FILE, options=options)
    ensure_admin(store, instance.user, instance.password.reveal())
    return store


def ensure_admin(store: InstanceStore, user_name: str, password: str) -> dict:
    """Create the admin user with role admin, or reset its password when it exists."""
    with store.transaction():
        user = store.find_user(user_name)
        if user is None:
            user = store.insert("sys_user", {
                "user_name": user_name, "name": "System Administrator", "first_name": "System",
                "last_name": "Administrator", "email": f"{user_name}@example.com",
                "user_password": password,
            })
        else:
            store.update("sys_user", user["sys_id"], {"user_password": password, "active": "true"})
        roles = store.query("sys_user_role", "name=admin")
        role = roles[0] if roles else store.insert("sys_user_role", {"name": "admin"})
        if not store.query("sys_user_has_role", f"user={user['sys_id']}^role={role['sys_id']}"):
            store.insert("sys_user_has_role", {"user": user["sys_id"], "role": role["sys_id"]})
    return user


class MethodOverride:
    """WSGI middleware honouring ``X-HTTP-Method-Override`` on POST, as the platform does."""

    ALLOWED = {"GET", "PUT", "PATCH", "DELETE", "HEAD"}

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        override = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper()
        if environ.get("REQUEST_METHOD") == "POST" and override in self.ALLOWED:
            environ["REQUEST_METHOD"] = override
        return self.wsgi_app(environ, start_response)


def create_app(state: InstanceState) -> Flask:
    """Build the Flask app serving the Table API over ``state``."""
    app = Flask(__name__)
    app.wsgi_app = MethodOverride(app.wsgi_app)
    app.extensions["instance"] = state
    routes.init_app(app)
    attachments.init_app(app)
    return app


class QuietRequestHandler(WSGIRequestHandler):
    """Leaves request logging to the routes' DEBUG line instead of one stderr line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class RunningInstance:
    """A started instance: its URL, admin credentials, store and fault switch."""

    def __init__(self, settings: Section, state: InstanceState, server: BaseWSGIServer,
                 thread: threading.Thread) -> None:
        self.settings = settings
        self._state = state
        self._server = server
        self._thread = thread
        self.url = f"http://{settings.instance.host}:{server.server_port}"
        self.port = server.server_port
        self.user = settings.instance.user
        self.password = settings.instance.password.reveal()
        self.store = state.store

    def platform_settings(self) -> Section:
        """Return full settings whose ``platform`` section points at this instance."""
        instance = self.settings.instance
        platform = self.settings.platform.replace(
            url=self.url, user=self.user, password=Secret(self.password),
            client_id=instance.oauth_client_id, client_secret=instance.oauth_client_secret,
        )
        return self.settings.replace(platform=platform)

    def set_faults(self, **fault_fields: Any) -> Section:
        """Change the injected faults; the names are those of ``instance.faults``."""
        return self._state.faults.update(**fault_fields)

    def expire_tokens(self) -> None:
        """Expire every OAuth access token, so the next bearer request gets 401."""
        self._state.tokens.expire_all()

    def stop(self) -> None:
        """Stop serving, let open requests finish, then close the store."""
        self._state.faults.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        if not self._state.wait_idle(STOP_GRACE_SECONDS):
            logger.warning("Instance on %s stopped with %d requests still open", self.url,
                           self._state.in_flight)
        self.store.close()
        logger.info("Instance on %s stopped", self.url)

    def __enter__(self) -> "RunningInstance":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def build_state(settings: Section, data_dir: str | Path) -> InstanceState:
    """Open the store and build the shared state the routes use."""
    return InstanceState(
        settings=settings,
        store=open_store(settings, data_dir),
        faults=FaultController(settings.instance.faults),
        tokens=TokenRegistry(settings.instance.oauth_token_lifetime),
    )


def start_instance(settings: Section, *, data_dir: str | Path,
                   port: int | None = None) -> RunningInstance:
    """Start the instance on ``settings.instance.host`` and ``port`` (0 or None: a free port)."""
    state = build_state(settings, data_dir)
    server = make_server(settings.instance.host, port or 0, create_app(state), threaded=True,
                         request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="inward-instance", daemon=True)
    thread.start()
    running = RunningInstance(settings, state, server, thread)
    logger.info("Instance serving on %s (data in %s). %s", running.url, data_dir, DOUBLE_NOTICE)
    return running
