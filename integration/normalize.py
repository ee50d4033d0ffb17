"""Turn Table API rows into plain Python values, in one place.

The platform sends every value as a JSON string (or, for a field with no
value, sometimes ``null``). References come in four shapes depending on
``sysparm_display_value`` and ``sysparm_exclude_reference_link``:

==================================  ======================================
shape                               sent when
==================================  ======================================
``"<sys_id>"``                      display_value=false, links excluded
``{"link", "value"}``               display_value=false (the default)
``{"display_value", "value", ...}`` display_value=all
``{"display_value", "link"}``       display_value=true (no sys_id, so it
                                    is taken from the end of the link)
==================================  ======================================

Which columns are booleans or dates cannot be inferred from the text alone
(a short description may read "true"), so their types are declared per
table below. Undeclared columns stay strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timezone
from enum import Enum
from urllib.parse import urlsplit

from integration.errors import UnexpectedResponse

DISPLAY_SUFFIX = "__display"


class FieldType(Enum):
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"


B, DT, D = FieldType.BOOLEAN, FieldType.DATETIME, FieldType.DATE

# Columns every table has.
COMMON_TYPES: dict[str, FieldType] = {"sys_created_on": DT, "sys_updated_on": DT, "active": B}

_TASK_TYPES = {
    "opened_at": DT,
    "closed_at": DT,
    "resolved_at": DT,
    "sla_due": DT,
    "due_date": DT,
    "knowledge": B,
    "made_sla": B,
}

TABLE_TYPES: dict[str, dict[str, FieldType]] = {
    "task": _TASK_TYPES,
    "incident": _TASK_TYPES,
    "sn_customerservice_case": _TASK_TYPES,
    "problem": _TASK_TYPES,
    "change_request": {**_TASK_TYPES, "start_date": DT, "end_date": DT},
    "kb_knowledge": {
        "valid_to": D,
        "published": D,
        "retired": D,
        "scheduled_publish_date": DT,
        "flagged": B,
        "latest": B,
        "direct": B,
        "disable_commenting": B,
        "disable_suggesting": B,
        "display_attachments": B,
    },
    "kb_knowledge_base": {
        "disable_commenting": B,
        "disable_rating": B,
        "disable_mark_as_helpful": B,
        "disable_suggesting": B,
        "disable_category_editing": B,
        "enable_blocks": B,
    },
    "user_criteria": {"match_all": B, "advanced": B},
    "sys_user": {"locked_out": B, "vip": B, "web_service_access_only": B,
                 "internal_integration_user": B, "last_login_time": DT},
    "sys_user_has_role": {"inherited": B},
    "kb_feedback": {"flagged": B, "resolved": B},
    "kb_use": {"viewed": B, "used": B},
}


def field_type(table: str, field: str) -> FieldType | None:
    """Return the declared type of ``table.field``, or None for a string column."""
    return TABLE_TYPES.get(table, {}).get(field) or COMMON_TYPES.get(field)


def normalize_record(table: str, row: Mapping[str, object], *, display: bool = False) -> dict:
    """Return ``row`` with references as sys_ids and typed columns converted.

    With ``display`` true, each display value the platform sent is kept under
    ``<field>__display``.
    """
    record: dict[str, object] = {}
    for field, raw in row.items():
        value = raw
        if isinstance(raw, Mapping):
            value = reference_sys_id(raw)
            if display and "display_value" in raw:
                record[field + DISPLAY_SUFFIX] = _text(raw["display_value"])
        record[field] = normalize_value(table, field, value)
    return record


def reference_sys_id(value: Mapping[str, object]) -> str:
    """Return the sys_id inside a reference object, from ``value`` or else from ``link``."""
    if value.get("value") is not None:
        return _text(value["value"])
    link = value.get("link")
    if isinstance(link, str) and link:
        return urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]
    return ""


def normalize_value(table: str, field: str, value: object) -> object:
    """Convert one raw value by the column's declared type; strings stay strings."""
    kind = field_type(table, field)
    if kind is FieldType.BOOLEAN:
        return parse_boolean(table, field, value)
    if kind is FieldType.DATETIME:
        return parse_datetime(table, field, value)
    if kind is FieldType.DATE:
        return parse_date(table, field, value)
    return _text(value)


def parse_boolean(table: str, field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text in {"true", "1"}:
        return True
    if text in {"false", "0", ""}:
        return False
    raise _unexpected(table, field, value, "a boolean ('true' or 'false')")


def parse_datetime(table: str, field: str, value: object) -> datetime | None:
    text = _text(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise _unexpected(table, field, value, "a UTC date-time 'YYYY-MM-DD HH:MM:SS'") from None
    # Raw glide_date_time values are stored and sent in UTC.
    return parsed.replace(tzinfo=timezone.utc)


def parse_date(table: str, field: str, value: object) -> date | None:
    text = _text(value).strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise _unexpected(table, field, value, "a date 'YYYY-MM-DD'") from None


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _unexpected(table: str, field: str, value: object, expected: str) -> UnexpectedResponse:
    return UnexpectedResponse(
        f"The platform sent {value!r} for {table}.{field}, expected {expected}; "
        "check that the integration user reads raw values (sysparm_display_value=false).",
        table=table,
        field=field,
    )
