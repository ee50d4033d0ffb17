"""The instance's SQLite store, shared by the HTTP server thread and direct callers.

Each record is one row: its sys_id, its concrete class (``sys_class_name``)
and its field values as a JSON object of strings, exactly as the Table API
returns them with ``sysparm_display_value=false``. Queries load the rows of
a table and its child tables and filter them in Python with ``query.py``,
which is fast enough for the few thousand records a double holds.

One connection is shared behind a re-entrant lock, so every public method
is safe to call from any thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from config.errors import InwardError
from integration.instance import catalog, dates, query, rules

logger = logging.getLogger(__name__)

SYSTEM_USER = "system"
FIRST_NUMBER = 10001
SYS_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sys_id TEXT NOT NULL UNIQUE,
    class_name TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_class ON records (class_name);
CREATE TABLE IF NOT EXISTS counters (prefix TEXT PRIMARY KEY, next_value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS attachment_files (sys_id TEXT PRIMARY KEY, content BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS credentials (
    user_sys_id TEXT PRIMARY KEY, salt TEXT NOT NULL, digest TEXT NOT NULL
);
"""


class StoreError(InwardError):
    """A store operation was rejected; nothing was changed."""


class UnknownTable(StoreError):
    pass


class RecordMissing(StoreError):
    pass


class InvalidRecord(StoreError):
    pass


@dataclass(frozen=True)
class QueryOptions:
    """Query evaluation settings: the time zone of the date helpers and the two instance switches."""

    time_zone: str = "UTC"
    case_insensitive: bool = True
    invalid_query_returns_no_rows: bool = False


