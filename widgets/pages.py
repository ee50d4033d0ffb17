"""Server-rendered pages: the suggestions widget and the development workspace preview.

The widget page contains no data and needs no token to load: its script reads
the token from the URL once, removes it from the address bar and sends it to
``/api/v1`` as a bearer token. The page checks only that the case parameters
are well formed, so a broken embed URL shows a clear error at once.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, url_for
from marshmallow import ValidationError

from widgets import schemas

logger = logging.getLogger(__name__)

pages = Blueprint(
    "widgets_pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/widgets/static",
)

# The workspace preview lists at most this many cases per case table, lowest
# numbers first. A case named in the URL is shown even when it is past the cap.
WORKSPACE_CASE_LIMIT = 200
CASE_FIELDS = ["sys_id", "number", "short_description", "description"]
WORKSPACE_AGENT_LIMIT = 50
DEV_TOKEN_LIFETIME = 900


@pages.get("/widgets/suggestions")
def suggestions_widget():
    """Render the suggestions side panel for one case."""
    try:
        case = schemas.SuggestionsQuery().load(request.args.to_dict())
    except ValidationError as error:
        fields = ", ".join(sorted(error.normalized_messages()))
        message = (
            f"The widget URL has invalid or missing parameters ({fields}); "
            "embed it as /widgets/suggestions?table=<table>&sys_id=<sys_id>&token=<jwt>."
        )
        return _no_store(render_template("widgets/error.html", message=message), 400)
    api_base = url_for("widgets_api.suggestions").rsplit("/", 1)[0]
    html = render_template("widgets/suggestions.html", table=case["table"], sys_id=case["sys_id"],
                           api_base=api_base)
    return _no_store(html, 200)


@pages.get("/dev/workspace")
def workspace_preview():
    """Render a case form with the widget framed beside it, as the platform would show it (dev mode only)."""
    services = current_app.extensions["inward"]
    if not services.settings.server.dev_mode:
        abort(404)
    records = services.platform.records
    case_tables = list(services.settings.platform.case_tables)
    cases = _list_cases(records, case_tables)
    agents = _list_agents(records, services.settings.auth.agent_roles)
    table = request.args.get("table") or (cases[0]["table"] if cases else "")
    sys_id = request.args.get("sys_id") or (cases[0]["sys_id"] if cases else "")
    user = request.args.get("user") or (agents[0]["user_name"] if agents else "")
    selected = next((case for case in cases if case["sys_id"] == sys_id and case["table"] == table), None)
    if selected is None and table in case_tables:
        selected = _get_case(records, table, sys_id)
        if selected is not None:
            cases = sorted([*cases, selected], key=lambda case: case["number"])
    context: dict[str, Any] = {"cases": cases, "agents": agents, "table": table, "sys_id": sys_id,
                               "user": user, "case": selected, "comments": [], "widget_url": None}
    if selected is not None and user:
        context["comments"] = _list_comments(records, table, sys_id)
        context["widget_url"] = _widget_url(services.settings, table, sys_id, user)
    return _no_store(render_template("widgets/workspace.html", **context), 200)


def _widget_url(settings: Any, table: str, sys_id: str, user: str) -> str:
    from inward.auth import mint_token

    token = mint_token(settings, user, lifetime=min(DEV_TOKEN_LIFETIME, settings.auth.jwt_max_lifetime))
    return url_for("widgets_pages.suggestions_widget", table=table, sys_id=sys_id, token=token)


def _list_cases(records: Any, case_tables: list[str]) -> list[dict]:
    """List the active cases of each case table, ordered by number, at most WORKSPACE_CASE_LIMIT per table."""
    from integration.queries import Query

    cases = []
    for table in case_tables:
        # Records.list pages in sys_id order, so every active case is read and sorted here.
        # NOTE: this reads all active cases of the table; fine for the demo data,
        # slow on an instance with many thousands of open cases.
        rows = records.list(table, Query().equals("active", "true"), fields=CASE_FIELDS)
        table_cases = sorted((_case_row(table, row) for row in rows), key=lambda case: case["number"])
        cases.extend(table_cases[:WORKSPACE_CASE_LIMIT])
    return sorted(cases, key=lambda case: case["number"])


def _get_case(records: Any, table: str, sys_id: str) -> dict | None:
    """Return the case named in the URL, or None when the sys_id is malformed or no such record exists."""
    from integration.errors import InvalidQueryValue

    try:
        row = records.get(table, sys_id, must_exist=False, fields=CASE_FIELDS)
    except InvalidQueryValue:
        logger.info("The workspace URL names %s %r, which is not a sys_id", table, sys_id)
        return None
    return _case_row(table, row) if row is not None else None


def _case_row(table: str, row: dict) -> dict:
    return {"table": table, **{name: row.get(name) or "" for name in CASE_FIELDS}}


def _list_agents(records: Any, agent_roles: list[str]) -> list[dict]:
    """List active users holding an agent role, for the workspace's agent picker."""
    from integration.queries import Query

    role_ids = [row["sys_id"] for row in records.list("sys_user_role", Query().in_("name", agent_roles),
                                                      fields=["sys_id"])]
    if not role_ids:
        return []
    user_ids = {row["user"] for row in records.list("sys_user_has_role", Query().in_("role", role_ids),
                                                    fields=["user"])}
    if not user_ids:
        return []
    query = Query().in_("sys_id", sorted(user_ids)).equals("active", "true")
    agents = [{"user_name": row["user_name"], "name": row.get("name") or row["user_name"]}
              for row in records.list("sys_user", query, fields=["user_name", "name"])]
    return sorted(agents, key=lambda agent: agent["name"])[:WORKSPACE_AGENT_LIMIT]


def _list_comments(records: Any, table: str, sys_id: str) -> list[dict]:
    """Return the case's customer-visible comments, newest first, as plain text."""
    from integration.queries import Query

    query = Query().equals("element_id", sys_id).equals("element", "comments")
    fields = ["value", "sys_created_on", "sys_created_by"]
    comments = [
        {"value": row.get("value") or "", "created_on": row.get("sys_created_on"),
         "created_by": row.get("sys_created_by") or ""}
        for row in records.list("sys_journal_field", query, fields=fields)
    ]
    return sorted(comments, key=lambda comment: str(comment["created_on"]), reverse=True)


def _no_store(body: str, status: int):
    """Return an HTML response that browsers and proxies must not cache, because its URL may carry a token."""
    response = current_app.make_response((body, status))
    response.headers["Cache-Control"] = "no-store"
    return response
