"""The state store: events, idempotent actions, sync cursors and token bindings (SQLAlchemy + Alembic)."""

from inward.store.engine import Store, alembic_config
from inward.store.models import Action, Event, SyncState, TokenUse
from inward.store.service import (
    StoreError,
    bind_token,
    claim_action,
    complete_action,
    get_cursor,
    list_events,
    purge_token_uses,
    record_event,
    set_cursor,
)

__all__ = [
    "Action",
    "Event",
    "Store",
    "StoreError",
    "SyncState",
    "TokenUse",
    "alembic_config",
    "bind_token",
    "claim_action",
    "complete_action",
    "get_cursor",
    "list_events",
    "purge_token_uses",
    "record_event",
    "set_cursor",
]
