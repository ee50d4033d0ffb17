"""The demo's read rules, evaluated by Inward's visibility code against the seeded instance."""

from __future__ import annotations

import pytest

from integration.client import PlatformClient
from integration.tables import get_agent
from inward.demo.dataset import load_demo_data
from inward.demo.seed import seed
from knowledge.visibility import Visibility

# (article, agents who may read it, agents who may not)
EXPECTED_ACCESS = [
    ("KB0010001", ["oliver.grant", "amara.okafor", "noah.fischer"], []),
    ("KB0010049", ["amara.okafor", "noah.fischer"], ["oliver.grant"]),
    ("KB0010053", ["daniel.kim", "grace.mensah"], ["amara.okafor", "hugo.lefevre"]),
    ("KB0010056", ["daniel.kim", "priya.raman"], ["tomasz.nowak", "amara.okafor"]),
    ("KB0010060", ["grace.mensah"], ["hugo.lefevre", "marcus.reid", "sofia.marchetti"]),
    ("KB0010061", [], ["sofia.marchetti", "daniel.kim", "victor.alvarez"]),
    ("KB0010063", ["elena.petrova", "marcus.reid", "ingrid.solberg"],
     ["grace.mensah", "amara.okafor", "victor.alvarez"]),
]
BYPASS_ROLES = {"admin", "knowledge_admin"}


@pytest.fixture
def rules(instance):
    seed(instance.store, integration_password=instance.password)
    settings = instance.platform_settings()
    settings = settings.replace(platform=settings.platform.replace(user="inward.integration"))
    client = PlatformClient.from_settings(settings)
    try:
        yield client.records, Visibility(client.records, settings)
    finally:
        client.close()


def article_fields(number: str) -> dict:
    values = load_demo_data().find("kb_knowledge", number).values
    return {
        "kb": values["kb_knowledge_base"],
        "can_read": values["can_read_user_criteria"],
        "cannot_read": values["cannot_read_user_criteria"],
    }


@pytest.mark.parametrize("number,readers,others", EXPECTED_ACCESS)
def test_article_access_matches_design(rules, number, readers, others):
    records, visibility = rules
    fields = article_fields(number)
    for user_name in readers:
        assert visibility.can_read(get_agent(records, user_name=user_name), fields), user_name
    for user_name in others:
        assert not visibility.can_read(get_agent(records, user_name=user_name), fields), user_name


def test_fraud_base_is_read_by_one_group(rules):
    records, visibility = rules
    data = load_demo_data()
    fields = article_fields("KB0010064")
    readers, members = set(), set()
    for user in data.table("sys_user"):
        if user.values["active"] != "true":
            continue
        agent = get_agent(records, user_name=user.key)
        if agent.roles & BYPASS_ROLES:
            continue
        if visibility.can_read(agent, fields):
            readers.add(user.key)
        if "Fraud Operations" in agent.group_names:
            members.add(user.key)
    assert members == {"elena.petrova", "marcus.reid"}
    assert readers == members
