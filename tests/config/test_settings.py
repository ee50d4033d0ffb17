"""Settings: file and environment merging, secrets, validation messages and `inward config check`."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from config import ConfigError, Secret, load_settings, settings_for_tests
from config.secrets import MASK
from inward.cli import cli


def write(tmp_path, text: str, name: str = "inward.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_without_file():
    settings = load_settings(None, environ={})

    assert settings.server.port == 8000
    assert settings.store.url == "sqlite:///var/inward.db"
    assert settings.platform.timeout.read == 30.0
    assert settings.auth.jwt_secret == Secret()


def test_file_values_loaded(tmp_path):
    path = write(tmp_path, "server:\n  port: 9000\nplatform:\n  url: https://acme.service-now.com\n")

    settings = load_settings(path, environ={})

    assert settings.server.port == 9000
    assert settings.platform.url == "https://acme.service-now.com"


def test_environment_wins_over_file(tmp_path):
    path = write(tmp_path, "server:\n  port: 9000\n")

    settings = load_settings(path, environ={"INWARD_SERVER__PORT": "9100"})

    assert settings.server.port == 9100


def test_nested_environment_name():
    settings = load_settings(None, environ={"INWARD_PLATFORM__TIMEOUT__READ": "12.5"})

    assert settings.platform.timeout.read == 12.5


def test_environment_list_value():
    environ = {"INWARD_SERVER__FRAME_ANCESTORS": '["https://acme.service-now.com", "https://help.acme.com"]'}

    settings = load_settings(None, environ=environ)

    assert settings.server.frame_ancestors == ["https://acme.service-now.com", "https://help.acme.com"]


def test_unrelated_environment_ignored():
    settings = load_settings(None, environ={"HOME": "/root", "INWARDLY": "x", "INWARD_": "y"})

    assert settings.server.port == 8000


def test_config_path_from_environment(tmp_path):
    path = write(tmp_path, "server:\n  port: 9200\n")

    settings = load_settings(None, environ={"INWARD_CONFIG": str(path)})

    assert settings.server.port == 9200


def test_overrides_applied_last(tmp_path):
    path = write(tmp_path, "server:\n  port: 9000\n")

    settings = load_settings(path, environ={"INWARD_SERVER__PORT": "9100"}, overrides={"server": {"port": 9300}})

    assert settings.server.port == 9300


def test_secret_from_environment():
    settings = load_settings(None, environ={"INWARD_PLATFORM__PASSWORD": "hunter2-long"})

    assert isinstance(settings.platform.password, Secret)
    assert settings.platform.password.reveal() == "hunter2-long"


def test_secret_in_file_rejected_naming_env_var(tmp_path):
    path = write(tmp_path, "platform:\n  password: hunter2-long\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    message = str(raised.value)
    assert "platform.password" in message
    assert "INWARD_PLATFORM__PASSWORD" in message
    assert "platform.password_file" in message
    assert "hunter2-long" not in message


def test_secret_file_key_in_settings_file(tmp_path):
    secret_file = write(tmp_path, "s3cret-from-file\n", name="password.txt")
    path = write(tmp_path, f"platform:\n  password_file: {secret_file}\n")

    settings = load_settings(path, environ={})

    assert settings.platform.password.reveal() == "s3cret-from-file"


def test_secret_file_from_environment(tmp_path):
    secret_file = write(tmp_path, "jwt-shared-secret", name="jwt.txt")

    settings = load_settings(None, environ={"INWARD_AUTH__JWT_SECRET_FILE": str(secret_file)})

    assert settings.auth.jwt_secret.reveal() == "jwt-shared-secret"


def test_unreadable_secret_file_names_key(tmp_path):
    missing = tmp_path / "missing.txt"

    with pytest.raises(ConfigError) as raised:
        load_settings(None, environ={"INWARD_AUTH__JWT_SECRET_FILE": str(missing)})

    assert "auth.jwt_secret_file" in str(raised.value)
    assert str(missing) in str(raised.value)


def test_masked_dump_hides_secrets():
    settings = load_settings(None, environ={"INWARD_PLATFORM__PASSWORD": "hunter2-long"})

    masked = settings.to_dict(masked=True)
    plain = settings.to_dict(masked=False)

    assert masked["platform"]["password"] == MASK
    assert plain["platform"]["password"] == "hunter2-long"
    assert "hunter2-long" not in repr(settings)
    assert "hunter2-long" not in str(settings.platform.password)


def test_unset_secret_prints_not_set():
    assert str(settings_for_tests().auth.jwt_secret) == "(not set)"


def test_invalid_values_listed_with_path_and_value(tmp_path):
    path = write(tmp_path, "server:\n  port: seventy\nplatform:\n  page_size: 0\n  auth: kerberos\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    errors = raised.value.errors
    assert set(errors) == {"server.port", "platform.page_size", "platform.auth"}
    assert "'seventy'" in errors["server.port"]
    assert "(got 0)" in errors["platform.page_size"]
    assert "'kerberos'" in errors["platform.auth"]
    assert str(path) in str(raised.value)


def test_invalid_environment_value_named():
    with pytest.raises(ConfigError) as raised:
        load_settings(None, environ={"INWARD_PLATFORM__TIMEOUT__CONNECT": "-1"})

    assert "platform.timeout.connect" in raised.value.errors
    assert "'-1'" in raised.value.errors["platform.timeout.connect"]


def test_invalid_list_item_shows_value():
    with pytest.raises(ConfigError) as raised:
        settings_for_tests(server={"frame_ancestors": ["https://ok.example.com", "https://bad.example.com/"]})

    assert "server.frame_ancestors.1" in raised.value.errors
    assert "(got 'https://bad.example.com/')" in raised.value.errors["server.frame_ancestors.1"]


def test_unknown_key_rejected(tmp_path):
    path = write(tmp_path, "server:\n  prot: 9000\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    assert "server.prot" in raised.value.errors
    assert "unknown key" in raised.value.errors["server.prot"]


def test_unknown_section_rejected(tmp_path):
    path = write(tmp_path, "sevrer:\n  port: 9000\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    assert "sevrer" in raised.value.errors


def test_bad_yaml_names_line(tmp_path):
    path = write(tmp_path, "server:\n  port: 9000\n  host: [127.0.0.1\n")

    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+, column \d+"):
        load_settings(path, environ={})


def test_yaml_list_at_top_rejected(tmp_path):
    path = write(tmp_path, "- server\n- platform\n")

    with pytest.raises(ConfigError, match="must contain a mapping of sections, got list"):
        load_settings(path, environ={})


def test_empty_file_gives_defaults(tmp_path):
    settings = load_settings(write(tmp_path, ""), environ={})

    assert settings.server.port == 8000


def test_missing_file_rejected(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_settings_read_only():
    settings = settings_for_tests()

    with pytest.raises(AttributeError, match="read-only"):
        settings.server.port = 1


def test_replace_derives_new_section():
    server = settings_for_tests().server

    changed = server.replace(port=9999)

    assert changed.port == 9999
    assert server.port == 8000


# `inward config check FILE`


def check(args, **env):
    return CliRunner().invoke(cli, ["config", "check", *args], env={"INWARD_CONFIG": "", **env}, obj={})


def test_config_check_valid_file_exits_0(tmp_path):
    path = write(tmp_path, "server:\n  port: 9000\n")

    result = check([str(path)], INWARD_PLATFORM__PASSWORD="hunter2-long")

    assert result.exit_code == 0, result.output
    dumped = yaml.safe_load(result.output)
    assert dumped["server"]["port"] == 9000
    assert dumped["platform"]["password"] == MASK
    assert "hunter2-long" not in result.output


def test_config_check_invalid_file_exits_2(tmp_path):
    path = write(tmp_path, "server:\n  port: 0\n")

    result = check([str(path)])

    assert result.exit_code == 2
    assert "server.port" in result.output


def test_config_check_bad_yaml_exits_2(tmp_path):
    path = write(tmp_path, "server: [\n")

    result = check([str(path)])

    assert result.exit_code == 2
    assert "not valid YAML at line" in result.output


def test_config_check_missing_file_exits_2(tmp_path):
    result = check([str(tmp_path / "absent.yaml")])

    assert result.exit_code == 2
    assert "not found" in result.output


def test_environment_secret_wins_over_file_secret_file(tmp_path):
    secret_file = write(tmp_path, "from-secret-file", name="password.txt")
    path = write(tmp_path, f"platform:\n  password_file: {secret_file}\n")

    settings = load_settings(path, environ={"INWARD_PLATFORM__PASSWORD": "from-environment"})

    assert settings.platform.password.reveal() == "from-environment"


def test_environment_secret_file_wins_over_file_one(tmp_path):
    file_one = write(tmp_path, "first", name="one.txt")
    file_two = write(tmp_path, "second", name="two.txt")
    path = write(tmp_path, f"platform:\n  password_file: {file_one}\n")

    settings = load_settings(path, environ={"INWARD_PLATFORM__PASSWORD_FILE": str(file_two)})

    assert settings.platform.password.reveal() == "second"


def test_secret_and_secret_file_together_rejected(tmp_path):
    secret_file = write(tmp_path, "from-secret-file", name="jwt.txt")
    environ = {"INWARD_AUTH__JWT_SECRET": "from-environment", "INWARD_AUTH__JWT_SECRET_FILE": str(secret_file)}

    with pytest.raises(ConfigError, match="auth.jwt_secret and auth.jwt_secret_file are both set in the environment"):
        load_settings(None, environ=environ)


# docs/configuration.md must stay a complete reference.


def schema_key_paths(schema, prefix=""):
    from marshmallow import fields

    paths = set()
    for name, field in schema.fields.items():
        if isinstance(field, fields.Nested):
            paths |= schema_key_paths(field.schema, f"{prefix}{name}.")
        else:
            paths.add(prefix + name)
    return paths


def documented_key_paths():
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    paths, section = set(), None
    for line in text.splitlines():
        heading = re.match(r"^#{2,3} ([a-z0-9_.]+)$", line)
        if heading:
            section = heading.group(1)
            continue
        row = re.match(r"^\| `([a-z0-9_.]+)` \|", line)
        if row and section:
            paths.add(f"{section}.{row.group(1)}")
    return paths


def test_reference_documents_every_key():
    from config.settings import SettingsSchema

    missing = schema_key_paths(SettingsSchema()) - documented_key_paths()

    assert missing == set(), "add these keys to docs/configuration.md"


def test_reference_documents_no_stale_key():
    from config.settings import SettingsSchema

    stale = documented_key_paths() - schema_key_paths(SettingsSchema())

    assert stale == set(), "remove these keys from docs/configuration.md"


def documented_defaults():
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    defaults, section = {}, None
    for line in text.splitlines():
        heading = re.match(r"^#{2,3} ([a-z0-9_.]+)$", line)
        if heading:
            section = heading.group(1)
            continue
        row = re.match(r"^\| `([a-z0-9_.]+)` \| `([^`]*)` \|", line)
        if row and section:
            defaults[f"{section}.{row.group(1)}"] = row.group(2)
    return defaults


def effective_default(settings, key_path):
    from config.secrets import Secret

    value = settings
    for part in key_path.split("."):
        value = getattr(value, part)
    return value.reveal() if isinstance(value, Secret) else value


def test_reference_defaults_match_schema():
    from config.settings import settings_for_tests

    import yaml

    settings = settings_for_tests()
    wrong = {}
    for key, documented in documented_defaults().items():
        actual = effective_default(settings, key)
        # A string setting is compared as written, because YAML reads `off` as false.
        expected = documented if isinstance(actual, str) and documented != '""' else yaml.safe_load(documented)
        if expected != actual:
            wrong[key] = (documented, actual)

    assert wrong == {}, "fix these defaults in docs/configuration.md: key: (documented, actual)"
