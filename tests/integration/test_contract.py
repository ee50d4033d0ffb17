"""Client checks that run against the embedded instance and, when configured, a real one.

Set INWARD_TEST_INSTANCE_URL, INWARD_TEST_INSTANCE_USER and
INWARD_TEST_INSTANCE_PASSWORD to run them against a real instance as
well. Those runs only read, except for one work note appended to the
incident named by INWARD_TEST_INSTANCE_INCIDENT (a sys_id), and only when
that variable is set.
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass
from datetime import datetime

import pytest

from config.settings import settings_for_tests
from integration import tables
from integration.client import PlatformClient
from integration.errors import InvalidQueryValue, InvalidTable, RecordNotFound
from integration.normalize import normalize_record
from integration.queries import SYS_ID, Query
from integration.records import Records

pytestmark = pytest.mark.contract

REAL_VARIABLES = ("INWARD_TEST_INSTANCE_URL", "INWARD_TEST_INSTANCE_USER", "INWARD_TEST_INSTANCE_PASSWORD")
INCIDENT_VARIABLE = "INWARD_TEST_INSTANCE_INCIDENT"
MISSING_ID = "1234567890abcdef1234567890abcdef"
SAMPLE = 6


@dataclass
class Target:
    """A platform to check: its client, user name and the incident writes may touch."""

    client: PlatformClient
    user_name: str
    incident: str | None

    @property
    def records(self) -> Records:
        return self.client.records


def embedded_target(request) -> Target:
    instance = request.getfixturevalue("instance")
    caller = instance.store.insert("sys_user", {"user_name": "caller", "name": "Casey Caller"})
    for n in range(5):
        instance.store.insert("incident", {"short_description": f"contract {n}", "caller_id": caller["sys_id"]})
        instance.store.insert("kb_knowledge", {"short_description": f"article {n}"})
    incident = instance.store.query("incident")[0]["sys_id"]
    client = PlatformClient.from_settings(instance.platform_settings(), sleep=lambda seconds: None)
    return Target(client, instance.user, incident)


def real_target() -> Target:
    missing = [name for name in REAL_VARIABLES if not os.environ.get(name)]
    if missing:
        pytest.skip(f"set {', '.join(missing)} to run the contract checks against a real instance")
    settings = settings_for_tests(platform={
        "url": os.environ["INWARD_TEST_INSTANCE_URL"],
        "user": os.environ["INWARD_TEST_INSTANCE_USER"],
        "password": os.environ["INWARD_TEST_INSTANCE_PASSWORD"],
        "page_size": 50,
    })
    client = PlatformClient.from_settings(settings)
    return Target(client, os.environ["INWARD_TEST_INSTANCE_USER"], os.environ.get(INCIDENT_VARIABLE))


@pytest.fixture(params=["embedded", "real"])
def target(request):
    created_client = embedded_target(request) if request.param == "embedded" else real_target()
    yield created_client
    created_client.client.close()


def test_list_pages_in_sys_id_order(target):
    rows = list(itertools.islice(target.records.list("incident", fields=["number"], page_size=2), SAMPLE))

    ids = [row["sys_id"] for row in rows]
    assert rows, "the instance has no incidents to page through"
    assert ids == sorted(set(ids))
    assert all(SYS_ID.fullmatch(sys_id) for sys_id in ids)


def test_incremental_read_in_cursor_order(target):
    reader = target.records.list_updated_since("kb_knowledge", None, fields=["number"], page_size=2)
    rows = list(itertools.islice(reader, SAMPLE))

    keys = [(row["sys_updated_on"], row["sys_id"]) for row in rows]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert all(isinstance(updated_on, datetime) and updated_on.utcoffset().total_seconds() == 0
               for updated_on, _ in keys)


def test_get_normalizes_types(target):
    first = next(target.records.list("incident", fields=["sys_id"], page_size=1))

    record = target.records.get("incident", first["sys_id"])

    assert record["sys_id"] == first["sys_id"]
    assert isinstance(record["active"], bool)
    assert record["sys_created_on"].utcoffset().total_seconds() == 0


def test_reference_shapes_agree(target):
    sys_id = next(target.records.list("incident", fields=["sys_id"], page_size=1))["sys_id"]
    modes = [(False, True), (False, False), ("all", False), (True, False)]

    raw = [
        target.client.transport.get_records("incident", f"sys_id={sys_id}", limit=1,
                                            display_value=mode, exclude_reference_link=exclude)[0]
        for mode, exclude in modes
    ]

    plain = normalize_record("incident", raw[0])
    references = [field for field, value in raw[1].items() if isinstance(value, dict)]
    assert references, "the default mode should send at least one reference object"
    for row in raw[1:]:
        normalized = normalize_record("incident", row)
        assert {field: normalized[field] for field in references if field in normalized} == {
            field: plain[field] for field in references if field in normalized
        }


def test_missing_record(target):
    assert target.records.get("incident", MISSING_ID, must_exist=False) is None
    with pytest.raises(RecordNotFound):
        target.records.get("incident", MISSING_ID)


def test_invalid_table(target):
    with pytest.raises(InvalidTable):
        list(target.records.list("u_inward_no_such_table", page_size=1))


def test_injection_rejected(target):
    with pytest.raises(InvalidQueryValue):
        list(target.records.list("incident", Query().like("short_description", "x^NQactive=false")))


def test_get_agent_for_integration_user(target):
    agent = tables.get_agent(target.records, user_name=target.user_name)

    assert agent.user_name == target.user_name
    assert SYS_ID.fullmatch(agent.sys_id)


def test_list_knowledge_bases(target):
    bases = tables.list_knowledge_bases(target.records)

    assert all(SYS_ID.fullmatch(base.sys_id) for base in bases)
    assert all(SYS_ID.fullmatch(criterion) for base in bases for criterion in base.can_read)


def test_work_note_posted_once(target):
    if not target.incident:
        pytest.skip(f"set {INCIDENT_VARIABLE} to the sys_id of an incident the checks may write to")
    key = f"contract-{uuid.uuid4()}"

    first = tables.append_work_note(target.records, table="incident", sys_id=target.incident,
                                    text="Inward contract check; safe to ignore.", key=key)
    again = tables.append_work_note(target.records, table="incident", sys_id=target.incident,
                                    text="Inward contract check; safe to ignore.", key=key)

    query = Query().equals("element_id", target.incident).like("value", first.marker)
    rows = list(target.records.list("sys_journal_field", query, fields=["value"]))
    assert len(rows) == 1
    assert again.created is False
    assert tables.get_case(target.records, table="incident", sys_id=target.incident).sys_id == target.incident
