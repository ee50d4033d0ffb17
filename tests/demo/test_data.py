"""The demo data: counts, required fields, references, read rules and article shapes."""

from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser

import pytest

from integration.instance import catalog
from inward.demo.dataset import DemoData, demo_sys_id, load_demo_data, load_relevant_articles

AGENT_ROLES = {"itil", "sn_customerservice_agent"}
TODAY = date.today()

REQUIRED_FIELDS = {
    "sys_user": ["user_name", "first_name", "last_name", "name", "email", "title", "department", "active"],
    "sys_user_group": ["name", "description", "manager"],
    "sys_user_role": ["name"],
    "sys_user_has_role": ["user", "role"],
    "sys_user_grmember": ["user", "group"],
    "customer_account": ["name", "number"],
    "customer_contact": ["user_name", "name", "email", "account"],
    "user_criteria": ["name", "active", "match_all", "advanced"],
    "kb_knowledge_base": ["title", "description", "owner", "active"],
    "kb_uc_can_read_mtom": ["kb_knowledge_base", "user_criteria"],
    "kb_uc_cannot_read_mtom": ["kb_knowledge_base", "user_criteria"],
    "kb_category": ["label", "value", "full_category", "parent_table", "parent_id", "kb_knowledge_base"],
    "kb_knowledge": ["number", "short_description", "text", "meta", "kb_knowledge_base", "kb_category",
                     "workflow_state", "valid_to", "author", "article_type"],
    "sn_customerservice_case": ["number", "short_description", "description", "category", "product",
                                "state", "priority", "contact", "account", "assignment_group"],
    "incident": ["number", "short_description", "description", "caller_id", "category", "impact",
                 "urgency", "priority", "state", "assignment_group"],
    "sys_journal_field": ["element", "element_id", "name", "value", "sys_created_by", "sys_created_on"],
    "m2m_kb_task": ["kb_knowledge", "task"],
    "kb_feedback": ["article", "user", "useful", "flagged"],
}

MINIMUM_COUNTS = {
    "kb_knowledge": 60,
    "kb_knowledge_base": 3,
    "sn_customerservice_case": 40,
    "incident": 20,
    "sys_user_group": 3,
    "customer_account": 2,
    "customer_contact": 5,
    "sys_journal_field": 5,
    "m2m_kb_task": 10,
    "kb_feedback": 10,
}


