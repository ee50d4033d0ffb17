"""The ``Store``: one SQLAlchemy engine, sessions and Alembic migrations."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from inward.store.service import StoreError, get_cursor, set_cursor

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
ALEMBIC_INI = Path(__file__).parent / "alembic.ini"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
# Seconds a SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT = 15


class Store:
    """The state store behind a SQLAlchemy URL (SQLite file or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._head_revision: str | None = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session in a transaction that commits on success and rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def load_cursor(self, name: str) -> Any:
        """Return the stored cursor of sync job ``name``, or None before its first run."""
        with self.session() as session:
            return get_cursor(session, name=name)

    def save_cursor(self, name: str, cursor: Any) -> None:
        """Store the cursor of sync job ``name`` in its own transaction."""
        with self.session() as session:
            set_cursor(session, name=name, cursor=cursor)

    def upgrade(self, revision: str = "head") -> None:
        """Apply the packaged Alembic migrations up to ``revision``."""
        before = self.current_revision()
        with self.engine.begin() as connection:
            config = alembic_config(connection=connection)
            command.upgrade(config, revision)
        after = self.current_revision()
        if after != before:
            logger.info("State store at %s migrated from %s to %s", self.display_url, before or "empty", after)
        else:
            logger.info("State store at %s is up to date at %s", self.display_url, after)

    def current_revision(self) -> str | None:
        """Return the applied migration revision, or None for an empty database."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str | None:
        """Return the newest revision among the packaged migrations."""
        # The migrations ship with the package, so reading them once per process is enough.
        if self._head_revision is None:
            self._head_revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
        return self._head_revision

    def ping(self) -> bool:
        """Return whether a trivial query on the database succeeds."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            logger.warning("State store at %s is not reachable: %s", self.display_url, error)
            return False
        return True

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


def alembic_config(*, connection=None, url: str | None = None) -> Config:
    """Build an Alembic Config pointing at the packaged migrations folder."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"store.url {url!r} is not a database URL; use sqlite:///var/inward.db "
            "or postgresql+psycopg://user@host/dbname.",
            field="store.url",
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreError(
            f"store.url uses {backend!r}, which is not supported; use sqlite or postgresql+psycopg.",
            field="store.url",
        )
    if backend == "sqlite":
        return _create_sqlite_engine(parsed)
    return create_engine(parsed, pool_pre_ping=True)


def _create_sqlite_engine(parsed) -> Engine:
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

    @event.listens_for(engine, "connect")
    def _use_wal(dbapi_connection, connection_record):
        # WAL lets request threads read while a job thread writes.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine
