"""Seeding the embedded instance with the demo data, read back over the Table API."""

from __future__ import annotations

from urllib.parse import urlsplit

import pysnow
import pytest

from inward.demo.dataset import demo_sys_id, load_demo_data
from inward.demo.seed import seed


def pysnow_client(instance, user: str, password: str) -> pysnow.Client:
    return pysnow.Client(host=urlsplit(instance.url).netloc, use_ssl=False, user=user, password=password)


@pytest.fixture
def seeded(instance):
    report = seed(instance.store, integration_password=instance.password)
    return instance, report


def test_seed_inserts_every_record(seeded):
    instance, report = seeded
    data = load_demo_data()
    assert report.totals() == data.counts()
    # The instance creates the admin role itself, so that one record is
    # matched by name and updated instead of inserted.
    assert report.inserted == len(data.records) - 1
    assert report.tables["sys_user_role"].updated == 1
    assert report.password_set


def test_second_seed_changes_nothing(seeded):
    instance, first = seeded
    second = seed(instance.store, integration_password=instance.password)
    assert second.totals() == first.totals()
    assert second.inserted == 0
    assert second.updated == 0
    assert second.unchanged == sum(first.totals().values())
    assert not second.password_set


def test_second_seed_leaves_no_duplicates(seeded):
    instance, _ = seeded
    data = load_demo_data()

    def rows_per_table() -> dict[str, list[str]]:
        return {
            table: [row["sys_id"] for row in instance.store.query(table) if row["sys_class_name"] == table]
            for table in data.counts()
        }

    before = rows_per_table()
    seed(instance.store)
    after = rows_per_table()
    assert after == before
    for record in data.records:
        if record.table != "sys_user_role":
            assert after[record.table].count(record.sys_id) == 1, f"{record.table} {record.key}"
    assert len(instance.store.query("sys_user_role", "name=admin")) == 1


def test_seed_restores_a_changed_record(seeded):
    instance, _ = seeded
    sys_id = demo_sys_id("kb_knowledge", "KB0010001")
    instance.store.update("kb_knowledge", sys_id, {"short_description": "Edited by hand"})
    report = seed(instance.store)
    assert report.tables["kb_knowledge"].updated == 1
    assert report.inserted == 0
    assert instance.store.get("kb_knowledge", sys_id)["short_description"] == "Track your Brightwater order"


def test_integration_user_gets_instance_admin_role(seeded):
    instance, _ = seeded
    admin_role = instance.store.query("sys_user_role", "name=admin")[0]
    links = instance.store.query(
        "sys_user_has_role", f"user={demo_sys_id('sys_user', 'inward.integration')}"
    )
    assert [link["role"] for link in links] == [admin_role["sys_id"]]


def test_pysnow_reads_published_customer_articles(seeded):
    instance, _ = seeded
    data = load_demo_data()
    base = demo_sys_id("kb_knowledge_base", "customer_help")
    expected = sorted(
        record.values["number"] for record in data.table("kb_knowledge")
        if record.values["kb_knowledge_base"] == base and record.values["workflow_state"] == "published"
    )
    client = pysnow_client(instance, "inward.integration", instance.password)
    try:
        articles = client.resource(api_path="/table/kb_knowledge")
        query = (pysnow.QueryBuilder().field("kb_knowledge_base").equals(base).AND()
                 .field("workflow_state").equals("published").AND().field("number").order_ascending())
        rows = articles.get(query=query, fields=["number", "short_description", "text"]).all()
    finally:
        client.close()
    assert [row["number"] for row in rows] == expected
    assert len(expected) >= 30
    assert all(row["text"].strip() for row in rows)


def test_pysnow_rejects_a_wrong_integration_password(seeded):
    instance, _ = seeded
    client = pysnow_client(instance, "inward.integration", instance.password + "-wrong")
    try:
        with pytest.raises(Exception) as raised:
            client.resource(api_path="/table/sys_user").get(query="user_name=admin").all()
    finally:
        client.close()
    assert getattr(raised.value, "response", None) is not None
    assert raised.value.response.status_code == 401


def test_latest_customer_comment_is_readable(seeded):
    instance, _ = seeded
    case_id = demo_sys_id("sn_customerservice_case", "CS0010001")
    entries = instance.store.query(
        "sys_journal_field", f"element_id={case_id}^element=comments^ORDERBYDESCsys_created_on"
    )
    assert len(entries) == 2
    assert entries[0]["value"].startswith("I turned off background activity")
    assert entries[0]["sys_created_by"] == "hannah.brooks@example.com"


def test_seeded_agents_resolve_through_integration(seeded):
    from integration.client import PlatformClient
    from integration.errors import RecordNotFound
    from integration.tables import get_agent

    instance, _ = seeded
    settings = instance.platform_settings()
    settings = settings.replace(platform=settings.platform.replace(user="inward.integration"))
    client = PlatformClient.from_settings(settings)
    try:
        agent = get_agent(client.records, user_name="daniel.kim")
        assert agent.roles == frozenset({"itil", "sn_customerservice_agent"})
        assert agent.group_names == frozenset({"Device Support"})
        with pytest.raises(RecordNotFound):
            get_agent(client.records, user_name="ruth.bennett")
    finally:
        client.close()
