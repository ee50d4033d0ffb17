"""Domain helpers in the helpdesk's own terms: cases, articles, agents, journal entries.

Each helper takes a ``Records`` and keyword-only arguments, and returns the
record schemas from ``integration.schemas``.

Journal writes (work notes and customer comments) are not idempotent on
the platform: every PATCH that carries one appends a new entry. Each entry
Inward writes therefore ends with a marker line derived from the caller's
idempotency key, ``[inward:<16 hex digits>]``. Before the first attempt
and before any retry, ``sys_journal_field`` is searched for that marker,
so one key posts at most once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator

from integration.errors import InvalidQueryValue, RecordNotFound, UnexpectedResponse
from integration.queries import Query, validate_sys_id
from integration.records import Cursor, Records
from integration.schemas import (
    Agent,
    Article,
    Case,
    JournalEntry,
    KnowledgeBase,
    UserCriteria,
    split_list,
)
from integration.transport import validate_table

logger = logging.getLogger(__name__)

CASE_FIELDS = (
    "sys_id", "number", "short_description", "description", "category", "subcategory",
    "product", "state", "priority", "caller_id", "contact", "assigned_to", "sys_updated_on",
)
JOURNAL_TABLE = "sys_journal_field"
MARKER_PATTERN = re.compile(r"\s*\[inward:[0-9a-f]{16}\]\s*$")
# Keeps each IN list, and so each request URL, well under common URL length limits.
IN_LIST_CHUNK = 100


# Cases.


def get_case(records: Records, *, table: str, sys_id: str) -> Case:
    """Read a case or incident with its latest customer comment."""
    case_tables = records.transport.case_tables
    if table not in case_tables:
        raise InvalidQueryValue(
            f"Invalid case table {table!r}: expected one of {', '.join(case_tables)}; "
            "add it to platform.case_tables to read it as a case.",
            field="table",
            value=table,
        )
    record = records.get(table, sys_id, fields=CASE_FIELDS)
    return Case.from_record(table, record, latest_comment=latest_comment(records, sys_id=sys_id))


def latest_comment(records: Records, *, sys_id: str) -> str:
    """Return the newest customer-visible comment on a task, without Inward's marker.

    The ``comments`` journal contains entries by agents as well as by the
    customer, so the newest entry may be an agent's.
    """
    # NOTE: sys_created_on has one-second resolution, so of two comments
    # written in the same second either may be returned.
    query = (
        Query()
        .equals("element_id", validate_sys_id(sys_id))
        .equals("element", "comments")
        .order_by_desc("sys_created_on")
    )
    entry = records.first(JOURNAL_TABLE, query, fields=["value"])
    return strip_marker(entry["value"]) if entry else ""


# Knowledge.


def list_articles_updated_since(
    records: Records, *, cursor: Cursor | None = None
) -> Iterator[Article]:
    """Yield articles updated after ``cursor`` (every article when None), oldest first."""
    rows = records.list_updated_since("kb_knowledge", cursor, fields=Article.FIELDS)
    for row in rows:
        yield Article.from_record(row)


def list_article_ids(records: Records) -> Iterator[str]:
    """Yield the sys_id of every article, for reconciling the index with the platform."""
    for row in records.list("kb_knowledge", fields=["sys_id"]):
        yield row["sys_id"]


def list_knowledge_bases(records: Records) -> list[KnowledgeBase]:
    """Return every knowledge base with its can-read and cannot-read user criteria."""
    can_read = _criteria_by_base(records, "kb_uc_can_read_mtom")
    cannot_read = _criteria_by_base(records, "kb_uc_cannot_read_mtom")
    return [
        KnowledgeBase.from_record(
            row, can_read=can_read.get(row["sys_id"], []), cannot_read=cannot_read.get(row["sys_id"], [])
        )
        for row in records.list("kb_knowledge_base", fields=KnowledgeBase.FIELDS)
    ]


def _criteria_by_base(records: Records, table: str) -> dict[str, list[str]]:
    """Map each knowledge base sys_id to the user criteria linked to it in ``table``."""
    criteria: dict[str, list[str]] = defaultdict(list)
    for row in records.list(table, fields=["kb_knowledge_base", "user_criteria"]):
        if row["kb_knowledge_base"] and row["user_criteria"]:
            criteria[row["kb_knowledge_base"]].append(row["user_criteria"])
    return dict(criteria)


def list_user_criteria(records: Records) -> dict[str, UserCriteria]:
    """Return every user criteria record by sys_id, with role ids resolved to role names."""
    rows = list(records.list("user_criteria", fields=UserCriteria.FIELDS))
    role_ids = {role_id for row in rows for role_id in split_list(row.get("role"))}
    role_names = names_by_id(records, "sys_user_role", role_ids)
    criteria = (UserCriteria.from_record(row, role_names=role_names) for row in rows)
    return {criterion.sys_id: criterion for criterion in criteria}


# Agents.


def get_agent(records: Records, *, user_name: str) -> Agent:
    """Return the active user ``user_name`` with role names and group memberships."""
    if not isinstance(user_name, str) or not user_name.strip():
        raise InvalidQueryValue(
            f"Invalid user_name {user_name!r}: pass the agent's sys_user.user_name.",
            field="user_name",
            value=user_name,
        )
    user = records.first("sys_user", Query().equals("user_name", user_name), fields=Agent.FIELDS)
    if user is None or not user.get("active"):
        state = "is inactive" if user else "does not exist"
        raise RecordNotFound(
            f"The platform user {user_name!r} {state}; check the user_name or activate the user.",
            table="sys_user",
        )
    role_ids = _column(records, "sys_user_has_role", "user", user["sys_id"], "role")
    group_ids = _column(records, "sys_user_grmember", "user", user["sys_id"], "group")
    return Agent.from_record(
        user,
        roles=frozenset(names_by_id(records, "sys_user_role", role_ids).values()),
        groups=frozenset(group_ids),
        group_names=frozenset(names_by_id(records, "sys_user_group", group_ids).values()),
    )


def _column(records: Records, table: str, key: str, value: str, column: str) -> set[str]:
    rows = records.list(table, Query().equals(key, value), fields=[column])
    return {row[column] for row in rows if row.get(column)}


def names_by_id(records: Records, table: str, sys_ids: Iterable[str]) -> dict[str, str]:
    """Return ``{sys_id: name}`` for the given records of ``table``, in chunked IN queries."""
    ids = sorted({sys_id for sys_id in sys_ids if _is_sys_id(sys_id)})
    names: dict[str, str] = {}
    for start in range(0, len(ids), IN_LIST_CHUNK):
        chunk = ids[start:start + IN_LIST_CHUNK]
        for row in records.list(table, Query().in_("sys_id", chunk), fields=["name"]):
            names[row["sys_id"]] = row.get("name", "")
    return names


# Journal entries.


def journal_marker(key: str) -> str:
    """Return the marker line that identifies the journal entry written for ``key``."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidQueryValue(
            f"Invalid idempotency key {key!r}: pass a non-empty string that is the same "
            "on every retry of this write (for example run id + step id).",
            field="key",
            value=key,
        )
    return f"[inward:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}]"


