"""The ``/api/v1`` JSON API behind the suggestions widget.

Every endpoint needs an agent token (``require_agent``). Searches run with
the agent's visibility filter, so an article the agent may not read is never
scored, counted, shown or explained. A preview of such an article is a 404,
the same response as for an article that does not exist.

Errors are ``InwardError``s with a ``status`` and a ``field``; the shell's
error handlers turn them into ``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import Schema, ValidationError

from integration.errors import AccessDenied, RecordNotFound
from integration.queries import Query
from integration.tables import get_case
from inward.auth import require_agent
from knowledge.case_query import build_case_query
from knowledge.visibility import Visibility, VisibilityRules
from widgets import actions, schemas
from widgets.actions import ArticleTarget, WidgetError
from widgets.sanitize import sanitize_article, sanitize_snippet, separate_snippet_lines

logger = logging.getLogger(__name__)

api = Blueprint("widgets_api", __name__, url_prefix="/api/v1")

# Fields read for an article preview; the index holds only plain text.
PREVIEW_FIELDS = ["sys_id", "number", "short_description", "text", "wiki", "article_type", "sys_updated_on"]
DEFAULT_SEARCH_LIMIT = 10
# marshmallow's default message for a missing required field.
REQUIRED_MESSAGE = "Missing data for required field."


@api.get("/suggestions")
@require_agent
def suggestions():
    """Return the articles that best match the case, best first."""
    params = load_request(schemas.SuggestionsQuery(), request.args)
    explain = _check_explain(params["explain"])
    case = load_case(params["table"], params["sys_id"])
    services = _services()
    case_query = build_case_query(case, services.settings.ranking)
    limit = services.settings.knowledge.suggestions_limit
    dismissed = actions.dismissed_articles(services.store, agent_sys_id=g.agent.sys_id, case_sys_id=case.sys_id)
    hits = []
    if not case_query.is_empty():
        hits = _search(case_query.text, limit=limit + len(dismissed), explain=explain, boosts=case_query.boosts)
    hits = [hit for hit in hits if hit.sys_id not in dismissed][:limit]
    results = _present_hits(hits, explain=explain, attached=attached_articles(case))
    actions.record_impressions(services.store, agent=g.agent, case=case, hits=results,
                               detail={"source": "suggestions"})
    body = {"case": _present_case(case), "results": results, "count": len(results)}
    if explain:
        body["query"] = {"text": case_query.text, "boosts": case_query.boosts}
        body["articles_searched"] = _visible_count()
    return jsonify(body)


@api.get("/search")
@require_agent
def search():
    """Return the articles matching the agent's own query, best first."""
    params = load_request(schemas.SearchQuery(), request.args)
    explain = _check_explain(params["explain"])
    case = load_case(params["table"], params["sys_id"]) if "table" in params else None
    hits = _search(params["q"], limit=params["limit"] or DEFAULT_SEARCH_LIMIT, explain=explain)
    results = _present_hits(hits, explain=explain, attached=attached_articles(case) if case else set())
    actions.record_impressions(_services().store, agent=g.agent, case=case, hits=results,
                               detail={"source": "search", "query": params["q"]})
    body = {"query": params["q"], "results": results, "count": len(results)}
    if explain:
        body["articles_searched"] = _visible_count()
    return jsonify(body)


@api.get("/articles/<sys_id>")
@require_agent
def preview(sys_id: str):
    """Return one article with its body sanitized for display; 404 when the agent may not read it."""
    params = load_request(schemas.PreviewQuery(), request.args)
    article = find_visible_article(sys_id)
    case_table, case_sys_id = params.get("table"), params.get("sys_id")
    if case_table is not None:
        case = load_case(case_table, case_sys_id)
        case_table, case_sys_id = case.table, case.sys_id
    services = _services()
    record = services.platform.records.get("kb_knowledge", article["sys_id"], must_exist=False,
                                           fields=PREVIEW_FIELDS)
    if record is None:
        raise _article_not_found(article["sys_id"])
    html = record.get("wiki") if record.get("article_type") == "wiki" else record.get("text")
    actions.record_open(services.store, agent=g.agent, table=case_table, case_sys_id=case_sys_id,
                        article_sys_id=article["sys_id"], rank=params.get("rank"))
    body = _present_article(article)
    body["html"] = sanitize_article(html or "", platform_url=services.settings.platform.url)
    return jsonify(body)


@api.post("/articles/<sys_id>/attach")
@require_agent
def attach(sys_id: str):
    """Attach the article to the case (``m2m_kb_task``), with an optional work note."""
    body = load_request(schemas.AttachBody(), _json_body())
    target = _target(sys_id, body)
    return jsonify(actions.attach(_services(), target, work_note=body["work_note"]))


