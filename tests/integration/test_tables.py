"""Domain helpers on seeded rows of the embedded instance."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from integration import tables
from integration.client import PlatformClient
from integration.errors import InvalidQueryValue, PlatformUnavailable, RecordNotFound
from integration.schemas import Agent, Article, Case, KnowledgeBase, UserCriteria


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(instance, sleeps):
    created_client = PlatformClient.from_settings(instance.platform_settings(), sleep=sleeps.append)
    yield created_client
    created_client.close()


@pytest.fixture
def records(client):
    return client.records


def slow_client(instance, sleeps, **faults):
    """Return a client with a 0.3 s read timeout, and lose the next write's response."""
    settings = instance.platform_settings()
    platform = settings.platform.replace(timeout=settings.platform.timeout.replace(read=0.3))
    instance.set_faults(fail_after_write=True, fail_after_write_delay_ms=1200, **faults)
    return PlatformClient.from_settings(settings.replace(platform=platform), sleep=sleeps.append)


def insert(instance, table, **values):
    return instance.store.insert(table, values)


def journal_rows(instance, sys_id, element):
    return instance.store.query("sys_journal_field", f"element_id={sys_id}^element={element}")


# Cases.


def test_get_incident_with_latest_comment(instance, records):
    caller = insert(instance, "sys_user", user_name="jane", name="Jane Doe")
    incident = insert(instance, "incident", short_description="VPN drops", description="Every hour",
                      category="network", caller_id=caller["sys_id"])
    insert(instance, "sys_journal_field", element="comments", element_id=incident["sys_id"],
           name="incident", value="first comment", sys_created_on="2024-05-01 10:00:00")
    tables.append_comment(records, table="incident", sys_id=incident["sys_id"],
                          text="second comment", key="run-1/step-1")

    case = tables.get_case(records, table="incident", sys_id=incident["sys_id"])

    assert isinstance(case, Case)
    assert case.number == incident["number"]
    assert case.short_description == "VPN drops"
    assert case.category == "network"
    assert case.caller == caller["sys_id"]
    assert case.latest_comment == "second comment"
    assert case.sys_updated_on.tzinfo == timezone.utc


def test_get_customer_service_case(instance, records):
    contact = insert(instance, "customer_contact", user_name="c.lee", name="Chris Lee")
    row = insert(instance, "sn_customerservice_case", short_description="Router broken",
                 contact=contact["sys_id"])

    case = tables.get_case(records, table="sn_customerservice_case", sys_id=row["sys_id"])

    assert case.table == "sn_customerservice_case"
    assert case.number.startswith("CS")
    assert case.caller == contact["sys_id"]
    assert case.latest_comment == ""


def test_get_case_rejects_other_tables(records):
    with pytest.raises(InvalidQueryValue, match="platform.case_tables"):
        tables.get_case(records, table="sys_user", sys_id="0" * 32)


def test_get_case_missing(records):
    with pytest.raises(RecordNotFound):
        tables.get_case(records, table="incident", sys_id="0" * 32)


# Knowledge.


def seed_knowledge(instance):
    base = insert(instance, "kb_knowledge_base", title="IT", owner="", active="true")
    everyone = insert(instance, "user_criteria", name="Everyone")
    contractors = insert(instance, "user_criteria", name="Contractors")
    insert(instance, "kb_uc_can_read_mtom", kb_knowledge_base=base["sys_id"], user_criteria=everyone["sys_id"])
    insert(instance, "kb_uc_cannot_read_mtom", kb_knowledge_base=base["sys_id"],
           user_criteria=contractors["sys_id"])
    articles = [
        insert(instance, "kb_knowledge", short_description=f"Article {n}", text=f"<p>Body {n}</p>",
               kb_knowledge_base=base["sys_id"], workflow_state="published", valid_to="2100-01-01",
               sys_updated_on=f"2024-05-0{n + 1} 10:00:00",
               can_read_user_criteria=everyone["sys_id"] if n == 0 else "")
        for n in range(4)
    ]
    return base, everyone, contractors, articles


def test_list_articles_updated_since(instance, records):
    base, everyone, _, articles = seed_knowledge(instance)

    every = list(tables.list_articles_updated_since(records))
    later = list(tables.list_articles_updated_since(records, cursor=every[1].cursor))

    assert [article.sys_id for article in every] == [row["sys_id"] for row in articles]
    assert all(isinstance(article, Article) for article in every)
    assert every[0].kb_knowledge_base == base["sys_id"]
    assert every[0].can_read_user_criteria == [everyone["sys_id"]]
    assert every[0].valid_to == date(2100, 1, 1)
    assert every[0].sys_updated_on == datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
    assert every[0].text == "<p>Body 0</p>"
    assert [article.sys_id for article in later] == [row["sys_id"] for row in articles[2:]]


