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


def test_environment_ignores_names_without_section():
    environ = {"INWARD_TEST_POSTGRES_URL": "postgresql://x", "INWARD_SERVER__PORT": "9100"}

    settings = load_settings(None, environ=environ)

    assert settings.server.port == 9100


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


def test_masked_dump_hides_url_passwords():
    settings = load_settings(None, environ={
        "INWARD_JOBS__REDIS_URL": "redis://:queue-pass-1@127.0.0.1:6379/0",
        "INWARD_STORE__URL": "postgresql+psycopg://inward:store-pass-2@127.0.0.1:5432/inward",
    })

    masked = settings.to_dict(masked=True)
    plain = settings.to_dict(masked=False)

    assert masked["jobs"]["redis_url"] == f"redis://:{MASK}@127.0.0.1:6379/0"
    assert masked["store"]["url"] == f"postgresql+psycopg://inward:{MASK}@127.0.0.1:5432/inward"
    assert plain["jobs"]["redis_url"] == "redis://:queue-pass-1@127.0.0.1:6379/0"
    assert masked["platform"]["url"] == plain["platform"]["url"]


def test_masked_dump_hides_password_parameter():
    settings = load_settings(None, environ={"INWARD_JOBS__REDIS_URL": "redis://127.0.0.1:6379/3?password=QSECRET9"})

    assert settings.to_dict(masked=True)["jobs"]["redis_url"] == f"redis://127.0.0.1:6379/3?password={MASK}"


def test_invalid_url_error_hides_password():
    with pytest.raises(ConfigError) as raised:
        load_settings(None, environ={"INWARD_JOBS__REDIS_URL": "http://:SECRETpw9@127.0.0.1:6379/3"})

    assert "jobs.redis_url" in str(raised.value)
    assert "SECRETpw9" not in str(raised.value)
    assert f"http://:{MASK}@127.0.0.1:6379/3" in str(raised.value)


def test_unset_secret_prints_not_set():
    assert str(settings_for_tests().auth.jwt_secret) == "(not set)"


def test_invalid_values_listed_with_path_and_value(tmp_path):
    path = write(tmp_path, "server:\n  port: seventy\nplatform:\n  page_size: 0\n  auth: kerberos\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    errors = raised.value.errors
    assert set(errors) == {"server.port", "platform.page_size", "platform.auth"}
    assert "'seventy'" in errors["server.port"]
    assert f"(got 0 from {path})" in errors["platform.page_size"]
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
    assert "(got 'https://bad.example.com/' from the overrides)" in raised.value.errors["server.frame_ancestors.1"]


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

    with pytest.raises(ConfigError, match="both auth.jwt_secret and auth.jwt_secret_file are set in the environment"):
        load_settings(None, environ=environ)


# One load reports every problem, with the source of each value.


def test_all_problems_reported_together(tmp_path):
    path = write(
        tmp_path,
        "platform:\n  password: hunter2-long\n  page_size: many\n"
        f"auth:\n  jwt_secret_file: {tmp_path / 'missing.txt'}\n",
    )

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    errors = raised.value.errors
    assert set(errors) == {"platform.password", "platform.page_size", "auth.jwt_secret_file"}
    assert "INWARD_PLATFORM__PASSWORD" in errors["platform.password"]
    assert "Not a valid integer" in errors["platform.page_size"]
    assert "cannot read secret file" in errors["auth.jwt_secret_file"]
    assert "hunter2-long" not in str(raised.value)


def test_all_problems_listed_in_message(tmp_path):
    path = write(tmp_path, "platform:\n  password: hunter2-long\n  page_size: many\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    lines = str(raised.value).splitlines()
    assert lines[0] == f"Invalid settings from {path}:"
    assert any(line.startswith("  platform.password: ") for line in lines)
    assert any(line.startswith("  platform.page_size: ") for line in lines)


@pytest.mark.parametrize(
    ("file_text", "environ", "overrides", "key", "expected"),
    [
        ("", {"INWARD_SERVER__PORT": "abc"}, None, "server.port",
         "Not a valid integer. (got 'abc' from INWARD_SERVER__PORT)"),
        ("server:\n  port: abc\n", {}, None, "server.port", "Not a valid integer. (got 'abc' from {path})"),
        ("server:\n  port: 9000\n", {}, {"server": {"port": "abc"}}, "server.port",
         "Not a valid integer. (got 'abc' from the overrides)"),
        ("server:\n  port: 9000\n", {"INWARD_PLATFORM__TIMEOUT__READ": "-1"}, None, "platform.timeout.read",
         "(got '-1' from INWARD_PLATFORM__TIMEOUT__READ)"),
        ("", {"INWARD_SERVER__FRAME_ANCESTORS": '["https://a.example.com/"]'}, None, "server.frame_ancestors.0",
         "(got 'https://a.example.com/' from INWARD_SERVER__FRAME_ANCESTORS)"),
        ("", {"INWARD_AUTH__JWT_SECRET_FILE": "/nonexistent/jwt.txt"}, None, "auth.jwt_secret_file",
         "(No such file or directory) from INWARD_AUTH__JWT_SECRET_FILE;"),
    ],
    ids=["environment", "file", "overrides", "nested environment", "list item", "secret file"],
)
def test_error_names_value_source(tmp_path, file_text, environ, overrides, key, expected):
    path = write(tmp_path, file_text)

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ=environ, overrides=overrides)

    assert key in raised.value.errors
    assert expected.format(path=path) in raised.value.errors[key]


@pytest.mark.parametrize(
    ("file_text", "environ", "overrides", "header"),
    [
        ("server:\n  port: abc\n", {}, None, "Invalid settings from {path}:"),
        ("", {"INWARD_SERVER__PORT": "abc"}, None, "Invalid settings from the environment:"),
        ("server:\n  port: 9000\n", {"INWARD_SERVER__PORT": "abc"}, None,
         "Invalid settings from {path} and the environment:"),
        ("", {}, {"server": {"port": "abc"}}, "Invalid settings from the overrides:"),
        ("platform:\n  password: hunter2-long\n", {}, None, "Invalid settings from {path}:"),
    ],
    ids=["file only", "environment only", "file and environment", "overrides only", "file with only a secret"],
)
def test_error_header_names_sources_used(tmp_path, file_text, environ, overrides, header):
    path = write(tmp_path, file_text) if file_text else None

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ=environ, overrides=overrides)

    assert str(raised.value).splitlines()[0] == header.format(path=path)


