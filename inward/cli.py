"""The ``inward`` command line.

Each package owns its commands and registers them here with one
``add_command`` line, so this module stays a table of contents.
"""

from __future__ import annotations

import sys

import click
import yaml

from config import ConfigError, load_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="INWARD_CONFIG",
    help="YAML settings file (default: $INWARD_CONFIG, else built-in defaults).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Inward: an agent-assist sidecar for ServiceNow-style helpdesks."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


def load_cli_settings(ctx: click.Context):
    """Load settings for a command, turning a ConfigError into a clean exit."""
    try:
        return load_settings(ctx.obj.get("config_path"))
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@cli.group("config")
def config_group() -> None:
    """Inspect the settings."""


@config_group.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.pass_context
def config_check(ctx: click.Context, file: str | None) -> None:
    """Validate FILE (or the active settings) and print the effective settings, secrets masked."""
    path = file or ctx.obj.get("config_path")
    try:
        settings = load_settings(path)
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    click.echo(yaml.safe_dump(settings.to_dict(masked=True), sort_keys=False), nl=False)


def main() -> None:
    cli(obj={})


# Commands owned by other modules.
from inward.serve_cli import serve_command, store_group, token_command  # noqa: E402

cli.add_command(serve_command)
cli.add_command(token_command)
cli.add_command(store_group)

from inward.worker_cli import worker_command  # noqa: E402

cli.add_command(worker_command)

from knowledge.eval_cli import eval_group  # noqa: E402

cli.add_command(eval_group)

from knowledge.sync_cli import index_group, sync_group  # noqa: E402

cli.add_command(sync_group)
cli.add_command(index_group)

from integration.instance.cli import instance_group  # noqa: E402

cli.add_command(instance_group)

from inward.demo.runner import demo_command  # noqa: E402

cli.add_command(demo_command)
