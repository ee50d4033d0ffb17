"""The Attachment API: ``/api/now/attachment`` metadata, file download, upload and delete.

Metadata lives in ``sys_attachment`` and the bytes beside it in the store.
Uploads take a raw body (``POST /attachment/file`` with ``table_name``,
``table_sys_id`` and ``file_name`` parameters) or a multipart form
(``POST /attachment/upload`` with the same fields and a file part).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, request

from integration.instance import render, storage
from integration.instance.routes import (
    ApiError, json_response, paging_links, positive_integer, raise_not_found, require_table,
)

logger = logging.getLogger(__name__)

BASE = "/api/now/attachment"
DEFAULT_LIMIT = 1000


def init_app(app: Flask) -> None:
    """Register the Attachment API routes."""
    app.add_url_rule(BASE, view_func=list_attachments, methods=["GET"])
    app.add_url_rule(f"{BASE}/<sys_id>", view_func=attachment_record, methods=["GET", "DELETE"])
    app.add_url_rule(f"{BASE}/<sys_id>/file", view_func=download, methods=["GET"])
    app.add_url_rule(f"{BASE}/file", view_func=upload_raw, methods=["POST"])
    app.add_url_rule(f"{BASE}/upload", view_func=upload_multipart, methods=["POST"])


def _store() -> storage.InstanceStore:
    return current_app.extensions["instance"].store


def metadata(record: dict) -> dict:
    """Return an attachment's metadata as the API shows it, with its download link."""
    options = render.RenderOptions(base_url=request.host_url, exclude_reference_link=True)
    body = render.Renderer(_store(), "sys_attachment", options).render(record)
    body["download_link"] = f"{request.host_url}api/now/attachment/{record['sys_id']}/file"
    return body


def list_attachments() -> Response:
    """GET /attachment: the metadata matching sysparm_query, paged like the Table API."""
    store = _store()
    limit = positive_integer("sysparm_limit", DEFAULT_LIMIT, allow_zero=False)
    offset = positive_integer("sysparm_offset", 0, allow_zero=True)
    rows = store.query("sys_attachment", request.args.get("sysparm_query", ""),
                       user_sys_id=g.user["sys_id"], user_name=g.user["user_name"])
    headers = {"X-Total-Count": str(len(rows))}
    link = paging_links(len(rows), offset, limit)
    if link:
        headers["Link"] = link
    page = [metadata(row) for row in rows[offset:offset + limit]]
    return json_response({"result": page}, 200, headers)


def attachment_record(sys_id: str) -> Response:
    """GET or DELETE /attachment/{sys_id}."""
    store = _store()
    record = store.get("sys_attachment", sys_id)
    if record is None:
        raise_not_found()
    if request.method == "DELETE":
        store.delete("sys_attachment", sys_id)
        return Response(status=204)
    return json_response({"result": metadata(record)})


def download(sys_id: str) -> Response:
    """GET /attachment/{sys_id}/file: the raw bytes with the stored content type."""
    store = _store()
    record = store.get("sys_attachment", sys_id)
    content = store.attachment_content(sys_id) if record else None
    if record is None or content is None:
        raise_not_found()
    media_type = record["content_type"] or "application/octet-stream"
    return Response(content, status=200, mimetype=media_type)


def upload_raw() -> Response:
    """POST /attachment/file: attach the raw request body to a record."""
    content_type = request.headers.get("Content-Type", "")
    if not content_type:
        raise ApiError(400, "Content-Type header is missing",
                       "Send the file's media type, e.g. Content-Type: text/plain.")
    return _attach(request.args, content_type, request.get_data())


def upload_multipart() -> Response:
    """POST /attachment/upload: attach the file part of a multipart form to a record."""
    if not request.files:
        raise ApiError(400, "No file part in the request",
                       "Send multipart/form-data with table_name, table_sys_id and a file part.")
    part = next(iter(request.files.values()))
    fields = {**request.args.to_dict(), **request.form.to_dict()}
    fields.setdefault("file_name", part.filename or "")
    return _attach(fields, part.mimetype or "application/octet-stream", part.read())


def _attach(fields, content_type: str, content: bytes) -> Response:
    for name in ("table_name", "table_sys_id", "file_name"):
        if not fields.get(name):
            raise ApiError(400, f"Missing parameter {name}",
                           "Pass table_name, table_sys_id and file_name with the upload.")
    table, sys_id, file_name = fields["table_name"], fields["table_sys_id"], fields["file_name"]
    require_table(table)
    try:
        record = _store().attach(table, sys_id, file_name=file_name, content_type=content_type,
                                 content=content, user_name=g.user["user_name"])
    except storage.RecordMissing:
        raise_not_found()
    location = f"{request.host_url}api/now/attachment/{record['sys_id']}"
    logger.info("Attached %s (%d bytes) to %s %s", file_name, len(content), table, sys_id)
    return json_response({"result": metadata(record)}, 201, {"Location": location})