@api.post("/articles/<sys_id>/send/preview")
@require_agent
def send_preview(sys_id: str):
    """Return the exact comment text that /send would post, marker line included, without posting it."""
    body = load_request(schemas.SendBody(), _json_body())
    target = _target(sys_id, body)
    _require_public(target)
    text = actions.posted_comment(target, body["summary"], _services().settings.platform.url)
    return jsonify({"text": text, "visible_to": "customer", "field": "comments", "public": True})


@api.post("/articles/<sys_id>/send")
@require_agent
def send(sys_id: str):
    """Post the article link and the agent's summary to the case's customer-visible comments (public articles only)."""
    body = load_request(schemas.SendBody(), _json_body())
    target = _target(sys_id, body)
    _require_public(target)
    return jsonify(actions.send(_services(), target, summary=body["summary"]))


@api.post("/articles/<sys_id>/feedback")
@require_agent
def feedback(sys_id: str):
    """Record whether the article helped, with an optional comment and flag (``kb_feedback``)."""
    body = load_request(schemas.FeedbackBody(), _json_body())
    target = _target(sys_id, body)
    result = actions.give_feedback(
        _services(), target, helpful=body["helpful"], comment=body["comment"], flag=body["flag"]
    )
    return jsonify(result)


@api.post("/articles/<sys_id>/dismiss")
@require_agent
def dismiss(sys_id: str):
    """Hide the article from the agent's suggestions for this case."""
    body = load_request(schemas.DismissBody(), _json_body())
    target = _target(sys_id, body)
    return jsonify(actions.dismiss(_services(), target, reason=body["reason"]))


def load_request(schema: Schema, data: Any) -> dict:
    """Validate query parameters or a JSON body, raising a 400 that names each bad field and value."""
    if hasattr(data, "to_dict"):
        data = data.to_dict()
    try:
        return schema.load(data)
    except ValidationError as error:
        raise _validation_failed(error.normalized_messages(), data) from None


def _validation_failed(messages: dict, data: dict) -> WidgetError:
    problems = []
    flat = _flatten(messages)
    for field, text in flat:
        if field in data:
            problems.append(f"{field}={data[field]!r}: {text}")
        elif text == REQUIRED_MESSAGE:
            problems.append(f"{field} is missing; pass it in the request.")
        else:
            problems.append(f"{field}: {text}")
    first = flat[0][0] if flat else None
    return WidgetError("invalid_request", " ".join(problems), status=400, field=first)


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        flat = []
        for key, nested in messages.items():
            if key == "_schema":
                name = prefix
            elif prefix:
                name = f"{prefix}.{key}"
            else:
                name = str(key)
            flat.extend(_flatten(nested, name))
        return flat
    if isinstance(messages, list):
        return [(prefix or "request", " ".join(str(item) for item in messages))]
    return [(prefix or "request", str(messages))]


def _json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise WidgetError(
            "invalid_body",
            "The request body must be a JSON object with Content-Type: application/json.",
            status=400,
            field="body",
        )
    return data


def _services() -> Any:
    return current_app.extensions["inward"]


def _widget_state() -> dict:
    return current_app.extensions["widgets"]


def _visibility() -> Any:
    """Return the shared Visibility, from the services when they provide one.

    Otherwise the widgets keep their own, and reload its knowledge bases and
    user criteria once they are older than ``knowledge.visibility_cache_ttl``.
    """
    services = _services()
    shared = getattr(services, "visibility", None)
    if shared is not None:
        return shared
    state = _widget_state()
    with state["lock"]:
        now = time.monotonic()
        if state["visibility"] is None:
            state["visibility"] = Visibility(services.platform.records, services.settings, index=services.index)
            state["rules_loaded_at"] = now
        elif now - state["rules_loaded_at"] > services.settings.knowledge.visibility_cache_ttl:
            state["visibility"].replace_rules(VisibilityRules.load(services.platform.records))
            state["rules_loaded_at"] = now
        return state["visibility"]


def load_case(table: str, sys_id: str) -> Any:
    """Read the case through the platform client, cached for ``knowledge.case_cache_ttl`` seconds.

    NOTE: the case is read with the integration user's rights. A case that
    does not exist or that ACLs hide from that user is a 404, but the
    platform's per-agent ACLs on the case itself are not evaluated.
    """
    services = _services()
    case_tables = list(services.settings.platform.case_tables)
    if table not in case_tables:
        raise WidgetError(
            "unknown_table",
            f"table={table!r} is not a case table; use one of {', '.join(case_tables)} (platform.case_tables).",
            status=400,
            field="table",
        )
    try:
        return _widget_state()["cases"].get(
            table, sys_id, lambda: get_case(services.platform.records, table=table, sys_id=sys_id)
        )
    except (RecordNotFound, AccessDenied):
        raise WidgetError(
            "case_not_found",
            f"No {table} record {sys_id} that you can read; check the sys_id or reopen the case.",
            status=404,
            field="sys_id",
        ) from None


