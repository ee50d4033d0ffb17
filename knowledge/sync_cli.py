"""The ``inward sync knowledge`` and ``inward index rebuild`` commands."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from config.errors import InwardError

logger = logging.getLogger(__name__)


@click.group("sync")
def sync_group() -> None:
    """Copy data from the platform into Inward."""


@sync_group.command("knowledge")
@click.option("--full", is_flag=True, help="Read every article again and remove deleted ones.")
@click.option("--json", "as_json", is_flag=True, help="Print the sync report as JSON.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show the number of articles read on stderr.")
@click.pass_context
def sync_knowledge_command(ctx: click.Context, full: bool, as_json: bool, progress: bool) -> None:
    """Update the knowledge index from kb_knowledge, from the stored cursor (or all with --full)."""
    from knowledge.sync import sync_knowledge

    with _services(ctx) as services, _progress_counter(progress, "Syncing articles") as counter:
        report = _run(lambda: sync_knowledge(services, full=full, progress=counter))
    _print_report(report, as_json)


@click.group("index")
def index_group() -> None:
    """Manage the knowledge index."""


@index_group.command("rebuild")
@click.option("--json", "as_json", is_flag=True, help="Print the rebuild report as JSON.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show the number of articles read on stderr.")
@click.pass_context
def index_rebuild_command(ctx: click.Context, as_json: bool, progress: bool) -> None:
    """Build a new index from every live article, switch to it and reset the sync cursor."""
    from knowledge.sync import rebuild_index

    with _services(ctx) as services, _progress_counter(progress, "Reading articles") as counter:
        report = _run(lambda: rebuild_index(services, progress=counter))
    _print_report(report, as_json)


@contextmanager
def _services(ctx: click.Context) -> Iterator[object]:
    """Yield Services for the active settings with the state store migrated; close them after."""
    from inward.cli import load_cli_settings
    from inward.logging_setup import configure_logging
    from inward.services import Services

    settings = load_cli_settings(ctx)
    configure_logging(settings)
    _echo_locations(settings)
    services = Services(settings)
    try:
        _run(services.store.upgrade)
        yield services
    finally:
        services.close()


def _echo_locations(settings) -> None:
    """Print on stderr which platform is read and where the index and state are written."""
    from knowledge.sync import platform_identity

    click.echo(
        f"Platform {platform_identity(settings)}; index {settings.index.path}; "
        f"state store {_masked_url(settings.store.url)}",
        err=True,
    )


def _masked_url(url: str) -> str:
    """Return a store URL with any password replaced by asterisks."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # The store raises its own error naming the setting right after.
        return "(unparsable URL)"


def _run(action: Callable[[], object]):
    """Run ``action``, turning an InwardError into a one-line error and exit status 1."""
    try:
        return action()
    except InwardError as error:
        logger.error("Command failed: %s", error)
        raise click.ClickException(str(error)) from None


@contextmanager
def _progress_counter(enabled: bool, label: str) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback that shows a running article count on stderr, or None when disabled.

    ``Records`` does not expose the platform's X-Total-Count header, so this
    shows a count instead of a percentage bar.
    """
    if not enabled:
        yield None
        return
    interactive = sys.stderr.isatty()
    total = 0

    def update(count: int) -> None:
        nonlocal total
        total += count
        if interactive:
            click.echo(f"\r{label}: {total} read", nl=False, err=True)

    try:
        yield update
    finally:
        click.echo(f"\r{label}: {total} read" if interactive else f"{label}: {total} read", err=True)


def _print_report(report, as_json: bool) -> None:
    data = report.to_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    cursor = data["cursor"]
    click.echo(
        f"read {data['read']}, indexed {data['indexed']}, removed {data['removed']}, "
        f"skipped {data['skipped']}, failed {data['failed']} in {data['duration']:.1f} s; "
        f"cursor {cursor['sys_updated_on'] or '-'} {cursor['sys_id'] or '-'}"
        + ("; reconciled" if data["reconciled"] else "")
    )
    if data["failed"]:
        sys.exit(1)
