"""HTTP routes of the instance: Table API, Aggregate API and the OAuth token endpoint."""

from __future__ import annotations

import json
import logging
import secrets
import socket
import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import InternalServerError

from integration.instance import auth, catalog, render, storage
from integration.instance.faults import HIBERNATING_PAGE
from integration.instance.stats import aggregate, known_fields

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 10000
TABLE_PREFIXES = ("/api/now/table", "/api/now/v1/table", "/api/now/v2/table")
TOKEN_PATH = "/oauth_token.do"


class ApiError(Exception):
    """An error response in the Table API envelope."""

    def __init__(self, status: int, message: str, detail: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers or {}


def _state():
    return current_app.extensions["instance"]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """Register the routes, the request hooks and the error handlers."""
    for prefix in TABLE_PREFIXES:
        app.add_url_rule(f"{prefix}/<table>", view_func=table_collection, methods=["GET", "POST"],
                         endpoint=f"collection{prefix}")
        app.add_url_rule(f"{prefix}/<table>/<sys_id>", view_func=table_record,
                         methods=["GET", "PUT", "PATCH", "DELETE"], endpoint=f"record{prefix}")
    app.add_url_rule("/api/now/stats/<table>", view_func=stats, methods=["GET"])
    app.add_url_rule(TOKEN_PATH, view_func=oauth_token, methods=["POST"])
    app.before_request(before_request)
    app.after_request(after_request)
    app.teardown_request(teardown_request)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(500, handle_server_error)
    app.register_error_handler(404, lambda error: handle_api_error(
        ApiError(404, "Requested URI does not represent any resource", request.path)))
    app.register_error_handler(405, lambda error: handle_api_error(
        ApiError(405, "Method not Supported", f"{request.method} is not allowed on {request.path}")))


def handle_server_error(error: InternalServerError) -> Response:
    """Log an unexpected exception and return it in the Table API envelope."""
    cause = error.original_exception or error
    logger.error("Failed %s %s: %r", request.method, request.path, cause, exc_info=cause)
    return json_response(render.error_body("Internal server error", str(cause)), 500)


def handle_api_error(error: ApiError) -> Response:
    return json_response(render.error_body(error.message, error.detail), error.status, error.headers)


# -- request hooks ----------------------------------------------------------

def before_request() -> Response | None:
    """Apply faults and authentication before any route runs."""
    g.started = time.monotonic()
    g.rate_headers = {}
    state = _state()
    state.request_started()
    g.counted = True
    if state.faults.hibernating:
        return Response(HIBERNATING_PAGE, status=200, mimetype="text/html")
    if request.path == TOKEN_PATH:
        return None
    g.user = authenticate()
    apply_faults(state, g.user["user_name"])
    return None


def apply_faults(state, user_name: str) -> None:
    """Count the request against the rate limit, then fail or delay it when a fault is set."""
    decision = state.faults.check_rate(user_name)
    g.rate_headers = decision.headers
    if decision.limited:
        limit = state.faults.faults.rate_limit_per_hour
        logger.info("Rate limit of %d per hour reached by %s on %s", limit, user_name, request.path)
        raise ApiError(429, "Rate limit exceeded",
                       f"Rate limit of {limit} requests per hour for Table API exceeded",
                       decision.headers)
    status = state.faults.next_failure()
    if status is not None:
        logger.info("Injected status %d for %s %s", status, request.method, request.path)
        raise ApiError(status, "Injected failure",
                       f"Fault injection returned status {status} for this request.")
    state.faults.delay()


def after_request(response: Response) -> Response:
    for name, value in g.get("rate_headers", {}).items():
        response.headers.setdefault(name, value)
    elapsed = (time.monotonic() - g.get("started", time.monotonic())) * 1000
    logger.debug("%s %s -> %s (%.0f ms)", request.method, request.path, response.status_code, elapsed)
    return response


def teardown_request(error: BaseException | None) -> None:
    if g.pop("counted", False):
        _state().request_finished()


def authenticate() -> dict:
    """Return the sys_user behind the request's Basic or Bearer credentials, else raise 401."""
    state = _state()
    header = request.headers.get("Authorization", "")
    basic = auth.parse_basic(header)
    if basic is not None:
        user = state.store.authenticate(*basic)
        who = basic[0]
    else:
        token = auth.parse_bearer(header)
        who = state.tokens.user_for(token) if token else None
        user = state.store.find_active_user(who) if who else None
    if user is None:
        logger.info("Rejected %s %s: no valid credentials (user %r)", request.method, request.path, who)
        raise ApiError(401, "User Not Authenticated", "Required to provide Auth information",
                       {"WWW-Authenticate": 'BASIC realm="Service-now"'})
    return user


# -- parameters -------------------------------------------------------------

def flag(name: str) -> bool:
    """Read a true/false sysparm in any case; an empty value is false."""
    value = request.args.get(name, "").strip().lower()
    if value in {"", "false"}:
        return False
    if value == "true":
        return True
    raise ApiError(400, f"Invalid value given for {name}",
                   f"{name} must be true or false, got {request.args.get(name)!r}")


def positive_integer(name: str, default: int, *, allow_zero: bool) -> int:
    raw = request.args.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0 or (value == 0 and not allow_zero):
        kind = "a non-negative" if allow_zero else "a positive"
        raise ApiError(400, f"Invalid value given for {name}",
                       f"{name} value must be {kind} integer, got {raw!r}")
    return value


def render_options() -> render.RenderOptions:
    mode = request.args.get("sysparm_display_value", "").strip().lower() or "false"
    if mode not in render.MODES:
        raise ApiError(400, "Invalid value given for sysparm_display_value",
                       f"sysparm_display_value must be true, false or all, got {mode!r}")
    fields = tuple(name.strip() for name in request.args.get("sysparm_fields", "").split(",")
                   if name.strip())
    return render.RenderOptions(
        mode=mode,
        exclude_reference_link=flag("sysparm_exclude_reference_link"),
        fields=fields,
        base_url=request.host_url,
        time_zone=_state().settings.instance.user_time_zone,
    )


def require_table(table: str) -> None:
    if catalog.get_table(table) is None:
        raise ApiError(400, f"Invalid table {table}", None)


def require_read_access(table: str) -> None:
    """Raise the platform's 403 when a deny_read_tables fault covers the table."""
    if _state().faults.read_denied(table):
        raise ApiError(403, "Insufficient rights to query records", None)


def list_query_text() -> str:
    """Return sysparm_query, or the name=value pairs joined as a query when it is absent."""
    text = request.args.get("sysparm_query", "")
    if text:
        return text
    pairs = [f"{name}={value}" for name, value in request.args.items(multi=True)
             if not name.startswith("sysparm_")]
    return "^".join(pairs)


# -- Table API --------------------------------------------------------------

def table_collection(table: str) -> Response:
    require_table(table)
    if request.method == "POST":
        return create_record(table)
    return list_records(table)


def list_records(table: str) -> Response:
    """GET /table/{t}: query, order, page and render."""
    require_read_access(table)
    state = _state()
    options = render_options()
    limit = positive_integer("sysparm_limit", DEFAULT_LIMIT, allow_zero=False)
    offset = positive_integer("sysparm_offset", 0, allow_zero=True)
    parsed = state.store.parse_query(table, list_query_text())
    rows = state.store.select(table, parsed, user_sys_id=g.user["sys_id"],
                              user_name=g.user["user_name"])
    total = len(rows)
    page = state.faults.trim_page(rows[offset:offset + limit])
    renderer = render.Renderer(state.store, table, options)
    headers = {}
    if not flag("sysparm_no_count"):
        headers["X-Total-Count"] = str(total)
    link = paging_links(total, offset, limit)
    if link and not flag("sysparm_suppress_pagination_header"):
        headers["Link"] = link
    return json_response({"result": [renderer.render(row) for row in page]}, 200, headers)


def paging_links(total: int, offset: int, limit: int) -> str:
    """Build the Link header; empty when every match fits on the first page."""
    if total <= limit and offset == 0:
        return ""
    base = request.base_url
    arguments = request.args.to_dict(flat=True)

    def link(page_offset: int, rel: str) -> str:
        arguments.update(sysparm_offset=str(page_offset), sysparm_limit=str(limit))
        return f'<{base}?{urlencode(arguments)}>;rel="{rel}"'

    links = [link(0, "first")]
    if offset > 0:
        links.append(link(max(offset - limit, 0), "prev"))
    if offset + limit < total:
        links.append(link(offset + limit, "next"))
    links.append(link(max((total - 1) // limit, 0) * limit, "last"))
    return ",".join(links)


def table_record(table: str, sys_id: str) -> Response:
    require_table(table)
    state = _state()
    if request.method == "DELETE":
        try:
            state.store.delete(table, sys_id)
        except storage.RecordMissing:
            raise_not_found()
        return Response(status=204)
    if request.method == "GET":
        require_read_access(table)
        record = state.store.get(table, sys_id)
        if record is None:
            raise_not_found()
        renderer = render.Renderer(state.store, table, render_options())
        return json_response({"result": renderer.render(record)})
    return update_record(table, sys_id)


def raise_not_found() -> None:
    raise ApiError(404, "No Record found",
                   "Record doesn't exist or ACL restricts the record retrieval")


def read_body(table: str) -> dict:
    """Parse the JSON body of a write; an array counts as its first element."""
    raw = request.get_data(as_text=True)
    try:
        body = json.loads(raw) if raw.strip() else None
    except json.JSONDecodeError as error:
        raise ApiError(400, "Exception while reading request",
                       f"The payload is not valid JSON: {error}") from None
    if isinstance(body, list):
        body = body[0] if body else None
    if not isinstance(body, dict):
        raise ApiError(400, "Exception while reading request",
                       f"The payload must be a JSON object of {table} fields.")
    if flag("sysparm_input_display_value"):
        body = resolve_display_values(table, body)
    return body


def resolve_display_values(table: str, body: dict) -> dict:
    """Turn display values into raw ones: reference names to sys_ids, choice labels to values."""
    store = _state().store
    fields = catalog.fields_of(table)
    resolved = dict(body)
    for name, value in body.items():
        field_def = fields.get(name)
        if field_def is None or not isinstance(value, str) or not value:
            continue
        if field_def.type == catalog.REFERENCE and store.get(field_def.reference, value) is None:
            resolved[name] = store.find_by_display_value(field_def.reference, value)
            if not resolved[name]:
                logger.warning("No %s record displayed as %r; %s.%s left empty",
                               field_def.reference, value, table, name)
        elif field_def.choices:
            resolved[name] = field_def.choice_value(value)
    return resolved


def create_record(table: str) -> Response:
    """POST /table/{t}: insert one record and respond 201 with a Location header."""
    state = _state()
    if state.faults.insert_denied(table):
        raise ApiError(403, "Operation Failed",
                       "ACL Exception Insert Failed due to security constraints")
    body = read_body(table)
    try:
        record = state.store.insert(table, body, user_name=g.user["user_name"], keep_system=False)
    except storage.InvalidRecord as error:
        raise ApiError(400, "Operation Failed", str(error)) from None
    location = f"{request.host_url}api/now/table/{table}/{record['sys_id']}"
    return write_response(table, record, 201, {"Location": location})


def update_record(table: str, sys_id: str) -> Response:
    """PUT or PATCH /table/{t}/{sys_id}: both change only the fields in the body."""
    state = _state()
    body = read_body(table)
    body.pop("sys_id", None)
    try:
        record = state.store.update(table, sys_id, body, user_name=g.user["user_name"],
                                    keep_system=False)
    except storage.RecordMissing:
        raise_not_found()
    return write_response(table, record, 200, {})


def write_response(table: str, record: dict, status: int, headers: dict[str, str]) -> Response:
    """Respond to a write, unless a fail_after_write fault loses the response."""
    state = _state()
    mode = state.faults.take_write_failure()
    if mode == "drop":
        logger.info("Dropping the response to %s %s after the write (fault)",
                    request.method, request.path)
        connection = request.environ.get("werkzeug.socket")
        if connection is not None:
            connection.shutdown(socket.SHUT_RDWR)
    elif mode == "delay":
        logger.info("Holding the response to %s %s after the write (fault)",
                    request.method, request.path)
        state.faults.hold_response()
    if request.headers.get("X-no-response-body", "").lower() == "true":
        return Response(status=status, headers=headers)
    body = {"result": render.Renderer(state.store, table, render_options()).render(record)}
    return json_response(body, status, headers)


# -- Aggregate API ----------------------------------------------------------

def stats(table: str) -> Response:
    """GET /api/now/stats/{t}: count and simple aggregates, optionally grouped."""
    require_table(table)
    require_read_access(table)
    state = _state()
    parsed = state.store.parse_query(table, request.args.get("sysparm_query", ""))
    rows = state.store.select(table, parsed, user_sys_id=g.user["sys_id"],
                              user_name=g.user["user_name"])
    group_by = known_fields(table, request.args.get("sysparm_group_by", "").split(","))
    aggregates = {kind: known_fields(table, request.args.get(f"sysparm_{kind}_fields", "").split(","))
                  for kind in ("avg", "min", "max", "sum")}
    result = aggregate(table, rows, count=flag("sysparm_count"), group_by=group_by,
                       aggregates=aggregates)
    return json_response({"result": result})


# -- OAuth ------------------------------------------------------------------

def oauth_token() -> Response:
    """POST /oauth_token.do: the password and refresh_token grants, form-encoded."""
    state = _state()
    client_id = authenticated_client()
    if client_id is None:
        logger.info("Rejected a token request: unknown OAuth client or wrong secret")
        return json_response({"error": "invalid_client", "error_description": "access_denied"}, 401)
    grant_type = request.form.get("grant_type", "")
    if grant_type == "password":
        form = request.form
        user = state.store.authenticate(form.get("username", ""), form.get("password", ""))
        if user is None:
            logger.info("Rejected a password grant for user %r", request.form.get("username", ""))
            return json_response({"error": "server_error", "error_description": "access_denied"}, 401)
        grant = state.tokens.issue(user["user_name"], client_id)
        return json_response(state.tokens.response(grant, with_refresh=True))
    if grant_type == "refresh_token":
        grant = state.tokens.refresh(request.form.get("refresh_token", ""), client_id)
        if grant is None:
            logger.info("Rejected a refresh grant: unknown or expired refresh token")
            return json_response({"error": "invalid_grant", "error_description": "access_denied"}, 401)
        return json_response(state.tokens.response(grant, with_refresh=False))
    return json_response({
        "error": "unsupported_grant_type",
        "error_description": (f"grant_type {grant_type!r} is not supported; "
                              "use password or refresh_token"),
    }, 400)


def authenticated_client() -> str | None:
    """Return the OAuth client_id when its secret matches, from the form or from Basic auth."""
    settings = _state().settings.instance
    client_id = request.form.get("client_id", "")
    client_secret = request.form.get("client_secret", "")
    basic = auth.parse_basic(request.headers.get("Authorization", ""))
    if basic and not client_secret:
        client_id, client_secret = basic
    expected_secret = settings.oauth_client_secret.reveal().encode()
    secret_matches = secrets.compare_digest(client_secret.encode(), expected_secret)
    return client_id if client_id == settings.oauth_client_id and secret_matches else None
