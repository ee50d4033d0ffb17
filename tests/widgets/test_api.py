"""The /api/v1 widget API against the embedded instance, a synced Whoosh index and SQLite."""

from __future__ import annotations

import json
import re

import pytest

from inward.store import list_events

SUGGESTIONS = "/api/v1/suggestions"


def case_params(seeded, table="incident"):
    return {"table": table, "sys_id": seeded.case["sys_id"]}


def case_body(seeded, **extra):
    return {"table": "incident", "sys_id": seeded.case["sys_id"], **extra}


def events(services, kind=None):
    with services.store.session() as session:
        return [(event.kind, event.article_sys_id, event.rank, event.case_sys_id)
                for event in list_events(session, kind=kind)]


def result_ids(response):
    return [result["sys_id"] for result in response.get_json()["results"]]


# Authentication.

def test_suggestions_without_token_is_401(client, seeded):
    response = client.get(SUGGESTIONS, query_string=case_params(seeded))

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "missing_token"


def test_user_without_agent_role_is_403(client, seeded, auth):
    response = client.get(SUGGESTIONS, query_string=case_params(seeded), headers=auth("carl.customer"))

    assert response.status_code == 403


# Suggestions and search.

def test_suggestions_ranked_with_all_fields(client, seeded, auth, settings):
    response = client.get(SUGGESTIONS, query_string=case_params(seeded), headers=auth())

    assert response.status_code == 200
    body = response.get_json()
    assert body["case"]["number"] == seeded.case["number"]
    results = body["results"]
    assert results, "the seeded case shares words with public articles"
    assert [result["rank"] for result in results] == list(range(1, len(results) + 1))
    scores = [result["score"] for result in results]
    assert scores == sorted(scores, reverse=True)
    first = results[0]
    assert set(first) >= {"number", "title", "snippet_html", "score", "knowledge_base", "url", "updated_on", "rank"}
    assert first["url"] == f"{settings.platform.url}/kb_view.do?sys_kb_id={first['sys_id']}"
    assert first["knowledge_base"]["title"] == "Help Center"


