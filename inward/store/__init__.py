"""The state store: events, idempotent actions and sync cursors (SQLAlchemy + Alembic)."""

from inward.store.engine import Store, alembic_config
from inward.store.models import Action, Event, SyncState
from inward.store.service import (
    StoreError,
    claim_action,
    complete_action,
    get_cursor,
    list_events,
    record_event,
    set_cursor,
)

__all__ = [
    "Action",
    "Event",
    "Store",
    "StoreError",
    "SyncState",
    "alembic_config",
    "claim_action",
    "complete_action",
    "get_cursor",
    "list_events",
    "record_event",
    "set_cursor",
]