def test_list_article_ids(instance, records):
    _, _, _, articles = seed_knowledge(instance)

    assert sorted(tables.list_article_ids(records)) == sorted(row["sys_id"] for row in articles)


def test_list_knowledge_bases_with_criteria(instance, records):
    base, everyone, contractors, _ = seed_knowledge(instance)
    insert(instance, "kb_knowledge_base", title="HR", active="false")

    bases = {kb.title: kb for kb in tables.list_knowledge_bases(records)}

    assert isinstance(bases["IT"], KnowledgeBase)
    assert bases["IT"].sys_id == base["sys_id"]
    assert bases["IT"].can_read == [everyone["sys_id"]]
    assert bases["IT"].cannot_read == [contractors["sys_id"]]
    assert bases["IT"].active is True
    assert bases["HR"].can_read == []
    assert bases["HR"].active is False


def test_list_user_criteria_resolves_role_names(instance, records):
    itil = insert(instance, "sys_user_role", name="itil")
    group = insert(instance, "sys_user_group", name="Network")
    user = insert(instance, "sys_user", user_name="ann")
    criterion = insert(instance, "user_criteria", name="Network ITIL", role=itil["sys_id"],
                       group=group["sys_id"], user=user["sys_id"], match_all="true")
    scripted = insert(instance, "user_criteria", name="Scripted", advanced="true",
                      script="answer = true;", department="Finance")

    criteria = tables.list_user_criteria(records)

    network = criteria[criterion["sys_id"]]
    assert isinstance(network, UserCriteria)
    assert network.roles == frozenset({"itil"})
    assert network.role_ids == frozenset({itil["sys_id"]})
    assert network.groups == frozenset({group["sys_id"]})
    assert network.users == frozenset({user["sys_id"]})
    assert network.match_all is True
    assert network.advanced is False
    assert criteria[scripted["sys_id"]].advanced is True
    assert criteria[scripted["sys_id"]].unevaluated == frozenset({"department"})


# Agents.


def seed_agent(instance, *, active="true"):
    agent = insert(instance, "sys_user", user_name="beth.agent", name="Beth Agent",
                   email="beth@example.com", active=active)
    for role_name in ("itil", "knowledge"):
        role = insert(instance, "sys_user_role", name=role_name)
        insert(instance, "sys_user_has_role", user=agent["sys_id"], role=role["sys_id"])
    group = insert(instance, "sys_user_group", name="Service Desk")
    insert(instance, "sys_user_grmember", user=agent["sys_id"], group=group["sys_id"])
    return agent, group


def test_get_agent_with_roles_and_groups(instance, records):
    agent_row, group = seed_agent(instance)

    agent = tables.get_agent(records, user_name="beth.agent")

    assert isinstance(agent, Agent)
    assert agent.sys_id == agent_row["sys_id"]
    assert agent.email == "beth@example.com"
    assert agent.roles == frozenset({"itil", "knowledge"})
    assert agent.groups == frozenset({group["sys_id"]})
    assert agent.group_names == frozenset({"Service Desk"})


def test_get_agent_inactive(instance, records):
    seed_agent(instance, active="false")

    with pytest.raises(RecordNotFound, match="inactive"):
        tables.get_agent(records, user_name="beth.agent")


def test_get_agent_missing(records):
    with pytest.raises(RecordNotFound, match="does not exist"):
        tables.get_agent(records, user_name="nobody")


def test_get_agent_rejects_injection(records):
    with pytest.raises(InvalidQueryValue, match="user_name"):
        tables.get_agent(records, user_name="beth^ORuser_name=admin")


# Journal entries.


def test_append_work_note_posts_once_per_key(instance, records):
    incident = insert(instance, "incident", short_description="x")

    first = tables.append_work_note(records, table="incident", sys_id=incident["sys_id"],
                                    text="Checked the VPN logs.", key="run-7/step-2")
    second = tables.append_work_note(records, table="incident", sys_id=incident["sys_id"],
                                     text="Checked the VPN logs.", key="run-7/step-2")

    rows = journal_rows(instance, incident["sys_id"], "work_notes")
    assert len(rows) == 1
    assert rows[0]["value"] == f"Checked the VPN logs.\n{first.marker}"
    assert first.created is True
    assert second.created is False
    assert second.sys_id == first.sys_id == rows[0]["sys_id"]


def test_different_keys_post_separately(instance, records):
    incident = insert(instance, "incident", short_description="x")

    for key in ("run-1/step-1", "run-1/step-2"):
        tables.append_comment(records, table="incident", sys_id=incident["sys_id"], text="Same text", key=key)

    assert len(journal_rows(instance, incident["sys_id"], "comments")) == 2


