"""Table API routes, status codes, response shapes and write rules, over a real socket."""

from __future__ import annotations

import re
import threading

import pytest
import requests

from tests.integration.instance.conftest import table_url


def make_user(instance, user_name="fred", name="Fred Luddy", email="fred@example.com"):
    return instance.store.insert("sys_user", {"user_name": user_name, "name": name, "email": email})


# -- routes and status codes --------------------------------------------------

@pytest.mark.parametrize("prefix", ["/api/now/table", "/api/now/v1/table", "/api/now/v2/table"])
def test_versioned_paths_list_records(instance, http, prefix):
    instance.store.insert("incident", {"short_description": "printer jam"})

    response = http.get(f"{instance.url}{prefix}/incident")

    assert response.status_code == 200
    assert [row["short_description"] for row in response.json()["result"]] == ["printer jam"]


def test_unknown_table_is_400(instance, http):
    response = http.get(table_url(instance, "no_such_table"))

    assert response.status_code == 400
    assert response.json() == {
        "error": {"message": "Invalid table no_such_table", "detail": None}, "status": "failure",
    }


def test_missing_sys_id_is_404_for_every_verb(instance, http):
    url = table_url(instance, "incident", "0" * 32)
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = http.request(method, url, json={"short_description": "x"})
        assert response.status_code == 404, method
        assert response.json()["error"]["message"] == "No Record found", method


@pytest.mark.parametrize("auth", [None, ("admin", "wrong-password"), ("nobody", "inward-dev")])
def test_missing_or_bad_credentials_are_401(instance, auth):
    response = requests.get(table_url(instance, "incident"), auth=auth)

    assert response.status_code == 401
    assert response.json()["error"] == {
        "message": "User Not Authenticated", "detail": "Required to provide Auth information",
    }


def test_inactive_user_cannot_authenticate(instance):
    instance.store.insert("sys_user", {"user_name": "gone", "user_password": "pw", "active": "false"})

    response = requests.get(table_url(instance, "incident"), auth=("gone", "pw"))

    assert response.status_code == 401


def test_password_is_never_returned(instance, http):
    instance.store.insert("sys_user", {"user_name": "beth", "user_password": "s3cret"})

    response = http.get(table_url(instance, "sys_user"), params={"sysparm_query": "user_name=beth"})

    record = response.json()["result"][0]
    assert "user_password" not in record
    assert "s3cret" not in response.text
    assert requests.get(table_url(instance, "incident"), auth=("beth", "s3cret")).status_code == 200


# -- records and system fields --------------------------------------------------

