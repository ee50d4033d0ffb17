"""Encoded queries over HTTP: operators, ^OR and ^NQ precedence, ORDERBY, invalid fields."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from config.settings import settings_for_tests
from integration.instance.server import start_instance
from tests.integration.instance.conftest import table_url


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Yield one instance, shared by the read-only tests here, holding incidents A, B and C."""
    with start_instance(settings_for_tests(), data_dir=tmp_path_factory.mktemp("query"), port=0) as running:
        seed_incidents(running.store)
        yield running


@pytest.fixture
def seeded_http(seeded):
    with requests.Session() as session:
        session.auth = (seeded.user, seeded.password)
        yield session


def seed_incidents(store):
    """Insert three incidents, A, B and C, with deliberately different field values."""
    fred = store.insert("sys_user", {"user_name": "fred", "name": "Fred Luddy", "email": "fred@example.com"})
    beth = store.insert("sys_user", {"user_name": "beth", "name": "Beth Anglin", "email": "beth@example.com"})
    store.insert("incident", {
        "short_description": "A VPN drops hourly", "category": "network", "impact": "1",
        "urgency": "1", "reassignment_count": "3", "reopen_count": "1", "description": "",
        "caller_id": fred["sys_id"], "assigned_to": fred["sys_id"],
    })
    store.insert("incident", {
        "short_description": "B Printer jam", "category": "hardware", "impact": "2", "urgency": "2",
        "reassignment_count": "0", "reopen_count": "2", "description": "paper",
        "caller_id": beth["sys_id"], "assigned_to": "",
    })
    store.insert("incident", {
        "short_description": "C Email bounce", "category": "software", "impact": "3", "urgency": "3",
        "reassignment_count": "10", "reopen_count": "0", "description": "smtp",
        "caller_id": fred["sys_id"], "assigned_to": beth["sys_id"],
    })


def matching(instance, http, query):
    response = http.get(table_url(instance, "incident"),
                        params={"sysparm_query": query, "sysparm_fields": "short_description"})
    assert response.status_code == 200, response.text
    return sorted(row["short_description"][0] for row in response.json()["result"])


@pytest.mark.parametrize("query, expected", [
    ("category=network", ["A"]),
    ("category!=network", ["B", "C"]),
    ("short_descriptionLIKEvpn", ["A"]),
    ("short_descriptionNOT LIKEvpn", ["B", "C"]),
    ("short_descriptionNOTLIKEvpn", ["B", "C"]),
    ("short_descriptionSTARTSWITHb printer", ["B"]),
    ("short_descriptionENDSWITHBOUNCE", ["C"]),
    ("categoryINnetwork,software", ["A", "C"]),
    ("categoryNOT INnetwork,software", ["B"]),
    ("assigned_toISEMPTY", ["B"]),
    ("assigned_toISNOTEMPTY", ["A", "C"]),
    ("descriptionEMPTYSTRING", ["A"]),
    ("categoryANYTHING", ["A", "B", "C"]),
    ("priority<=3", ["A", "B"]),
    ("priority<3", ["A"]),
    ("priority>3", ["C"]),
    ("priority>=3", ["B", "C"]),
    ("reassignment_count>2", ["A", "C"]),
    ("priorityBETWEEN2@5", ["B", "C"]),
    ("caller_idSAMEASassigned_to", ["A"]),
    ("caller_idNSAMEASassigned_to", ["B", "C"]),
    ("reassignment_countGT_FIELDreopen_count", ["A", "C"]),
    ("reassignment_countLT_FIELDreopen_count", ["B"]),
    ("reopen_countGT_OR_EQUALS_FIELDreassignment_count", ["B"]),
    ("reopen_countLT_OR_EQUALS_FIELDreassignment_count", ["A", "C"]),
    ("caller_id.user_name=beth", ["B"]),
    ("caller_id.emailLIKEFRED", ["A", "C"]),
    ("sys_class_nameINSTANCEOFtask", ["A", "B", "C"]),
])
def test_operator(seeded, seeded_http, query, expected):
    assert matching(seeded, seeded_http, query) == expected


@pytest.mark.parametrize("query, expected", [
    ("category=network^ORcategory=hardware", ["A", "B"]),
    # ^OR ties only its neighbours: priority=1 AND (hardware OR network).
    ("priority=1^category=hardware^ORcategory=network", ["A"]),
    ("category=hardware^ORcategory=network^priority=1", ["A"]),
    ("priority=5^category=hardware^ORcategory=software", ["C"]),
    # ^NQ ORs whole groups: (priority=1) OR (software).
    ("priority=1^NQcategory=software", ["A", "C"]),
    ("category=network^priority=5^NQcategory=software^priority=5", ["C"]),
    ("category=network^priority=5^NQcategory=hardware^priority=5", []),
])
def test_or_and_new_query_precedence(seeded, seeded_http, query, expected):
    assert matching(seeded, seeded_http, query) == expected


def test_orderby_chain(instance, http):
    for category, priority_inputs in [("b", ("3", "3")), ("a", ("1", "1")), ("b", ("1", "1")), ("a", ("3", "3"))]:
        instance.store.insert("incident", {"category": category, "impact": priority_inputs[0],
                                           "urgency": priority_inputs[1]})

    response = http.get(table_url(instance, "incident"), params={
        "sysparm_query": "ORDERBYcategory^ORDERBYDESCpriority", "sysparm_fields": "category,priority",
    })

    assert [(row["category"], row["priority"]) for row in response.json()["result"]] == [
        ("a", "5"), ("a", "1"), ("b", "5"), ("b", "1"),
    ]


