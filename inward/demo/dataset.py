"""Load the demo data files into platform records with stable sys_ids.

The YAML files under ``data/`` name records by a key (a user_name, a group
key, an article number) and refer to each other by those keys. This module
turns them into rows of the platform's tables: every value a string, as the
Table API returns it with ``sysparm_display_value=false``, every reference a
sys_id. A sys_id is the uuid5 of the table and the key, so loading twice
gives the same ids and tests can find a record by name with ``demo_sys_id``.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
SYS_ID_NAMESPACE = uuid.UUID("5d8f2a3c-6b1e-4c7a-9f0d-2e4b6a8c0d1e")

# Article bodies refer to the shipped SVGs as images/NAME.svg, and the loader
# inlines them as data: URIs so an article needs no file server.
IMAGE_SOURCE = re.compile(r'src="images/([A-Za-z0-9_-]+\.svg)"')
# Articles without a valid_to get the platform's default of 2100-01-01.
DEFAULT_VALID_TO = "2100-01-01"

CASE_STATES = {"new": "1", "open": "10", "awaiting_info": "18", "resolved": "6",
               "closed": "3", "cancelled": "7"}
INCIDENT_STATES = {"new": "1", "in_progress": "2", "on_hold": "3", "resolved": "6",
                   "closed": "7", "canceled": "8"}
INACTIVE_CASE_STATES = {"closed", "cancelled"}
INACTIVE_INCIDENT_STATES = {"closed", "canceled"}
# Default incident priority lookup (impact, urgency) -> priority, as the
# platform's calculatePriority rule computes it.
PRIORITY_MATRIX = {
    (1, 1): 1, (1, 2): 2, (2, 1): 2, (1, 3): 3, (2, 2): 3, (3, 1): 3,
    (2, 3): 4, (3, 2): 4, (3, 3): 5,
}
# Fixed opening times keep a reseed identical. Cases open 7 hours apart.
FIRST_CASE_OPENED = datetime(2026, 11, 16, 8, 0)
FIRST_INCIDENT_OPENED = datetime(2026, 11, 20, 7, 30)

INTEGRATION_USER = "inward.integration"
KNOWLEDGE_OWNERS = {"customer_help": "knowledge_team", "agent_playbook": "knowledge_team",
                    "fraud_operations": "fraud_operations"}


class DemoDataError(ValueError):
    """A demo data file is malformed or refers to a key that does not exist."""


def demo_sys_id(table: str, key: str) -> str:
    """Return the stable sys_id of the demo record ``key`` in ``table``."""
    return uuid.uuid5(SYS_ID_NAMESPACE, f"{table}:{key}").hex


@dataclass(frozen=True)
class DemoRecord:
    """One row to insert: its table, its key in the data files and its field values."""

    table: str
    key: str
    values: dict[str, str]

    @property
    def sys_id(self) -> str:
        return self.values["sys_id"]


@dataclass
class DemoData:
    """Every demo record in insertion order, plus the articles whose HTML carries script."""

    records: list[DemoRecord] = field(default_factory=list)
    unsafe_articles: set[str] = field(default_factory=set)

    def table(self, name: str) -> list[DemoRecord]:
        """Return the records of one table."""
        return [record for record in self.records if record.table == name]

    def find(self, table: str, key: str) -> DemoRecord:
        """Return the record of ``table`` with that key, or raise KeyError when there is none."""
        sys_id = demo_sys_id(table, key)
        for record in self.records:
            if record.sys_id == sys_id:
                return record
        raise KeyError(f"No demo {table} record with key {key!r}")

    def counts(self) -> dict[str, int]:
        """Return the number of records per table."""
        result: dict[str, int] = {}
        for record in self.records:
            result[record.table] = result.get(record.table, 0) + 1
        return result

    def add(self, table: str, key: str, values: dict[str, Any]) -> DemoRecord:
        """Append a record, converting values to strings and setting its sys_id."""
        text = {name: to_text(value) for name, value in values.items()}
        text["sys_id"] = demo_sys_id(table, key)
        record = DemoRecord(table, key, text)
        self.records.append(record)
        return record


def to_text(value: Any) -> str:
    """Convert a YAML value to the string the Table API stores."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ",".join(to_text(item) for item in value)
    return str(value)