def strip_marker(value: str) -> str:
    """Remove Inward's trailing marker line from a journal entry's text."""
    return MARKER_PATTERN.sub("", value)


def append_work_note(records: Records, *, table: str, sys_id: str, text: str, key: str) -> JournalEntry:
    """Append an internal work note to a task, at most once per ``key``."""
    return _append_journal(records, "work_notes", table=table, sys_id=sys_id, text=text, key=key)


def append_comment(records: Records, *, table: str, sys_id: str, text: str, key: str) -> JournalEntry:
    """Append a customer-visible comment to a task, at most once per ``key``."""
    return _append_journal(records, "comments", table=table, sys_id=sys_id, text=text, key=key)


def _append_journal(
    records: Records, element: str, *, table: str, sys_id: str, text: str, key: str
) -> JournalEntry:
    table = validate_table(table)
    sys_id = validate_sys_id(sys_id)
    if not isinstance(text, str) or not text.strip():
        raise InvalidQueryValue(
            f"Invalid {element} text {text!r}: the entry must contain some text.",
            field=element,
        )
    marker = journal_marker(key)

    def find() -> dict | None:
        return find_journal_entry(records, sys_id=sys_id, element=element, marker=marker)

    earlier = find()
    if earlier is not None:
        logger.info("%s on %s %s for this key exists already; not posted again", element, table, sys_id)
        return JournalEntry.from_record(earlier, marker=marker, created=False)
    records.patch(table, sys_id, {element: f"{text.rstrip()}\n{marker}"}, recover=find)
    entry = find()
    if entry is None:
        raise UnexpectedResponse(
            f"The platform accepted the {element} entry on {table} {sys_id} but no "
            f"{JOURNAL_TABLE} row holds its marker {marker}; check that the field is a journal field.",
            table=table,
            sys_id=sys_id,
        )
    return JournalEntry.from_record(entry, marker=marker, created=True)