def test_config_check_blames_environment_variable(tmp_path):
    path = write(tmp_path, "server:\n  port: 9000\n")

    result = check([str(path)], INWARD_SERVER__PORT="abc")

    assert result.exit_code == 2
    assert f"Invalid settings from {path} and the environment:" in result.output
    assert "server.port: Not a valid integer. (got 'abc' from INWARD_SERVER__PORT)" in result.output


# URL settings


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("platform.url", ""),
        ("platform.url", "https://acme.service-now.com"),
        ("platform.url", "https://acme.service-now.com/"),
        ("platform.url", "http://127.0.0.1:8100"),
        ("server.public_url", ""),
        ("server.public_url", "https://inward.acme.com/sidecar/"),
        ("jobs.redis_url", "redis://127.0.0.1:6379/0"),
        ("jobs.redis_url", "rediss://user@cache.acme.com:6380/1"),
        ("store.url", "sqlite://"),
        ("store.url", "sqlite:////srv/inward/inward.db"),
        ("store.url", "postgresql+psycopg://inward@db.acme.com:5432/inward"),
    ],
)
def test_url_accepted(key, value):
    section, name = key.split(".")

    settings = settings_for_tests(**{section: {name: value}})

    assert getattr(getattr(settings, section), name) == value


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("platform.url", "acme.service-now.com", "absolute http:// or https:// URL such as https://acme.service-now.com"),
        ("platform.url", "ftp://acme.service-now.com", "absolute http:// or https:// URL"),
        ("platform.url", "https://", "absolute http:// or https:// URL"),
        ("platform.url", "https://acme.service-now.com:http", "absolute http:// or https:// URL"),
        ("platform.url", "https://acme service-now.com", "absolute http:// or https:// URL"),
        ("platform.url", "https://acme.service-now.com/?sysparm_x=1", "without a query (?...) or fragment (#...)"),
        ("platform.url", "https://acme.service-now.com/#top", "without a query (?...) or fragment (#...)"),
        ("server.public_url", "inward.acme.com", "absolute http:// or https:// URL such as https://inward.example.com"),
        ("jobs.redis_url", "127.0.0.1:6379", "redis:// or rediss:// URL such as redis://127.0.0.1:6379/0"),
        ("jobs.redis_url", "http://127.0.0.1:6379", "redis:// or rediss:// URL"),
        ("store.url", "var/inward.db", "SQLAlchemy database URL such as sqlite:///var/inward.db"),
        ("store.url", "postgresql://db.acme.com:port/inward", "SQLAlchemy database URL"),
    ],
)
def test_bad_url_rejected(key, value, expected):
    section, name = key.split(".")

    with pytest.raises(ConfigError) as raised:
        settings_for_tests(**{section: {name: value}})

    assert set(raised.value.errors) == {key}
    assert expected in raised.value.errors[key]
    assert f"(got {value!r} from the overrides)" in raised.value.errors[key]


