"""Business rules the instance applies on every write, as the platform's defaults do."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import Any

from integration.instance import catalog

logger = logging.getLogger(__name__)

# The platform's default incident priority lookup, (impact, urgency) -> priority,
# from 1/1 (1 - Critical) to 3/3 (5 - Planning).
PRIORITY_MATRIX = {
    ("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2",
    ("1", "3"): "3", ("2", "2"): "3", ("3", "1"): "3",
    ("2", "3"): "4", ("3", "2"): "4", ("3", "3"): "5",
}


def to_text(value: Any) -> str:
    """Convert a written value to the string the Table API would store.

    Booleans become "true"/"false", None becomes "", datetimes become UTC
    ``YYYY-MM-DD HH:MM:SS`` (a naive one is taken as UTC), and a reference
    object (``{"value": ..., "link": ...}``) becomes its value.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value.astimezone(timezone.utc) if value.tzinfo else value
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return to_text(value.get("value", ""))
    if isinstance(value, (list, tuple)):
        return ",".join(to_text(item) for item in value)
    return str(value)


def split_changes(table: str, values: Mapping[str, Any], *,
                  keep_system: bool) -> tuple[dict, dict, str | None]:
    """Split written values into column changes, journal entries and a password.

    Unknown fields are ignored, as the Table API ignores them. ``sys_*`` fields
    other than sys_id are kept only when ``keep_system`` is true (direct store
    access and imports), because the Table API does not let clients set them.
    """
    known = catalog.fields_of(table)
    changes: dict[str, str] = {}
    journal: dict[str, str] = {}
    password: str | None = None
    ignored = []
    for name, value in values.items():
        field_def = known.get(name)
        # A client may choose the sys_id of a new record, but no other sys_* field.
        system_field = name.startswith("sys_") and name != "sys_id"
        if field_def is None or (system_field and not keep_system):
            ignored.append(name)
        elif field_def.type == catalog.JOURNAL:
            text = to_text(value)
            if text:
                journal[name] = text
        elif field_def.type == catalog.PASSWORD:
            password = to_text(value)
        else:
            changes[name] = to_text(value)
    if ignored:
        logger.debug("Ignored fields written to %s: %s", table, ", ".join(sorted(ignored)))
    return changes, journal, password


# States that close a record, so the platform's rules set active to false.
INACTIVE_STATES = {"incident": {"7", "8"}, "sn_customerservice_case": {"3", "7"}}


def derive_fields(class_name: str, record: dict[str, str], changes: Mapping[str, str], *,
                  inserting: bool) -> None:
    """Recompute fields that depend on others: priority, incident_state, active and a user's name."""
    if catalog.is_instance_of(class_name, "incident"):
        _derive_incident(record, changes, inserting=inserting)
    if "state" in changes and "active" not in changes:
        for table, closed in INACTIVE_STATES.items():
            if catalog.is_instance_of(class_name, table):
                record["active"] = "false" if record["state"] in closed else "true"
    if catalog.is_instance_of(class_name, "sys_user") and not record.get("name"):
        full_name = f"{record.get('first_name', '')} {record.get('last_name', '')}".strip()
        record["name"] = full_name


def _derive_incident(record: dict[str, str], changes: Mapping[str, str], *, inserting: bool) -> None:
    urgency_changed = bool({"impact", "urgency"} & set(changes))
    if urgency_changed or (inserting and "priority" not in changes):
        key = (record.get("impact", ""), record.get("urgency", ""))
        if key in PRIORITY_MATRIX:
            record["priority"] = PRIORITY_MATRIX[key]
    if "state" in changes and "incident_state" not in changes:
        record["incident_state"] = record["state"]
