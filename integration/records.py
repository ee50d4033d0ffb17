"""The records layer: paging, single-record access and writes on any table.

Lists page with a keyset, never with ``sysparm_offset``: each page requests
the rows after the last one seen in a unique sort order. An offset would skip
or repeat rows when rows are inserted or deleted while paging. Paging
stops on an empty page only. A short page proves nothing, because the
platform applies ``sysparm_limit`` before its ACL filtering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from integration.errors import InvalidQueryValue, RecordNotFound, UnexpectedResponse
from integration.normalize import normalize_record
from integration.queries import Query, render_value, validate_field_name, validate_sys_id
from integration.transport import Transport, validate_table

logger = logging.getLogger(__name__)

T = TypeVar("T")
Cursor = tuple[datetime | None, str]
QueryLike = Query | str | None


class Records:
    """Read and write records of any table through a ``Transport``."""

    def __init__(self, transport: Transport, *, page_size: int | None = None) -> None:
        self.transport = transport
        self.page_size = page_size or transport.page_size

    def list(
        self,
        table: str,
        query: QueryLike = None,
        *,
        fields: Sequence[str] | None = None,
        page_size: int | None = None,
        display: bool = False,
    ) -> Iterator[dict]:
        """Yield every record of ``table`` matching ``query``, in sys_id order."""
        groups = _query_groups(query)

        def after(row: dict | None) -> list[str]:
            return [] if row is None else [f"sys_id>{row['sys_id']}"]

        yield from self._page(table, groups, after, ["ORDERBYsys_id"], _sort_key_by_id,
                              fields, ("sys_id",), page_size, display)

    def list_updated_since(
        self,
        table: str,
        cursor: Cursor | None,
        query: QueryLike = None,
        *,
        fields: Sequence[str] | None = None,
        page_size: int | None = None,
        display: bool = False,
    ) -> Iterator[dict]:
        """Yield records updated after ``cursor``, ordered by (sys_updated_on, sys_id).

        ``cursor`` is the ``(sys_updated_on, sys_id)`` of the last record
        already processed, or None to start from the oldest. Many rows can
        share one ``sys_updated_on`` second, so the sys_id breaks the tie.
        """
        groups = _query_groups(query)
        start = _check_cursor(cursor)

        def after(row: dict | None) -> list[str]:
            if row is None:
                return _cursor_groups(*start) if start else []
            return _cursor_groups(row["sys_updated_on"], row["sys_id"])

        yield from self._page(table, groups, after, ["ORDERBYsys_updated_on", "ORDERBYsys_id"],
                              _sort_key_by_update, fields, ("sys_id", "sys_updated_on"),
                              page_size, display)

    def first(
        self,
        table: str,
        query: Query,
        *,
        fields: Sequence[str] | None = None,
        display: bool = False,
    ) -> dict | None:
        """Return the first record matching ``query`` in the query's own order, or None."""
        rows = self.transport.get_records(
            table, str(query), limit=1, fields=_fields(fields, ()), display_value=_mode(display)
        )
        return normalize_record(table, rows[0], display=display) if rows else None

    def get(
        self,
        table: str,
        sys_id: str,
        *,
        must_exist: bool = True,
        fields: Sequence[str] | None = None,
        display: bool = False,
    ) -> dict | None:
        """Return the record with ``sys_id``; None or ``RecordNotFound`` when it is missing."""
        sys_id = validate_sys_id(sys_id)
        rows = self.transport.get_records(
            table, f"sys_id={sys_id}", limit=1, fields=_fields(fields, ("sys_id",)),
            display_value=_mode(display),
        )
        record = normalize_record(table, rows[0], display=display) if rows else None
        if record is not None and record.get("sys_id") != sys_id:
            raise UnexpectedResponse(
                f"The platform returned record {record.get('sys_id')!r} for a lookup of "
                f"{table} {sys_id}; it may have dropped the sys_id condition.",
                table=table,
                sys_id=sys_id,
            )
        if record is None and must_exist:
            raise RecordNotFound(
                f"No {table} record has sys_id {sys_id}, or an ACL hides it from the "
                "integration user; check the sys_id.",
                table=table,
                sys_id=sys_id,
            )
        return record

    def create(
        self,
        table: str,
        values: Mapping[str, object],
        *,
        recover: Callable[[], dict | None] | None = None,
    ) -> dict:
        """Insert one record and return it normalized.

        ``recover`` makes the insert safe to retry: before any retry it is
        called, and a record it returns (created by an earlier attempt) is
        returned instead of inserting again. Without it nothing is retried.
        """
        row = self.transport.create_record(table, _payload(values), recover=_raw(recover))
        return _normalized(table, row)

    def patch(
        self,
        table: str,
        sys_id: str,
        values: Mapping[str, object],
        *,
        recover: Callable[[], dict | None] | None = None,
    ) -> dict:
        """Update the given fields of one record and return it normalized; retried like create."""
        row = self.transport.patch_record(table, sys_id, _payload(values), recover=_raw(recover))
        return _normalized(table, row)

    def _page(
        self,
        table: str,
        groups: list[str],
        after: Callable[[dict | None], list[str]],
        ordering: list[str],
        sort_key: Callable[[dict], tuple],
        fields: Sequence[str] | None,
        key_fields: tuple[str, ...],
        page_size: int | None,
        display: bool,
    ) -> Iterator[dict]:
        """Yield pages of rows, each asking for rows after the last row of the one before."""
        validate_table(table)
        limit = self.page_size if page_size is None else page_size
        requested_fields = _fields(fields, key_fields)
        last: dict | None = None
        while True:
            query = compose_query(groups, after(last), ordering)
            rows = self.transport.get_records(
                table, query, limit=limit, fields=requested_fields, display_value=_mode(display)
            )
            if not rows:
                # NOTE: a page whose rows an ACL hides entirely also comes back
                # empty and ends the listing early, because the platform gives
                # no way to tell it from the end. The integration user should
                # be able to read every row it lists.
                return
            for row in rows:
                record = normalize_record(table, row, display=display)
                _check_order(table, last, record, sort_key)
                last = record
                yield record


