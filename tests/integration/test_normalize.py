"""Tests for normalizing Table API values: reference shapes, booleans, dates, null."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from integration.errors import UnexpectedResponse
from integration.normalize import normalize_record, reference_sys_id

USER = "46c6f9efa9fe198101ddf5eed9adf6e7"
LINK = f"https://acme.service-now.com/api/now/table/sys_user/{USER}"


@pytest.mark.parametrize(
    "raw",
    [
        USER,
        {"link": LINK, "value": USER},
        {"display_value": "Fred Luddy", "value": USER, "link": LINK},
        {"display_value": "Fred Luddy", "link": LINK},
    ],
    ids=["plain", "link-value", "display-all", "display-link"],
)
def test_reference_shapes_give_sys_id(raw):
    record = normalize_record("incident", {"caller_id": raw})

    assert record["caller_id"] == USER


def test_display_value_kept_when_requested():
    row = {"caller_id": {"display_value": "Fred Luddy", "value": USER, "link": LINK}}

    record = normalize_record("incident", row, display=True)

    assert record["caller_id"] == USER
    assert record["caller_id__display"] == "Fred Luddy"


def test_display_value_dropped_by_default():
    row = {"caller_id": {"display_value": "Fred Luddy", "value": USER, "link": LINK}}

    assert "caller_id__display" not in normalize_record("incident", row)


def test_empty_reference_is_empty_string():
    assert normalize_record("incident", {"assigned_to": ""})["assigned_to"] == ""
    assert reference_sys_id({"link": "", "value": None}) == ""


def test_booleans_by_declared_type():
    row = {"active": "true", "match_all": "false", "advanced": "", "name": "true"}

    record = normalize_record("user_criteria", row)

    assert record["active"] is True
    assert record["match_all"] is False
    assert record["advanced"] is False
    assert record["name"] == "true"


def test_datetimes_are_aware_utc():
    record = normalize_record("incident", {"sys_updated_on": "2024-05-01 12:30:05", "opened_at": ""})

    assert record["sys_updated_on"] == datetime(2024, 5, 1, 12, 30, 5, tzinfo=timezone.utc)
    assert record["opened_at"] is None


def test_dates_parsed():
    record = normalize_record("kb_knowledge", {"valid_to": "2100-01-01", "published": ""})

    assert record["valid_to"] == date(2100, 1, 1)
    assert record["published"] is None


def test_null_becomes_empty_string():
    record = normalize_record("kb_knowledge", {"wiki": None, "meta": "vpn"})

    assert record["wiki"] == ""
    assert record["meta"] == "vpn"


def test_bad_datetime_names_field():
    with pytest.raises(UnexpectedResponse, match=r"incident\.sys_updated_on"):
        normalize_record("incident", {"sys_updated_on": "11/02/2015 02:04:15 PM"})


def test_bad_boolean_names_field():
    with pytest.raises(UnexpectedResponse, match=r"kb_use\.used"):
        normalize_record("kb_use", {"used": "maybe"})


def test_unknown_table_keeps_strings():
    record = normalize_record("u_custom", {"u_flag": "true", "sys_created_on": "2024-01-02 03:04:05"})

    assert record["u_flag"] == "true"
    assert record["sys_created_on"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
