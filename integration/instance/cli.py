"""``inward instance``: run the embedded instance alone, or import records into it."""

from __future__ import annotations

import logging
import signal

import click
from werkzeug.serving import make_server

from config import ConfigError, load_settings
from config.secrets import Secret
from integration.instance import importer
from integration.instance.server import (
    DOUBLE_NOTICE, QuietRequestHandler, build_state, create_app, open_store,
)

logger = logging.getLogger(__name__)

DEFAULT_PASSWORD = "inward-dev"


def _settings(ctx: click.Context):
    """Load the active settings, turning a ConfigError into a clean exit."""
    try:
        return load_settings((ctx.obj or {}).get("config_path"))
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group("instance")
def instance_group() -> None:
    """Run or load the embedded Table API instance (a development and test double)."""


@instance_group.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="TCP port to listen on (default: instance.port; 0 picks a free port).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Directory of the SQLite data file (default: instance.data_dir).")
@click.option("--user", default=None, help="Admin user name (default: instance.user).")
@click.option("--password", default=None, help="Admin password (default: instance.password).")
@click.pass_context
def serve(ctx: click.Context, port: int | None, data_dir: str | None, user: str | None,
          password: str | None) -> None:
    """Serve the Table API on instance.host until Ctrl-C or SIGTERM."""
    settings = _settings(ctx)
    instance = settings.instance.replace(
        user=user or settings.instance.user,
        password=Secret(password) if password else settings.instance.password,
    )
    settings = settings.replace(instance=instance)
    data_dir = data_dir or instance.data_dir
    state = build_state(settings, data_dir)
    server = make_server(instance.host, instance.port if port is None else port, create_app(state),
                         threaded=True, request_handler=QuietRequestHandler)
    try:
        # Installed before the banner, so a signal sent once the banner shows stops the server.
        install_stop_handlers()
        _print_banner(settings, server.server_port, data_dir)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        click.echo("Interrupted; stopping.")
    finally:
        server.server_close()
        state.store.close()
    click.echo("Instance stopped.")


def install_stop_handlers() -> None:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt, which stops ``serve_forever`` cleanly.

    A process started as a background shell job inherits SIGINT ignored, and
    Python then installs no handler for it, so SIGINT is set here explicitly.
    ``inward serve`` installs the same handlers.
    """
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _print_banner(settings, port: int, data_dir: str) -> None:
    instance = settings.instance
    password_note = (f"the built-in default {DEFAULT_PASSWORD!r}"
                     if instance.password.reveal() == DEFAULT_PASSWORD else "set in settings, not shown")
    click.echo(DOUBLE_NOTICE)
    click.echo(f"Table API:  http://{instance.host}:{port}/api/now/table/<table>")
    click.echo(f"Data:       {data_dir}")
    click.echo(f"Admin user: {instance.user} (password: {password_note})")
    click.echo(f"OAuth:      POST /oauth_token.do, client_id {instance.oauth_client_id}")
    click.echo("Press Ctrl-C to stop.", nl=True)


@instance_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--table", required=True, help="Table to import into, e.g. incident.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Directory of the SQLite data file (default: instance.data_dir).")
@click.pass_context
def import_command(ctx: click.Context, file: str, table: str, data_dir: str | None) -> None:
    """Import the records of FILE ({"result": [...]} or {"records": [...]}) into TABLE."""
    settings = _settings(ctx)
    store = open_store(settings, data_dir or settings.instance.data_dir)
    try:
        report = importer.import_file(store, file, table)
    except importer.ImportFailed as error:
        raise click.ClickException(f"{error} Nothing was imported.") from None
    finally:
        store.close()
    click.echo(f"Imported {report.inserted} new and {report.updated} existing {table} records "
               f"from {file}.")
    if report.ignored_fields:
        ignored = ", ".join(sorted(report.ignored_fields))
        click.echo(f"Ignored fields the {table} table does not have: {ignored}")
