"""Injected faults: rate limits, 5xx responses, hibernation, short pages, lost write responses."""

from __future__ import annotations

import time

import pytest
import requests

from config.errors import ConfigError
from config.settings import settings_for_tests
from integration.instance.faults import FaultController
from tests.integration.instance.conftest import table_url


def statuses(instance, http, count):
    return [http.get(table_url(instance, "incident")).status_code for _ in range(count)]


def test_faults_are_off_by_default(instance, http):
    assert statuses(instance, http, 20) == [200] * 20


def test_rate_limit_answers_429_with_retry_after(instance, http):
    instance.set_faults(rate_limit_per_hour=2, retry_after=7)

    allowed = [http.get(table_url(instance, "incident")) for _ in range(2)]
    refused = http.get(table_url(instance, "incident"))

    assert [response.status_code for response in allowed] == [200, 200]
    assert allowed[0].headers["X-RateLimit-Limit"] == "2"
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "7"
    assert int(refused.headers["X-RateLimit-Reset"]) > time.time()
    assert refused.headers["X-RateLimit-Rule"]
    assert refused.json()["error"]["message"] == "Rate limit exceeded"


def test_rate_limit_counts_per_user(instance, http):
    instance.store.insert("sys_user", {"user_name": "other", "user_password": "pw"})
    instance.set_faults(rate_limit_per_hour=1)

    statuses(instance, http, 2)
    other = requests.get(table_url(instance, "incident"), auth=("other", "pw"))

    assert other.status_code == 200


def test_fail_next_scripts_the_next_statuses(instance, http):
    instance.set_faults(fail_next=[503, 500])

    assert statuses(instance, http, 3) == [503, 500, 200]


def test_error_rate_repeats_with_the_same_seed(instance, http):
    instance.set_faults(error_rate=0.5, seed=42)
    first = statuses(instance, http, 20)
    instance.set_faults(error_rate=0.5, seed=42)
    second = statuses(instance, http, 20)

    assert first == second
    assert 200 in first
    assert set(first) - {200} <= {500, 503}
    assert set(first) != {200}


def test_hibernating_instance_serves_html(instance):
    instance.set_faults(hibernating=True)

    response = requests.get(table_url(instance, "incident"), auth=(instance.user, instance.password))

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Instance Hibernating page" in response.text


def test_short_pages_keep_the_total(instance, http):
    for index in range(20):
        instance.store.insert("incident", {"short_description": str(index)})
    instance.set_faults(short_page_rate=0.5, seed=3)

    response = http.get(table_url(instance, "incident"), params={"sysparm_limit": "10"})

    assert response.headers["X-Total-Count"] == "20"
    assert 0 < len(response.json()["result"]) < 10


def test_write_applied_when_response_times_out(instance, http):
    sys_id = instance.store.insert("incident", {})["sys_id"]
    instance.set_faults(fail_after_write=True, fail_after_write_delay_ms=1500)

    with pytest.raises(requests.exceptions.ReadTimeout):
        http.patch(table_url(instance, "incident", sys_id), json={"work_notes": "once"}, timeout=0.3)
    after = http.patch(table_url(instance, "incident", sys_id), json={"category": "network"}, timeout=5)

    entries = instance.store.query("sys_journal_field", f"element_id={sys_id}")
    assert [entry["value"] for entry in entries] == ["once"]
    assert after.status_code == 200


def test_write_applied_when_connection_drops(instance, http):
    instance.set_faults(fail_after_write=True, fail_after_write_mode="drop")

    with pytest.raises(requests.exceptions.ConnectionError):
        http.post(table_url(instance, "incident"), json={"short_description": "lost answer"}, timeout=5)

    assert [row["short_description"] for row in instance.store.query("incident")] == ["lost answer"]


def test_insert_denied_by_acl(instance, http):
    instance.set_faults(deny_insert_tables=["kb_feedback"])

    response = http.post(table_url(instance, "kb_feedback"), json={"comments": "great"})

    assert response.status_code == 403
    assert response.json()["error"]["detail"] == "ACL Exception Insert Failed due to security constraints"
    assert instance.store.query("kb_feedback") == []


@pytest.mark.parametrize("changes, named", [
    ({"error_rate": 2}, "error_rate"),
    ({"fail_next": ["soon"]}, "fail_next"),
    ({"no_such_knob": True}, "no_such_knob"),
])
def test_bad_fault_setting_is_rejected(instance, changes, named):
    with pytest.raises(ConfigError) as raised:
        instance.set_faults(**changes)

    assert named in str(raised.value)


def test_faults_from_settings(make_instance):
    faulty = make_instance(instance={"faults": {"fail_next": [502]}})
    auth = (faulty.user, faulty.password)

    codes = [requests.get(table_url(faulty, "incident"), auth=auth).status_code for _ in range(2)]

    assert codes == [502, 200]


def test_latency_applies_to_the_next_requests_only():
    slept = []
    controller = FaultController(settings_for_tests().instance.faults, sleep=slept.append)
    controller.update(latency_ms=250, latency_requests=2)

    for _ in range(4):
        controller.delay()

    assert slept == [0.25, 0.25]


def test_latency_applies_to_every_request_by_default():
    slept = []
    controller = FaultController(settings_for_tests().instance.faults, sleep=slept.append)
    controller.update(latency_ms=100)

    for _ in range(3):
        controller.delay()

    assert slept == [0.1, 0.1, 0.1]


def test_read_denied_by_acl(instance, http):
    record = instance.store.insert("kb_knowledge", {})
    instance.set_faults(deny_read_tables=["kb_knowledge"])

    listed = http.get(table_url(instance, "kb_knowledge"))
    single = http.get(table_url(instance, "kb_knowledge", record["sys_id"]))
    other = http.get(table_url(instance, "incident"))

    assert listed.status_code == 403
    assert listed.json()["error"]["message"] == "Insufficient rights to query records"
    assert single.status_code == 403
    assert other.status_code == 200
