"""The Aggregate API (``/api/now/stats/{table}``): count, avg, min, max and sum, optionally grouped."""

from __future__ import annotations

import logging

from integration.instance import catalog

logger = logging.getLogger(__name__)


def aggregate(table: str, rows: list[dict], *, count: bool, group_by: list[str],
              aggregates: dict[str, list[str]]) -> dict | list:
    """Return the ``result`` of a stats request over already-filtered rows.

    Without ``group_by`` the result is one ``{"stats": {...}}`` object; with it,
    a list with one entry per distinct combination of the grouped values.
    """
    if not group_by:
        return {"stats": _stats(rows, count=count, aggregates=aggregates)}
    groups: dict[tuple[str, ...], list[dict]] = {}
    for row in rows:
        key = tuple(row.get(name, "") for name in group_by)
        groups.setdefault(key, []).append(row)
    result = []
    for key, members in groups.items():
        result.append({
            "stats": _stats(members, count=count, aggregates=aggregates),
            "groupby_fields": [{"field": name, "value": value} for name, value in zip(group_by, key)],
        })
    return result


def _stats(rows: list[dict], *, count: bool, aggregates: dict[str, list[str]]) -> dict:
    stats: dict = {}
    if count:
        stats["count"] = str(len(rows))
    for kind, names in aggregates.items():
        if names:
            stats[kind] = {name: _aggregate(kind, rows, name) for name in names}
    return stats


def _aggregate(kind: str, rows: list[dict], name: str) -> str:
    numbers = []
    for row in rows:
        try:
            numbers.append(float(row.get(name, "")))
        except ValueError:
            continue
    if not numbers:
        return ""
    if kind == "avg":
        return f"{sum(numbers) / len(numbers):.4f}"
    value = {"min": min, "max": max, "sum": sum}[kind](numbers)
    return str(int(value)) if value == int(value) else str(value)


def known_fields(table: str, names: list[str]) -> list[str]:
    """Keep only the names that are fields of the table."""
    return [name for name in names if catalog.resolve_field(table, name) is not None]