def find_journal_entry(records: Records, *, sys_id: str, element: str, marker: str) -> dict | None:
    """Return the journal row on ``sys_id`` whose text contains ``marker``, or None."""
    query = (
        Query()
        .equals("element_id", sys_id)
        .equals("element", element)
        .like("value", marker)
        .order_by("sys_created_on")
    )
    return records.first(JOURNAL_TABLE, query, fields=JournalEntry.FIELDS)


# Article use and feedback.


def attach_article(records: Records, *, task_sys_id: str, article_sys_id: str) -> str:
    """Link an article to a task (``m2m_kb_task``) and return the link's sys_id; reuses a link."""
    query = (
        Query()
        .equals("task", validate_sys_id(task_sys_id, field="task_sys_id"))
        .equals("kb_knowledge", validate_sys_id(article_sys_id, field="article_sys_id"))
    )

    def find() -> dict | None:
        return records.first("m2m_kb_task", query, fields=["sys_id"])

    existing = find()
    if existing is not None:
        return existing["sys_id"]
    created = records.create(
        "m2m_kb_task", {"task": task_sys_id, "kb_knowledge": article_sys_id}, recover=find
    )
    return created["sys_id"]


def record_feedback(
    records: Records,
    *,
    article_sys_id: str,
    user_sys_id: str,
    useful: bool | None = None,
    rating: int | None = None,
    comments: str = "",
    flagged: bool = False,
) -> str:
    """Store an agent's feedback on an article in ``kb_feedback`` and return its sys_id.

    Not retried after a timeout, because feedback rows have no natural key
    and a repeated POST could not be distinguished from a second vote.
    """
    values: dict[str, object] = {
        "article": validate_sys_id(article_sys_id, field="article_sys_id"),
        "user": validate_sys_id(user_sys_id, field="user_sys_id"),
        "comments": _check_comments(comments),
        "flagged": _check_bool("flagged", flagged),
    }
    if useful is not None:
        # NOTE: "yes"/"no" follows the knowledge feedback form's labels; the raw
        # choice values of kb_feedback.useful are not confirmed on a real instance.
        values["useful"] = "yes" if _check_bool("useful", useful) else "no"
    if rating is not None:
        values["rating"] = _check_rating(rating)
    return records.create("kb_feedback", values)["sys_id"]


def record_use(records: Records, *, article_sys_id: str, user_sys_id: str, used: bool = False) -> str:
    """Log that an agent viewed (and maybe used) an article in ``kb_use``; return its sys_id."""
    values = {
        "article": validate_sys_id(article_sys_id, field="article_sys_id"),
        "user": validate_sys_id(user_sys_id, field="user_sys_id"),
        "viewed": True,
        "used": _check_bool("used", used),
    }
    return records.create("kb_use", values)["sys_id"]


def _check_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise InvalidQueryValue(f"Invalid {name} {value!r}: pass True or False.", field=name, value=repr(value))


def _check_rating(rating: object) -> int:
    if isinstance(rating, int) and not isinstance(rating, bool) and 1 <= rating <= 5:
        return rating
    raise InvalidQueryValue(
        f"Invalid rating {rating!r}: pass a whole number of stars from 1 to 5, or None.",
        field="rating",
        value=repr(rating),
    )


def _check_comments(comments: object) -> str:
    if isinstance(comments, str):
        return comments
    raise InvalidQueryValue(
        f"Invalid comments {comments!r}: pass the feedback text as a string.",
        field="comments",
        value=repr(comments),
    )


def _is_sys_id(value: str) -> bool:
    try:
        validate_sys_id(value)
    except InvalidQueryValue:
        logger.warning("Skipping %r: not a sys_id", value)
        return False
    return True