def ref(table: str, key: str | None) -> str:
    """Return the sys_id stored in a reference to ``key``, or "" for an empty reference."""
    return demo_sys_id(table, key) if key else ""


def refs(table: str, keys: list[str] | None) -> str:
    """Return a glide_list value: the comma-separated sys_ids of ``keys``."""
    return ",".join(demo_sys_id(table, key) for key in keys or [])


def read_yaml(path: Path) -> Any:
    """Read one data file, naming the file in any parse error."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DemoDataError(f"Demo data file {path} is not valid YAML: {error}") from None


def load_demo_data(data_dir: Path = DATA_DIR) -> DemoData:
    """Load every demo data file into records, in an order that inserts references first."""
    data = DemoData()
    people = read_yaml(data_dir / "people.yaml")
    knowledge = read_yaml(data_dir / "knowledge.yaml")
    add_people(data, people)
    add_knowledge_bases(data, knowledge)
    for path in sorted((data_dir / "articles").glob("*.yaml")):
        add_articles(data, read_yaml(path), knowledge["categories"], data_dir / "images")
    contacts = {contact["key"]: contact for contact in people["contacts"]}
    add_cases(data, read_yaml(data_dir / "cases.yaml"), contacts)
    add_incidents(data, read_yaml(data_dir / "incidents.yaml"))
    add_feedback(data, read_yaml(data_dir / "feedback.yaml"))
    logger.debug("Loaded %d demo records from %s", len(data.records), data_dir)
    return data


def add_people(data: DemoData, people: dict) -> None:
    """Add roles, users, groups, their links, customer accounts and contacts."""
    for role in people["roles"]:
        data.add("sys_user_role", role["key"], {"name": role["name"], "description": role["description"]})
    for user in people["users"]:
        add_user(data, user)
    for group in people["groups"]:
        data.add("sys_user_group", group["key"], {
            "name": group["name"], "description": group["description"], "email": group["email"],
            "manager": ref("sys_user", group.get("manager")), "active": True,
        })
    for user in people["users"]:
        name = user["user_name"]
        for role in user["roles"]:
            data.add("sys_user_has_role", f"{name}:{role}", {
                "user": ref("sys_user", name), "role": ref("sys_user_role", role), "inherited": False,
            })
        for group in user["groups"]:
            data.add("sys_user_grmember", f"{name}:{group}", {
                "user": ref("sys_user", name), "group": ref("sys_user_group", group),
            })
    for account in people["accounts"]:
        data.add("customer_account", account["key"], {
            "name": account["name"], "number": account["number"], "customer": True,
        })
    for contact in people["contacts"]:
        add_contact(data, contact)


def add_user(data: DemoData, user: dict) -> None:
    """Add one sys_user row, with an e-mail address derived from the user_name."""
    name = user["user_name"]
    data.add("sys_user", name, {
        "user_name": name, "first_name": user["first_name"], "last_name": user["last_name"],
        "name": f"{user['first_name']} {user['last_name']}", "email": f"{name}@brightwater.example",
        "title": user["title"], "department": user["department"],
        "active": user.get("active", True), "locked_out": False,
        "web_service_access_only": user.get("web_service_access_only", False),
        "internal_integration_user": user.get("internal_integration_user", False),
        "time_zone": "America/Los_Angeles",
    })


def add_contact(data: DemoData, contact: dict) -> None:
    """Add one customer_contact, whose user_name is the e-mail address consumers sign in with."""
    data.add("customer_contact", contact["key"], {
        "user_name": contact["email"], "first_name": contact["first_name"],
        "last_name": contact["last_name"], "name": f"{contact['first_name']} {contact['last_name']}",
        "email": contact["email"], "phone": contact["phone"],
        "account": ref("customer_account", contact["account"]),
        "company": ref("customer_account", contact["account"]), "active": True,
    })


def add_knowledge_bases(data: DemoData, knowledge: dict) -> None:
    """Add user criteria, knowledge bases, their read criteria links and categories."""
    for criteria in knowledge["user_criteria"]:
        data.add("user_criteria", criteria["key"], {
            "name": criteria["name"], "user": refs("sys_user", criteria.get("user")),
            "group": refs("sys_user_group", criteria.get("group")),
            "role": refs("sys_user_role", criteria.get("role")),
            "match_all": criteria.get("match_all", False), "advanced": criteria.get("advanced", False),
            "script": criteria.get("script", ""), "active": criteria.get("active", True),
        })
    for base in knowledge["knowledge_bases"]:
        data.add("kb_knowledge_base", base["key"], {
            "title": base["title"], "description": base["description"],
            "owner": ref("sys_user", base["owner"]), "kb_managers": refs("sys_user", base["kb_managers"]),
            "active": True, "table": "kb_knowledge", "kb_version": "3",
        })
        for link_table, criteria_keys in (("kb_uc_can_read_mtom", base.get("can_read")),
                                          ("kb_uc_cannot_read_mtom", base.get("cannot_read"))):
            for criteria_key in criteria_keys or []:
                data.add(link_table, f"{base['key']}:{criteria_key}", {
                    "kb_knowledge_base": ref("kb_knowledge_base", base["key"]),
                    "user_criteria": ref("user_criteria", criteria_key),
                })
    for base_key, categories in knowledge["categories"].items():
        add_categories(data, base_key, categories)


def add_categories(data: DemoData, base_key: str, categories: list[dict]) -> None:
    """Add the categories of one knowledge base, where a parent must come before its children."""
    labels = {category["key"]: category["label"] for category in categories}
    for category in categories:
        parent = category.get("parent")
        full = f"{labels[parent]} / {category['label']}" if parent else category["label"]
        data.add("kb_category", category["key"], {
            "label": category["label"], "value": category["key"], "full_category": full,
            "parent_table": "kb_category" if parent else "kb_knowledge_base",
            "parent_id": ref("kb_category", parent) if parent else ref("kb_knowledge_base", base_key),
            "kb_knowledge_base": ref("kb_knowledge_base", base_key), "active": True,
        })


def add_articles(data: DemoData, articles: list[dict], categories: dict, image_dir: Path) -> None:
    """Add kb_knowledge rows, each in the knowledge base of its category."""
    base_of = {category["key"]: base for base, items in categories.items() for category in items}
    for article in articles:
        base = base_of.get(article["category"])
        if base is None:
            raise DemoDataError(f"Article {article['number']} has unknown category {article['category']!r}.")
        state = article["state"]
        data.add("kb_knowledge", article["number"], {
            "number": article["number"], "short_description": article["title"],
            "text": inline_images(article["text"], image_dir), "article_type": "text",
            "meta": article["meta"], "kb_knowledge_base": ref("kb_knowledge_base", base),
            "kb_category": ref("kb_category", article["category"]), "workflow_state": state,
            "active": state != "retired", "published": article.get("published") or "",
            "retired": article.get("retired") or "",
            "valid_to": article.get("valid_to") or DEFAULT_VALID_TO,
            "author": ref("sys_user", article["author"]),
            "ownership_group": ref("sys_user_group", KNOWLEDGE_OWNERS[base]),
            "can_read_user_criteria": refs("user_criteria", article.get("can_read")),
            "cannot_read_user_criteria": refs("user_criteria", article.get("cannot_read")),
            "language": "en",
        })
        if article.get("unsafe_html"):
            data.unsafe_articles.add(article["number"])


def inline_images(html: str, image_dir: Path) -> str:
    """Replace ``src="images/NAME.svg"`` by a base64 data: URI of that shipped file."""
    def data_uri(match: re.Match) -> str:
        path = image_dir / match.group(1)
        if not path.is_file():
            raise DemoDataError(f"Article image {path} does not exist.")
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'src="data:image/svg+xml;base64,{encoded}"'

    return IMAGE_SOURCE.sub(data_uri, html)


def add_cases(data: DemoData, cases: list[dict], contacts: dict[str, dict]) -> None:
    """Add customer cases, their journal entries and attached articles, opened at fixed times."""
    for index, case in enumerate(cases):
        contact = contacts[case["contact"]]
        opened = FIRST_CASE_OPENED + timedelta(hours=7 * index)
        state = case["state"]
        data.add("sn_customerservice_case", case["number"], {
            "number": case["number"], "short_description": case["short_description"],
            "description": case["description"].strip(), "category": case["category"],
            "subcategory": case["subcategory"], "product": case["product"],
            "state": CASE_STATES[state], "priority": case["priority"],
            "contact": ref("customer_contact", case["contact"]),
            "account": ref("customer_account", contact["account"]),
            "assigned_to": ref("sys_user", case["assigned_to"]),
            "assignment_group": ref("sys_user_group", case["assignment_group"]),
            "contact_type": case["contact_type"], "opened_at": opened, "sys_created_on": opened,
            "active": state not in INACTIVE_CASE_STATES,
        })
        add_journal(data, "sn_customerservice_case", case, opened, contacts)
        for number in case.get("attached_articles") or []:
            data.add("m2m_kb_task", f"{case['number']}:{number}", {
                "kb_knowledge": ref("kb_knowledge", number),
                "task": ref("sn_customerservice_case", case["number"]),
            })


def load_relevant_articles(data_dir: Path = DATA_DIR) -> dict[str, list[str]]:
    """Return the article numbers labelled relevant to each demo case, by case number.

    The labels are evaluation data, so ``load_demo_data`` adds no record for
    them. Cases without a ``relevant_articles`` key are left out.
    """
    cases = read_yaml(data_dir / "cases.yaml")
    return {case["number"]: list(case["relevant_articles"]) for case in cases if case.get("relevant_articles")}


def add_feedback(data: DemoData, feedback: list[dict]) -> None:
    """Add agents' helpful votes and star ratings of articles."""
    for entry in feedback:
        data.add("kb_feedback", f"{entry['article']}:{entry['user']}", {
            "article": ref("kb_knowledge", entry["article"]), "user": ref("sys_user", entry["user"]),
            "useful": entry["useful"], "rating": entry.get("rating", ""),
            "comments": entry.get("comments", ""), "flagged": entry.get("flagged", False),
        })


