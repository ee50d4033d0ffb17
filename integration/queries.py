"""A safe builder for the platform's encoded queries (``sysparm_query``).

The Table API joins conditions with ``^`` (AND), ``^OR`` and ``^NQ`` (OR
between whole groups), and evaluates a value that starts with
``javascript:`` as server-side script. A value that carried any of these
would change the meaning of the query, so every field name and value is
checked here and rejected with ``InvalidQueryValue`` before a request is
built. The platform also silently drops conditions on unknown fields and
may then return every row, which is why field names are checked against a
strict pattern as well.

Example::

    query = Query().equals("active", True).like("short_description", "vpn")
    str(query)  # 'active=true^short_descriptionLIKEvpn'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timezone

from integration.errors import InvalidQueryValue

FIELD_NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")
SYS_ID = re.compile(r"[0-9a-f]{32}")
PLATFORM_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Characters that end a condition or a line in an encoded query.
_FORBIDDEN = {"^": "'^'", "\n": "a newline", "\r": "a carriage return"}


def validate_sys_id(value: object, *, field: str = "sys_id") -> str:
    """Check that ``value`` is a sys_id (32 lowercase hex characters) and return it."""
    if isinstance(value, str) and SYS_ID.fullmatch(value):
        return value
    raise InvalidQueryValue(
        f"Invalid {field} {value!r}: a sys_id is 32 lowercase hexadecimal characters; "
        "copy it from the record's sys_id field.",
        field=field,
        value=value,
    )


def validate_field_name(field: object) -> str:
    """Check that ``field`` is a column name, optionally dot-walked, and return it."""
    if isinstance(field, str) and FIELD_NAME.fullmatch(field):
        return field
    raise InvalidQueryValue(
        f"Invalid field name {field!r}: use lowercase letters, digits and '_', "
        "with '.' only between names (for example caller_id.email).",
        field=field,
    )


def render_value(field: str, value: object, *, in_list: bool = False) -> str:
    """Render one query value as text, or raise ``InvalidQueryValue`` naming the field."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return _render_datetime(field, value)
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise InvalidQueryValue(
            f"Invalid value {value!r} for field {field!r}: expected str, int, bool, date "
            f"or datetime, got {type(value).__name__}; use is_empty() to match an empty field.",
            field=field,
            value=repr(value),
        )
    _check_text(field, value, in_list=in_list)
    return value


