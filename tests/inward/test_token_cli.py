"""`inward token`: development tokens, only in dev mode."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from config import settings_for_tests
from inward.auth import TokenVerifier
from inward.cli import cli

SECRET = "cli-test-secret-0123456789abcdef-0123"


def run(args, **env):
    environment = {"INWARD_CONFIG": "", "INWARD_AUTH__JWT_SECRET": SECRET, **env}
    return CliRunner().invoke(cli, args, env=environment, obj={})


def dev_settings():
    return settings_for_tests(auth={"jwt_secret": SECRET}, server={"dev_mode": True})


def test_token_minted_in_dev_mode():
    result = run(["token", "--user", "abel.tuter"], INWARD_SERVER__DEV_MODE="true")

    assert result.exit_code == 0, result.output
    claims = TokenVerifier(dev_settings().auth).verify(result.output.strip())
    assert claims["sub"] == "abel.tuter"
    assert claims["exp"] - claims["iat"] == 900


def test_token_lifetime_option():
    result = run(["token", "--user", "abel.tuter", "--lifetime", "60"], INWARD_SERVER__DEV_MODE="true")

    claims = TokenVerifier(dev_settings().auth).verify(result.output.strip())
    assert claims["exp"] - claims["iat"] == 60


def test_token_refused_outside_dev_mode():
    result = run(["token", "--user", "abel.tuter"])

    assert result.exit_code == 1
    assert "server.dev_mode" in result.output
    assert "INWARD_SERVER__DEV_MODE=true" in result.output
    assert "eyJ" not in result.output


def test_token_needs_secret():
    result = run(["token", "--user", "abel.tuter"], INWARD_SERVER__DEV_MODE="true", INWARD_AUTH__JWT_SECRET="")

    assert result.exit_code == 1
    assert "INWARD_AUTH__JWT_SECRET" in result.output


@pytest.mark.parametrize("lifetime", ["0", "3601"])
def test_token_lifetime_out_of_range(lifetime):
    result = run(["token", "--user", "abel.tuter", "--lifetime", lifetime], INWARD_SERVER__DEV_MODE="true")

    assert result.exit_code == 1
    assert f"lifetime {lifetime} s is out of range" in result.output


def test_token_refused_for_rs256():
    result = run(["token", "--user", "abel.tuter"], INWARD_SERVER__DEV_MODE="true", INWARD_AUTH__JWT_ALGORITHM="RS256")

    assert result.exit_code == 1
    assert "HS256" in result.output


def test_token_needs_user():
    result = run(["token"], INWARD_SERVER__DEV_MODE="true")

    assert result.exit_code == 2
    assert "--user" in result.output
