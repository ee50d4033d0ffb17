"""Paging: sysparm_limit/offset, X-Total-Count and the Link header."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.integration.instance.conftest import table_url

TOTAL = 7


@pytest.fixture
def seven(instance):
    for index in range(TOTAL):
        instance.store.insert("incident", {"short_description": f"row {index}"})
    return instance


def get_page(instance, http, **params):
    return http.get(table_url(instance, "incident"),
                    params={"sysparm_query": "ORDERBYnumber", "sysparm_fields": "number", **params})


def links(response):
    """Map each rel of the Link header to the sysparm_offset it points at."""
    found = {}
    for part in response.headers.get("Link", "").split(","):
        if not part:
            continue
        url, rel = part.split(";rel=")
        query = parse_qs(urlparse(url.strip("<>")).query)
        found[rel.strip('"')] = int(query["sysparm_offset"][0])
        assert query["sysparm_limit"] == ["3"]
        assert query["sysparm_query"] == ["ORDERBYnumber"]
    return found


def test_total_count_is_all_matches(seven, http):
    response = get_page(seven, http, sysparm_limit="3")

    assert response.headers["X-Total-Count"] == str(TOTAL)
    assert len(response.json()["result"]) == 3


@pytest.mark.parametrize("offset, expected_links, rows", [
    (0, {"first": 0, "next": 3, "last": 6}, 3),
    (3, {"first": 0, "prev": 0, "next": 6, "last": 6}, 3),
    (6, {"first": 0, "prev": 3, "last": 6}, 1),
])
def test_link_header_when_total_is_not_a_multiple(seven, http, offset, expected_links, rows):
    response = get_page(seven, http, sysparm_limit="3", sysparm_offset=str(offset))

    assert links(response) == expected_links
    assert len(response.json()["result"]) == rows


def test_link_header_absent_on_a_single_page(seven, http):
    response = get_page(seven, http, sysparm_limit="10")

    assert "Link" not in response.headers


def test_link_header_can_be_suppressed(seven, http):
    response = get_page(seven, http, sysparm_limit="3", sysparm_suppress_pagination_header="true")

    assert "Link" not in response.headers


def test_no_count_omits_total(seven, http):
    response = get_page(seven, http, sysparm_no_count="true")

    assert "X-Total-Count" not in response.headers


def test_offset_walk_returns_each_row_once(seven, http):
    numbers = []
    offset = 0
    while True:
        page = get_page(seven, http, sysparm_limit="3", sysparm_offset=str(offset)).json()["result"]
        if not page:
            break
        numbers.extend(row["number"] for row in page)
        offset += 3

    assert numbers == sorted(numbers)
    assert len(set(numbers)) == TOTAL


def test_default_limit_returns_everything(seven, snow):
    rows = snow.resource(api_path="/table/incident").get(query="ORDERBYnumber").all()

    assert len(rows) == TOTAL


@pytest.mark.parametrize("limit", ["0", "-5", "ten", "1.5"])
def test_invalid_limit_is_400(instance, http, limit):
    response = http.get(table_url(instance, "incident"), params={"sysparm_limit": limit})

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid value given for sysparm_limit"
    assert repr(limit) in response.json()["error"]["detail"]


def test_negative_offset_is_400(instance, http):
    response = http.get(table_url(instance, "incident"), params={"sysparm_offset": "-1"})

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid value given for sysparm_offset"


def test_capitalised_booleans_and_empty_params(seven):
    response = requests.get(table_url(seven, "incident"), auth=(seven.user, seven.password), params={
        "sysparm_query": "", "sysparm_limit": "2", "sysparm_offset": "0",
        "sysparm_display_value": "False", "sysparm_suppress_pagination_header": "False",
        "sysparm_exclude_reference_link": "TRUE", "sysparm_view": "", "sysparm_fields": "",
    })

    assert response.status_code == 200
    assert len(response.json()["result"]) == 2
    assert "Link" in response.headers
