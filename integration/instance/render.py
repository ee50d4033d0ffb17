"""Turn stored records into Table API response objects.

Three modes, chosen by ``sysparm_display_value``:

- ``false``: raw values; a reference is ``{"link", "value"}``;
- ``true``: display values (choice labels, datetimes in the user's time
  zone); a reference is ``{"display_value", "link"}``;
- ``all``: every field is ``{"display_value", "value"}`` and a reference also
  carries ``link``.

``sysparm_exclude_reference_link=true`` drops ``link``, and a reference in
``false``/``true`` mode then becomes a plain string. An empty reference is
``""`` in every mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from integration.instance import catalog, dates
from integration.instance.storage import InstanceStore, ReferenceReader

logger = logging.getLogger(__name__)

MODES = ("false", "true", "all")


@dataclass(frozen=True)
class RenderOptions:
    """The response-shaping parameters of one request."""

    mode: str = "false"
    exclude_reference_link: bool = False
    fields: tuple[str, ...] = ()
    base_url: str = "http://127.0.0.1/"
    time_zone: str = "UTC"


class Renderer:
    """Renders records of one table for one request."""

    def __init__(self, store: InstanceStore, table: str, options: RenderOptions) -> None:
        self._store = store
        self._table = table
        self._options = options
        self._reader = ReferenceReader(store, table)
        self._columns = self._choose_columns()

    def _choose_columns(self) -> list[tuple[str, catalog.Field]]:
        """Pick the requested fields, ignoring unknown names, or every readable field."""
        if self._options.fields:
            chosen = []
            for name in self._options.fields:
                field_def = catalog.resolve_field(self._table, name)
                if field_def is not None and field_def.type != catalog.PASSWORD:
                    chosen.append((name, field_def))
            return chosen
        return [(name, field_def) for name, field_def in catalog.fields_of(self._table).items()
                if field_def.type != catalog.PASSWORD]

    def render(self, record: dict) -> dict:
        """Return the response object of one record."""
        return {name: self._value(field_def, self._reader.read(record, name))
                for name, field_def in self._columns}

    def _value(self, field_def: catalog.Field, raw: str) -> object:
        if field_def.type == catalog.REFERENCE:
            return self._reference(field_def.reference, raw)
        if field_def.type == catalog.JOURNAL:
            raw = ""
        mode = self._options.mode
        if mode == "false":
            return raw
        display = self._display(field_def, raw)
        if mode == "true":
            return display
        return {"display_value": display, "value": raw}

    def _reference(self, table: str, sys_id: str) -> object:
        if not sys_id:
            return ""
        mode, exclude = self._options.mode, self._options.exclude_reference_link
        if mode == "false" and exclude:
            return sys_id
        display = self._store.display_value(table, sys_id) if mode != "false" else ""
        if mode == "true" and exclude:
            return display
        shape: dict[str, str] = {}
        if mode != "false":
            shape["display_value"] = display
        if not exclude:
            shape["link"] = f"{self._options.base_url}api/now/table/{table}/{sys_id}"
        if mode != "true":
            shape["value"] = sys_id
        return shape

    def _display(self, field_def: catalog.Field, raw: str) -> str:
        """Return the display value of a non-reference field."""
        if not raw:
            return ""
        if field_def.choices:
            return field_def.choice_label(raw)
        if field_def.type == catalog.DATETIME:
            return _to_user_time(raw, self._options.time_zone)
        if field_def.type == catalog.LIST and field_def.reference:
            names = [self._store.display_value(field_def.reference, item) or item
                     for item in raw.split(",")]
            return ", ".join(names)
        return raw


def _to_user_time(raw: str, time_zone: str) -> str:
    # NOTE: the platform formats display datetimes with the user's date
    # format; this double always uses YYYY-MM-DD HH:MM:SS in the user's zone.
    try:
        moment = datetime.strptime(raw, dates.DATETIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return raw
    return moment.astimezone(ZoneInfo(time_zone)).strftime(dates.DATETIME_FORMAT)


def error_body(message: str, detail: str | None) -> dict:
    """Return the Table API error envelope."""
    return {"error": {"message": message, "detail": detail}, "status": "failure"}
