"""Service functions over the state store; each takes an open session.

The caller owns the transaction (``with store.session() as session``), so
several calls can commit together.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from config.errors import InwardError
from inward.store.models import Action, Event, SyncState, TokenUse, utc_now

logger = logging.getLogger(__name__)

# JSON has no datetime type, so datetimes inside a cursor are stored as
# {"__datetime__": "<ISO 8601>"} and turned back into datetimes on read.
DATETIME_TAG = "__datetime__"


class StoreError(InwardError):
    """A value cannot be stored, or a row the call needs does not exist."""


def record_event(
    session: Session,
    *,
    kind: str,
    agent_sys_id: str,
    case_table: str | None = None,
    case_sys_id: str | None = None,
    article_sys_id: str | None = None,
    rank: int | None = None,
    detail: dict[str, Any] | None = None,
) -> Event:
    """Insert one event and return it with its id."""
    if not kind:
        raise StoreError("Event kind is empty; pass a kind such as 'suggestion_shown'.")
    _check_json("detail", detail)
    event = Event(
        kind=kind,
        agent_sys_id=agent_sys_id,
        case_table=case_table,
        case_sys_id=case_sys_id,
        article_sys_id=article_sys_id,
        rank=rank,
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event


def list_events(
    session: Session,
    *,
    kind: str | None = None,
    agent_sys_id: str | None = None,
    case_sys_id: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[Event]:
    """Return events matching every given filter, oldest first."""
    statement = select(Event).order_by(Event.created_at, Event.id).limit(limit)
    if kind is not None:
        statement = statement.where(Event.kind == kind)
    if agent_sys_id is not None:
        statement = statement.where(Event.agent_sys_id == agent_sys_id)
    if case_sys_id is not None:
        statement = statement.where(Event.case_sys_id == case_sys_id)
    if since is not None:
        statement = statement.where(Event.created_at >= since)
    return list(session.scalars(statement))


def claim_action(session: Session, *, key: str, kind: str) -> tuple[Action, bool]:
    """Claim an idempotency key; return the action and whether this call created it.

    The insert skips on a unique-key conflict instead of failing, so two
    sessions claiming the same key at once get one row between them: the
    second waits for the first to commit, then reads its row.
    """
    if not key:
        raise StoreError("Action key is empty; pass the idempotency key of the action.")
    insert = _insert_for(session).values(key=key, kind=kind, status="pending", created_at=utc_now())
    # RETURNING yields a row only when this statement inserted one; rowcount
    # is not reliable for ON CONFLICT across drivers.
    inserted_id = session.execute(
        insert.on_conflict_do_nothing(index_elements=["key"]).returning(Action.id)
    ).scalar_one_or_none()
    created = inserted_id is not None
    action = session.scalars(select(Action).where(Action.key == key)).one()
    if not created:
        logger.info("Action key %s already claimed (status %s)", key, action.status)
    return action, created


def complete_action(session: Session, *, key: str, result: Any) -> Action:
    """Store the result of a claimed action and mark it done."""
    _check_json("result", result)
    action = session.scalars(select(Action).where(Action.key == key)).one_or_none()
    if action is None:
        raise StoreError(f"No action with key {key!r}; call claim_action first.", key=key)
    action.status = "done"
    action.result = result
    session.flush()
    return action


def get_cursor(session: Session, *, name: str) -> Any:
    """Return the stored cursor of sync job ``name``, or None before its first run."""
    state = session.get(SyncState, name)
    if state is None:
        return None
    return _decode_cursor(state.cursor)


def set_cursor(session: Session, *, name: str, cursor: Any) -> None:
    """Store the cursor of sync job ``name``; datetimes are kept, tuples come back as lists."""
    encoded = _encode_cursor(cursor)
    _check_json("cursor", encoded)
    state = session.get(SyncState, name)
    if state is None:
        session.add(SyncState(name=name, cursor=encoded, updated_at=utc_now()))
    else:
        state.cursor = encoded
        state.updated_at = utc_now()
    session.flush()


def bind_token(session: Session, *, jti: str, client: str, expires_at: datetime) -> bool:
    """Tie ``jti`` to ``client`` on its first use; return whether ``client`` is the bound one.

    Like ``claim_action``, the insert skips on a conflict, so two first uses
    at the same moment bind the jti to exactly one of the clients.
    """
    insert = _insert_for(session, TokenUse).values(jti=jti, client=client, expires_at=expires_at)
    session.execute(insert.on_conflict_do_nothing(index_elements=["jti"]))
    bound = session.scalars(select(TokenUse.client).where(TokenUse.jti == jti)).one()
    return bound == client


def purge_token_uses(session: Session, *, before: datetime) -> int:
    """Delete the bindings of tokens that expired before ``before``; return how many."""
    result = session.execute(delete(TokenUse).where(TokenUse.expires_at < before))
    return result.rowcount or 0


def _insert_for(session: Session, model: type = Action):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise StoreError(f"Unsupported database {dialect!r}; use SQLite or PostgreSQL.")


def _check_json(field: str, value: Any) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as error:
        raise StoreError(
            f"{field} is not JSON-serializable ({error}); pass dicts, lists, strings, numbers or None.",
            field=field,
        ) from None


def _encode_cursor(value: Any) -> Any:
    if isinstance(value, datetime):
        return {DATETIME_TAG: value.isoformat()}
    if isinstance(value, (list, tuple)):
        return [_encode_cursor(item) for item in value]
    if isinstance(value, dict):
        return {key: _encode_cursor(item) for key, item in value.items()}
    return value


def _decode_cursor(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {DATETIME_TAG}:
            return datetime.fromisoformat(value[DATETIME_TAG])
        return {key: _decode_cursor(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode_cursor(item) for item in value]
    return value