def test_snippets_contain_only_mark_elements(client, seeded, auth):
    response = client.get("/api/v1/search", query_string={"q": "password reset"}, headers=auth())

    snippets = [result["snippet_html"] for result in response.get_json()["results"]]
    assert any("<mark>" in snippet for snippet in snippets)
    for snippet in snippets:
        assert set(re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", snippet)) <= {"mark"}


def test_snippets_keep_no_line_breaks(client, seeded, auth):
    response = client.get("/api/v1/search", query_string={"q": "password reset"}, headers=auth())

    snippets = {result["sys_id"]: result["snippet_html"] for result in response.get_json()["results"]}
    assert all("\n" not in snippet for snippet in snippets.values())
    assert "<mark>reset</mark> link. Check the" in snippets[seeded.articles["reset"]["sys_id"]]


def test_restricted_article_hidden_from_suggestions(client, seeded, auth):
    response = client.get(SUGGESTIONS, query_string=case_params(seeded), headers=auth("alice.agent"))

    assert seeded.articles["fraud"]["sys_id"] not in result_ids(response)
    assert "secret verification" not in response.get_data(as_text=True)


def test_restricted_article_suggested_to_fraud_member(client, seeded, auth):
    response = client.get(SUGGESTIONS, query_string=case_params(seeded), headers=auth("frank.fraud"))

    assert seeded.articles["fraud"]["sys_id"] in result_ids(response)


def test_search_hides_restricted_article(client, seeded, auth):
    query = {"q": "card fraud alert verification"}
    restricted = client.get("/api/v1/search", query_string=query, headers=auth("alice.agent"))
    visible = client.get("/api/v1/search", query_string=query, headers=auth("frank.fraud"))

    assert seeded.articles["fraud"]["sys_id"] not in result_ids(restricted)
    assert seeded.articles["fraud"]["sys_id"] in result_ids(visible)
    assert restricted.get_json()["count"] < visible.get_json()["count"]


def test_search_without_query_is_400(client, seeded, auth):
    response = client.get("/api/v1/search", headers=auth())

    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "q"
    assert "q is missing" in response.get_json()["error"]["message"]


# Explain.

def test_explain_forbidden_for_agent(client, seeded, auth, services):
    response = client.get(SUGGESTIONS, query_string={**case_params(seeded), "explain": "1"}, headers=auth())

    assert response.status_code == 403
    assert response.get_json()["error"]["field"] == "explain"
    assert events(services) == []


def test_explain_shows_terms_and_components_for_admin(client, seeded, auth):
    response = client.get(SUGGESTIONS, query_string={**case_params(seeded), "explain": "1"},
                          headers=auth("ada.admin"))

    assert response.status_code == 200
    body = response.get_json()
    assert body["query"]
    assert body["results"]
    for result in body["results"]:
        assert isinstance(result["explain"], dict) and result["explain"]
    assert "password" in json.dumps(body["results"][0]["explain"])


def test_explain_never_mentions_restricted_article(client, seeded, auth, services):
    response = client.get("/api/v1/search", query_string={"q": "card fraud alert password", "explain": "1"},
                          headers=auth("ian.inward"))

    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert seeded.articles["fraud"]["sys_id"] not in text
    assert seeded.articles["fraud"]["number"] not in text
    assert response.get_json()["articles_searched"] == services.index.count() - 1


def test_explain_counts_restricted_article_for_admin(client, seeded, auth, services):
    response = client.get("/api/v1/search", query_string={"q": "password", "explain": "1"},
                          headers=auth("ada.admin"))

    assert response.get_json()["articles_searched"] == services.index.count()


# Preview.

def test_preview_sanitizes_article_html(client, seeded, auth, settings):
    sys_id = seeded.articles["reset"]["sys_id"]
    response = client.get(f"/api/v1/articles/{sys_id}", headers=auth())

    assert response.status_code == 200
    html = response.get_json()["html"]
    assert "Send the customer a new password reset link." in html
    assert "<script" not in html
    assert "owned" not in html
    assert "onclick" not in html
    assert "onerror" not in html
    assert "javascript:" not in html
    assert "evil.example" not in html
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html
    assert f'src="{settings.platform.url}/sys_attachment.do?sys_id=1"' in html
    assert f'href="{settings.platform.url}/kb_view.do?sys_kb_id=0"' in html


def test_preview_of_restricted_article_is_404(client, seeded, auth):
    response = client.get(f"/api/v1/articles/{seeded.articles['fraud']['sys_id']}", headers=auth("alice.agent"))

    assert response.status_code == 404
    assert "secret" not in response.get_data(as_text=True)


def test_preview_of_missing_article_matches_restricted_404(client, seeded, auth):
    hidden = client.get(f"/api/v1/articles/{seeded.articles['fraud']['sys_id']}", headers=auth())
    missing = client.get(f"/api/v1/articles/{'0' * 32}", headers=auth())

    assert missing.status_code == hidden.status_code == 404
    assert missing.get_json()["error"]["code"] == hidden.get_json()["error"]["code"]


def test_preview_of_restricted_article_for_fraud_member(client, seeded, auth):
    response = client.get(f"/api/v1/articles/{seeded.articles['fraud']['sys_id']}", headers=auth("frank.fraud"))

    assert response.status_code == 200
    assert "verify the card fraud alert" in response.get_json()["html"]


def test_preview_records_open_event_with_rank(client, seeded, auth, services):
    sys_id = seeded.articles["unlock"]["sys_id"]
    response = client.get(f"/api/v1/articles/{sys_id}", query_string={**case_params(seeded), "rank": 2},
                          headers=auth())

    assert response.status_code == 200
    assert events(services, "open") == [("open", sys_id, 2, seeded.case["sys_id"])]


# Attach.

def test_attach_twice_creates_one_link(client, seeded, auth, instance, services):
    sys_id = seeded.articles["reset"]["sys_id"]
    first = client.post(f"/api/v1/articles/{sys_id}/attach", json=case_body(seeded, rank=1), headers=auth())
    second = client.post(f"/api/v1/articles/{sys_id}/attach", json=case_body(seeded, rank=1), headers=auth())

    assert first.status_code == second.status_code == 200
    assert first.get_json()["repeated"] is False
    assert second.get_json()["repeated"] is True
    assert second.get_json()["m2m_kb_task"] == first.get_json()["m2m_kb_task"]
    links = instance.store.query("m2m_kb_task", f"task={seeded.case['sys_id']}")
    assert [(link["kb_knowledge"], link["task"]) for link in links] == [(sys_id, seeded.case["sys_id"])]
    assert events(services, "attach") == [("attach", sys_id, 1, seeded.case["sys_id"])]
    assert len(instance.store.query("kb_use", f"article={sys_id}")) == 1


def test_suggestions_mark_attached_articles(client, seeded, auth):
    sys_id = seeded.articles["reset"]["sys_id"]
    client.post(f"/api/v1/articles/{sys_id}/attach", json=case_body(seeded), headers=auth())
    response = client.get(SUGGESTIONS, query_string=case_params(seeded), headers=auth())

    flags = {result["sys_id"]: result["attached"] for result in response.get_json()["results"]}
    assert flags.pop(sys_id) is True
    assert flags
    assert not any(flags.values())


def test_attach_with_work_note_posts_note_once(client, seeded, auth, instance):
    sys_id = seeded.articles["unlock"]["sys_id"]
    body = case_body(seeded, work_note="Walked the customer through the unlock.")
    client.post(f"/api/v1/articles/{sys_id}/attach", json=body, headers=auth())
    client.post(f"/api/v1/articles/{sys_id}/attach", json=body, headers=auth())

    notes = instance.store.query("sys_journal_field", f"element_id={seeded.case['sys_id']}^element=work_notes")
    assert len(notes) == 1
    assert "Walked the customer through the unlock." in notes[0]["value"]
    assert seeded.articles["unlock"]["number"] in notes[0]["value"]


def test_attach_restricted_article_is_404_and_writes_nothing(client, seeded, auth, instance, services):
    response = client.post(f"/api/v1/articles/{seeded.articles['fraud']['sys_id']}/attach",
                           json=case_body(seeded), headers=auth("alice.agent"))

    assert response.status_code == 404
    assert instance.store.query("m2m_kb_task") == []
    assert events(services) == []


# Send.

def test_send_preview_shows_exact_text(client, seeded, auth, settings, instance):
    sys_id = seeded.articles["reset"]["sys_id"]
    response = client.post(f"/api/v1/articles/{sys_id}/send/preview",
                           json=case_body(seeded, summary="Use this link to reset your password."),
                           headers=auth())

    assert response.status_code == 200
    body = response.get_json()
    text = body["text"]
    assert text.startswith("Use this link to reset your password.")
    assert f"{settings.platform.url}/kb_view.do?sys_kb_id={sys_id}" in text
    assert re.search(r"\n\[inward:[0-9a-f]{16}\]$", text)
    assert body["public"] is True
    assert instance.store.query("sys_journal_field") == []


def test_send_preview_equals_posted_comment(client, seeded, auth, instance):
    sys_id = seeded.articles["reset"]["sys_id"]
    body = case_body(seeded, summary="  Use this link to reset your password.  \n", rank=2)
    preview = client.post(f"/api/v1/articles/{sys_id}/send/preview", json=body, headers=auth())
    sent = client.post(f"/api/v1/articles/{sys_id}/send", json=body, headers=auth())

    assert preview.status_code == 200
    assert sent.status_code == 200
    comments = instance.store.query("sys_journal_field", f"element_id={seeded.case['sys_id']}^element=comments")
    assert [comment["value"] for comment in comments] == [preview.get_json()["text"]]


def test_send_preview_marker_differs_by_agent(client, seeded, auth):
    sys_id = seeded.articles["reset"]["sys_id"]
    body = case_body(seeded, summary="Use this link to reset your password.")
    texts = [client.post(f"/api/v1/articles/{sys_id}/send/preview", json=body, headers=auth(user)).get_json()["text"]
             for user in ("alice.agent", "ada.admin")]

    assert texts[0].rsplit("\n", 1)[0] == texts[1].rsplit("\n", 1)[0]
    assert texts[0] != texts[1]


def test_send_posts_one_comment_and_repeat_posts_none(client, seeded, auth, instance, services):
    sys_id = seeded.articles["reset"]["sys_id"]
    body = case_body(seeded, summary="Use this link to reset your password.", rank=1)
    preview = client.post(f"/api/v1/articles/{sys_id}/send/preview", json=body, headers=auth()).get_json()
    first = client.post(f"/api/v1/articles/{sys_id}/send", json=body, headers=auth())
    second = client.post(f"/api/v1/articles/{sys_id}/send", json=body, headers=auth())

    assert first.status_code == second.status_code == 200
    assert first.get_json()["repeated"] is False
    assert second.get_json()["repeated"] is True
    comments = instance.store.query("sys_journal_field", f"element_id={seeded.case['sys_id']}^element=comments")
    assert len(comments) == 1
    assert comments[0]["value"] == preview["text"]
    assert events(services, "send") == [("send", sys_id, 1, seeded.case["sys_id"])]


def test_send_without_summary_is_400_and_writes_nothing(client, seeded, auth, instance, services):
    response = client.post(f"/api/v1/articles/{seeded.articles['reset']['sys_id']}/send",
                           json=case_body(seeded), headers=auth())

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == "summary"
    assert "summary" in error["message"]
    assert instance.store.query("sys_journal_field") == []
    assert events(services) == []


def test_send_with_blank_summary_is_400(client, seeded, auth):
    response = client.post(f"/api/v1/articles/{seeded.articles['reset']['sys_id']}/send",
                           json=case_body(seeded, summary="   "), headers=auth())

    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "summary"


# Sending internal articles.

def add_internal_articles(instance, seeded, services):
    """Add an "Agent Playbook" base readable by itil agents, and a Help Center article with can-read criteria.

    Both are readable by alice.agent, so only the public-article rule can stop
    a send. The index is synced again so it contains the new articles.
    """
    from knowledge.sync import sync_knowledge

    store = instance.store
    itil = store.query("sys_user_role", "name=itil")[0]
    agents_only = store.insert("user_criteria", {"name": "Agents", "role": itil["sys_id"]})
    playbook = store.insert("kb_knowledge_base", {"title": "Agent Playbook"})
    store.insert("kb_uc_can_read_mtom", {"kb_knowledge_base": playbook["sys_id"],
                                         "user_criteria": agents_only["sys_id"]})
    articles = {
        "playbook": store.insert("kb_knowledge", {
            "short_description": "Escalate a password reset to tier two", "article_type": "text",
            "text": "<p>Internal: escalate the password reset when the customer fails verification.</p>",
            "workflow_state": "published", "active": "true", "kb_knowledge_base": playbook["sys_id"],
        }),
        "criteria": store.insert("kb_knowledge", {
            "short_description": "Password reset override codes", "article_type": "text",
            "text": "<p>Internal: override codes for a password reset.</p>",
            "workflow_state": "published", "active": "true",
            "kb_knowledge_base": seeded.bases["public"]["sys_id"],
            "can_read_user_criteria": agents_only["sys_id"],
        }),
    }
    sync_knowledge(services, full=True)
    return articles


@pytest.mark.parametrize("article", ["playbook", "criteria"])
@pytest.mark.parametrize("action", ["send/preview", "send"])
def test_send_internal_article_is_409(client, seeded, auth, instance, services, article, action):
    sys_id = add_internal_articles(instance, seeded, services)[article]["sys_id"]
    response = client.post(f"/api/v1/articles/{sys_id}/{action}",
                           json=case_body(seeded, summary="Here is how we handle this."), headers=auth())

    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "article_not_public"
    assert "internal" in error["message"]
    assert "Attach" in error["message"]
    assert instance.store.query("sys_journal_field") == []
    assert instance.store.query("kb_use") == []
    assert events(services, "send") == []


@pytest.mark.parametrize("action", ["send/preview", "send"])
def test_send_restricted_base_article_is_409_for_member(client, seeded, auth, instance, services, action):
    sys_id = seeded.articles["fraud"]["sys_id"]
    response = client.post(f"/api/v1/articles/{sys_id}/{action}",
                           json=case_body(seeded, summary="Here is how we handle this."),
                           headers=auth("frank.fraud"))

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "article_not_public"
    assert instance.store.query("sys_journal_field") == []
    assert events(services, "send") == []


def test_attach_internal_article_still_allowed(client, seeded, auth, instance, services):
    sys_id = add_internal_articles(instance, seeded, services)["playbook"]["sys_id"]
    response = client.post(f"/api/v1/articles/{sys_id}/attach", json=case_body(seeded), headers=auth())

    assert response.status_code == 200
    assert len(instance.store.query("m2m_kb_task", f"kb_knowledge={sys_id}")) == 1


def test_results_and_preview_mark_public_articles(client, seeded, auth, instance, services):
    internal = add_internal_articles(instance, seeded, services)
    response = client.get("/api/v1/search", query_string={"q": "password reset"}, headers=auth())

    public_by_id = {result["sys_id"]: result["public"] for result in response.get_json()["results"]}
    assert public_by_id[seeded.articles["reset"]["sys_id"]] is True
    assert public_by_id[internal["playbook"]["sys_id"]] is False
    assert public_by_id[internal["criteria"]["sys_id"]] is False
    preview = client.get(f"/api/v1/articles/{internal['playbook']['sys_id']}", headers=auth())
    assert preview.get_json()["public"] is False
    preview = client.get(f"/api/v1/articles/{seeded.articles['unlock']['sys_id']}", headers=auth())
    assert preview.get_json()["public"] is True


# Feedback and dismiss.

def test_feedback_creates_kb_feedback_row(client, seeded, auth, instance, services):
    sys_id = seeded.articles["unlock"]["sys_id"]
    body = case_body(seeded, helpful=True, comment="Clear steps.", rank=2)
    first = client.post(f"/api/v1/articles/{sys_id}/feedback", json=body, headers=auth())
    second = client.post(f"/api/v1/articles/{sys_id}/feedback", json=body, headers=auth())

    assert first.status_code == 200
    assert second.get_json()["repeated"] is True
    rows = instance.store.query("kb_feedback", f"article={sys_id}")
    assert len(rows) == 1
    assert rows[0]["user"] == seeded.users["alice.agent"]["sys_id"]
    assert rows[0]["comments"] == "Clear steps."
    assert rows[0]["useful"] == "yes"
    assert events(services, "feedback") == [("feedback", sys_id, 2, seeded.case["sys_id"])]


def test_empty_feedback_is_400(client, seeded, auth, instance):
    response = client.post(f"/api/v1/articles/{seeded.articles['unlock']['sys_id']}/feedback",
                           json=case_body(seeded), headers=auth())

    assert response.status_code == 400
    assert instance.store.query("kb_feedback") == []


def test_dismissed_article_leaves_suggestions(client, seeded, auth, services):
    before = result_ids(client.get(SUGGESTIONS, query_string=case_params(seeded), headers=auth()))
    dismissed = before[0]
    response = client.post(f"/api/v1/articles/{dismissed}/dismiss", json=case_body(seeded, rank=1),
                           headers=auth())
    after = result_ids(client.get(SUGGESTIONS, query_string=case_params(seeded), headers=auth()))

    assert response.status_code == 200
    assert dismissed not in after
    assert events(services, "dismiss") == [("dismiss", dismissed, 1, seeded.case["sys_id"])]


# Events.

def test_suggestions_record_one_impression_per_rank(client, seeded, auth, services):
    response = client.get(SUGGESTIONS, query_string=case_params(seeded), headers=auth())

    results = response.get_json()["results"]
    expected = [("impression", result["sys_id"], result["rank"], seeded.case["sys_id"]) for result in results]
    assert events(services, "impression") == expected


# Bad input.

BAD_ACTION_REQUESTS = [
    pytest.param({"table": "incident", "sys_id": "not-a-sys-id"}, 400, "sys_id", id="malformed-case-sys-id"),
    pytest.param({"table": "sys_user", "sys_id": "a" * 32}, 400, "table", id="unknown-table"),
    pytest.param({"sys_id": "a" * 32}, 400, "table", id="missing-table"),
    pytest.param({"table": "incident"}, 400, "sys_id", id="missing-sys-id"),
    pytest.param({"table": "incident", "sys_id": "a" * 32}, 404, "sys_id", id="case-not-found"),
    pytest.param({"table": "incident", "sys_id": "a" * 32, "colour": "red"}, 400, "colour", id="unknown-field"),
]


@pytest.mark.parametrize("body, status, field", BAD_ACTION_REQUESTS)
def test_bad_attach_request_writes_nothing(client, seeded, auth, instance, services, body, status, field):
    response = client.post(f"/api/v1/articles/{seeded.articles['reset']['sys_id']}/attach", json=body,
                           headers=auth())

    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["field"] == field
    assert field in error["message"]
    assert instance.store.query("m2m_kb_task") == []
    assert instance.store.query("kb_use") == []
    assert events(services) == []


def test_malformed_article_sys_id_is_400(client, seeded, auth, instance):
    response = client.post("/api/v1/articles/KB0010001/attach", json=case_body(seeded), headers=auth())

    assert response.status_code == 400
    assert "KB0010001" in response.get_json()["error"]["message"]
    assert instance.store.query("m2m_kb_task") == []


def test_non_json_body_is_400(client, seeded, auth):
    response = client.post(f"/api/v1/articles/{seeded.articles['reset']['sys_id']}/attach", data="table=incident",
                           headers=auth())

    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "body"


@pytest.mark.parametrize("params, field", [
    pytest.param({"table": "incident", "sys_id": "xyz"}, "sys_id", id="malformed-sys-id"),
    pytest.param({"table": "change_request", "sys_id": "a" * 32}, "table", id="unknown-table"),
    pytest.param({"sys_id": "a" * 32}, "table", id="missing-table"),
])
def test_bad_suggestions_request_is_400(client, seeded, auth, services, params, field):
    response = client.get(SUGGESTIONS, query_string=params, headers=auth())

    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field
    assert events(services) == []


# Platform failures.

@pytest.fixture
def no_retry_client(instance, tmp_path, seeded):
    """Return a test client whose platform calls are not retried, so a fault fails at once."""
    from tests.widgets.helpers import build_app, widget_settings

    settings = widget_settings(instance, tmp_path)
    platform = settings.platform.replace(retry=settings.platform.retry.replace(attempts=1))
    app, services = build_app(settings.replace(platform=platform))
    yield app.test_client(), services
    services.close()


def test_failed_attach_can_be_retried(no_retry_client, seeded, auth, instance):
    client, services = no_retry_client
    sys_id = seeded.articles["reset"]["sys_id"]
    client.get(SUGGESTIONS, query_string=case_params(seeded), headers=auth())

    instance.set_faults(error_rate=1.0)
    failed = client.post(f"/api/v1/articles/{sys_id}/attach", json=case_body(seeded), headers=auth())
    instance.set_faults(error_rate=0.0)
    retried = client.post(f"/api/v1/articles/{sys_id}/attach", json=case_body(seeded), headers=auth())

    assert failed.status_code >= 500
    assert retried.status_code == 200
    assert retried.get_json()["repeated"] is False
    assert len(instance.store.query("m2m_kb_task", f"task={seeded.case['sys_id']}")) == 1
    assert [event[0] for event in events(services, "attach")] == ["attach"]
