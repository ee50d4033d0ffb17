"""The settings schema and its loader.

Settings come from an optional YAML file and from ``INWARD_*`` environment
variables; the environment wins. Nested keys are joined with a double
underscore, so ``INWARD_PLATFORM__TIMEOUT__READ=10`` sets
``platform.timeout.read``.

Secrets (fields of type ``SecretField``) are never read from the YAML file,
because settings files end up in repositories and tickets. A secret comes
from its environment variable or from a file named by ``<key>_file``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from config.errors import ConfigError
from config.secrets import MASK, Secret

ENV_PREFIX = "INWARD_"
ENV_SEPARATOR = "__"
CONFIG_FILE_ENV = "INWARD_CONFIG"


class Section:
    """Read-only attribute access to one loaded section of the settings."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("settings are read-only; use replace() to derive new settings")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Section) and other._values == self._values

    def __repr__(self) -> str:
        return f"Section({self.to_dict()})"

    def items(self) -> list[tuple[str, Any]]:
        """Return the (key, value) pairs of this section; nested sections stay Sections."""
        return list(self._values.items())

    def replace(self, **changes: Any) -> "Section":
        """Return a copy with some values changed (used by tests and the demo)."""
        values = dict(self._values)
        values.update(changes)
        return type(self)(values)

    def to_dict(self, *, masked: bool = True) -> dict[str, Any]:
        """Return plain data, with secrets masked unless ``masked`` is false."""
        result: dict[str, Any] = {}
        for key, value in self._values.items():
            if isinstance(value, Section):
                result[key] = value.to_dict(masked=masked)
            elif isinstance(value, Secret):
                result[key] = str(value) if masked else value.reveal()
            elif masked and isinstance(value, str):
                result[key] = mask_url_password(value)
            else:
                result[key] = value
        return result


# A password passed as a query parameter, as redis-py accepts (redis://host/0?password=...).
_PASSWORD_PARAMETER = re.compile(r"(?i)([?&]password=)([^&#]*)")


def url_passwords(value: str) -> list[str]:
    """Return the passwords written into a URL: the user-info password and any password parameter."""
    found = [match.group(2) for match in _PASSWORD_PARAMETER.finditer(value) if match.group(2)]
    try:
        password = urlsplit(value).password
    except ValueError:
        password = None
    if password:
        found.append(password)
    return found


def mask_url_password(value: str) -> str:
    """Return ``value`` with every password written into the URL replaced by the mask."""
    masked = _PASSWORD_PARAMETER.sub(lambda match: match.group(1) + (MASK if match.group(2) else ""), value)
    try:
        parts = urlsplit(masked)
        password = parts.password
    except ValueError:
        return masked
    if not password:
        return masked
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


