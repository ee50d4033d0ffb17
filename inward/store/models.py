"""Tables of the state store: events, idempotent actions and sync cursors."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back as an aware datetime.

    SQLite has no time zone type and returns naive values, so naive values
    read from it are marked as UTC here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; pass an aware datetime in UTC")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=timezone.utc)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, Any: JSON}


class Event(Base):
    """One thing an agent did or saw: a suggestion shown, an article attached, a rating."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    agent_sys_id: Mapped[str] = mapped_column(String(32), index=True)
    case_table: Mapped[str | None] = mapped_column(String(80))
    case_sys_id: Mapped[str | None] = mapped_column(String(32), index=True)
    article_sys_id: Mapped[str | None] = mapped_column(String(32), index=True)
    rank: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)


class Action(Base):
    """A side effect guarded by an idempotency key, so a retry never repeats it."""

    __tablename__ = "actions"
    __table_args__ = (UniqueConstraint("key", name="uq_actions_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    # pending until complete_action stores the result, then done.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class TokenUse(Base):
    """The client a token's jti was first used from, kept until the token expires."""

    __tablename__ = "token_uses"

    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 hex of the client's address and User-Agent, never the raw values.
    client: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SyncState(Base):
    """The resume point of one sync job, for example the knowledge sync cursor."""

    __tablename__ = "sync_state"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    cursor: Mapped[Any] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)