def compose_query(base_groups: list[str], cursor_groups: list[str], ordering: list[str]) -> str:
    """AND every ``^NQ`` group of the base query with every cursor group, then add ordering.

    ``^NQ`` ORs whole groups, so a cursor condition appended once would bind
    only to the last group; it is repeated inside each group instead.
    """
    combined = []
    for base in base_groups or [""]:
        for cursor in cursor_groups or [""]:
            combined.append("^".join(part for part in (base, cursor) if part))
    body = "^NQ".join(group for group in combined if group)
    return "^".join(part for part in [body, *ordering] if part)


def _cursor_groups(updated_on: datetime | None, sys_id: str) -> list[str]:
    """Return the ``^NQ`` groups for rows after ``(updated_on, sys_id)``."""
    if updated_on is None:
        # Empty timestamps sort first; continue among them, then take the rest.
        id_part = [f"sys_id>{sys_id}"] if sys_id else []
        return ["^".join(["sys_updated_onISEMPTY", *id_part]), "sys_updated_onISNOTEMPTY"]
    moment = render_value("sys_updated_on", updated_on)
    later = f"sys_updated_on>{moment}"
    if not sys_id:
        return [f"sys_updated_on>={moment}"]
    return [later, f"sys_updated_on={moment}^sys_id>{sys_id}"]


def _check_cursor(cursor: Cursor | None) -> Cursor | None:
    if cursor is None:
        return None
    if not isinstance(cursor, tuple | list) or len(cursor) != 2:
        raise InvalidQueryValue(
            f"Invalid cursor {cursor!r}: expected (sys_updated_on, sys_id), for example "
            "(datetime(2024, 5, 1, tzinfo=timezone.utc), ''), or None to start from the oldest.",
            field="cursor",
        )
    updated_on, sys_id = cursor
    if updated_on is not None:
        render_value("sys_updated_on", updated_on)
    if sys_id:
        validate_sys_id(sys_id, field="cursor sys_id")
    if updated_on is None and not sys_id:
        return None
    return (updated_on, sys_id or "")


def _query_groups(query: QueryLike) -> list[str]:
    """Return the ``^NQ`` groups of ``query``, rejecting any ordering of its own."""
    if query is None:
        return []
    if isinstance(query, Query):
        if query.ordering:
            raise InvalidQueryValue(
                f"The query {str(query)!r} sets an order, but paging orders the rows itself; "
                "remove order_by() from it.",
                field="query",
            )
        return query.groups
    if isinstance(query, str):
        # NOTE: a plain string is trusted as written; build user input with Query.
        if "ORDERBY" in query:
            raise InvalidQueryValue(
                f"The query {query!r} sets an order, but paging orders the rows itself; "
                "remove the ORDERBY terms.",
                field="query",
            )
        return [group for group in query.split("^NQ") if group]
    raise InvalidQueryValue(
        f"Invalid query {query!r}: pass a Query, an encoded query string or None.",
        field="query",
    )


def _fields(fields: Sequence[str] | None, required: tuple[str, ...]) -> list[str]:
    if not fields:
        return []
    if isinstance(fields, str):
        raise InvalidQueryValue(
            f"Invalid fields {fields!r}: pass a list of field names, not one string.",
            field="fields",
        )
    names = [validate_field_name(name) for name in fields]
    return names + [name for name in required if name not in names]


def _mode(display: bool) -> bool | str:
    # "all" sends raw values plus display values; raw values keep datetimes in UTC.
    return "all" if display else False


def _sort_key_by_id(record: dict) -> tuple:
    return (record.get("sys_id") or "",)


def _sort_key_by_update(record: dict) -> tuple:
    updated_on = record.get("sys_updated_on")
    return (updated_on is not None, updated_on or datetime.min, record.get("sys_id") or "")


def _check_order(
    table: str, last: dict | None, record: dict, sort_key: Callable[[dict], tuple]
) -> None:
    """Raise when a page does not move past the last row, which would page forever."""
    if last is not None and not sort_key(record) > sort_key(last):
        raise UnexpectedResponse(
            f"The platform returned {table} rows out of order (sys_id {record.get('sys_id')} "
            f"after {last.get('sys_id')}), so paging cannot continue safely; check that the "
            "table allows ORDERBY on sys_id and sys_updated_on.",
            table=table,
        )


def _payload(values: Mapping[str, object]) -> dict[str, str]:
    """Render write values as the strings the Table API stores."""
    payload = {}
    for field, value in values.items():
        validate_field_name(field)
        if isinstance(value, bool):
            payload[field] = "true" if value else "false"
        elif isinstance(value, datetime):
            payload[field] = render_value(field, value)
        elif value is None:
            payload[field] = ""
        else:
            payload[field] = str(value)
    return payload


class _Recovered:
    """A record returned by a recovery check, already normalized."""

    def __init__(self, record: dict) -> None:
        self.record = record


def _normalized(table: str, row: object) -> dict:
    if isinstance(row, _Recovered):
        return row.record
    return normalize_record(table, row)


def _raw(recover: Callable[[], dict | None] | None) -> Callable[[], _Recovered | None] | None:
    if recover is None:
        return None

    def call() -> _Recovered | None:
        record = recover()
        return None if record is None else _Recovered(record)

    return call
