"""Seed an embedded instance with the demo data, idempotently.

``seed(store)`` writes every demo record through the instance store's
direct API (``get``/``insert``/``update``/``query``). Records are matched by
their stable sys_id: a missing record is inserted, one whose fields differ
from the data is updated, and an identical one is left alone, so a second
run writes nothing.

Roles are the one exception to matching by sys_id. The instance creates
the ``admin`` role itself when it starts, under a random sys_id, so a demo
role whose name already exists is matched by name and every reference to
it is pointed at the existing record.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from inward.demo.dataset import INTEGRATION_USER, DemoData, demo_sys_id, load_demo_data

logger = logging.getLogger(__name__)

INSERTED, UPDATED, UNCHANGED = "inserted", "updated", "unchanged"


@dataclass
class TableCounts:
    """How many records of one table a seed run inserted, updated or left unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


@dataclass
class SeedReport:
    """Per-table counts of one seed run, and whether it set the integration password."""

    tables: dict[str, TableCounts] = field(default_factory=dict)
    password_set: bool = False

    def count(self, table: str, outcome: str) -> None:
        """Add one record's outcome to its table's counts."""
        counts = self.tables.setdefault(table, TableCounts())
        setattr(counts, outcome, getattr(counts, outcome) + 1)

    @property
    def inserted(self) -> int:
        return sum(counts.inserted for counts in self.tables.values())

    @property
    def updated(self) -> int:
        return sum(counts.updated for counts in self.tables.values())

    @property
    def unchanged(self) -> int:
        return sum(counts.unchanged for counts in self.tables.values())

    def totals(self) -> dict[str, int]:
        """Return the number of demo records per table, whatever their outcome."""
        return {table: counts.total for table, counts in self.tables.items()}

    def summary(self) -> str:
        """Return a one-line summary for logs and the demo's console output."""
        return (f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged "
                f"in {len(self.tables)} tables")


def seed(store: Any, *, integration_password: str | None = None,
         data: DemoData | None = None) -> SeedReport:
    """Insert or update the demo records in ``store`` and return what changed.

    ``integration_password`` sets the password of the ``inward.integration``
    account when given, so the sidecar can sign in with the same password
    as the instance's admin. ``data`` defaults to the shipped demo data.
    """
    data = data or load_demo_data()
    report = SeedReport()
    # The instance store offers one transaction around all writes, which
    # is much faster than a commit per record. Other stores get none.
    transaction = getattr(store, "transaction", None)
    with transaction() if transaction else nullcontext():
        aliases = existing_role_ids(store, data)
        for record in data.records:
            values = replace_ids(record.values, aliases)
            report.count(record.table, upsert(store, record.table, values))
        if integration_password:
            report.password_set = set_password(store, INTEGRATION_USER, integration_password)
    logger.info("Seeded demo data: %s", report.summary())
    return report


def existing_role_ids(store: Any, data: DemoData) -> dict[str, str]:
    """Map the demo sys_id of each role that already exists by name to the existing sys_id."""
    aliases: dict[str, str] = {}
    for record in data.table("sys_user_role"):
        found = store.query("sys_user_role", f"name={record.values['name']}")
        if found and found[0]["sys_id"] != record.sys_id:
            aliases[record.sys_id] = found[0]["sys_id"]
    return aliases


def replace_ids(values: dict[str, str], aliases: dict[str, str]) -> dict[str, str]:
    """Return ``values`` with every aliased sys_id, alone or in a comma list, replaced."""
    if not aliases:
        return dict(values)
    replaced = {}
    for name, value in values.items():
        parts = value.split(",")
        if any(part in aliases for part in parts):
            value = ",".join(aliases.get(part, part) for part in parts)
        replaced[name] = value
    return replaced


def upsert(store: Any, table: str, values: dict[str, str]) -> str:
    """Insert the record, or update the fields that differ, and return the outcome."""
    existing = store.get(table, values["sys_id"])
    if existing is None:
        store.insert(table, values)
        return INSERTED
    # sys_* fields are the store's bookkeeping (update times, counters), so
    # only the data's own fields decide whether the record changed.
    changes = {
        name: value for name, value in values.items()
        if not name.startswith("sys_") and existing.get(name, "") != value
    }
    if not changes:
        return UNCHANGED
    store.update(table, values["sys_id"], changes)
    logger.debug("Updated demo %s %s: %s", table, values["sys_id"], ", ".join(sorted(changes)))
    return UPDATED


def set_password(store: Any, user_name: str, password: str) -> bool:
    """Set a demo user's password unless it already works, and return whether it was set."""
    authenticate = getattr(store, "authenticate", None)
    if authenticate is not None and authenticate(user_name, password) is not None:
        return False
    store.update("sys_user", demo_sys_id("sys_user", user_name), {"user_password": password})
    return True
