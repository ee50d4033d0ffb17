"""Marshmallow schemas for the query strings and JSON bodies of the widget API.

Every schema rejects unknown fields, so a misspelt field name gets an error
that names it instead of being ignored.
"""

from __future__ import annotations

import re

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

SYS_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
# Limits on free text an agent types; the platform's journal and feedback
# fields accept more, but a widget summary longer than this is a mistake.
MAX_QUERY_LENGTH = 500
MAX_NOTE_LENGTH = 4000
MAX_SUMMARY_LENGTH = 4000


def validate_sys_id(value: str) -> None:
    """Reject a value that is not 32 lowercase hexadecimal characters."""
    if not SYS_ID_PATTERN.match(value):
        # The caller's message names the field and the value, so this text does not repeat it.
        raise ValidationError("not a sys_id; pass the 32 lowercase hexadecimal characters of the record.")


class StrictSchema(Schema):
    """Base schema: unknown fields are errors."""

    class Meta:
        unknown = RAISE


class CaseFields(StrictSchema):
    """The case an action or a suggestion list is about."""

    table = fields.String(required=True, validate=validate.Length(min=1, max=80))
    sys_id = fields.String(required=True, validate=validate_sys_id)


class SuggestionsQuery(CaseFields):
    explain = fields.Boolean(load_default=False)
    token = fields.String()


class OptionalCaseFields(StrictSchema):
    """The case a search or preview was made for, so its events are counted against it."""

    table = fields.String(validate=validate.Length(min=1, max=80))
    sys_id = fields.String(validate=validate_sys_id)
    token = fields.String()

    @validates_schema
    def check_case_pair(self, data, **kwargs):
        """Require table and sys_id together or not at all."""
        if ("table" in data) != ("sys_id" in data):
            missing = "sys_id" if "table" in data else "table"
            raise ValidationError(
                "table and sys_id name the case together; pass both or neither.", missing
            )


class SearchQuery(OptionalCaseFields):
    q = fields.String(required=True, validate=validate.Length(min=1, max=MAX_QUERY_LENGTH))
    limit = fields.Integer(load_default=None, validate=validate.Range(min=1, max=50))
    explain = fields.Boolean(load_default=False)


class PreviewQuery(OptionalCaseFields):
    rank = fields.Integer(validate=validate.Range(min=1, max=1000))


class ActionBody(CaseFields):
    """Fields every article action takes: the case, and the rank the article was shown at."""

    rank = fields.Integer(load_default=None, validate=validate.Range(min=1, max=1000))


class AttachBody(ActionBody):
    work_note = fields.String(load_default="", validate=validate.Length(max=MAX_NOTE_LENGTH))


class SendBody(ActionBody):
    summary = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_SUMMARY_LENGTH),
        error_messages={"required": "Missing summary; write a short summary for the customer."},
    )

    @validates_schema
    def check_summary_text(self, data, **kwargs):
        """Reject a summary made only of whitespace."""
        if "summary" in data and not data["summary"].strip():
            raise ValidationError("The summary is blank; write a short summary for the customer.", "summary")


class FeedbackBody(ActionBody):
    helpful = fields.Boolean(load_default=None, allow_none=True)
    comment = fields.String(load_default="", validate=validate.Length(max=MAX_NOTE_LENGTH))
    flag = fields.Boolean(load_default=False)

    @validates_schema
    def check_not_empty(self, data, **kwargs):
        """Require at least one of helpful, comment or flag."""
        if data.get("helpful") is None and not data.get("comment", "").strip() and not data.get("flag"):
            raise ValidationError(
                "Feedback is empty; pass helpful (true or false), a comment, or flag=true.", "helpful"
            )


class DismissBody(ActionBody):
    reason = fields.String(load_default="", validate=validate.Length(max=200))
