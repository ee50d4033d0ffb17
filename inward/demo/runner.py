"""The ``inward demo`` command: the whole stack on loopback with the demo data.

It starts the embedded Table API instance, seeds it with the Brightwater
Devices data, syncs the knowledge index, serves the sidecar in development
mode and prints the URLs and a development token for a demo agent. Ctrl+C
or SIGTERM stops everything and the command exits with status 0.

Everything the demo writes (instance database, state store, index) lives
under one folder, ``var/demo`` by default, so it never touches the store or
index a real deployment configured.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click

from config.errors import ConfigError, InwardError
from config.secrets import Secret
from config.settings import load_settings

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "var/demo"
DEFAULT_AGENT = "daniel.kim"
DEMO_CASE = ("sn_customerservice_case", "CS0010001")
INTEGRATION_USER = "inward.integration"
# Tokens printed for a demo session stay valid this long, unless
# auth.jwt_max_lifetime is shorter.
TOKEN_LIFETIME = 3600
# What --reset may delete: only a folder that contains nothing but these.
DEMO_ENTRIES = {"instance", "index", "inward.db", "inward.db-journal", "inward.db-wal", "inward.db-shm"}


@dataclass
class DemoStack:
    """The running parts of a demo, stopped in reverse order of starting."""

    instance: Any = None
    services: Any = None
    scheduler: Any = None
    server: Any = None
    server_thread: threading.Thread | None = None
    notes: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the sidecar, the jobs, the services and the instance, whichever were started."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.server_thread is not None:
            self.server_thread.join(timeout=10)
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.services is not None:
            self.services.close()
        if self.instance is not None:
            self.instance.stop()
        logger.info("Inward demo stopped")


@click.command("demo")
@click.option("--port", type=click.IntRange(0, 65535),
              help="TCP port of the sidecar (default: server.port). 0 picks a free port.")
@click.option("--instance-port", type=click.IntRange(0, 65535),
              help="TCP port of the embedded instance (default: instance.port). 0 picks a free port.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA_DIR,
              show_default=True, help="Folder for the instance data, state store and index of the demo.")
@click.option("--reset", is_flag=True, help="Delete the demo folder first and seed a fresh instance.")
@click.option("--agent", default=DEFAULT_AGENT, show_default=True,
              help="user_name of the demo agent the printed token is minted for.")
@click.pass_context
def demo_command(ctx: click.Context, port: int | None, instance_port: int | None, data_dir: str,
                 reset: bool, agent: str) -> None:
    """Run the embedded instance and the sidecar on loopback with the demo data, until Ctrl+C."""
    folder = Path(data_dir)
    if reset:
        reset_data_dir(folder)
    settings = demo_settings(ctx.obj.get("config_path") if ctx.obj else None, folder,
                             port=port, instance_port=instance_port)
    stack = DemoStack()
    stop = install_stop_handlers()
    try:
        start_stack(stack, settings, folder, agent)
        while not stop.wait(0.5):
            pass
        click.echo("Stopping the Inward demo ...")
    except (InwardError, OSError) as error:
        raise click.ClickException(f"The demo failed to start: {error}") from None
    finally:
        stack.stop()


def reset_data_dir(folder: Path) -> None:
    """Delete a previous demo folder, but raise when it contains files the demo did not create."""
    if not folder.exists():
        return
    unknown = sorted(entry.name for entry in folder.iterdir() if entry.name not in DEMO_ENTRIES)
    if unknown:
        raise click.ClickException(
            f"Cannot reset {folder}: it contains {', '.join(unknown[:5])}, which the demo did not "
            "create. Pass --data with a folder used only by the demo."
        )
    shutil.rmtree(folder)
    click.echo(f"Deleted the previous demo data in {folder}")


def demo_settings(config_path: str | None, folder: Path, *, port: int | None,
                  instance_port: int | None):
    """Load the settings with the demo's overrides: development mode, loopback, the demo folder.

    The JWT secret comes from ``auth.jwt_secret`` when set, else a random one
    for this run. The demo always signs with HS256 because it mints tokens.
    """
    overrides: dict[str, Any] = {
        "server": {"dev_mode": True, "host": "127.0.0.1"},
        "instance": {"host": "127.0.0.1", "data_dir": str(folder / "instance")},
        "store": {"url": f"sqlite:///{(folder / 'inward.db').resolve()}"},
        "index": {"path": str(folder / "index")},
        "auth": {"jwt_algorithm": "HS256"},
    }
    if port is not None:
        # server.port must be 1-65535, so a requested free port is picked here.
        overrides["server"]["port"] = port or free_port("127.0.0.1")
    if instance_port is not None:
        overrides["instance"]["port"] = instance_port
    try:
        settings = load_settings(config_path, overrides=overrides)
        if not settings.auth.jwt_secret:
            overrides["auth"]["jwt_secret"] = Secret(secrets.token_urlsafe(32))
            settings = load_settings(config_path, overrides=overrides)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    return settings


def free_port(host: str) -> int:
    """Return a TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def install_stop_handlers() -> threading.Event:
    """Return an event that SIGINT and SIGTERM set, so the main loop can stop cleanly."""
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        logger.info("Received %s, stopping the demo", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop


def start_stack(stack: DemoStack, settings: Any, folder: Path, agent: str) -> None:
    """Start the instance, seed it, sync the index, serve the sidecar and print the URLs."""
    from integration.instance.server import start_instance
    from inward.demo.seed import seed

    configure_logging(settings)
    stack.instance = start_instance(settings, data_dir=folder / "instance",
                                    port=settings.instance.port)
    report = seed(stack.instance.store, integration_password=stack.instance.password)
    stack.notes.append(f"Demo data: {report.summary()}")
    settings = integration_settings(stack.instance)

    from inward.services import Services

    stack.services = Services(settings)
    stack.services.store.upgrade()
    stack.notes.append(sync_index(stack.services))
    app = create_sidecar(stack.services)
    if app is None:
        stack.notes.append("Sidecar: not started, because inward.app.create_app is not available")
        print_summary(stack, settings, agent, sidecar_url=None, app=None)
        return
    # Bind the port before starting the jobs, so a port in use fails fast.
    sidecar_url = serve(stack, app, settings)
    stack.scheduler = start_jobs(stack.services)
    print_summary(stack, settings, agent, sidecar_url=sidecar_url, app=app)


def configure_logging(settings: Any) -> None:
    """Configure logging the way ``inward serve`` does, or plainly when that module is missing."""
    try:
        from inward.logging_setup import configure_logging as configure
    except ImportError:
        logging.basicConfig(level=settings.logging.level)
        return
    configure(settings)


def integration_settings(instance: Any) -> Any:
    """Return settings whose platform section signs in to the instance as the integration account."""
    settings = instance.platform_settings()
    return settings.replace(platform=settings.platform.replace(user=INTEGRATION_USER))


def sync_index(services: Any) -> str:
    """Run a full knowledge sync when the sync module exists, and return a line for the console."""
    try:
        from knowledge.sync import sync_knowledge
    except ImportError as error:
        logger.warning("Knowledge sync skipped: %s", error)
        return "Knowledge index: not built, because knowledge.sync is not available"
    started = time.monotonic()
    try:
        report = sync_knowledge(services, full=True)
    except InwardError as error:
        logger.error("Knowledge sync failed: %s", error)
        return f"Knowledge index: sync failed ({error}); suggestions will be empty"
    elapsed = time.monotonic() - started
    return f"Knowledge index: {report.indexed} articles indexed from {report.read} read in {elapsed:.1f} s"


def create_sidecar(services: Any) -> Any:
    """Build the sidecar app, or return None when the shell is not available."""
    try:
        from inward.app import create_app
    except ImportError as error:
        logger.warning("Sidecar not started: %s", error)
        return None
    return create_app(services.settings, services=services)


def start_jobs(services: Any) -> Any:
    """Start the periodic jobs (knowledge sync) as ``inward serve`` does, when available."""
    try:
        from inward.serve_cli import start_jobs as start
    except ImportError:
        return None
    return start(services)


def serve(stack: DemoStack, app: Any, settings: Any) -> str:
    """Serve ``app`` on a background thread with Werkzeug's threaded server, and return its URL."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietRequestHandler(WSGIRequestHandler):
        """A request handler without Werkzeug's access log line, which would print the token query parameter.

        The sidecar logs each request itself, without the query string.
        """

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return None

    host, port = settings.server.host, settings.server.port
    try:
        server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    except SystemExit:
        # Werkzeug 3.1 prints why the port cannot be used and calls sys.exit(1)
        # instead of raising OSError.
        raise InwardError(f"Cannot listen on {host}:{port}. Pass --port with a free port, "
                          "or 0 to pick one.") from None
    stack.server = server
    stack.server_thread = threading.Thread(target=server.serve_forever, name="inward-demo-sidecar",
                                           daemon=True)
    stack.server_thread.start()
    url = f"http://{host}:{server.server_port}"
    logger.info("Inward demo sidecar serving on %s", url)
    return url


def describe_instance_password(settings: Any) -> str:
    """Name the instance password's source; print it only when it is the documented default."""
    from config.settings import InstanceSchema

    default = InstanceSchema().load({}).password
    if settings.instance.password == default:
        return f"the development default password '{default.reveal()}'"
    return "the password from the instance.password setting"


def print_summary(stack: DemoStack, settings: Any, agent: str, *, sidecar_url: str | None,
                  app: Any) -> None:
    """Print what runs where, the widget URL of one demo case and a development token."""
    instance = stack.instance
    lines = ["", "Inward demo is running in development mode. Press Ctrl+C to stop.", ""]
    lines.append(f"  Instance:   {instance.url}  (Table API under /api/now/table; sign in as "
                 f"{instance.user} with {describe_instance_password(settings)})")
    if sidecar_url:
        lines.append(f"  Sidecar:    {sidecar_url}")
        lines.append(f"  Health:     {sidecar_url}/healthz")
        token, lifetime = mint_demo_token(settings, agent)
        if token:
            lines.extend(widget_lines(app, sidecar_url, token, agent))
            lines.append(f"  Development token for {agent} (valid {lifetime // 60} minutes):")
            lines.append(f"    {token}")
        else:
            lines.append("  Development token: not available, because inward.auth.mint_token is missing")
    lines.append("")
    lines.extend(f"  {note}" for note in stack.notes)
    lines.append("")
    click.echo("\n".join(lines))


def mint_demo_token(settings: Any, agent: str) -> tuple[str | None, int]:
    """Mint a development token for the demo agent, and return it with its lifetime in seconds."""
    try:
        from inward.auth import mint_token
    except ImportError:
        return None, 0
    lifetime = min(TOKEN_LIFETIME, settings.auth.jwt_max_lifetime)
    return mint_token(settings, agent, lifetime=lifetime), lifetime


def widget_lines(app: Any, sidecar_url: str, token: str, agent: str) -> list[str]:
    """Return the console lines for the workspace preview and one case's widget, if served."""
    from inward.demo.dataset import demo_sys_id

    paths = {rule.rule for rule in app.url_map.iter_rules()}
    lines = []
    if "/dev/workspace" in paths:
        lines.append(f"  Workspace:  {sidecar_url}/dev/workspace?{urlencode({'user': agent})}")
    if "/widgets/suggestions" in paths:
        table, number = DEMO_CASE
        query = urlencode({"table": table, "sys_id": demo_sys_id(table, number), "token": token})
        lines.append(f"  Widget for case {number}:")
        lines.append(f"    {sidecar_url}/widgets/suggestions?{query}")
    return lines