def test_orderby_integer_field_is_numeric(instance, http):
    for count in ("10", "9", "100"):
        instance.store.insert("incident", {"reassignment_count": count})

    response = http.get(table_url(instance, "incident"), params={
        "sysparm_query": "ORDERBYreassignment_count", "sysparm_fields": "reassignment_count",
    })

    assert [row["reassignment_count"] for row in response.json()["result"]] == ["9", "10", "100"]


def test_invalid_field_term_is_dropped(seeded, seeded_http):
    assert matching(seeded, seeded_http, "numbr=INC0000001") == ["A", "B", "C"]
    assert matching(seeded, seeded_http, "category=network^numbr=INC0000001") == ["A"]


def test_invalid_field_returns_no_rows_when_switched_on(make_instance, http):
    strict = make_instance(instance={"invalid_query_returns_no_rows": True})
    strict.store.insert("incident", {"category": "network"})
    url = table_url(strict, "incident")

    invalid = http.get(url, params={"sysparm_query": "category=network^numbr=1"})
    valid = http.get(url, params={"sysparm_query": "category=network"})

    assert invalid.json()["result"] == []
    assert len(valid.json()["result"]) == 1


def test_case_sensitive_like_when_switched_off(make_instance):
    exact = make_instance(instance={"case_insensitive": False})
    exact.store.insert("incident", {"short_description": "VPN down"})

    lower = exact.store.query("incident", "short_descriptionLIKEvpn")
    upper = exact.store.query("incident", "short_descriptionLIKEVPN")

    assert lower == []
    assert len(upper) == 1


def test_name_value_pairs_act_as_query(seeded, seeded_http):
    response = seeded_http.get(table_url(seeded, "incident"), params={"category": "hardware"})

    assert [row["short_description"] for row in response.json()["result"]] == ["B Printer jam"]


# -- dates ----------------------------------------------------------------------

def utc_text(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def dated(instance):
    now = datetime.now(timezone.utc)
    instance.store.insert("incident", {"short_description": "old", "opened_at": "2024-01-01 12:00:00"})
    instance.store.insert("incident", {"short_description": "recent",
                                       "opened_at": utc_text(now - timedelta(days=2))})
    return instance


def opened(instance, query):
    return sorted(row["short_description"] for row in instance.store.query("incident", query))


@pytest.mark.parametrize("query, expected", [
    ("opened_at>2024-01-01 11:59:59", ["old", "recent"]),
    ("opened_at<2024-01-01 12:00:01", ["old"]),
    ("opened_at>=javascript:gs.daysAgoStart(3)", ["recent"]),
    ("opened_at<javascript:gs.daysAgo(30)", ["old"]),
    ('opened_atBETWEENjavascript:gs.dateGenerate("2024-01-01 00:00:00")'
     '@javascript:gs.dateGenerate("2024-01-01 23:59:59")', ["old"]),
    ("opened_atBETWEENjavascript:gs.dateGenerate('2024-01-01','start')"
     "@javascript:gs.dateGenerate('2024-01-01','end')", ["old"]),
    ("opened_atONLast 7 days@javascript:gs.beginningOfLast7Days()@javascript:gs.endOfLast7Days()",
     ["recent"]),
    ("opened_atNOTONLast 7 days@javascript:gs.beginningOfLast7Days()@javascript:gs.endOfLast7Days()",
     ["old"]),
    ("opened_atRELATIVEGT@day@ago@3", ["recent"]),
    ("opened_atRELATIVELT@day@ago@3", ["old"]),
])
def test_date_operator(dated, query, expected):
    assert opened(dated, query) == expected


def test_get_user_id_matches_the_caller(instance, http):
    admin = instance.store.find_user("admin")
    instance.store.insert("incident", {"short_description": "mine", "caller_id": admin["sys_id"]})
    instance.store.insert("incident", {"short_description": "other"})

    response = http.get(table_url(instance, "incident"), params={
        "sysparm_query": "caller_id=javascript:gs.getUserID()", "sysparm_fields": "short_description",
    })

    assert response.json()["result"] == [{"short_description": "mine"}]


def test_date_field_compares_by_day(instance):
    instance.store.insert("kb_knowledge", {"short_description": "today", "valid_to": "2030-05-01"})

    assert len(instance.store.query("kb_knowledge", "valid_to>=2030-05-01 10:00:00")) == 1
    assert instance.store.query("kb_knowledge", "valid_to>2030-05-01 10:00:00") == []


@pytest.mark.parametrize("term", [
    "assigned_toIN_HIERARCHY" + "a" * 32,
    "opened_atDATEPARTMonday@javascript:gs.datePart('dayofweek','monday','EE')",
    "opened_atMORETHANsla_due@day@before@1",
])
def test_unsupported_operator_is_dropped(seeded, term):
    assert len(seeded.store.query("incident", term)) == 3
    assert len(seeded.store.query("incident", f"category=network^{term}")) == 1