class VisibleText(HTMLParser):
    """Collects the text a reader would see, leaving out script and style content."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag in ("script", "style"):
            self.hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def parse_html(html: str) -> VisibleText:
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def data() -> DemoData:
    return load_demo_data()


def role_names_by_user(data: DemoData) -> dict[str, set[str]]:
    names = {record.sys_id: record.values["name"] for record in data.table("sys_user_role")}
    result: dict[str, set[str]] = {}
    for link in data.table("sys_user_has_role"):
        result.setdefault(link.values["user"], set()).add(names[link.values["role"]])
    return result


def test_sys_ids_are_unique_hex_and_stable(data):
    sys_ids = [record.sys_id for record in data.records]
    assert len(sys_ids) == len(set(sys_ids))
    assert all(re.fullmatch(r"[0-9a-f]{32}", sys_id) for sys_id in sys_ids)
    again = load_demo_data()
    assert [record.values for record in again.records] == [record.values for record in data.records]
    assert data.find("sys_user", "daniel.kim").sys_id == demo_sys_id("sys_user", "daniel.kim")


@pytest.mark.parametrize("table,minimum", sorted(MINIMUM_COUNTS.items()))
def test_table_has_minimum_count(data, table, minimum):
    assert len(data.table(table)) >= minimum


@pytest.mark.parametrize("table,required", sorted(REQUIRED_FIELDS.items()))
def test_required_fields_are_filled(data, table, required):
    records = data.table(table)
    assert records, f"no demo records for {table}"
    for record in records:
        missing = [name for name in required if not record.values.get(name)]
        assert not missing, f"{table} {record.key} lacks {missing}"
        unknown = set(record.values) - set(catalog.fields_of(table))
        assert not unknown, f"{table} {record.key} has fields the instance does not know: {unknown}"


def test_every_reference_points_at_a_demo_record(data):
    ids_by_class: dict[str, set[str]] = {}
    for record in data.records:
        ids_by_class.setdefault(record.table, set()).add(record.sys_id)

    def ids_of(table: str) -> set[str]:
        return set().union(*(ids_by_class.get(name, set()) for name in catalog.descendants(table)))

    checked = 0
    for record in data.records:
        fields = catalog.fields_of(record.table)
        for name, value in record.values.items():
            field_def = fields[name]
            if not value or field_def.type not in (catalog.REFERENCE, catalog.LIST):
                continue
            for sys_id in value.split(","):
                assert sys_id in ids_of(field_def.reference), f"{record.table} {record.key}.{name}"
                checked += 1
        if record.table == "kb_category":
            assert record.values["parent_id"] in ids_of(record.values["parent_table"])
        if record.table == "sys_journal_field":
            assert record.values["element_id"] in ids_of(record.values["name"])
    assert checked > 500


def test_agents_groups_and_special_users(data):
    roles = role_names_by_user(data)
    users = {record.key: record for record in data.table("sys_user")}
    agents = [key for key, record in users.items() if roles.get(record.sys_id, set()) & AGENT_ROLES]
    assert len(agents) >= 12
    assert {"itil", "sn_customerservice_agent", "knowledge_admin", "admin", "inward_admin"} <= {
        record.values["name"] for record in data.table("sys_user_role")
    }
    inactive = [key for key, record in users.items() if record.values["active"] == "false"]
    assert inactive == ["ruth.bennett"]
    assert not roles.get(users["oliver.grant"].sys_id)
    assert roles[users["inward.integration"].sys_id] == {"admin"}
    groups_with_agents = {
        link.values["group"] for link in data.table("sys_user_grmember")
        if roles.get(link.values["user"], set()) & AGENT_ROLES
    }
    assert len(groups_with_agents) >= 3


def test_customer_base_has_no_read_criteria(data):
    base = data.find("kb_knowledge_base", "customer_help").sys_id
    links = data.table("kb_uc_can_read_mtom") + data.table("kb_uc_cannot_read_mtom")
    assert not [link for link in links if link.values["kb_knowledge_base"] == base]


def test_agent_base_is_read_by_agent_roles(data):
    base = data.find("kb_knowledge_base", "agent_playbook").sys_id
    criteria_ids = [link.values["user_criteria"] for link in data.table("kb_uc_can_read_mtom")
                    if link.values["kb_knowledge_base"] == base]
    role_names = {record.sys_id: record.values["name"] for record in data.table("sys_user_role")}
    criteria = [record for record in data.table("user_criteria") if record.sys_id in criteria_ids]
    assert len(criteria) == 1
    assert {role_names[role] for role in criteria[0].values["role"].split(",")} == AGENT_ROLES


def test_restricted_base_is_read_by_one_group(data):
    base = data.find("kb_knowledge_base", "fraud_operations").sys_id
    criteria_ids = [link.values["user_criteria"] for link in data.table("kb_uc_can_read_mtom")
                    if link.values["kb_knowledge_base"] == base]
    assert len(criteria_ids) == 1
    criteria = next(record for record in data.table("user_criteria") if record.sys_id == criteria_ids[0])
    assert criteria.values["group"] == demo_sys_id("sys_user_group", "fraud_operations")
    assert criteria.values["user"] == ""
    assert criteria.values["role"] == ""
    assert criteria.values["advanced"] == "false"
    assert criteria.values["active"] == "true"


def test_article_level_criteria_and_scripted_criteria(data):
    articles = data.table("kb_knowledge")
    assert [a for a in articles if a.values["can_read_user_criteria"]]
    assert [a for a in articles if a.values["cannot_read_user_criteria"]]
    scripted = [c for c in data.table("user_criteria") if c.values["advanced"] == "true"]
    assert len(scripted) == 1
    assert scripted[0].values["script"].strip()
    assert [a for a in articles if scripted[0].sys_id in a.values["can_read_user_criteria"]]


def test_article_states(data):
    articles = data.table("kb_knowledge")
    states = [article.values["workflow_state"] for article in articles]
    assert states.count("draft") >= 4
    assert states.count("retired") >= 3
    assert states.count("published") > len(articles) / 2
    outdated = [
        article for article in articles
        if article.values["workflow_state"] == "published"
        and date.fromisoformat(article.values["valid_to"]) < TODAY
    ]
    assert len(outdated) >= 3


def test_every_knowledge_base_has_published_articles(data):
    for base in data.table("kb_knowledge_base"):
        published = [a for a in data.table("kb_knowledge")
                     if a.values["kb_knowledge_base"] == base.sys_id
                     and a.values["workflow_state"] == "published"]
        assert len(published) >= 4, base.key


def test_article_numbers_and_meta(data):
    numbers = [article.values["number"] for article in data.table("kb_knowledge")]
    assert len(numbers) == len(set(numbers))
    assert all(re.fullmatch(r"KB\d{7}", number) for number in numbers)
    assert all(len(article.values["meta"].split(",")) >= 3 for article in data.table("kb_knowledge"))


def test_article_bodies_are_real_html(data):
    articles = data.table("kb_knowledge")
    tag_sets = {}
    for article in articles:
        parsed = parse_html(article.values["text"])
        words = len(" ".join(parsed.parts).split())
        assert 150 <= words <= 500, f"{article.key} has {words} words"
        assert "p" in parsed.tags, article.key
        assert parsed.tags & {"ol", "ul"}, article.key
        tag_sets[article.key] = parsed.tags
    assert sum("h2" in tags for tags in tag_sets.values()) >= 50
    assert sum("table" in tags for tags in tag_sets.values()) >= 5
    assert sum("img" in tags for tags in tag_sets.values()) >= 4


def test_images_are_inlined_svg(data):
    sources = [source for article in data.table("kb_knowledge")
               for source in re.findall(r'<img[^>]*\ssrc="([^"]*)"', article.values["text"])]
    inlined = [source for source in sources if source.startswith("data:image/svg+xml;base64,")]
    assert len(inlined) >= 4
    assert not [source for source in sources if source.startswith("images/")]


def test_unsafe_articles_are_marked(data):
    unsafe = data.unsafe_articles
    texts = {article.key: article.values["text"] for article in data.table("kb_knowledge")}
    with_script = {key for key, text in texts.items() if re.search(r"<script\b", text, re.I)}
    with_handler = {key for key, text in texts.items() if re.search(r"\sonerror\s*=", text, re.I)}
    assert len(with_script) >= 3
    assert len(with_handler) >= 1
    assert with_script | with_handler == unsafe
    published = {a.key for a in data.table("kb_knowledge") if a.values["workflow_state"] == "published"}
    assert unsafe <= published


def test_cases_read_like_customer_reports(data):
    cases = data.table("sn_customerservice_case")
    states = {case.values["state"] for case in cases}
    assert {"1", "10", "18", "6", "3"} <= states
    assert len({case.values["category"] for case in cases}) >= 5
    assert all(len(case.values["description"].split()) >= 15 for case in cases)
    contacts = {contact.sys_id: contact.values["email"] for contact in data.table("customer_contact")}
    customer_comments = [
        entry for entry in data.table("sys_journal_field")
        if entry.values["element"] == "comments" and entry.values["sys_created_by"] in contacts.values()
    ]
    assert len(customer_comments) >= 4
    assert {entry.values["element"] for entry in data.table("sys_journal_field")} == {"comments", "work_notes"}


def test_incident_priority_follows_impact_and_urgency(data):
    # The platform's default lookup: (impact, urgency) -> priority.
    expected = {
        ("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2", ("1", "3"): "3", ("2", "2"): "3",
        ("3", "1"): "3", ("2", "3"): "4", ("3", "2"): "4", ("3", "3"): "5",
    }
    for incident in data.table("incident"):
        key = (incident.values["impact"], incident.values["urgency"])
        assert incident.values["priority"] == expected[key], incident.key


def test_attached_and_rated_articles_are_published(data):
    states = {article.sys_id: article.values["workflow_state"] for article in data.table("kb_knowledge")}
    for link in data.table("m2m_kb_task"):
        assert states[link.values["kb_knowledge"]] == "published", link.key
    for feedback in data.table("kb_feedback"):
        assert states[feedback.values["article"]] == "published", feedback.key
        assert feedback.values["useful"] in {"yes", "no"}, feedback.key


def test_relevant_articles_are_published_demo_articles(data):
    states = {article.key: article.values["workflow_state"] for article in data.table("kb_knowledge")}
    labels = load_relevant_articles()
    assert len(labels) >= 30
    for case_number, numbers in labels.items():
        assert numbers, case_number
        for number in numbers:
            assert number in states, f"{case_number}: {number} is not a demo article"
            assert states[number] == "published", f"{case_number}: {number} is {states[number]}"


def test_relevant_articles_include_attached(data):
    labels = load_relevant_articles()
    case_ids = {demo_sys_id("sn_customerservice_case", number): number for number in labels}
    article_numbers = {article.sys_id: article.key for article in data.table("kb_knowledge")}
    for link in data.table("m2m_kb_task"):
        case_number = case_ids.get(link.values["task"])
        assert case_number is not None, f"{link.key}: a case with attached articles has no relevant_articles"
        assert article_numbers[link.values["kb_knowledge"]] in labels[case_number], link.key


def test_relevant_articles_add_no_records(data):
    labelled_links = sum(len(numbers) for numbers in load_relevant_articles().values())
    assert labelled_links > len(data.table("m2m_kb_task"))
    assert all("relevant_articles" not in record.values for record in data.records)