def test_created_record_has_system_fields(instance, snow):
    record = snow.resource(api_path="/table/incident").create({"short_description": "vpn"}).one()

    assert re.fullmatch(r"[0-9a-f]{32}", record["sys_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", record["sys_created_on"])
    assert record["sys_created_by"] == "admin"
    assert record["sys_updated_by"] == "admin"
    assert record["sys_mod_count"] == "0"
    assert record["sys_class_name"] == "incident"
    assert all(isinstance(value, (str, dict)) for value in record.values())


@pytest.mark.parametrize("table, prefix", [
    ("incident", "INC"), ("sn_customerservice_case", "CS"), ("kb_knowledge", "KB"),
    ("problem", "PRB"), ("change_request", "CHG"),
])
def test_numbers_follow_the_table_prefix(instance, table, prefix):
    first = instance.store.insert(table, {"short_description": "one"})
    second = instance.store.insert(table, {"short_description": "two"})

    assert first["number"] == f"{prefix}0010001"
    assert second["number"] == f"{prefix}0010002"


def test_explicit_number_moves_the_counter_past_it(instance):
    instance.store.insert("incident", {"number": "INC0020000"})

    assert instance.store.insert("incident", {})["number"] == "INC0020001"


def test_mod_count_grows_on_each_write(instance, http):
    sys_id = instance.store.insert("incident", {})["sys_id"]
    for expected in ("1", "2"):
        response = http.patch(table_url(instance, "incident", sys_id), json={"category": "network"})
        assert response.json()["result"]["sys_mod_count"] == expected


@pytest.mark.parametrize("impact, urgency, priority", [
    ("1", "1", "1"), ("1", "2", "2"), ("2", "1", "2"), ("2", "2", "3"), ("1", "3", "3"),
    ("3", "1", "3"), ("2", "3", "4"), ("3", "2", "4"), ("3", "3", "5"),
])
def test_incident_priority_follows_impact_and_urgency(instance, http, impact, urgency, priority):
    response = http.post(table_url(instance, "incident"), json={"impact": impact, "urgency": urgency})

    assert response.json()["result"]["priority"] == priority


def test_priority_recomputes_when_urgency_changes(instance, http):
    sys_id = instance.store.insert("incident", {"impact": "1", "urgency": "3"})["sys_id"]

    response = http.patch(table_url(instance, "incident", sys_id), json={"urgency": "1"})

    assert response.json()["result"]["priority"] == "1"


def test_parent_table_lists_children_with_their_class(instance, http):
    instance.store.insert("incident", {"short_description": "inc"})
    instance.store.insert("sn_customerservice_case", {"short_description": "case"})
    instance.store.insert("kb_knowledge", {"short_description": "article"})

    response = http.get(table_url(instance, "task"), params={"sysparm_fields": "sys_class_name,short_description"})

    rows = {row["short_description"]: row["sys_class_name"] for row in response.json()["result"]}
    assert rows == {"inc": "incident", "case": "sn_customerservice_case"}


def test_parent_get_returns_parent_columns(instance, http):
    incident = instance.store.insert("incident", {"short_description": "inc", "category": "network"})

    response = http.get(table_url(instance, "task", incident["sys_id"]))

    record = response.json()["result"]
    assert record["short_description"] == "inc"
    assert record["sys_class_name"] == "incident"
    assert "category" not in record
    assert "caller_id" not in record


def test_child_table_hides_other_children(instance, http):
    case = instance.store.insert("sn_customerservice_case", {})

    response = http.get(table_url(instance, "incident", case["sys_id"]))

    assert response.status_code == 404


# -- reference shapes -----------------------------------------------------------

@pytest.fixture
def incident_with_caller(instance):
    caller = make_user(instance)
    incident = instance.store.insert("incident", {"caller_id": caller["sys_id"], "state": "2"})
    return caller, incident


def _get(instance, http, incident, **params):
    response = http.get(table_url(instance, "incident", incident["sys_id"]),
                        params={"sysparm_fields": "caller_id,assigned_to,state", **params})
    return response.json()["result"]


def test_reference_raw_shape_has_link_and_value(instance, http, incident_with_caller):
    caller, incident = incident_with_caller

    record = _get(instance, http, incident)

    assert record["caller_id"] == {
        "link": f"{instance.url}/api/now/table/sys_user/{caller['sys_id']}", "value": caller["sys_id"],
    }
    assert record["state"] == "2"
    assert record["assigned_to"] == ""


def test_reference_raw_shape_without_link_is_sys_id(instance, http, incident_with_caller):
    caller, incident = incident_with_caller

    record = _get(instance, http, incident, sysparm_exclude_reference_link="true")

    assert record["caller_id"] == caller["sys_id"]


def test_reference_display_shape(instance, http, incident_with_caller):
    caller, incident = incident_with_caller

    record = _get(instance, http, incident, sysparm_display_value="true")

    assert record["caller_id"] == {
        "display_value": "Fred Luddy", "link": f"{instance.url}/api/now/table/sys_user/{caller['sys_id']}",
    }
    assert record["state"] == "In Progress"
    assert record["assigned_to"] == ""


def test_reference_display_shape_without_link_is_name(instance, http, incident_with_caller):
    _, incident = incident_with_caller

    record = _get(instance, http, incident, sysparm_display_value="True",
                  sysparm_exclude_reference_link="True")

    assert record["caller_id"] == "Fred Luddy"


def test_reference_all_shape(instance, http, incident_with_caller):
    caller, incident = incident_with_caller

    record = _get(instance, http, incident, sysparm_display_value="all")

    assert record["caller_id"] == {
        "display_value": "Fred Luddy",
        "link": f"{instance.url}/api/now/table/sys_user/{caller['sys_id']}",
        "value": caller["sys_id"],
    }
    assert record["state"] == {"display_value": "In Progress", "value": "2"}


def test_reference_all_shape_without_link(instance, http, incident_with_caller):
    caller, incident = incident_with_caller

    record = _get(instance, http, incident, sysparm_display_value="all",
                  sysparm_exclude_reference_link="true")

    assert record["caller_id"] == {"display_value": "Fred Luddy", "value": caller["sys_id"]}


def test_invalid_display_value_is_400(instance, http):
    response = http.get(table_url(instance, "incident"), params={"sysparm_display_value": "maybe"})

    assert response.status_code == 400
    assert "sysparm_display_value" in response.json()["error"]["message"]


# -- sysparm_fields -------------------------------------------------------------

def test_fields_dot_walks_and_unknown_names(instance, http, incident_with_caller):
    _, incident = incident_with_caller

    response = http.get(table_url(instance, "incident", incident["sys_id"]),
                        params={"sysparm_fields": "number,no_such_field,caller_id.email,caller_id.name"})

    assert response.json()["result"] == {
        "number": incident["number"], "caller_id.email": "fred@example.com",
        "caller_id.name": "Fred Luddy",
    }


def test_pysnow_default_parameters_are_accepted(instance, snow):
    instance.store.insert("incident", {"short_description": "one"})

    rows = snow.resource(api_path="/table/incident").get(query={}).all()

    assert len(rows) == 1


# -- writes ---------------------------------------------------------------------

def test_post_returns_201_with_location(instance, http):
    response = http.post(table_url(instance, "incident"), json={"short_description": "new"})

    assert response.status_code == 201
    sys_id = response.json()["result"]["sys_id"]
    assert response.headers["Location"] == table_url(instance, "incident", sys_id)
    assert http.get(response.headers["Location"]).json()["result"]["short_description"] == "new"


def test_post_array_uses_first_element(instance, http):
    response = http.post(table_url(instance, "incident"),
                         json=[{"short_description": "first"}, {"short_description": "second"}])

    assert response.status_code == 201
    assert [row["short_description"] for row in instance.store.query("incident")] == ["first"]


def test_post_ignores_unknown_and_system_fields(instance, http):
    response = http.post(table_url(instance, "incident"),
                         json={"short_description": "x", "u_unknown": "y", "sys_created_by": "mallory"})

    record = response.json()["result"]
    assert "u_unknown" not in record
    assert record["sys_created_by"] == "admin"


def test_post_invalid_json_is_400_and_writes_nothing(instance, http):
    response = http.post(table_url(instance, "incident"), data="{not json",
                         headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["detail"]
    assert instance.store.query("incident") == []


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_put_and_patch_change_only_given_fields(instance, http, method):
    sys_id = instance.store.insert("incident", {"short_description": "keep", "category": "old"})["sys_id"]

    response = http.request(method, table_url(instance, "incident", sys_id), json={"category": "new"})

    assert response.status_code == 200
    stored = instance.store.get("incident", sys_id)
    assert stored["category"] == "new"
    assert stored["short_description"] == "keep"


def test_pysnow_update_uses_put(instance, snow):
    record = instance.store.insert("incident", {"short_description": "before"})

    snow.resource(api_path="/table/incident").update(query={"number": record["number"]},
                                                     payload={"short_description": "after"})

    assert instance.store.get("incident", record["sys_id"])["short_description"] == "after"


def test_no_response_body_header(instance, http):
    response = http.post(table_url(instance, "incident"), json={"short_description": "quiet"},
                         headers={"X-no-response-body": "true"})

    assert response.status_code == 201
    assert response.content == b""
    assert len(instance.store.query("incident")) == 1


def test_delete_returns_204(instance, snow):
    record = instance.store.insert("incident", {})

    result = snow.resource(api_path="/table/incident").delete(query={"sys_id": record["sys_id"]})

    assert result == {"status": "record deleted"}
    assert instance.store.get("incident", record["sys_id"]) is None


def test_input_display_value_resolves_references_and_choices(instance, http):
    caller = make_user(instance)

    response = http.post(table_url(instance, "incident"), params={"sysparm_input_display_value": "true"},
                         json={"caller_id": "Fred Luddy", "state": "In Progress"})

    record = response.json()["result"]
    assert record["caller_id"]["value"] == caller["sys_id"]
    assert record["state"] == "2"


# -- journal fields -------------------------------------------------------------

def test_journal_write_appends_entries_and_echoes_empty(instance, http):
    sys_id = instance.store.insert("incident", {})["sys_id"]
    url = table_url(instance, "incident", sys_id)

    first = http.patch(url, json={"work_notes": "checked the VPN"})
    http.patch(url, json={"work_notes": "restarted the gateway"})

    assert first.json()["result"]["work_notes"] == ""
    entries = instance.store.query("sys_journal_field", f"element_id={sys_id}^ORDERBYsys_created_on")
    assert [entry["value"] for entry in entries] == ["checked the VPN", "restarted the gateway"]
    assert {entry["element"] for entry in entries} == {"work_notes"}
    assert {entry["name"] for entry in entries} == {"incident"}
    assert {entry["sys_created_by"] for entry in entries} == {"admin"}


def test_journal_entries_are_readable_over_http(instance, http):
    sys_id = instance.store.insert("incident", {})["sys_id"]
    http.patch(table_url(instance, "incident", sys_id), json={"comments": "we are on it"})

    response = http.get(table_url(instance, "sys_journal_field"), params={
        "sysparm_query": f"element_id={sys_id}^elementINwork_notes,comments^ORDERBYsys_created_on",
        "sysparm_fields": "element,value,sys_created_by",
    })

    assert response.json()["result"] == [
        {"element": "comments", "value": "we are on it", "sys_created_by": "admin"},
    ]


def test_comment_notifies_but_work_note_not(instance, http):
    caller = make_user(instance)
    sys_id = instance.store.insert("incident", {"caller_id": caller["sys_id"]})["sys_id"]
    url = table_url(instance, "incident", sys_id)

    http.patch(url, json={"work_notes": "internal"})
    http.patch(url, json={"comments": "visible to Fred"})

    emails = instance.store.query("sys_email")
    assert len(emails) == 1
    assert emails[0]["recipients"] == "fred@example.com"
    assert emails[0]["body"] == "visible to Fred"
    assert emails[0]["instance"] == sys_id


# -- stats ----------------------------------------------------------------------

def test_stats_counts_matches(instance, http):
    for category in ("network", "network", "software"):
        instance.store.insert("incident", {"category": category})

    response = http.get(f"{instance.url}/api/now/stats/incident",
                        params={"sysparm_count": "true", "sysparm_query": "category=network"})

    assert response.json() == {"result": {"stats": {"count": "2"}}}


def test_stats_groups_by_field(instance, http):
    for category in ("network", "network", "software"):
        instance.store.insert("incident", {"category": category})

    response = http.get(f"{instance.url}/api/now/stats/incident",
                        params={"sysparm_count": "true", "sysparm_group_by": "category"})

    groups = {entry["groupby_fields"][0]["value"]: entry["stats"]["count"]
              for entry in response.json()["result"]}
    assert groups == {"network": "2", "software": "1"}


def test_head_returns_headers_without_body(instance, http):
    instance.store.insert("incident", {})

    response = http.head(table_url(instance, "incident"))

    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "1"
    assert response.content == b""


def test_platform_settings_point_at_the_instance(instance):
    settings = instance.platform_settings()

    assert settings.platform.url == instance.url
    assert settings.platform.user == instance.user
    assert settings.platform.password.reveal() == instance.password


def test_store_and_http_writes_interleave_safely(instance):
    statuses = []

    def post_many():
        with requests.Session() as session:
            session.auth = (instance.user, instance.password)
            for _ in range(10):
                statuses.append(session.post(table_url(instance, "incident"), json={}).status_code)

    def insert_many():
        for _ in range(10):
            instance.store.insert("incident", {})

    workers = [threading.Thread(target=post_many), threading.Thread(target=insert_many),
               threading.Thread(target=insert_many)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    numbers = [row["number"] for row in instance.store.query("incident")]
    assert statuses == [201] * 10
    assert len(numbers) == 30
    assert len(set(numbers)) == 30


@pytest.mark.parametrize("table, state, active", [
    ("incident", "2", "true"), ("incident", "6", "true"), ("incident", "7", "false"),
    ("incident", "8", "false"), ("sn_customerservice_case", "3", "false"),
    ("sn_customerservice_case", "10", "true"),
])
def test_closing_state_clears_active(instance, http, table, state, active):
    sys_id = instance.store.insert(table, {})["sys_id"]

    response = http.patch(table_url(instance, table, sys_id), json={"state": state})

    assert response.json()["result"]["active"] == active


def test_user_name_defaults_to_first_and_last(instance):
    user = instance.store.insert("sys_user", {"user_name": "abel", "first_name": "Abel", "last_name": "Tuter"})

    assert user["name"] == "Abel Tuter"


def test_method_override_header_turns_post_into_patch(instance, http):
    sys_id = instance.store.insert("incident", {"category": "old"})["sys_id"]

    response = http.post(table_url(instance, "incident", sys_id), json={"category": "new"},
                         headers={"X-HTTP-Method-Override": "PATCH"})

    assert response.status_code == 200
    assert instance.store.get("incident", sys_id)["category"] == "new"


def test_post_may_choose_the_sys_id(instance, http):
    chosen = "f" * 32

    created = http.post(table_url(instance, "incident"), json={"sys_id": chosen})
    duplicate = http.post(table_url(instance, "incident"), json={"sys_id": chosen})
    malformed = http.post(table_url(instance, "incident"), json={"sys_id": "short"})

    assert created.json()["result"]["sys_id"] == chosen
    assert duplicate.status_code == 400
    assert chosen in duplicate.json()["error"]["detail"]
    assert malformed.status_code == 400
    assert "'short'" in malformed.json()["error"]["detail"]
    assert len(instance.store.query("incident")) == 1


def test_store_writes_datetimes_as_utc_text(instance):
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 1, 2, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    record = instance.store.insert("incident", {"opened_at": moment})

    assert record["opened_at"] == "2026-01-02 08:00:00"


def test_unexpected_error_is_500_envelope(instance, http, monkeypatch):
    def broken_select(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(instance.store, "select", broken_select)

    response = http.get(table_url(instance, "incident"))

    assert response.status_code == 500
    assert response.json()["status"] == "failure"
    assert "disk on fire" in response.json()["error"]["detail"]
