"""Table schemas of the embedded instance: fields, types, references, number prefixes, parents.

Field lists follow the tables Inward reads and writes. A table that extends
another (incident extends task) inherits its parent's fields, and a query on
the parent returns the child rows too, as on the platform.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

# Field types, named as in the platform's dictionary.
STRING = "string"
INTEGER = "integer"
DECIMAL = "decimal"
BOOLEAN = "boolean"
DATETIME = "glide_date_time"
DATE = "glide_date"
REFERENCE = "reference"
LIST = "glide_list"
JOURNAL = "journal_input"
HTML = "html"
PASSWORD = "password2"

INTEGER_TYPES = {INTEGER, DECIMAL}


@dataclass(frozen=True)
class Field:
    """One column: its name, type, and for references and lists the target table."""

    name: str
    type: str = STRING
    reference: str = ""
    choices: tuple[tuple[str, str], ...] = ()

    def choice_label(self, value: str) -> str:
        """Return the label of a choice value, or the value itself when it has none."""
        for choice_value, label in self.choices:
            if choice_value == value:
                return label
        return value

    def choice_value(self, label: str) -> str:
        """Return the value whose label is ``label``, or ``label`` unchanged."""
        for choice_value, choice_label in self.choices:
            if choice_label.lower() == label.lower():
                return choice_value
        return label


@dataclass(frozen=True)
class Table:
    """A table: its own fields, its parent, number prefix and display field."""

    name: str
    fields: dict[str, Field]
    parent: str = ""
    number_prefix: str = ""
    display_field: str = ""
    defaults: dict[str, str] = field(default_factory=dict)


def _ref(table: str) -> tuple[str, str]:
    return (REFERENCE, table)


def _list(table: str) -> tuple[str, str]:
    return (LIST, table)


def _fields(spec: dict[str, object]) -> dict[str, Field]:
    """Build Field objects from a compact {name: type | (type, reference) | Field} map."""
    built: dict[str, Field] = {}
    for name, kind in spec.items():
        if isinstance(kind, Field):
            built[name] = kind
        elif isinstance(kind, tuple):
            built[name] = Field(name, kind[0], kind[1])
        else:
            built[name] = Field(name, str(kind))
    return built


IMPACT_CHOICES = (("1", "1 - High"), ("2", "2 - Medium"), ("3", "3 - Low"))
PRIORITY_CHOICES = (
    ("1", "1 - Critical"),
    ("2", "2 - High"),
    ("3", "3 - Moderate"),
    ("4", "4 - Low"),
    ("5", "5 - Planning"),
)
INCIDENT_STATES = (
    ("1", "New"),
    ("2", "In Progress"),
    ("3", "On Hold"),
    ("6", "Resolved"),
    ("7", "Closed"),
    ("8", "Canceled"),
)
# NOTE: the CSM case state numbers are the commonly cited ones, not read
# from a real instance; read sys_choice on the target instance.
CASE_STATES = (
    ("1", "New"),
    ("10", "Open"),
    ("18", "Awaiting Info"),
    ("6", "Resolved"),
    ("3", "Closed"),
    ("7", "Cancelled"),
)

SYSTEM_FIELDS = _fields({
    "sys_id": STRING,
    "sys_class_name": STRING,
    "sys_created_on": DATETIME,
    "sys_created_by": STRING,
    "sys_updated_on": DATETIME,
    "sys_updated_by": STRING,
    "sys_mod_count": INTEGER,
    "sys_tags": STRING,
    "sys_domain": STRING,
    "sys_domain_path": STRING,
})

TASK = Table(
    "task",
    _fields({
        "number": STRING, "short_description": STRING, "description": STRING,
        "state": INTEGER,
        "priority": Field("priority", INTEGER, choices=PRIORITY_CHOICES),
        "impact": Field("impact", INTEGER, choices=IMPACT_CHOICES),
        "urgency": Field("urgency", INTEGER, choices=IMPACT_CHOICES),
        "active": BOOLEAN, "approval": STRING, "approval_history": STRING, "approval_set": DATETIME,
        "assigned_to": _ref("sys_user"), "assignment_group": _ref("sys_user_group"),
        "additional_assignee_list": _list("sys_user"), "activity_due": DATETIME,
        "business_duration": DATETIME, "business_service": STRING, "calendar_duration": DATETIME,
        "close_notes": STRING, "closed_at": DATETIME, "closed_by": _ref("sys_user"),
        "cmdb_ci": STRING, "comments": JOURNAL, "work_notes": JOURNAL,
        "comments_and_work_notes": STRING, "company": _ref("customer_account"),
        "contact_type": STRING, "contract": STRING, "correlation_display": STRING,
        "correlation_id": STRING, "delivery_plan": STRING, "delivery_task": STRING,
        "due_date": DATETIME, "escalation": INTEGER, "expected_start": DATETIME,
        "follow_up": DATETIME, "group_list": _list("sys_user_group"), "knowledge": BOOLEAN,
        "location": STRING, "made_sla": BOOLEAN, "opened_at": DATETIME,
        "opened_by": _ref("sys_user"), "order": INTEGER, "parent": _ref("task"),
        "reassignment_count": INTEGER, "route_reason": INTEGER, "service_offering": STRING,
        "sla_due": DATETIME, "task_effective_number": STRING, "time_worked": STRING,
        "universal_request": _ref("task"), "upon_approval": STRING, "upon_reject": STRING,
        "user_input": STRING, "watch_list": _list("sys_user"), "work_end": DATETIME,
        "work_notes_list": _list("sys_user"), "work_start": DATETIME,
    }),
    number_prefix="TASK",
    display_field="number",
    defaults={"active": "true", "priority": "4", "impact": "3", "urgency": "3", "state": "1"},
)

INCIDENT = Table(
    "incident",
    _fields({
        "caller_id": _ref("sys_user"), "category": STRING, "subcategory": STRING,
        "state": Field("state", INTEGER, choices=INCIDENT_STATES),
        "incident_state": Field("incident_state", INTEGER, choices=INCIDENT_STATES),
        "business_impact": STRING, "business_stc": INTEGER, "calendar_stc": INTEGER,
        "cause": STRING, "caused_by": STRING, "child_incidents": INTEGER,
        "close_code": STRING, "hold_reason": INTEGER, "notify": INTEGER,
        "origin_id": STRING, "origin_table": STRING, "parent_incident": _ref("incident"),
        "problem_id": _ref("problem"), "reopen_count": INTEGER, "reopened_by": _ref("sys_user"),
        "reopened_time": DATETIME, "resolved_at": DATETIME, "resolved_by": _ref("sys_user"),
        "rfc": _ref("change_request"), "severity": INTEGER,
    }),
    parent="task",
    number_prefix="INC",
    display_field="number",
    defaults={"state": "1", "incident_state": "1", "impact": "3", "urgency": "3", "priority": "5"},
)

CASE = Table(
    "sn_customerservice_case",
    _fields({
        "account": _ref("customer_account"), "contact": _ref("customer_contact"),
        "consumer": STRING, "product": STRING, "asset": STRING, "entitlement": STRING,
        "partner": STRING, "category": STRING, "subcategory": STRING,
        "state": Field("state", INTEGER, choices=CASE_STATES),
        "resolution_code": STRING, "cause": STRING, "business_impact": STRING,
    }),
    parent="task",
    number_prefix="CS",
    display_field="number",
    defaults={"state": "1"},
)

PROBLEM = Table(
    "problem",
    _fields({
        "category": STRING, "subcategory": STRING, "cause_notes": STRING,
        "confirmed_at": DATETIME, "confirmed_by": _ref("sys_user"), "duplicate_of": _ref("problem"),
        "first_reported_by_task": _ref("task"), "fix_at": DATETIME, "fix_by": _ref("sys_user"),
        "fix_communicated_at": DATETIME, "fix_communicated_by": _ref("sys_user"),
        "fix_notes": STRING, "known_error": BOOLEAN, "major_problem": BOOLEAN,
        "problem_state": INTEGER, "related_incidents": INTEGER, "reopened_at": DATETIME,
        "reopened_by": _ref("sys_user"), "reopen_count": INTEGER, "resolution_code": STRING,
        "resolved_at": DATETIME, "resolved_by": _ref("sys_user"), "review_outcome": STRING,
        "rfc": _ref("change_request"), "workaround": STRING, "workaround_applied": BOOLEAN,
        "workaround_communicated_at": DATETIME, "workaround_communicated_by": _ref("sys_user"),
    }),
    parent="task",
    number_prefix="PRB",
    display_field="number",
)

CHANGE_REQUEST = Table(
    "change_request",
    _fields({
        "backout_plan": STRING, "cab_date_time": DATETIME, "cab_delegate": _ref("sys_user"),
        "cab_recommendation": STRING, "cab_required": BOOLEAN, "category": STRING,
        "change_plan": STRING, "chg_model": STRING, "close_code": STRING,
        "conflict_last_run": DATETIME, "conflict_status": STRING, "end_date": DATETIME,
        "implementation_plan": STRING, "justification": STRING, "on_hold": BOOLEAN,
        "on_hold_reason": STRING, "on_hold_task": STRING, "outside_maintenance_schedule": BOOLEAN,
        "phase": STRING, "phase_state": STRING, "production_system": BOOLEAN, "reason": STRING,
        "requested_by": _ref("sys_user"), "requested_by_date": DATETIME,
        "review_comments": STRING, "review_date": DATE, "review_status": STRING, "risk": INTEGER,
        "risk_impact_analysis": STRING, "scope": INTEGER, "start_date": DATETIME,
        "std_change_producer_version": STRING, "test_plan": STRING, "type": STRING,
        "unauthorized": BOOLEAN,
    }),
    parent="task",
    number_prefix="CHG",
    display_field="number",
)

KB_KNOWLEDGE = Table(
    "kb_knowledge",
    _fields({
        "number": STRING, "short_description": STRING, "text": HTML, "wiki": STRING,
        "article_type": STRING, "kb_knowledge_base": _ref("kb_knowledge_base"),
        "kb_category": _ref("kb_category"), "workflow_state": STRING, "active": BOOLEAN,
        "published": DATE, "retired": DATE, "valid_to": DATE, "author": _ref("sys_user"),
        "revised_by": _ref("sys_user"), "ownership_group": _ref("sys_user_group"),
        "can_read_user_criteria": _list("user_criteria"),
        "cannot_read_user_criteria": _list("user_criteria"), "roles": STRING, "meta": STRING,
        "meta_description": STRING, "topic": STRING, "category": STRING,
        "sys_view_count": INTEGER, "use_count": INTEGER, "helpful_count": INTEGER,
        "rating": DECIMAL, "flagged": BOOLEAN, "disable_commenting": BOOLEAN,
        "disable_suggesting": BOOLEAN, "display_attachments": BOOLEAN, "direct": BOOLEAN,
        "latest": BOOLEAN, "version": STRING, "base_version": _ref("kb_knowledge"),
        "article_id": STRING, "display_number": STRING, "source": _ref("task"),
        "replacement_article": _ref("kb_knowledge"), "cmdb_ci": STRING,
        "scheduled_publish_date": DATETIME, "language": STRING,
    }),
    number_prefix="KB",
    display_field="number",
    defaults={"workflow_state": "draft", "active": "true", "article_type": "text",
              "latest": "true", "sys_view_count": "0", "use_count": "0", "helpful_count": "0"},
)

KB_KNOWLEDGE_BASE = Table(
    "kb_knowledge_base",
    _fields({
        "title": STRING, "description": STRING, "owner": _ref("sys_user"),
        "kb_managers": _list("sys_user"), "active": BOOLEAN, "disable_commenting": BOOLEAN,
        "disable_rating": BOOLEAN, "disable_mark_as_helpful": BOOLEAN,
        "disable_suggesting": BOOLEAN, "disable_category_editing": BOOLEAN,
        "enable_blocks": BOOLEAN, "table": STRING, "kb_version": STRING, "languages": STRING,
    }),
    display_field="title",
    defaults={"active": "true", "table": "kb_knowledge", "kb_version": "3"},
)

OTHER_TABLES = [
    Table("kb_category", _fields({
        "label": STRING, "value": STRING, "full_category": STRING, "parent_table": STRING,
        "parent_id": STRING, "active": BOOLEAN, "kb_knowledge_base": _ref("kb_knowledge_base"),
    }), display_field="label", defaults={"active": "true"}),
    Table("user_criteria", _fields({
        "name": STRING, "user": _list("sys_user"), "group": _list("sys_user_group"),
        "role": _list("sys_user_role"), "department": STRING, "location": STRING,
        "company": STRING, "cost_center": STRING, "match_all": BOOLEAN, "advanced": BOOLEAN,
        "script": STRING, "active": BOOLEAN,
    }), display_field="name",
        defaults={"active": "true", "match_all": "false", "advanced": "false"}),
    Table("kb_uc_can_read_mtom", _fields({
        "kb_knowledge_base": _ref("kb_knowledge_base"), "user_criteria": _ref("user_criteria"),
    })),
    Table("kb_uc_cannot_read_mtom", _fields({
        "kb_knowledge_base": _ref("kb_knowledge_base"), "user_criteria": _ref("user_criteria"),
    })),
    Table("sys_user", _fields({
        "user_name": STRING, "first_name": STRING, "last_name": STRING, "name": STRING,
        "email": STRING, "active": BOOLEAN, "locked_out": BOOLEAN, "title": STRING,
        "department": STRING, "manager": _ref("sys_user"), "company": _ref("customer_account"),
        "location": STRING, "time_zone": STRING, "date_format": STRING,
        "web_service_access_only": BOOLEAN, "internal_integration_user": BOOLEAN,
        "vip": BOOLEAN, "phone": STRING, "user_password": PASSWORD,
    }), display_field="name", defaults={"active": "true", "locked_out": "false"}),
    Table("customer_contact", _fields({"account": _ref("customer_account")}),
          parent="sys_user", display_field="name"),
    Table("sys_user_group", _fields({
        "name": STRING, "description": STRING, "manager": _ref("sys_user"), "email": STRING,
        "active": BOOLEAN, "type": STRING, "parent": _ref("sys_user_group"),
    }), display_field="name", defaults={"active": "true"}),
    Table("sys_user_grmember", _fields({
        "user": _ref("sys_user"), "group": _ref("sys_user_group"),
    })),
    Table("sys_user_role", _fields({
        "name": STRING, "description": STRING, "suffix": STRING,
    }), display_field="name"),
    Table("sys_user_has_role", _fields({
        "user": _ref("sys_user"), "role": _ref("sys_user_role"), "inherited": BOOLEAN,
        "granted_by": _ref("sys_user_group"), "state": STRING,
    }), defaults={"inherited": "false", "state": "active"}),
    Table("sys_journal_field", _fields({
        "element": STRING, "element_id": STRING, "name": STRING, "value": STRING,
    }), display_field="value"),
    Table("m2m_kb_task", _fields({
        "kb_knowledge": _ref("kb_knowledge"), "task": _ref("task"),
    })),
    Table("kb_feedback", _fields({
        "article": _ref("kb_knowledge"), "user": _ref("sys_user"), "rating": INTEGER,
        "useful": STRING, "comments": STRING, "flagged": BOOLEAN, "query": STRING,
        "search_id": STRING, "session_id": STRING, "parent_feedback": _ref("kb_feedback"),
        "root_feedback": _ref("kb_feedback"), "resolved": BOOLEAN, "view_id": STRING,
    }), defaults={"flagged": "false", "resolved": "false"}),
    Table("kb_use", _fields({
        "article": _ref("kb_knowledge"), "article_summary": STRING, "user": _ref("sys_user"),
        "viewed": BOOLEAN, "used": BOOLEAN, "times_viewed": INTEGER, "search_id": STRING,
        "session_id": STRING,
    }), defaults={"viewed": "false", "used": "false", "times_viewed": "0"}),
    Table("customer_account", _fields({
        "name": STRING, "number": STRING, "phone": STRING, "website": STRING,
        "customer": BOOLEAN, "primary_contact": _ref("customer_contact"),
    }), number_prefix="ACC", display_field="name"),
    Table("sys_choice", _fields({
        "name": STRING, "element": STRING, "value": STRING, "label": STRING,
        "sequence": INTEGER, "language": STRING, "inactive": BOOLEAN,
    }), display_field="label", defaults={"language": "en", "inactive": "false"}),
    Table("sys_properties", _fields({
        "name": STRING, "value": STRING, "type": STRING, "description": STRING,
    }), display_field="name"),
    # Attachment metadata; the file bytes are kept beside it by the store.
    Table("sys_attachment", _fields({
        "file_name": STRING, "content_type": STRING, "size_bytes": INTEGER,
        "size_compressed": INTEGER, "compressed": BOOLEAN, "table_name": STRING,
        "table_sys_id": STRING, "hash": STRING,
    }), display_field="file_name", defaults={"compressed": "false"}),
    # Outbound mail the instance would send; "Incident commented" style
    # notifications for customer-visible comments are recorded here.
    Table("sys_email", _fields({
        "type": STRING, "recipients": STRING, "subject": STRING, "body": STRING,
        "instance": STRING, "target_table": STRING, "notification_type": STRING,
    }), display_field="subject"),
]

TABLES: dict[str, Table] = {
    table.name: table
    for table in [TASK, INCIDENT, CASE, PROBLEM, CHANGE_REQUEST, KB_KNOWLEDGE, KB_KNOWLEDGE_BASE,
                  *OTHER_TABLES]
}

JOURNAL_TABLE = "sys_journal_field"


def get_table(name: str) -> Table | None:
    """Return the table called ``name``, or None when the catalog has no such table."""
    return TABLES.get(name)


def lineage(name: str) -> list[Table]:
    """Return the table and its ancestors, the table itself first."""
    chain = []
    table = TABLES.get(name)
    while table is not None:
        chain.append(table)
        table = TABLES.get(table.parent) if table.parent else None
    return chain


def fields_of(name: str) -> dict[str, Field]:
    """Return every field of a table: system fields, inherited ones, then its own."""
    merged: dict[str, Field] = dict(SYSTEM_FIELDS)
    for table in reversed(lineage(name)):
        merged.update(table.fields)
    return merged


def descendants(name: str) -> list[str]:
    """Return the table and every table that extends it, directly or not."""
    names = [name]
    for table in TABLES.values():
        if table.parent == name:
            names.extend(descendants(table.name))
    return names


def is_instance_of(class_name: str, ancestor: str) -> bool:
    """Tell whether ``class_name`` is ``ancestor`` or extends it."""
    return any(table.name == ancestor for table in lineage(class_name))


def number_prefix(name: str) -> str:
    """Return the number prefix of a table, inherited from its parent when it has none."""
    for table in lineage(name):
        if table.number_prefix:
            return table.number_prefix
    return ""


def display_field(name: str) -> str:
    """Return the field whose value is a record's display value."""
    for table in lineage(name):
        if table.display_field:
            return table.display_field
    return ""


def defaults_of(name: str) -> dict[str, str]:
    """Return the default values a new record of the table gets."""
    merged: dict[str, str] = {}
    for table in reversed(lineage(name)):
        merged.update(table.defaults)
    return merged


def resolve_field(table: str, path: str) -> Field | None:
    """Return the field a dot-walked path ends at, or None when any step is unknown."""
    parts = path.split(".")
    current = table
    for index, part in enumerate(parts):
        found = fields_of(current).get(part)
        if found is None:
            return None
        if index == len(parts) - 1:
            return found
        if found.type != REFERENCE:
            return None
        current = found.reference
    return None