@pytest.mark.parametrize("mode", ["delay", "drop"])
def test_journal_append_after_lost_response_posts_once(instance, sleeps, mode):
    incident = insert(instance, "incident", short_description="x")
    client = slow_client(instance, sleeps, fail_after_write_mode=mode)

    try:
        entry = tables.append_comment(client.records, table="incident", sys_id=incident["sys_id"],
                                      text="Please restart the router.", key="run-9/step-1")
    finally:
        client.close()

    rows = journal_rows(instance, incident["sys_id"], "comments")
    assert len(rows) == 1
    assert rows[0]["sys_id"] == entry.sys_id
    assert entry.value.startswith("Please restart the router.")
    assert len(sleeps) == 1


def test_plain_patch_after_lost_response_not_repeated(instance, sleeps):
    incident = insert(instance, "incident", short_description="x")
    client = slow_client(instance, sleeps)

    try:
        with pytest.raises(PlatformUnavailable, match="may have been applied") as caught:
            client.records.patch("incident", incident["sys_id"], {"work_notes": "no marker"})
    finally:
        client.close()

    assert caught.value.retryable is False
    assert len(journal_rows(instance, incident["sys_id"], "work_notes")) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"text": "  "}, "comments"),
        ({"key": ""}, "key"),
        ({"sys_id": "INC0010001"}, "sys_id"),
        ({"table": "incident/../sys_user"}, "table"),
    ],
)
def test_append_comment_rejects_bad_input(instance, records, changes, field):
    incident = insert(instance, "incident", short_description="x")
    arguments = {"table": "incident", "sys_id": incident["sys_id"], "text": "hi", "key": "k", **changes}

    with pytest.raises(InvalidQueryValue) as caught:
        tables.append_comment(records, **arguments)

    assert caught.value.context["field"] == field
    assert instance.store.query("sys_journal_field") == []


def test_strip_marker_removes_only_trailing_marker():
    marker = tables.journal_marker("key")

    assert tables.strip_marker(f"Hello\n{marker}") == "Hello"
    assert tables.strip_marker(f"{marker} is quoted here") == f"{marker} is quoted here"


# Article use and feedback.


def test_attach_article_reuses_link(instance, records):
    incident = insert(instance, "incident", short_description="x")
    article = insert(instance, "kb_knowledge", short_description="VPN guide")

    first = tables.attach_article(records, task_sys_id=incident["sys_id"], article_sys_id=article["sys_id"])
    second = tables.attach_article(records, task_sys_id=incident["sys_id"], article_sys_id=article["sys_id"])

    links = instance.store.query("m2m_kb_task")
    assert first == second == links[0]["sys_id"]
    assert len(links) == 1
    assert links[0]["task"] == incident["sys_id"]
    assert links[0]["kb_knowledge"] == article["sys_id"]


def test_attach_article_after_lost_response_links_once(instance, sleeps):
    incident = insert(instance, "incident", short_description="x")
    article = insert(instance, "kb_knowledge", short_description="VPN guide")
    client = slow_client(instance, sleeps)

    try:
        link = tables.attach_article(client.records, task_sys_id=incident["sys_id"],
                                     article_sys_id=article["sys_id"])
    finally:
        client.close()

    assert [row["sys_id"] for row in instance.store.query("m2m_kb_task")] == [link]


def test_record_feedback(instance, records):
    article = insert(instance, "kb_knowledge", short_description="VPN guide")
    user = insert(instance, "sys_user", user_name="beth")

    sys_id = tables.record_feedback(records, article_sys_id=article["sys_id"], user_sys_id=user["sys_id"],
                                    useful=True, rating=4, comments="Clear steps")

    row = instance.store.get("kb_feedback", sys_id)
    assert row["article"] == article["sys_id"]
    assert row["user"] == user["sys_id"]
    assert row["useful"] == "yes"
    assert row["rating"] == "4"
    assert row["comments"] == "Clear steps"
    assert row["flagged"] == "false"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"rating": 6}, "rating"), ({"rating": True}, "rating"), ({"useful": "yes"}, "useful"),
     ({"comments": None}, "comments"), ({"article_sys_id": "KB0010001"}, "article_sys_id")],
)
def test_record_feedback_rejects_bad_input(instance, records, changes, field):
    user = insert(instance, "sys_user", user_name="beth")
    arguments = {"article_sys_id": "a" * 32, "user_sys_id": user["sys_id"], **changes}

    with pytest.raises(InvalidQueryValue) as caught:
        tables.record_feedback(records, **arguments)

    assert caught.value.context["field"] == field
    assert instance.store.query("kb_feedback") == []


def test_record_use(instance, records):
    article = insert(instance, "kb_knowledge", short_description="VPN guide")
    user = insert(instance, "sys_user", user_name="beth")

    sys_id = tables.record_use(records, article_sys_id=article["sys_id"], user_sys_id=user["sys_id"], used=True)

    row = instance.store.get("kb_use", sys_id)
    assert row["article"] == article["sys_id"]
    assert row["used"] == "true"
    assert row["viewed"] == "true"