def new_sys_id() -> str:
    """Return a fresh 32-character lowercase hex sys_id."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class InstanceStore:
    """Records of every catalog table, kept in one SQLite file."""

    def __init__(self, path: str | Path, *, options: QueryOptions | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.options = options or QueryOptions()
        self._clock = clock
        self._lock = threading.RLock()
        self._depth = 0
        self._connection = sqlite3.connect(str(self.path), check_same_thread=False,
                                           isolation_level=None)
        self._connection.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._connection.close()

    # -- transactions -----------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the enclosed writes as one transaction: all of them or none."""
        with self._lock:
            outermost = self._depth == 0
            if outermost:
                self._connection.execute("BEGIN")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outermost:
                    self._connection.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outermost:
                self._connection.execute("COMMIT")

    # -- reads --------------------------------------------------------------

    def get(self, table: str, sys_id: str) -> dict | None:
        """Return the record of ``table`` (or a child table) with that sys_id, or None."""
        _require_table(table)
        with self._lock:
            row = self._connection.execute(
                "SELECT class_name, data FROM records WHERE sys_id = ?", (sys_id,)
            ).fetchone()
        if row is None or not catalog.is_instance_of(row[0], table):
            return None
        return json.loads(row[1])

    def rows(self, table: str) -> list[dict]:
        """Return every record of a table and its child tables, oldest first."""
        _require_table(table)
        classes = catalog.descendants(table)
        marks = ",".join("?" for _ in classes)
        with self._lock:
            found = self._connection.execute(
                f"SELECT data FROM records WHERE class_name IN ({marks}) ORDER BY seq", classes
            ).fetchall()
        return [json.loads(data) for (data,) in found]

    def query(self, table: str, encoded_query: str = "", *, user_sys_id: str = "",
              user_name: str = "") -> list[dict]:
        """Return the records matching an encoded query, in its ORDERBY order."""
        parsed = self.parse_query(table, encoded_query)
        return self.select(table, parsed, user_sys_id=user_sys_id, user_name=user_name)

    def parse_query(self, table: str, encoded_query: str) -> query.EncodedQuery:
        """Parse a query and drop its invalid terms according to the instance switch."""
        _require_table(table)
        parsed = query.parse(encoded_query or "")
        return query.drop_invalid_fields(
            parsed, table, returns_no_rows=self.options.invalid_query_returns_no_rows
        )

    def select(self, table: str, parsed: query.EncodedQuery, *, user_sys_id: str = "",
               user_name: str = "") -> list[dict]:
        """Return the records matching a parsed query, sorted by its ORDERBY terms."""
        reader = ReferenceReader(self, table)
        context = dates.ScriptContext(
            now=self._clock(), time_zone=ZoneInfo(self.options.time_zone),
            user_sys_id=user_sys_id, user_name=user_name,
        )
        evaluator = query.Evaluator(table, reader.read, context, self.options.case_insensitive)
        matched = [record for record in self.rows(table) if evaluator.matches(parsed, record)]
        # Python's sort is stable, so sorting by the last key first gives a chained order.
        for name, descending in reversed(parsed.order_by):
            kind = catalog.resolve_field(table, name).type
            matched.sort(key=lambda record: query.sort_key(kind, reader.read(record, name)),
                         reverse=descending)
        return matched

    def display_value(self, table: str, sys_id: str) -> str:
        """Return the display value of a referenced record, or "" when it does not exist."""
        record = self.get(table, sys_id) if sys_id else None
        if record is None:
            return ""
        name = catalog.display_field(record.get("sys_class_name") or table)
        return record.get(name, "") if name else sys_id

    def find_by_display_value(self, table: str, text: str) -> str:
        """Return the sys_id of the record whose display value is ``text``, or ""."""
        name = catalog.display_field(table)
        if not name or not text:
            return ""
        for record in self.rows(table):
            if record.get(name) == text:
                return record["sys_id"]
        return ""

    # -- writes -------------------------------------------------------------

    def insert(self, table: str, values: Mapping[str, Any], *, user_name: str = SYSTEM_USER,
               keep_system: bool = True) -> dict:
        """Insert a record, filling sys_id, the sys_* fields, defaults and the number."""
        _require_table(table)
        changes, journal, password = rules.split_changes(table, values, keep_system=keep_system)
        sys_id = changes.pop("sys_id", "") or new_sys_id()
        if not SYS_ID_PATTERN.match(sys_id):
            raise InvalidRecord(
                f"Invalid sys_id {sys_id!r} for {table}; use 32 lowercase hex characters.",
                table=table, sys_id=sys_id,
            )
        with self.transaction():
            if self._exists(sys_id):
                raise InvalidRecord(f"A record with sys_id {sys_id} already exists; use update().",
                                    table=table, sys_id=sys_id)
            record = self._new_record(table, sys_id, changes, user_name)
            rules.derive_fields(table, record, changes, inserting=True)
            self._connection.execute(
                "INSERT INTO records (sys_id, class_name, data) VALUES (?, ?, ?)",
                (sys_id, table, json.dumps(record)),
            )
            self._after_write(table, record, journal, password, user_name)
        return record

    def update(self, table: str, sys_id: str, values: Mapping[str, Any], *,
               user_name: str = SYSTEM_USER, keep_system: bool = True) -> dict:
        """Change the given fields of a record and return the whole updated record."""
        with self.transaction():
            record = self.get(table, sys_id)
            if record is None:
                raise RecordMissing(f"No {table} record with sys_id {sys_id}.",
                                    table=table, sys_id=sys_id)
            class_name = record["sys_class_name"]
            changes, journal, password = rules.split_changes(class_name, values,
                                                             keep_system=keep_system)
            changes.pop("sys_id", None)
            self._stamp_update(record, changes, user_name)
            rules.derive_fields(class_name, record, changes, inserting=False)
            self._connection.execute("UPDATE records SET data = ? WHERE sys_id = ?",
                                     (json.dumps(record), sys_id))
            self._after_write(class_name, record, journal, password, user_name)
        return record

    def delete(self, table: str, sys_id: str) -> None:
        """Delete a record; raise RecordMissing when there is none."""
        with self.transaction():
            if self.get(table, sys_id) is None:
                raise RecordMissing(f"No {table} record with sys_id {sys_id}.",
                                    table=table, sys_id=sys_id)
            self._connection.execute("DELETE FROM records WHERE sys_id = ?", (sys_id,))
            self._connection.execute("DELETE FROM credentials WHERE user_sys_id = ?", (sys_id,))
            self._connection.execute("DELETE FROM attachment_files WHERE sys_id = ?", (sys_id,))

    def _exists(self, sys_id: str) -> bool:
        row = self._connection.execute("SELECT 1 FROM records WHERE sys_id = ?", (sys_id,))
        return row.fetchone() is not None

    def _new_record(self, table: str, sys_id: str, changes: dict, user_name: str) -> dict:
        now = dates.format_utc(self._clock())
        record = {name: "" for name in catalog.fields_of(table)}
        record.update(catalog.defaults_of(table))
        record.update({
            "sys_id": sys_id, "sys_class_name": table, "sys_created_on": now,
            "sys_updated_on": now, "sys_created_by": user_name, "sys_updated_by": user_name,
            "sys_mod_count": "0", "sys_domain": "global", "sys_domain_path": "/",
        })
        if "opened_at" in record:
            record["opened_at"] = now
        if "opened_by" in record:
            opener = self.find_user(user_name) if user_name != SYSTEM_USER else None
            record["opened_by"] = opener["sys_id"] if opener else ""
        record.update(changes)
        prefix = catalog.number_prefix(table)
        if prefix and "number" in record:
            record["number"] = self._claim_number(prefix, record["number"])
        return record

    def _stamp_update(self, record: dict, changes: dict, user_name: str) -> None:
        record.update(changes)
        if "sys_updated_on" not in changes:
            record["sys_updated_on"] = dates.format_utc(self._clock())
        if "sys_updated_by" not in changes:
            record["sys_updated_by"] = user_name
        if "sys_mod_count" not in changes:
            record["sys_mod_count"] = str(int(record.get("sys_mod_count") or 0) + 1)

    def _claim_number(self, prefix: str, explicit_number: str) -> str:
        """Return the explicit number (moving the counter past it) or the next free one."""
        row = self._connection.execute(
            "SELECT next_value FROM counters WHERE prefix = ?", (prefix,)
        ).fetchone()
        next_value = row[0] if row else FIRST_NUMBER
        match = re.fullmatch(re.escape(prefix) + r"(\d+)", explicit_number)
        if explicit_number and not match:
            return explicit_number
        if match:
            number, next_value = explicit_number, max(next_value, int(match.group(1)) + 1)
        else:
            number, next_value = f"{prefix}{next_value:07d}", next_value + 1
        self._connection.execute(
            "INSERT INTO counters (prefix, next_value) VALUES (?, ?) "
            "ON CONFLICT(prefix) DO UPDATE SET next_value = excluded.next_value",
            (prefix, next_value),
        )
        return number

    def _after_write(self, class_name: str, record: dict, journal: dict, password: str | None,
                     user_name: str) -> None:
        for element, text in journal.items():
            self._append_journal(class_name, record, element, text, user_name)
        if password is not None:
            self._set_password(record["sys_id"], password)

    def _append_journal(self, class_name: str, record: dict, element: str, text: str,
                        user_name: str) -> None:
        """Append one journal entry; a customer-visible comment also queues a notification."""
        self.insert(catalog.JOURNAL_TABLE, {
            "element": element, "element_id": record["sys_id"], "name": class_name, "value": text,
        }, user_name=user_name)
        if element == "comments":
            self.insert("sys_email", {
                "type": "send-ready", "notification_type": "SMTP",
                "recipients": self._recipients(record),
                "subject": f"{record.get('number', '')} has been commented on",
                "body": text, "instance": record["sys_id"], "target_table": class_name,
            }, user_name=user_name)

    def _recipients(self, record: dict) -> str:
        """Return the e-mail of the caller or contact a comment notifies."""
        for name in ("caller_id", "contact", "opened_for"):
            person = self.get("sys_user", record.get(name, "")) if record.get(name) else None
            if person and person.get("email"):
                return person["email"]
        return ""

    # -- attachments --------------------------------------------------------

    def attach(self, table: str, sys_id: str, *, file_name: str, content_type: str,
               content: bytes, user_name: str = SYSTEM_USER) -> dict:
        """Store a file attached to a record and return its sys_attachment metadata."""
        if self.get(table, sys_id) is None:
            raise RecordMissing(
                f"No {table} record with sys_id {sys_id} to attach {file_name} to.",
                table=table, sys_id=sys_id,
            )
        with self.transaction():
            metadata = self.insert("sys_attachment", {
                "file_name": file_name, "content_type": content_type,
                "size_bytes": str(len(content)), "size_compressed": str(len(content)),
                "table_name": table, "table_sys_id": sys_id,
                "hash": hashlib.sha256(content).hexdigest(),
            }, user_name=user_name)
            self._connection.execute(
                "INSERT INTO attachment_files (sys_id, content) VALUES (?, ?)",
                (metadata["sys_id"], content),
            )
        return metadata

    def attachment_content(self, sys_id: str) -> bytes | None:
        """Return the bytes of an attachment, or None when there is no such attachment."""
        with self._lock:
            row = self._connection.execute(
                "SELECT content FROM attachment_files WHERE sys_id = ?", (sys_id,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    # -- credentials --------------------------------------------------------

    def _set_password(self, user_sys_id: str, password: str) -> None:
        salt = secrets.token_hex(8)
        self._connection.execute(
            "INSERT INTO credentials (user_sys_id, salt, digest) VALUES (?, ?, ?) "
            "ON CONFLICT(user_sys_id) DO UPDATE SET salt = excluded.salt, digest = excluded.digest",
            (user_sys_id, salt, _digest(salt, password)),
        )

    def authenticate(self, user_name: str, password: str) -> dict | None:
        """Return the active, unlocked sys_user with these credentials, or None."""
        user = self.find_active_user(user_name)
        if user is None:
            return None
        with self._lock:
            row = self._connection.execute(
                "SELECT salt, digest FROM credentials WHERE user_sys_id = ?", (user["sys_id"],)
            ).fetchone()
        if row is None or not secrets.compare_digest(row[1], _digest(row[0], password)):
            return None
        return user

    def find_active_user(self, user_name: str) -> dict | None:
        """Return the user with that user_name if it is active and not locked out, else None."""
        user = self.find_user(user_name)
        if user is None or user.get("active") != "true" or user.get("locked_out") == "true":
            return None
        return user

    def find_user(self, user_name: str) -> dict | None:
        """Return the sys_user (or customer_contact) with that user_name, or None."""
        for user in self.rows("sys_user"):
            if user.get("user_name") == user_name:
                return user
        return None


def _digest(salt: str, password: str) -> str:
    # A double needs no slow hash; the salt keeps equal passwords apart.
    return hashlib.sha256((salt + password).encode("utf-8")).hexdigest()


def _require_table(table: str) -> None:
    if catalog.get_table(table) is None:
        raise UnknownTable(f"Invalid table {table}", table=table)


class ReferenceReader:
    """Reads a field of a record, following dot-walked references through the store."""

    def __init__(self, store: InstanceStore, table: str) -> None:
        self._store = store
        self._table = table
        self._cache: dict[tuple[str, str], dict | None] = {}

    def read(self, record: dict, path: str) -> str:
        """Return the raw value at ``path`` (``caller_id.email``), or "" when a step is empty."""
        table = self._table
        current: dict | None = record
        parts = path.split(".")
        for index, part in enumerate(parts):
            if current is None:
                return ""
            if index == len(parts) - 1:
                return current.get(part, "")
            field_def = catalog.fields_of(table).get(part)
            if field_def is None or field_def.type != catalog.REFERENCE:
                return ""
            table = field_def.reference
            current = self._referenced(table, current.get(part, ""))
        return ""

    def _referenced(self, table: str, sys_id: str) -> dict | None:
        if not sys_id:
            return None
        key = (table, sys_id)
        if key not in self._cache:
            self._cache[key] = self._store.get(table, sys_id)
        return self._cache[key]