# auth.jwt_public_key_file


def test_public_key_file_existing_accepted(tmp_path):
    key_file = write(tmp_path, "-----BEGIN PUBLIC KEY-----\n", name="jwt.pem")

    settings = load_settings(None, environ={"INWARD_AUTH__JWT_PUBLIC_KEY_FILE": str(key_file)})

    assert settings.auth.jwt_public_key_file == str(key_file)


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("missing.pem", lambda path: None, "No such file or directory"),
        ("folder.pem", lambda path: path.mkdir(), "Is a directory"),
    ],
    ids=["missing", "directory"],
)
def test_public_key_file_unreadable_rejected(tmp_path, name, make, reason):
    key_file = tmp_path / name
    make(key_file)
    path = write(tmp_path, f"auth:\n  jwt_public_key_file: {key_file}\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    message = raised.value.errors["auth.jwt_public_key_file"]
    assert f"cannot read {key_file} ({reason}) from {path}" in message
    assert "point it at a PEM file" in message


def test_public_key_file_checked_with_other_problems(tmp_path):
    environ = {"INWARD_AUTH__JWT_PUBLIC_KEY_FILE": str(tmp_path / "missing.pem"), "INWARD_SERVER__PORT": "abc"}

    with pytest.raises(ConfigError) as raised:
        load_settings(None, environ=environ)

    assert set(raised.value.errors) == {"auth.jwt_public_key_file", "server.port"}


def test_settings_for_tests_skips_file_check(tmp_path):
    missing = str(tmp_path / "later.pem")

    settings = settings_for_tests(auth={"jwt_public_key_file": missing})

    assert settings.auth.jwt_public_key_file == missing


def test_settings_for_tests_file_check_on_request(tmp_path):
    with pytest.raises(ConfigError) as raised:
        settings_for_tests(check_files=True, auth={"jwt_public_key_file": str(tmp_path / "missing.pem")})

    assert "auth.jwt_public_key_file" in raised.value.errors


# Unknown keys and message wording


@pytest.mark.parametrize(
    ("file_text", "key", "expected"),
    [
        ("platform:\n  usr: svc\n", "platform.usr", "unknown key; did you mean 'user'?"),
        ("server:\n  prot: 9000\n", "server.prot", "unknown key; did you mean 'port'?"),
        ("platform:\n  timeout:\n    raed: 10\n", "platform.timeout.raed", "unknown key; did you mean 'read'?"),
        ("sevrer:\n  port: 9000\n", "sevrer", "unknown key; did you mean 'server'?"),
        ("server:\n  zzz: 1\n", "server.zzz", "unknown key; check the spelling against docs/configuration.md."),
    ],
    ids=["platform key", "server key", "nested key", "section", "no close match"],
)
def test_unknown_key_suggestion(tmp_path, file_text, key, expected):
    path = write(tmp_path, file_text)

    with pytest.raises(ConfigError) as raised:
        load_settings(path, environ={})

    assert raised.value.errors[key] == f"{expected} (set in {path})"


def test_unknown_environment_key_names_variable():
    with pytest.raises(ConfigError) as raised:
        load_settings(None, environ={"INWARD_PLATFORM__USR": "svc"})

    assert raised.value.errors["platform.usr"] == "unknown key; did you mean 'user'? (set in INWARD_PLATFORM__USR)"


def test_frame_ancestors_error_shows_value_once():
    value = "https://acme.service-now.com/"

    with pytest.raises(ConfigError) as raised:
        settings_for_tests(server={"frame_ancestors": [value]})

    assert raised.value.errors["server.frame_ancestors.0"].count(value) == 1


def test_secret_value_masked_in_type_error():
    with pytest.raises(ConfigError) as raised:
        load_settings(None, environ={"INWARD_PLATFORM__PASSWORD": "[hunter2-long]"})

    assert f"(got {MASK} from INWARD_PLATFORM__PASSWORD)" in raised.value.errors["platform.password"]
    assert "hunter2-long" not in str(raised.value)


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


@pytest.mark.parametrize("value", ["0", "9", "-5", "90000", "half an hour"])
def test_invalid_job_timeout_named(value):
    with pytest.raises(ConfigError) as raised:
        load_settings(None, environ={"INWARD_JOBS__JOB_TIMEOUT": value})

    assert set(raised.value.errors) == {"jobs.job_timeout"}
    assert f"'{value}'" in raised.value.errors["jobs.job_timeout"]


def test_job_timeout_default_and_override():
    assert settings_for_tests().jobs.job_timeout == 1800
    assert load_settings(None, environ={"INWARD_JOBS__JOB_TIMEOUT": "600"}).jobs.job_timeout == 600
