"""Record schemas: the platform rows Inward uses, as typed dataclasses.

Platform field names are mapped to these attributes here and nowhere else.
Each ``from_record`` takes a row already normalized by the records layer
(references as sys_ids, booleans as bool, datetimes as aware UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime


def split_list(value: object) -> list[str]:
    """Split a glide_list value (comma-separated sys_ids or names) into its items."""
    if not value:
        return []
    return [item.strip() for item in str(value).split(",") if item.strip()]


def _text(record: Mapping[str, object], name: str) -> str:
    value = record.get(name)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Case:
    """An incident or customer service case, with its newest customer-visible comment."""

    table: str
    sys_id: str
    number: str
    short_description: str
    description: str
    category: str
    subcategory: str
    product: str
    state: str
    priority: str
    caller: str
    assigned_to: str
    latest_comment: str
    sys_updated_on: datetime | None

    @classmethod
    def from_record(cls, table: str, record: Mapping[str, object], *, latest_comment: str = "") -> Case:
        # An incident names its customer in caller_id, a CSM case in contact.
        caller = _text(record, "caller_id") or _text(record, "contact")
        return cls(
            table=table,
            sys_id=_text(record, "sys_id"),
            number=_text(record, "number"),
            short_description=_text(record, "short_description"),
            description=_text(record, "description"),
            category=_text(record, "category"),
            subcategory=_text(record, "subcategory"),
            product=_text(record, "product"),
            state=_text(record, "state"),
            priority=_text(record, "priority"),
            caller=caller,
            assigned_to=_text(record, "assigned_to"),
            latest_comment=latest_comment,
            sys_updated_on=record.get("sys_updated_on"),
        )


@dataclass(frozen=True)
class Article:
    """A knowledge article (``kb_knowledge``)."""

    sys_id: str
    number: str
    short_description: str
    text: str
    meta: str
    kb_knowledge_base: str
    kb_category: str
    workflow_state: str
    active: bool
    valid_to: date | None
    sys_updated_on: datetime | None
    can_read_user_criteria: list[str] = field(default_factory=list)
    cannot_read_user_criteria: list[str] = field(default_factory=list)
    article_type: str = "text"
    wiki: str = ""

    FIELDS = (
        "sys_id", "number", "short_description", "text", "meta", "kb_knowledge_base",
        "kb_category", "workflow_state", "active", "valid_to", "sys_updated_on",
        "can_read_user_criteria", "cannot_read_user_criteria", "article_type", "wiki",
    )

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> Article:
        return cls(
            sys_id=_text(record, "sys_id"),
            number=_text(record, "number"),
            short_description=_text(record, "short_description"),
            text=_text(record, "text"),
            meta=_text(record, "meta"),
            kb_knowledge_base=_text(record, "kb_knowledge_base"),
            kb_category=_text(record, "kb_category"),
            workflow_state=_text(record, "workflow_state"),
            active=bool(record.get("active", False)),
            valid_to=record.get("valid_to"),
            sys_updated_on=record.get("sys_updated_on"),
            can_read_user_criteria=split_list(record.get("can_read_user_criteria")),
            cannot_read_user_criteria=split_list(record.get("cannot_read_user_criteria")),
            article_type=_text(record, "article_type") or "text",
            wiki=_text(record, "wiki"),
        )

    @property
    def cursor(self) -> tuple[datetime | None, str]:
        """The ``(sys_updated_on, sys_id)`` to resume an incremental read after this article."""
        return (self.sys_updated_on, self.sys_id)


@dataclass(frozen=True)
class KnowledgeBase:
    """A knowledge base with the user criteria that grant or deny reading it."""

    sys_id: str
    title: str
    description: str
    owner: str
    kb_managers: list[str]
    active: bool
    can_read_user_criteria: list[str] = field(default_factory=list)
    cannot_read_user_criteria: list[str] = field(default_factory=list)

    FIELDS = ("sys_id", "title", "description", "owner", "kb_managers", "active")

    @classmethod
    def from_record(
        cls, record: Mapping[str, object], *, can_read: list[str], cannot_read: list[str]
    ) -> KnowledgeBase:
        return cls(
            sys_id=_text(record, "sys_id"),
            title=_text(record, "title"),
            description=_text(record, "description"),
            owner=_text(record, "owner"),
            kb_managers=split_list(record.get("kb_managers")),
            active=bool(record.get("active", False)),
            can_read_user_criteria=can_read,
            cannot_read_user_criteria=cannot_read,
        )

    @property
    def can_read(self) -> list[str]:
        return self.can_read_user_criteria

    @property
    def cannot_read(self) -> list[str]:
        return self.cannot_read_user_criteria


# Columns of user_criteria that Inward reads but does not evaluate. A
# criterion that sets one of them cannot be evaluated by the sidecar, so
# callers must treat it as not matching.
UNEVALUATED_CRITERIA = ("department", "location", "company", "cost_center")


@dataclass(frozen=True)
class UserCriteria:
    """A ``user_criteria`` record: who a knowledge base or article is shown to."""

    sys_id: str
    name: str
    users: frozenset[str]
    groups: frozenset[str]
    roles: frozenset[str]
    match_all: bool
    advanced: bool
    active: bool
    script: str = ""
    role_ids: frozenset[str] = frozenset()
    unevaluated: frozenset[str] = frozenset()

    FIELDS = ("sys_id", "name", "user", "group", "role", "match_all", "advanced", "active",
              "script", *UNEVALUATED_CRITERIA)

    @classmethod
    def from_record(cls, record: Mapping[str, object], *, role_names: Mapping[str, str]) -> UserCriteria:
        """Build the criterion; ``role_names`` maps sys_user_role sys_ids to role names."""
        role_ids = frozenset(split_list(record.get("role")))
        return cls(
            sys_id=_text(record, "sys_id"),
            name=_text(record, "name"),
            users=frozenset(split_list(record.get("user"))),
            groups=frozenset(split_list(record.get("group"))),
            # An unknown role id is kept as is; it matches no agent's role name.
            roles=frozenset(role_names.get(role_id, role_id) for role_id in role_ids),
            match_all=bool(record.get("match_all", False)),
            advanced=bool(record.get("advanced", False)),
            active=bool(record.get("active", True)),
            script=_text(record, "script"),
            role_ids=role_ids,
            unevaluated=frozenset(name for name in UNEVALUATED_CRITERIA if record.get(name)),
        )


@dataclass(frozen=True)
class Agent:
    """A platform user working cases, with role names and group memberships."""

    sys_id: str
    user_name: str
    name: str
    email: str
    active: bool
    roles: frozenset[str]
    groups: frozenset[str]
    group_names: frozenset[str]

    FIELDS = ("sys_id", "user_name", "name", "email", "active")

    @classmethod
    def from_record(
        cls,
        record: Mapping[str, object],
        *,
        roles: frozenset[str],
        groups: frozenset[str],
        group_names: frozenset[str],
    ) -> Agent:
        return cls(
            sys_id=_text(record, "sys_id"),
            user_name=_text(record, "user_name"),
            name=_text(record, "name"),
            email=_text(record, "email"),
            active=bool(record.get("active", False)),
            roles=roles,
            groups=groups,
            group_names=group_names,
        )


@dataclass(frozen=True)
class JournalEntry:
    """One work note or customer comment (a ``sys_journal_field`` row)."""

    sys_id: str
    table: str
    element_id: str
    element: str
    value: str
    marker: str
    sys_created_on: datetime | None
    sys_created_by: str
    # False when an earlier attempt with the same key had already posted it.
    created: bool = True

    FIELDS = ("sys_id", "name", "element_id", "element", "value", "sys_created_on", "sys_created_by")

    @classmethod
    def from_record(cls, record: Mapping[str, object], *, marker: str, created: bool) -> JournalEntry:
        return cls(
            sys_id=_text(record, "sys_id"),
            table=_text(record, "name"),
            element_id=_text(record, "element_id"),
            element=_text(record, "element"),
            value=_text(record, "value"),
            marker=marker,
            sys_created_on=record.get("sys_created_on"),
            sys_created_by=_text(record, "sys_created_by"),
            created=created,
        )