def _render_datetime(field: str, value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidQueryValue(
            f"Invalid value {value.isoformat()} for field {field!r}: the datetime has no "
            "time zone; pass an aware datetime such as datetime.now(timezone.utc).",
            field=field,
            value=value.isoformat(),
        )
    # The Table API reads date-time literals as UTC, with second precision.
    return value.astimezone(timezone.utc).strftime(PLATFORM_DATETIME_FORMAT)


def _check_text(field: str, value: str, *, in_list: bool) -> None:
    for character, name in _FORBIDDEN.items():
        if character in value:
            _reject(field, value, f"it contains {name}, which would change the encoded query")
    if in_list and "," in value:
        _reject(field, value, "it contains ',', which separates the values of an IN list")
    if value.strip().lower().startswith("javascript:"):
        _reject(field, value, "a value starting with 'javascript:' runs as script on the platform")


def _reject(field: str, value: str, reason: str) -> None:
    raise InvalidQueryValue(
        f"Invalid value {value!r} for field {field!r}: {reason}; remove that part of the value.",
        field=field,
        value=value,
    )


class Query:
    """An encoded query built from validated conditions.

    Conditions are ANDed. ``or_*`` methods tie a condition to the one just
    before it (the platform's ``^OR``), and ``new_query()`` starts a new group
    ORed with the earlier ones (``^NQ``). Each method returns the query so
    calls can be chained.
    """

    def __init__(self) -> None:
        self._groups: list[list[str]] = [[]]
        self._ordering: list[str] = []

    # Conditions ANDed with the current group.

    def equals(self, field: str, value: object) -> Query:
        return self._add("^", field, "=", value)

    def not_equals(self, field: str, value: object) -> Query:
        return self._add("^", field, "!=", value)

    def like(self, field: str, value: object) -> Query:
        return self._add("^", field, "LIKE", value)

    def not_like(self, field: str, value: object) -> Query:
        return self._add("^", field, "NOT LIKE", value)

    def starts_with(self, field: str, value: object) -> Query:
        return self._add("^", field, "STARTSWITH", value)

    def greater_than(self, field: str, value: object) -> Query:
        return self._add("^", field, ">", value)

    def greater_or_equal(self, field: str, value: object) -> Query:
        return self._add("^", field, ">=", value)

    def less_than(self, field: str, value: object) -> Query:
        return self._add("^", field, "<", value)

    def less_or_equal(self, field: str, value: object) -> Query:
        return self._add("^", field, "<=", value)

    def in_(self, field: str, values: Iterable[object]) -> Query:
        return self._add_list("^", field, "IN", values)

    def not_in(self, field: str, values: Iterable[object]) -> Query:
        return self._add_list("^", field, "NOT IN", values)

    def is_empty(self, field: str) -> Query:
        return self._add_bare("^", field, "ISEMPTY")

    def is_not_empty(self, field: str) -> Query:
        return self._add_bare("^", field, "ISNOTEMPTY")

    # Conditions ORed with the condition just before them.

    def or_equals(self, field: str, value: object) -> Query:
        return self._add("^OR", field, "=", value)

    def or_like(self, field: str, value: object) -> Query:
        return self._add("^OR", field, "LIKE", value)

    def or_in(self, field: str, values: Iterable[object]) -> Query:
        return self._add_list("^OR", field, "IN", values)

    # Groups and ordering.

    def new_query(self) -> Query:
        """Start a new group of conditions, ORed with the groups before it (``^NQ``)."""
        if not self._groups[-1]:
            raise InvalidQueryValue(
                "Cannot start a new query group after an empty one; add a condition first."
            )
        self._groups.append([])
        return self

    def order_by(self, field: str) -> Query:
        self._ordering.append("ORDERBY" + validate_field_name(field))
        return self

    def order_by_desc(self, field: str) -> Query:
        self._ordering.append("ORDERBYDESC" + validate_field_name(field))
        return self

    @property
    def groups(self) -> list[str]:
        """The encoded text of each non-empty ``^NQ`` group, without ordering."""
        return ["".join(group).removeprefix("^") for group in self._groups if group]

    @property
    def ordering(self) -> list[str]:
        """The ``ORDERBY``/``ORDERBYDESC`` terms, in the order they were added."""
        return list(self._ordering)

    def __str__(self) -> str:
        return "^".join(part for part in ["^NQ".join(self.groups), *self._ordering] if part)

    def __repr__(self) -> str:
        return f"Query({str(self)!r})"

    def __bool__(self) -> bool:
        return bool(self.groups or self._ordering)

    def _add(self, joiner: str, field: str, operator: str, value: object) -> Query:
        field = validate_field_name(field)
        return self._append(joiner, field + operator + render_value(field, value))

    def _add_list(self, joiner: str, field: str, operator: str, values: Iterable[object]) -> Query:
        field = validate_field_name(field)
        if isinstance(values, str | bytes):
            raise InvalidQueryValue(
                f"Invalid value {values!r} for field {field!r}: {operator} needs a list of "
                "values, not one string; pass a list such as [value].",
                field=field,
                value=values,
            )
        rendered = [render_value(field, value, in_list=True) for value in values]
        if not rendered:
            raise InvalidQueryValue(
                f"Invalid value [] for field {field!r}: {operator} needs at least one value.",
                field=field,
            )
        return self._append(joiner, field + operator + ",".join(rendered))

    def _add_bare(self, joiner: str, field: str, operator: str) -> Query:
        return self._append(joiner, validate_field_name(field) + operator)

    def _append(self, joiner: str, condition: str) -> Query:
        group = self._groups[-1]
        if joiner == "^OR" and not group:
            raise InvalidQueryValue(
                f"Cannot OR the condition {condition!r} with nothing; add a condition before it."
            )
        group.append(joiner + condition)
        return self
