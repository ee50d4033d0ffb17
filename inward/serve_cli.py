"""The ``inward serve``, ``inward token`` and ``inward store`` commands."""

from __future__ import annotations

import ipaddress
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import click

from config.errors import ConfigError, InwardError

logger = logging.getLogger(__name__)


def _settings(ctx: click.Context):
    from inward.cli import load_cli_settings

    return load_cli_settings(ctx)


@click.command("serve")
@click.option("--host", help="Address to listen on (default: server.host).")
@click.option("--port", type=click.IntRange(1, 65535), help="TCP port to listen on (default: server.port).")
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Apply pending state store migrations before serving.",
)
@click.pass_context
def serve_command(ctx: click.Context, host: str | None, port: int | None, migrate: bool) -> None:
    """Run the sidecar with the waitress WSGI server until stopped (Ctrl+C or SIGTERM)."""
    import waitress

    from inward.app import create_app
    from inward.logging_setup import configure_logging
    from inward.services import Services

    settings = _settings(ctx)
    configure_logging(settings)
    host = host or settings.server.host
    port = port or settings.server.port
    services = Services(settings)
    scheduler = None
    try:
        install_stop_handlers()
        _check_start_up(services, host=host, migrate=migrate)
        app = create_app(settings, services=services)
        scheduler = start_jobs(services)
        logger.info(
            "Inward serving on http://%s:%s with waitress, %s threads%s",
            host, port, settings.server.threads, " (dev mode)" if settings.server.dev_mode else "",
        )
        waitress.serve(app, host=host, port=port, threads=settings.server.threads, ident="inward")
    except KeyboardInterrupt:
        pass
    except OSError as error:
        raise click.ClickException(
            f"Cannot listen on {host}:{port} ({error.strerror}); pick a free port with --port or server.port."
        ) from None
    finally:
        if scheduler is not None:
            scheduler.stop()
        services.close()
        logger.info("Inward stopped")


def start_jobs(services):
    """Start the scheduler with the periodic jobs, unless jobs are off.

    With ``jobs.backend: thread`` the scheduler runs each due job on a thread
    in this process. With ``rq`` it enqueues each due job on Redis for
    ``inward worker`` instead. Returns the running scheduler, or None. The
    scheduler is also kept on ``services.scheduler`` so the admin pages can
    show its counters.
    """
    from inward.jobs import Scheduler
    from knowledge.sync import schedule_knowledge_sync

    jobs = services.settings.jobs
    if not jobs.enabled:
        logger.info("Periodic jobs are off (jobs.enabled is false)")
        return None
    scheduler = Scheduler()
    if jobs.backend == "rq":
        _schedule_on_rq(scheduler, services.settings)
    else:
        schedule_knowledge_sync(scheduler, services)
    scheduler.start()
    services.scheduler = scheduler
    return scheduler


def _schedule_on_rq(scheduler, settings) -> None:
    """Register the jobs so that each due run is enqueued on Redis for `inward worker`."""
    import redis

    from config.settings import mask_url_password
    from inward.rq_jobs import QUEUE_NAME, RqDispatcher, connect, schedule_rq_jobs

    url = settings.jobs.redis_url
    connection = connect(url)
    try:
        connection.ping()
    except redis.RedisError as error:
        # The sidecar still serves requests. Each due enqueue fails and is logged until Redis is back.
        logger.warning(
            "Redis at %s for jobs.backend rq is not reachable (%s: %s). Jobs are enqueued once it is back",
            mask_url_password(url), type(error).__name__, error,
        )
    schedule_rq_jobs(scheduler, settings, RqDispatcher(connection, job_timeout=settings.jobs.job_timeout))
    logger.info("Periodic jobs are enqueued on rq queue %s at %s", QUEUE_NAME, mask_url_password(url))


def install_stop_handlers() -> None:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt, which stops waitress and the cleanup runs.

    A process started as a background shell job inherits SIGINT ignored, and
    Python then installs no handler for it, so SIGINT is set here explicitly.
    """
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum, frame) -> None:
    logger.info("Received %s, stopping", signal.Signals(signum).name)
    raise KeyboardInterrupt


def _check_start_up(services, *, host: str, migrate: bool) -> None:
    """Fail before listening when dev mode is exposed, auth cannot work or the store is not ready."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        _check_dev_mode(services.settings, host)
        services.verifier
        if migrate:
            services.store.upgrade()
        else:
            _require_migrated(services.store)
    except InwardError as error:
        raise click.ClickException(str(error)) from None
    except SQLAlchemyError as error:
        raise click.ClickException(f"State store at {services.store.display_url} failed: {error}") from None


def _check_dev_mode(settings, host: str) -> None:
    """Reject dev mode on an address other machines can reach.

    In dev mode the workspace preview page mints a token for any user it is
    asked for, so anyone who could reach the server could act as any agent.
    """
    if not settings.server.dev_mode or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"server.dev_mode is on but the server would listen on {host}, which other machines can reach; "
            "listen on 127.0.0.1 (INWARD_SERVER__HOST) or turn dev_mode off.",
            field="server.dev_mode",
        )


def _require_migrated(store) -> None:
    current, head = store.current_revision(), store.head_revision()
    if current != head:
        raise ConfigError(
            f"The state store at {store.display_url} is at revision {current}, not {head}; "
            "run `inward store upgrade` or start without --no-migrate."
        )


@click.command("token")
@click.option("--user", "user_name", required=True, help="The agent's sys_user.user_name (the token's subject).")
@click.option("--lifetime", type=int, default=900, show_default=True, help="Seconds until the token expires.")
@click.pass_context
def token_command(ctx: click.Context, user_name: str, lifetime: int) -> None:
    """Print a development JWT for USER, signed with auth.jwt_secret (needs server.dev_mode)."""
    from inward.auth import mint_token

    settings = _settings(ctx)
    if not settings.server.dev_mode:
        raise click.ClickException(
            "inward token works only when server.dev_mode is on; set INWARD_SERVER__DEV_MODE=true "
            "on a development machine. In production the platform's JWT provider mints tokens."
        )
    try:
        token = mint_token(settings, user_name, lifetime=lifetime)
    except InwardError as error:
        raise click.ClickException(str(error)) from None
    click.echo(token)


@click.group("store")
def store_group() -> None:
    """Manage the state store (events, actions, sync cursors)."""


@store_group.command("upgrade")
@click.pass_context
def store_upgrade(ctx: click.Context) -> None:
    """Apply pending migrations to the database at store.url."""
    with _open_store(_settings(ctx)) as store:
        store.upgrade()
        click.echo(f"{store.display_url} is at revision {store.current_revision()}")


@store_group.command("current")
@click.pass_context
def store_current(ctx: click.Context) -> None:
    """Print the applied and the newest migration revision; exit 1 when they differ."""
    with _open_store(_settings(ctx)) as store:
        current, head = store.current_revision(), store.head_revision()
    click.echo(f"current: {current or 'none (empty database)'}\nhead: {head}")
    if current != head:
        ctx.exit(1)


@contextmanager
def _open_store(settings) -> Iterator:
    """Open the store at store.url, turning its errors into a clean command failure."""
    from sqlalchemy.exc import SQLAlchemyError

    from inward.store import Store

    try:
        store = Store(settings.store.url)
    except InwardError as error:
        raise click.ClickException(str(error)) from None
    try:
        yield store
    except SQLAlchemyError as error:
        raise click.ClickException(f"State store at {store.display_url} failed: {error}") from None
    finally:
        store.close()
