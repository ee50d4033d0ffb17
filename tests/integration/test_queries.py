"""Tests for the encoded-query builder: output text and rejected input."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from integration.errors import InvalidQueryValue
from integration.queries import Query, validate_field_name, validate_sys_id

SYS_ID = "0123456789abcdef0123456789abcdef"


def test_conditions_joined_with_and():
    query = Query().equals("active", True).like("short_description", "vpn").not_equals("state", 7)

    assert str(query) == "active=true^short_descriptionLIKEvpn^state!=7"


def test_or_binds_to_previous_condition():
    query = Query().equals("category", "network").equals("state", 1).or_equals("state", 2)

    assert str(query) == "category=network^state=1^ORstate=2"


def test_new_query_groups_and_ordering():
    query = (
        Query().equals("workflow_state", "published").new_query().is_empty("valid_to")
        .order_by("number").order_by_desc("sys_updated_on")
    )

    assert query.groups == ["workflow_state=published", "valid_toISEMPTY"]
    assert query.ordering == ["ORDERBYnumber", "ORDERBYDESCsys_updated_on"]
    assert str(query) == "workflow_state=published^NQvalid_toISEMPTY^ORDERBYnumber^ORDERBYDESCsys_updated_on"


def test_in_list_and_dot_walk():
    query = Query().in_("state", [1, 2, 3]).not_in("caller_id.email", ["a@example.com"])

    assert str(query) == "stateIN1,2,3^caller_id.emailNOT INa@example.com"


def test_aware_datetime_rendered_in_utc():
    moment = datetime(2024, 5, 1, 14, 30, 5, 999, tzinfo=timezone(timedelta(hours=2)))

    query = Query().greater_than("sys_updated_on", moment).less_or_equal("valid_to", date(2024, 6, 1))

    assert str(query) == "sys_updated_on>2024-05-01 12:30:05^valid_to<=2024-06-01"


def test_naive_datetime_rejected():
    with pytest.raises(InvalidQueryValue, match="no time zone") as caught:
        Query().greater_than("sys_updated_on", datetime(2024, 5, 1))

    assert caught.value.context["field"] == "sys_updated_on"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("vpn^ORactive=false", "'\\^'"),
        ("x^NQsys_idISNOTEMPTY", "'\\^'"),
        ("first line\nsecond", "a newline"),
        ("carriage\rreturn", "a carriage return"),
        ("javascript:gs.getUserID()", "javascript:"),
        ("  JavaScript:alert(1)", "javascript:"),
    ],
)
def test_injection_in_value_rejected(value, reason):
    with pytest.raises(InvalidQueryValue, match=reason) as caught:
        Query().like("short_description", value)

    assert caught.value.context == {"field": "short_description", "value": value}
    assert "short_description" in str(caught.value)


def test_comma_inside_in_value_rejected():
    with pytest.raises(InvalidQueryValue, match="separates the values") as caught:
        Query().in_("number", ["INC0010001", "INC0010002,INC0010003"])

    assert caught.value.context["value"] == "INC0010002,INC0010003"


def test_comma_outside_in_allowed():
    assert str(Query().equals("meta", "vpn, remote")) == "meta=vpn, remote"


def test_single_string_for_in_rejected():
    with pytest.raises(InvalidQueryValue, match="needs a list"):
        Query().in_("state", "1,2")


def test_empty_in_list_rejected():
    with pytest.raises(InvalidQueryValue, match="at least one value"):
        Query().in_("state", [])


@pytest.mark.parametrize(
    "field",
    ["Short_description", "number^ORactive", "caller_id..email", "state=1", "", ".name", "a b", None],
)
def test_invalid_field_name_rejected(field):
    with pytest.raises(InvalidQueryValue, match="Invalid field name"):
        Query().equals(field, "1")


def test_none_value_rejected():
    with pytest.raises(InvalidQueryValue, match="is_empty"):
        Query().equals("assigned_to", None)


def test_or_without_condition_rejected():
    with pytest.raises(InvalidQueryValue, match="with nothing"):
        Query().or_equals("state", 1)


def test_new_query_after_empty_group_rejected():
    with pytest.raises(InvalidQueryValue, match="empty one"):
        Query().new_query()


def test_failed_condition_leaves_query_unchanged():
    query = Query().equals("active", True)

    with pytest.raises(InvalidQueryValue):
        query.like("text", "a^b")

    assert str(query) == "active=true"


@pytest.mark.parametrize(
    "value",
    [SYS_ID.upper(), SYS_ID[:-1], SYS_ID + "0", "g" * 32, "-1", "", None, 12],
)
def test_validate_sys_id_rejects(value):
    with pytest.raises(InvalidQueryValue, match="32 lowercase hexadecimal"):
        validate_sys_id(value)


def test_validate_sys_id_accepts():
    assert validate_sys_id(SYS_ID) == SYS_ID


def test_validate_field_name_accepts_dot_walk():
    assert validate_field_name("caller_id.email") == "caller_id.email"