def add_journal(data: DemoData, table: str, task: dict, opened: datetime,
                contacts: dict[str, dict]) -> None:
    """Add a task's journal entries, two hours apart after it was opened."""
    for index, entry in enumerate(task.get("journal") or []):
        author = entry["by"]
        created_by = contacts[author]["email"] if author in contacts else author
        data.add("sys_journal_field", f"{task['number']}:{index}", {
            "element": entry["element"], "element_id": demo_sys_id(table, task["number"]),
            "name": table, "value": entry["value"], "sys_created_by": created_by,
            "sys_created_on": opened + timedelta(hours=2 * (index + 1)),
        })


def add_incidents(data: DemoData, incidents: list[dict]) -> None:
    """Add internal IT incidents, with the priority the platform derives."""
    for index, incident in enumerate(incidents):
        state = incident["state"]
        opened = FIRST_INCIDENT_OPENED + timedelta(hours=9 * index)
        impact, urgency = incident["impact"], incident["urgency"]
        data.add("incident", incident["number"], {
            "number": incident["number"], "short_description": incident["short_description"],
            "description": incident["description"], "caller_id": ref("sys_user", incident["caller_id"]),
            "category": incident["category"], "subcategory": incident["subcategory"],
            "impact": impact, "urgency": urgency, "priority": PRIORITY_MATRIX[(impact, urgency)],
            "state": INCIDENT_STATES[state], "incident_state": INCIDENT_STATES[state],
            "assigned_to": ref("sys_user", incident.get("assigned_to")),
            "assignment_group": ref("sys_user_group", "it_service_desk"),
            "contact_type": "self-service", "opened_at": opened, "sys_created_on": opened,
            "active": state not in INACTIVE_INCIDENT_STATES,
        })