class SecretField(fields.String):
    """A string field that loads into a ``Secret``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, Secret):
            return value
        return Secret(super()._deserialize(value, attr, data, **kwargs))

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class SectionSchema(Schema):
    """Base for every section: unknown keys are errors, result is a Section."""

    class Meta:
        unknown = RAISE

    @post_load
    def make_section(self, data: dict[str, Any], **kwargs: Any) -> Section:
        return Section(data)


def _nested(schema: type[Schema]) -> fields.Nested:
    return fields.Nested(schema, load_default=lambda: schema().load({}))


positive = validate.Range(min=0, min_inclusive=False)
non_negative = validate.Range(min=0)
share = validate.Range(min=0.0, max=1.0)


# scheme://host[:port] with no path; a leading "*." wildcard is allowed, as CSP allows it.
ORIGIN_PATTERN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _validate_origin(value: str) -> None:
    # The caller appends the value, so the message does not repeat it.
    if not ORIGIN_PATTERN.match(value):
        raise ValidationError(
            "Not an origin; write scheme://host[:port] with no path "
            "or trailing slash, for example https://acme.service-now.com."
        )


def _split_url(value: str) -> tuple[str, str | None] | None:
    """Return the scheme (lower case) and host of a URL, or None when it has spaces or a bad port."""
    if any(character.isspace() for character in value):
        return None
    try:
        parts = urlsplit(value)
        # Reading the port raises ValueError when it is not a number from 0 to 65535.
        _ = parts.port
    except ValueError:
        return None
    return parts.scheme.lower(), parts.hostname


def _web_url_validator(example: str):
    """Build a validator for an empty value or an absolute http(s) URL without query or fragment."""
    expected = f"Must be empty or an absolute http:// or https:// URL such as {example}"

    def check(value: str) -> None:
        if value == "":
            return
        parts = _split_url(value)
        if parts is None or parts[0] not in ("http", "https") or not parts[1]:
            raise ValidationError(f"{expected}.")
        if "?" in value or "#" in value:
            raise ValidationError(f"{expected}, without a query (?...) or fragment (#...).")

    return check


def _validate_redis_url(value: str) -> None:
    parts = _split_url(value)
    if parts is None or parts[0] not in ("redis", "rediss"):
        raise ValidationError("Must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0.")


def _validate_database_url(value: str) -> None:
    try:
        make_url(value)
    except (ArgumentError, ValueError):
        raise ValidationError(
            "Must be a SQLAlchemy database URL such as sqlite:///var/inward.db "
            "or postgresql+psycopg://inward@db.example.com:5432/inward."
        ) from None


class ServerSchema(SectionSchema):
    host = fields.String(load_default="127.0.0.1")
    port = fields.Integer(load_default=8000, validate=validate.Range(min=1, max=65535))
    # The address agents' browsers use to reach the sidecar, when it differs
    # from host:port (a reverse proxy).
    public_url = fields.String(load_default="", validate=_web_url_validator("https://inward.example.com"))
    # Development mode enables `inward token`, the workspace preview page and
    # relaxed defaults. Never turn it on in production.
    dev_mode = fields.Boolean(load_default=False)
    # Origins allowed to frame the widgets (CSP frame-ancestors), for example
    # https://acme.service-now.com, written without a trailing slash.
    frame_ancestors = fields.List(fields.String(validate=_validate_origin), load_default=list)
    # Worker threads of the waitress server behind `inward serve`; each
    # handles one request at a time.
    threads = fields.Integer(load_default=8, validate=validate.Range(min=1, max=256))
    # Reverse proxies in front of the sidecar whose X-Forwarded-For, -Proto
    # and -Host headers are trusted. 0 trusts none, so a client cannot spoof
    # its address by sending those headers itself.
    trusted_proxies = fields.Integer(load_default=0, validate=validate.Range(min=0, max=5))


class TimeoutSchema(SectionSchema):
    connect = fields.Float(load_default=5.0, validate=positive)
    read = fields.Float(load_default=30.0, validate=positive)


class RetrySchema(SectionSchema):
    attempts = fields.Integer(load_default=4, validate=validate.Range(min=1, max=20))
    backoff = fields.Float(load_default=0.5, validate=non_negative)
    cap = fields.Float(load_default=30.0, validate=non_negative)
    # Random extra wait as a share of the computed backoff.
    jitter = fields.Float(load_default=0.25, validate=share)


class PlatformSchema(SectionSchema):
    # Base URL of the instance, e.g. https://acme.service-now.com. Empty means
    # the embedded instance described under `instance`.
    url = fields.String(load_default="", validate=_web_url_validator("https://acme.service-now.com"))
    auth = fields.String(load_default="basic", validate=validate.OneOf(["basic", "oauth"]))
    user = fields.String(load_default="inward.integration")
    password = SecretField(load_default=lambda: Secret())
    client_id = fields.String(load_default="")
    client_secret = SecretField(load_default=lambda: Secret())
    timeout = _nested(TimeoutSchema)
    retry = _nested(RetrySchema)
    page_size = fields.Integer(load_default=500, validate=validate.Range(min=1, max=10000))
    case_tables = fields.List(
        fields.String(), load_default=lambda: ["incident", "sn_customerservice_case"]
    )
    # With OAuth, a token this many seconds from expiry is refreshed before use.
    token_refresh_margin = fields.Float(load_default=60.0, validate=non_negative)


class FaultSchema(SectionSchema):
    """Faults the embedded instance injects; all off by default."""

    rate_limit_per_hour = fields.Integer(load_default=0, validate=non_negative)
    retry_after = fields.Integer(load_default=1, validate=non_negative)
    error_rate = fields.Float(load_default=0.0, validate=share)
    latency_ms = fields.Integer(load_default=0, validate=non_negative)
    hibernating = fields.Boolean(load_default=False)
    short_page_rate = fields.Float(load_default=0.0, validate=share)
    # Seed of the random draws behind error_rate and short_page_rate, so a
    # test sees the same sequence of faults on every run.
    seed = fields.Integer(load_default=0)
    # Statuses error_rate draws from.
    error_statuses = fields.List(
        fields.Integer(validate=validate.Range(min=400, max=599)), load_default=lambda: [500, 503]
    )
    # Statuses returned, in order, by the next requests (one each), e.g. [503, 503].
    fail_next = fields.List(
        fields.Integer(validate=validate.Range(min=400, max=599)), load_default=list
    )
    # When positive, latency_ms applies only to the next this many requests.
    latency_requests = fields.Integer(load_default=0, validate=non_negative)
    # Apply the next write, then lose its response: "delay" holds the response
    # for fail_after_write_delay_ms (past a client's read timeout), "drop"
    # closes the connection without answering.
    fail_after_write = fields.Boolean(load_default=False)
    fail_after_write_mode = fields.String(
        load_default="delay", validate=validate.OneOf(["delay", "drop"])
    )
    fail_after_write_delay_ms = fields.Integer(load_default=3000, validate=non_negative)
    # Tables where POST is refused with the platform's 403 ACL insert failure.
    deny_insert_tables = fields.List(fields.String(), load_default=list)
    # Tables whose reads (GET list, GET by sys_id, stats) get 403
    # "Insufficient rights to query records", as a table-level read ACL gives.
    deny_read_tables = fields.List(fields.String(), load_default=list)


class InstanceSchema(SectionSchema):
    """The embedded Table API instance, a development and test double."""

    host = fields.String(load_default="127.0.0.1")
    port = fields.Integer(load_default=8100, validate=validate.Range(min=0, max=65535))
    data_dir = fields.String(load_default="var/instance")
    user = fields.String(load_default="admin")
    password = SecretField(load_default=lambda: Secret("inward-dev"))
    # Time zone used to evaluate javascript:gs.* date helpers in queries.
    user_time_zone = fields.String(load_default="UTC")
    case_insensitive = fields.Boolean(load_default=True)
    # Mirrors glide.invalid_query.returns_no_rows.
    invalid_query_returns_no_rows = fields.Boolean(load_default=False)
    # The OAuth client the instance's /oauth_token.do accepts.
    oauth_client_id = fields.String(load_default="inward-dev-client")
    oauth_client_secret = SecretField(load_default=lambda: Secret("inward-dev-secret"))
    # Access token lifetime in seconds; the platform's default is 1800.
    oauth_token_lifetime = fields.Integer(load_default=1800, validate=positive)
    faults = _nested(FaultSchema)


class AuthSchema(SectionSchema):
    """Verification of agents' JWTs, which the platform's JWT provider mints."""

    jwt_algorithm = fields.String(load_default="HS256", validate=validate.OneOf(["HS256", "RS256"]))
    jwt_secret = SecretField(load_default=lambda: Secret())
    # Checked for readability by load_settings (see FILE_PATHS), not by the schema.
    jwt_public_key_file = fields.String(load_default="")
    jwt_issuer = fields.String(load_default="inward-dev")
    jwt_audience = fields.String(load_default="inward")
    # Tokens whose exp - iat exceeds this many seconds are rejected.
    jwt_max_lifetime = fields.Integer(load_default=3600, validate=positive)
    jwt_leeway = fields.Integer(load_default=30, validate=non_negative)
    # The claim that carries the agent's sys_user.user_name.
    user_claim = fields.String(load_default="sub")
    user_cache_ttl = fields.Integer(load_default=300, validate=non_negative)
    # Role names (sys_user_role.name) that make a user an agent, and those
    # that also open the admin pages.
    agent_roles = fields.List(
        fields.String(),
        load_default=lambda: ["itil", "sn_customerservice_agent", "admin", "inward_admin"],
    )
    admin_roles = fields.List(fields.String(), load_default=lambda: ["admin", "inward_admin"])
    # Replay protection by jti. "off" accepts any valid token. "bind" requires
    # a jti and ties it to the client (address and User-Agent) that used it
    # first, so a leaked token is rejected from any other client.
    jti_replay = fields.String(load_default="off", validate=validate.OneOf(["off", "bind"]))


class StoreSchema(SectionSchema):
    # SQLAlchemy URL: sqlite:///var/inward.db or postgresql+psycopg://...
    url = fields.String(load_default="sqlite:///var/inward.db", validate=_validate_database_url)


class IndexSchema(SectionSchema):
    path = fields.String(load_default="var/index")
    # Seconds a writer waits for another writer's lock before IndexBusy.
    lock_timeout = fields.Float(load_default=10.0, validate=positive)
    # "stemming" (Snowball English stems) or "standard" (lower-cased words). Changing it
    # changes the stored schema version, so the index is rebuilt empty at start-up.
    analyzer = fields.String(load_default="stemming", validate=validate.OneOf(["stemming", "standard"]))
    # Seconds without index writes before the candidate snapshot is rebuilt.
    candidate_rebuild_delay = fields.Float(load_default=10.0, validate=non_negative)


class KnowledgeSchema(SectionSchema):
    sync_interval_minutes = fields.Integer(load_default=15, validate=positive)
    reconcile_interval_hours = fields.Integer(load_default=24, validate=positive)
    visibility_cache_ttl = fields.Integer(load_default=300, validate=non_negative)
    case_cache_ttl = fields.Integer(load_default=60, validate=non_negative)
    suggestions_limit = fields.Integer(load_default=5, validate=validate.Range(min=1, max=50))
    # Mirrors glide.knowman.block_access_with_no_user_criteria: when true, a
    # knowledge base without any can-read user criteria is readable by nobody
    # (except knowledge admins and its owner and managers).
    block_access_with_no_user_criteria = fields.Boolean(load_default=False)
    # Articles indexed per index commit during a sync; the sync cursor is
    # saved after each commit, so a crash repeats at most one batch.
    sync_batch_size = fields.Integer(load_default=500, validate=validate.Range(min=1, max=10000))


class RankingSchema(SectionSchema):
    """Ranking weights; the defaults are justified in docs/benchmarks.md."""

    title_weight = fields.Float(load_default=0.3, validate=non_negative)
    meta_weight = fields.Float(load_default=2.0, validate=non_negative)
    headings_weight = fields.Float(load_default=1.0, validate=non_negative)
    body_weight = fields.Float(load_default=1.0, validate=non_negative)
    # BM25 term-frequency saturation and length normalization, for every field.
    bm25_k1 = fields.Float(load_default=1.2, validate=non_negative)
    bm25_b = fields.Float(load_default=0.75, validate=share)
    # Bonus clause for pairs of adjacent query terms found within `proximity_slop`
    # positions of each other in the `proximity_fields`.
    proximity_weight = fields.Float(load_default=0.5, validate=non_negative)
    proximity_slop = fields.Integer(load_default=2, validate=validate.Range(min=1, max=20))
    # Each field adds one phrase clause per pair. Dropping the title cut p95 by
    # about a quarter and moved MRR@10 by under 0.005 (docs/benchmarks.md).
    proximity_fields = fields.List(
        fields.String(validate=validate.OneOf(["title", "meta", "headings", "body"])),
        load_default=lambda: ["body"],
    )
    # Maximum proximity pairs per query, those with the highest weight * idf; 0 keeps all.
    # 20 keeps every pair of the benchmark queries (19 terms at most) and
    # bounds the work for a pasted wall of text.
    proximity_max_pairs = fields.Integer(load_default=20, validate=validate.Range(min=0, max=100))
    # Maximum query terms scored by the full ranking, those with the highest
    # weight * idf; 0 keeps all. The candidate stage always uses every term.
    max_query_terms = fields.Integer(load_default=10, validate=validate.Range(min=0, max=100))
    # Priors multiply the text score by 1 + weight * prior, with each prior in [0, 1].
    helpful_weight = fields.Float(load_default=0.1, validate=non_negative)
    attach_weight = fields.Float(load_default=0.1, validate=non_negative)
    # Attach count at which the attach prior reaches one half.
    attach_half = fields.Float(load_default=5.0, validate=positive)
    recency_weight = fields.Float(load_default=0.05, validate=non_negative)
    recency_half_life_days = fields.Float(load_default=365.0, validate=positive)
    # Upper bound on the product of all prior factors.
    prior_cap = fields.Float(load_default=1.2, validate=validate.Range(min=1.0))
    # Articles the bm25s first stage passes to the full ranking (knowledge/candidates.py).
    candidates = fields.Integer(load_default=50, validate=validate.Range(min=1, max=10000))
    # Weight of the words of answer-format sentences after a question
    # ("Answer with the full name of the manager."), format words removed.
    instruction_weight = fields.Float(load_default=1.0, validate=non_negative)
    # Weight of a case's description and latest comment terms, relative to
    # its short description (1.0).
    description_weight = fields.Float(load_default=0.5, validate=non_negative)
    comment_weight = fields.Float(load_default=0.5, validate=non_negative)
    # Weight of the case's category and product as extra query terms.
    category_weight = fields.Float(load_default=0.3, validate=non_negative)
    product_weight = fields.Float(load_default=0.3, validate=non_negative)


class JobsSchema(SectionSchema):
    backend = fields.String(load_default="thread", validate=validate.OneOf(["thread", "rq"]))
    redis_url = fields.String(load_default="redis://127.0.0.1:6379/0", validate=_validate_redis_url)
    enabled = fields.Boolean(load_default=True)
    # Seconds an rq job may run before the worker stops it. A full knowledge sync must fit.
    job_timeout = fields.Integer(load_default=1800, validate=validate.Range(min=10, max=86400))


class LoggingSchema(SectionSchema):
    level = fields.String(
        load_default="INFO", validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"])
    )
    format = fields.String(load_default="text", validate=validate.OneOf(["text", "json"]))


class SettingsSchema(SectionSchema):
    server = _nested(ServerSchema)
    platform = _nested(PlatformSchema)
    instance = _nested(InstanceSchema)
    auth = _nested(AuthSchema)
    store = _nested(StoreSchema)
    index = _nested(IndexSchema)
    knowledge = _nested(KnowledgeSchema)
    ranking = _nested(RankingSchema)
    jobs = _nested(JobsSchema)
    logging = _nested(LoggingSchema)


Settings = Section


# Settings whose value names a file that must be readable when set. Secret
# files (``<secret>_file``) are read by the loader and need no entry here.
FILE_PATHS = [
    (("auth", "jwt_public_key_file"), "a PEM file with the platform's JWT public key or certificate"),
]

OVERRIDES_SOURCE = "the overrides"


class _Load:
    """The merged data of one load, the source of each value and the problems found so far."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        # Maps a key path to the source that set it: a file path, an
        # environment variable name or OVERRIDES_SOURCE.
        self.sources: dict[tuple[str, ...], str] = {}
        self.used_sources: list[str] = []
        self.problems: dict[str, str] = {}

    def add_layer(self, layer: dict[str, Any], sources: dict[tuple[str, ...], str], label: str) -> None:
        _merge_layer(self, layer, sources, label)
        if layer and label not in self.used_sources:
            self.used_sources.append(label)

    def source_of(self, key_path: tuple[str, ...]) -> str | None:
        """Return the source of a key path or of its nearest parent (a list item has none of its own)."""
        for end in range(len(key_path), 0, -1):
            source = self.sources.get(key_path[:end])
            if source:
                return source
        return None

    def origin(self, key_path: tuple[str, ...]) -> str:
        source = self.source_of(key_path)
        return f" from {source}" if source else ""


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    check_files: bool = True,
) -> Section:
    """Load, merge and validate settings from a YAML file, the environment and overrides.

    ``path`` defaults to ``$INWARD_CONFIG`` when set. ``overrides`` is a nested
    mapping applied last (tests and the demo use it). With ``check_files``
    false, the files named in ``FILE_PATHS`` are not checked. Raises one
    ``ConfigError`` listing every problem found: secrets written in the file,
    unreadable secret files and invalid values, each with its key path, its
    value, where the value came from and what is expected.
    """
    environ = os.environ if environ is None else environ
    if path is None and environ.get(CONFIG_FILE_ENV):
        path = environ[CONFIG_FILE_ENV]
    load = _Load()
    if path:
        file_data = _read_file(Path(path))
        # Named even when empty or holding only rejected secrets, because the user passed it.
        load.used_sources.append(str(path))
        _reject_secrets_in_file(load, file_data, str(path))
        load.add_layer(file_data, _leaf_sources(file_data, str(path)), str(path))
    env_data, env_sources = _read_environment(environ)
    load.add_layer(env_data, env_sources, "the environment")
    if overrides:
        override_data = _plain(overrides)
        load.add_layer(override_data, _leaf_sources(override_data, OVERRIDES_SOURCE), OVERRIDES_SOURCE)
    _read_secret_files(load)
    if check_files:
        _check_files(load)

    try:
        settings = SettingsSchema().load(load.data)
    except ValidationError as error:
        load.problems.update(_describe_errors(error.normalized_messages(), load))
        settings = None
    if load.problems:
        raise _config_error(load)
    return settings