def find_visible_article(sys_id: str) -> dict:
    """Return the indexed article if the agent may read it; otherwise raise a 404."""
    try:
        schemas.validate_sys_id(sys_id)
    except ValidationError:
        raise WidgetError(
            "invalid_request",
            f"article={sys_id!r}: not a sys_id; pass the 32 lowercase hexadecimal characters of the article.",
            status=400,
            field="article",
        ) from None
    document = _services().index.get(sys_id)
    if document is None or not _visibility().can_read(g.agent, document):
        raise _article_not_found(sys_id)
    return {**document, "sys_id": sys_id}


def _article_not_found(sys_id: str) -> WidgetError:
    # The same response for missing and hidden articles, so a 404 reveals nothing.
    return WidgetError(
        "article_not_found",
        f"No knowledge article {sys_id} that you can read; search again for current articles.",
        status=404,
        field="article",
    )


def _target(sys_id: str, body: dict) -> ArticleTarget:
    """Check the article and the case of an action before anything is written."""
    article = find_visible_article(sys_id)
    case = load_case(body["table"], body["sys_id"])
    return ArticleTarget(agent=g.agent, case=case, article=_present_article(article), rank=body.get("rank"))


def _require_public(target: ArticleTarget) -> None:
    """Reject sending an article that user criteria restrict, because a customer-visible comment would leak it."""
    article = target.article
    if article["public"]:
        return
    logger.info("Rejected sending the non-public article %s to case %s %s",
                article["sys_id"], target.case.table, target.case.sys_id)
    raise WidgetError(
        "article_not_public",
        f"Article {article['number']} is internal: user criteria restrict who may read it, "
        "so it cannot be sent to the customer. Attach it to the case with a work note instead.",
        status=409,
        field="article",
    )


def _is_public(document: dict) -> bool:
    return actions.is_public_article(
        document,
        _visibility().rules,
        block_without_criteria=_services().settings.knowledge.block_access_with_no_user_criteria,
    )


def _is_admin(agent: Any) -> bool:
    return bool(set(agent.roles) & set(_services().settings.auth.admin_roles))


def _check_explain(explain: bool) -> bool:
    if explain and not _is_admin(g.agent):
        raise WidgetError(
            "explain_forbidden",
            "explain=1 is for admins only; drop the explain parameter or ask an admin.",
            status=403,
            field="explain",
        )
    return explain


def _search(text: str, *, limit: int, explain: bool, boosts: dict[str, float] | None = None) -> list:
    return _services().index.search(
        text, filter=_visibility().filter_for(g.agent), limit=limit, explain=explain, boosts=boosts
    )


def _visible_count() -> int:
    return _services().index.count(filter=_visibility().filter_for(g.agent))


def attached_articles(case: Any) -> set[str]:
    """Return the sys_ids of the articles already linked to the case in ``m2m_kb_task``."""
    query = Query().equals("task", case.sys_id)
    rows = _services().platform.records.list("m2m_kb_task", query, fields=["kb_knowledge"])
    return {row["kb_knowledge"] for row in rows if row.get("kb_knowledge")}


def _present_hits(hits: list, *, explain: bool, attached: set[str]) -> list[dict]:
    platform_url = _services().settings.platform.url
    index = _services().index
    results = []
    for rank, hit in enumerate(hits, start=1):
        result = {
            "sys_id": hit.sys_id,
            "number": hit.number,
            "title": hit.title,
            "snippet_html": separate_snippet_lines(sanitize_snippet(hit.snippet_html)),
            "score": round(float(hit.score), 4),
            "knowledge_base": {"sys_id": hit.kb_sys_id, "title": hit.kb_title},
            "url": actions.article_link(platform_url, hit.sys_id),
            "updated_on": _iso(hit.updated_on),
            "rank": rank,
            "attached": hit.sys_id in attached,
            "public": _is_public(index.get(hit.sys_id) or {}),
        }
        if explain:
            result["explain"] = hit.explain
        results.append(result)
    return results


def _present_article(document: dict) -> dict:
    """Describe an indexed article with the same field names as a search result."""
    sys_id = document["sys_id"]
    return {
        "sys_id": sys_id,
        "number": document.get("number", ""),
        "title": document.get("title", ""),
        "knowledge_base": {"sys_id": document.get("kb_sys_id") or document.get("kb", ""),
                           "title": document.get("kb_title", "")},
        "url": actions.article_link(_services().settings.platform.url, sys_id),
        "updated_on": _iso(document.get("updated_on")),
        "public": _is_public(document),
    }


def _present_case(case: Any) -> dict:
    return {
        "table": case.table,
        "sys_id": case.sys_id,
        "number": case.number,
        "short_description": case.short_description,
    }


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
