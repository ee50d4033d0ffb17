"""Load Table API JSON exports into the instance's store.

Accepted files:

- Table API responses, ``{"result": [...]}``, made with any
  ``sysparm_display_value``;
- JSONv2 exports, ``{"records": [...]}``.

Values are read as follows. An object with ``value`` gives that value. A
reference object with only ``display_value`` and ``link`` gives the sys_id
at the end of the link. A choice label (``"1 - Critical"``) becomes its
value when the catalog lists the choice. Any other string is kept as it is,
so a display-value export keeps a caller's name where it had no link.

A file is imported in one transaction: a malformed file is rejected with the
line, or the record index and field, at fault, and nothing is imported.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.errors import InwardError
from integration.instance import catalog
from integration.instance.storage import InstanceStore, StoreError

logger = logging.getLogger(__name__)


class ImportFailed(InwardError):
    """An import file could not be read or one of its records is invalid; nothing was imported."""


@dataclass
class ImportReport:
    """Outcome of one import: records inserted and updated, and fields ignored."""

    table: str
    inserted: int = 0
    updated: int = 0
    ignored_fields: set[str] = field(default_factory=set)


def read_records(path: str | Path) -> list[dict]:
    """Read the record list of a Table API or JSONv2 export file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ImportFailed(f"Cannot read {path}: {error.strerror}; pass a readable JSON file.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportFailed(
            f"{path} is not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}."
        ) from None
    records = None
    if isinstance(data, dict):
        records = data.get("result", data.get("records"))
    if not isinstance(records, list):
        raise ImportFailed(
            f'{path} must contain {{"result": [...]}} (Table API) or {{"records": [...]}} (JSONv2).'
        )
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ImportFailed(f"{path}: record {index} is a {type(record).__name__}, not an object.")
    return records


def flatten(record: dict, index: int) -> dict[str, str]:
    """Turn one exported record into raw string values, naming the field of any bad value."""
    flat: dict[str, str] = {}
    for name, value in record.items():
        try:
            flat[name] = _raw_value(value)
        except ValueError as error:
            raise ImportFailed(f"Record {index}, field {name!r}: {error}") from None
    return flat


def _raw_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, dict):
        if "value" in value:
            return _raw_value(value["value"])
        if value.get("link"):
            return str(value["link"]).rstrip("/").rsplit("/", 1)[-1]
        if "display_value" in value:
            return _raw_value(value["display_value"])
        raise ValueError(f"an object needs value, link or display_value, got keys {sorted(value)}")
    raise ValueError(f"a {type(value).__name__} cannot be stored; expected a string or reference object")


def import_file(store: InstanceStore, path: str | Path, table: str) -> ImportReport:
    """Import every record of a file into ``table`` in one transaction."""
    if catalog.get_table(table) is None:
        raise ImportFailed(f"Invalid table {table}; pass one of: {', '.join(sorted(catalog.TABLES))}.")
    records = read_records(path)
    report = ImportReport(table)
    known = catalog.fields_of(table)
    with store.transaction():
        for index, record in enumerate(records):
            values = flatten(record, index)
            report.ignored_fields.update(name for name in values if name not in known)
            _import_one(store, table, values, index, report)
    logger.info("Imported %s: %d inserted, %d updated from %s", table, report.inserted,
                report.updated, path)
    return report


def _choice_labels_to_values(table: str, values: dict[str, str]) -> None:
    """Replace choice labels from a display-value export (``"7"`` for ``"Closed"``) by their values."""
    for name, field_def in catalog.fields_of(table).items():
        if field_def.choices and name in values:
            values[name] = field_def.choice_value(values[name])


def _import_one(store: InstanceStore, table: str, values: dict[str, str], index: int,
                report: ImportReport) -> None:
    class_name = values.get("sys_class_name", "")
    # Display-value exports carry labels such as "Incident" here, so any value
    # that is not a known child table falls back to the table imported into.
    if catalog.get_table(class_name) is None or not catalog.is_instance_of(class_name, table):
        class_name = table
    values["sys_class_name"] = class_name
    _choice_labels_to_values(class_name, values)
    sys_id = values.get("sys_id", "")
    try:
        if sys_id and store.get(table, sys_id) is not None:
            store.update(class_name, sys_id, values)
            report.updated += 1
        else:
            store.insert(class_name, values)
            report.inserted += 1
    except StoreError as error:
        raise ImportFailed(f"Record {index}: {error}") from None