def _config_error(load: _Load) -> ConfigError:
    problems = dict(sorted(load.problems.items()))
    lines = "\n".join(f"  {key}: {message}" for key, message in problems.items())
    if load.used_sources:
        header = f"Invalid settings from {' and '.join(load.used_sources)}:"
    else:
        header = "Invalid settings:"
    return ConfigError(f"{header}\n{lines}", errors=problems)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Settings file {path} not found; pass an existing YAML file.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"Settings file {path} is not valid YAML{where}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"Settings file {path} must contain a mapping of sections, got {type(data).__name__}."
        )
    return data


def _secret_paths(schema: Schema, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, field in schema.fields.items():
        if isinstance(field, SecretField):
            paths.append(prefix + (name,))
        elif isinstance(field, fields.Nested):
            paths.extend(_secret_paths(field.schema, prefix + (name,)))
    return paths


SECRET_PATHS = _secret_paths(SettingsSchema())


def _env_name(key_path: tuple[str, ...]) -> str:
    return ENV_PREFIX + ENV_SEPARATOR.join(part.upper() for part in key_path)


def _reject_secrets_in_file(load: _Load, data: dict[str, Any], path: str) -> None:
    """Record each secret written in the settings file as a problem and drop it unread."""
    for key_path in SECRET_PATHS:
        section = _get_path(data, key_path[:-1])
        if isinstance(section, dict) and key_path[-1] in section:
            del section[key_path[-1]]
            dotted = ".".join(key_path)
            load.problems[dotted] = (
                f"secrets are not read from the settings file {path}; "
                f"set {_env_name(key_path)} or {dotted}_file instead."
            )


def _merge_layer(
    load: _Load, layer: dict[str, Any], sources: dict[tuple[str, ...], str], label: str
) -> None:
    """Merge a higher-priority layer, whose secret or ``<secret>_file`` replaces both lower ones.

    Without this, a ``password_file`` from the YAML file would be read after
    the merge and override ``INWARD_PLATFORM__PASSWORD``, so the file would
    beat the environment.
    """
    for key_path in SECRET_PATHS:
        section = _get_path(layer, key_path[:-1])
        if not isinstance(section, dict):
            continue
        name, file_key = key_path[-1], key_path[-1] + "_file"
        if name in section and file_key in section:
            dotted = ".".join(key_path)
            load.problems[dotted] = (
                f"both {dotted} and {dotted}_file are set in {label}; set only one of them."
            )
        lower = _get_path(load.data, key_path[:-1])
        if isinstance(lower, dict) and (name in section or file_key in section):
            lower.pop(name, None)
            lower.pop(file_key, None)
    _merge(load.data, layer)
    load.sources.update(sources)


def _read_secret_files(load: _Load) -> None:
    """Replace each ``<secret>_file`` key by the secret read from that file."""
    for key_path in SECRET_PATHS:
        section = _get_path(load.data, key_path[:-1])
        if not isinstance(section, dict):
            continue
        file_key = key_path[-1] + "_file"
        if file_key not in section:
            continue
        file_path = Path(str(section.pop(file_key)))
        file_key_path = key_path[:-1] + (file_key,)
        try:
            section[key_path[-1]] = Secret(file_path.read_text(encoding="utf-8").strip())
        except OSError as error:
            load.problems[".".join(file_key_path)] = (
                f"cannot read secret file {file_path} ({error.strerror}){load.origin(file_key_path)}; "
                "point it at a readable file."
            )
            continue
        load.sources[key_path] = load.source_of(file_key_path) or ""


def _check_files(load: _Load) -> None:
    """Record each setting in ``FILE_PATHS`` that names a file that cannot be read."""
    for key_path, expected in FILE_PATHS:
        value = _get_path(load.data, key_path)
        if not value or not isinstance(value, str):
            continue
        try:
            with open(value, "rb"):
                pass
        except OSError as error:
            load.problems[".".join(key_path)] = (
                f"cannot read {value} ({error.strerror}){load.origin(key_path)}; "
                f"point it at {expected}, or leave it empty."
            )


def _read_environment(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Return the nested settings from ``INWARD_*`` variables and the variable behind each key path."""
    data: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_ENV:
            continue
        parts = [part.lower() for part in name[len(ENV_PREFIX):].split(ENV_SEPARATOR)]
        # Every setting sits in a section, so a name without the separator,
        # such as INWARD_TEST_POSTGRES_URL for the test suite, is not one.
        if len(parts) < 2 or not all(parts):
            continue
        target = data
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                break
        else:
            target[parts[-1]] = _parse_env_value(value)
            sources[tuple(parts)] = name
    return data, sources


def _parse_env_value(value: str) -> Any:
    """Read lists and numbers the way YAML would, keep everything else a string."""
    if value.startswith("["):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def _leaf_sources(data: Mapping[str, Any], source: str, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Map every key path in ``data`` to ``source``; a list counts as one value."""
    sources: dict[tuple[str, ...], str] = {}
    for key, value in data.items():
        key_path = prefix + (str(key),)
        sources[key_path] = source
        if isinstance(value, Mapping):
            sources.update(_leaf_sources(value, source, key_path))
    return sources


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: _plain(value) if isinstance(value, Mapping) else value
        for key, value in values.items()
    }


def _merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _get_path(data: Any, key_path: tuple[str, ...]) -> Any:
    for part in key_path:
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            # marshmallow names a bad list item by its index.
            data = data[int(part)]
        elif isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data


def _schema_at(key_path: tuple[str, ...]) -> Schema | None:
    """Return the section schema at ``key_path``, or None when no section is there."""
    schema: Schema = SettingsSchema()
    for part in key_path:
        field = schema.fields.get(part)
        if not isinstance(field, fields.Nested):
            return None
        schema = field.schema
    return schema


def _describe_unknown_key(key_path: tuple[str, ...]) -> str:
    schema = _schema_at(key_path[:-1])
    valid_keys = list(schema.fields) if schema is not None else []
    matches = difflib.get_close_matches(key_path[-1], valid_keys, n=1)
    if matches:
        return f"unknown key; did you mean {matches[0]!r}?"
    return "unknown key; check the spelling against docs/configuration.md."


def _describe_errors(messages: Any, load: _Load, prefix: tuple[str, ...] = ()) -> dict[str, str]:
    """Flatten marshmallow's nested messages into ``key.path: message (got value from source)``."""
    problems: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, nested in messages.items():
            problems.update(_describe_errors(nested, load, prefix + (str(key),)))
        return problems
    text = " ".join(str(message) for message in messages)
    dotted = ".".join(prefix)
    source = load.source_of(prefix)
    if text == "Unknown field.":
        problems[dotted] = _describe_unknown_key(prefix) + (f" (set in {source})" if source else "")
        return problems
    value = _get_path(load.data, prefix)
    is_secret = isinstance(value, Secret) or prefix in SECRET_PATHS
    if is_secret:
        displayed = MASK
    else:
        displayed = repr(mask_url_password(value) if isinstance(value, str) else value)
    problems[dotted] = f"{text} (got {displayed}{load.origin(prefix)})"
    return problems


def settings_for_tests(*, check_files: bool = False, **overrides: Any) -> Section:
    """Build settings from defaults plus nested overrides, ignoring the environment.

    Files named by settings such as ``auth.jwt_public_key_file`` are not
    checked unless ``check_files`` is true, because tests build settings
    before writing those files, or point them at a missing file on purpose to
    test the error at the point of use.
    """
    return load_settings(None, environ={}, overrides=overrides, check_files=check_files)
