"""Records layer against the embedded instance: real pysnow over a real socket."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from integration.client import PlatformClient
from integration.errors import InvalidQueryValue, RecordNotFound
from integration.normalize import normalize_record
from integration.queries import Query

LOW_ID = "0" * 32
HIGH_ID = "f" * 32
MISSING_ID = "1234567890abcdef1234567890abcdef"


@pytest.fixture
def client(instance):
    created_client = PlatformClient.from_settings(instance.platform_settings(), sleep=lambda seconds: None)
    yield created_client
    created_client.close()


@pytest.fixture
def records(client):
    return client.records


@pytest.fixture
def pages(records, monkeypatch):
    """Record the number of rows in each page the transport fetches."""
    sizes = []
    fetch = records.transport.get_records

    def counting(*args, **kwargs):
        rows = fetch(*args, **kwargs)
        sizes.append(len(rows))
        return rows

    monkeypatch.setattr(records.transport, "get_records", counting)
    return sizes


def insert_incidents(instance, count, **values):
    return [
        instance.store.insert("incident", {"short_description": f"incident {n}", **values})
        for n in range(count)
    ]


def test_list_total_not_multiple_of_page_size(instance, records, pages):
    inserted = insert_incidents(instance, 10)

    rows = list(records.list("incident", page_size=3))

    ids = [row["sys_id"] for row in rows]
    assert sorted(ids) == sorted(row["sys_id"] for row in inserted)
    assert ids == sorted(ids)
    assert pages == [3, 3, 3, 1, 0]


def test_list_filters_and_selects_fields(instance, records):
    active = insert_incidents(instance, 4, active="true")
    insert_incidents(instance, 3, active="false")

    rows = list(records.list("incident", Query().equals("active", True), fields=["number"], page_size=2))

    assert {row["sys_id"] for row in rows} == {row["sys_id"] for row in active}
    assert all(set(row) == {"number", "sys_id"} for row in rows)


def test_list_keyset_applies_to_every_new_query_group(instance, records):
    network = insert_incidents(instance, 4, category="network")
    hardware = insert_incidents(instance, 3, category="hardware")
    insert_incidents(instance, 3, category="software")
    query = Query().equals("category", "network").new_query().equals("category", "hardware")

    rows = list(records.list("incident", query, page_size=2))

    ids = [row["sys_id"] for row in rows]
    assert len(ids) == len(set(ids))
    assert set(ids) == {row["sys_id"] for row in network + hardware}


def test_rows_inserted_and_deleted_during_paging(instance, records):
    inserted = insert_incidents(instance, 9)
    ordered = sorted(row["sys_id"] for row in inserted)
    seen = []

    rows = records.list("incident", page_size=3)
    for _ in range(3):
        seen.append(next(rows)["sys_id"])
    # A row inserted before the cursor would make an offset-paged read return
    # a row twice. A row inserted ahead of the cursor must still be read.
    instance.store.insert("incident", {"sys_id": LOW_ID, "short_description": "early"})
    instance.store.insert("incident", {"sys_id": HIGH_ID, "short_description": "late"})
    instance.store.delete("incident", ordered[5])
    seen.extend(row["sys_id"] for row in rows)

    assert len(seen) == len(set(seen))
    assert [sys_id for sys_id in seen if sys_id in ordered] == [s for s in ordered if s != ordered[5]]
    assert HIGH_ID in seen
    assert LOW_ID not in seen


def test_incremental_cursor_with_equal_timestamps(instance, records, pages):
    same = "2024-05-01 10:00:00"
    early = insert_incidents(instance, 2, sys_updated_on="2024-04-30 09:00:00")
    tied = insert_incidents(instance, 7, sys_updated_on=same)
    late = insert_incidents(instance, 2, sys_updated_on="2024-05-02 08:00:00")
    tied_ids = sorted(row["sys_id"] for row in tied)

    everything = list(records.list_updated_since("incident", None, page_size=3))

    expected = (
        sorted(row["sys_id"] for row in early) + tied_ids + sorted(row["sys_id"] for row in late)
    )
    assert [row["sys_id"] for row in everything] == expected
    assert pages[-1] == 0

    moment = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)
    resumed = list(records.list_updated_since("incident", (moment, tied_ids[3]), page_size=2))

    assert [row["sys_id"] for row in resumed] == tied_ids[4:] + sorted(row["sys_id"] for row in late)


def test_incremental_read_picks_up_changes_during_paging(instance, records):
    rows = [
        instance.store.insert(
            "incident", {"short_description": f"old {n}", "sys_updated_on": f"2024-05-0{n + 1} 10:00:00"}
        )
        for n in range(6)
    ]
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    seen = []

    reader = records.list_updated_since("incident", (start, ""), page_size=2)
    for _ in range(2):
        seen.append(next(reader)["sys_id"])
    instance.store.update("incident", rows[4]["sys_id"], {"short_description": "changed ahead"})
    instance.store.update("incident", rows[0]["sys_id"], {"short_description": "changed behind"})
    added = instance.store.insert("incident", {"short_description": "new during paging"})
    seen.extend(row["sys_id"] for row in reader)

    assert seen.count(rows[4]["sys_id"]) == 1
    assert seen.count(rows[0]["sys_id"]) == 2
    assert seen.count(added["sys_id"]) == 1
    assert set(seen) == {row["sys_id"] for row in rows} | {added["sys_id"]}


def test_short_pages_do_not_end_paging(instance, records, pages):
    insert_incidents(instance, 30)
    instance.set_faults(short_page_rate=0.3, seed=7)

    rows = list(records.list("incident", page_size=5))

    ids = [row["sys_id"] for row in rows]
    short = [n for n, size in enumerate(pages) if 0 < size < 5]
    assert short, "the fault should have produced at least one short page"
    assert short[0] < len(pages) - 2
    assert pages[-1] == 0
    assert 0 not in pages[:-1]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("display_value", "exclude_link", "raw_type"),
    [
        (False, True, str),
        (False, False, dict),
        ("all", False, dict),
        (True, False, dict),
    ],
    ids=["sys_id", "link-value", "display-all", "display-link"],
)
def test_reference_shapes_normalized(instance, client, display_value, exclude_link, raw_type):
    user = instance.store.insert("sys_user", {"user_name": "fred", "name": "Fred Luddy"})
    incident = instance.store.insert("incident", {"short_description": "x", "caller_id": user["sys_id"]})

    raw = client.transport.get_records(
        "incident", f"sys_id={incident['sys_id']}", limit=1, fields=["caller_id"],
        display_value=display_value, exclude_reference_link=exclude_link,
    )
    record = normalize_record("incident", raw[0], display=True)

    assert isinstance(raw[0]["caller_id"], raw_type)
    assert record["caller_id"] == user["sys_id"]
    if display_value:
        assert record["caller_id__display"] == "Fred Luddy"


def test_get_returns_normalized_record(instance, records):
    incident = instance.store.insert("incident", {"short_description": "printer", "active": "true"})

    record = records.get("incident", incident["sys_id"])

    assert record["short_description"] == "printer"
    assert record["active"] is True
    assert record["sys_created_on"].tzinfo == timezone.utc


def test_fields_do_not_leak_between_calls(instance, records):
    incident = instance.store.insert("incident", {"short_description": "printer"})
    list(records.list("incident", fields=["number"]))

    record = records.get("incident", incident["sys_id"])

    assert record["short_description"] == "printer"
    assert "sys_created_on" in record


def test_get_missing_record(records):
    with pytest.raises(RecordNotFound, match=MISSING_ID):
        records.get("incident", MISSING_ID)

    assert records.get("incident", MISSING_ID, must_exist=False) is None


def test_create_and_patch(instance, records):
    created = records.create("incident", {"short_description": "new laptop", "active": True})

    patched = records.patch("incident", created["sys_id"], {"short_description": "new laptop, 16 GB"})

    assert created["active"] is True
    assert patched["short_description"] == "new laptop, 16 GB"
    assert instance.store.get("incident", created["sys_id"])["short_description"] == "new laptop, 16 GB"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Query().like("short_description", "vpn^ORactive=false"),
        lambda: Query().equals("number", "INC0010001^NQactive=false"),
        lambda: Query().equals("short_description", "line one\nactive=false"),
        lambda: Query().in_("number", ["INC0010001,INC0010002"]),
        lambda: Query().equals("caller_id", "javascript:gs.getUserID()"),
        lambda: Query().equals("active^ORactive", "false"),
    ],
    ids=["or", "new-query", "newline", "comma-in-in", "javascript", "field-name"],
)
def test_injection_rejected_before_any_request(instance, records, pages, build):
    insert_incidents(instance, 2)

    with pytest.raises(InvalidQueryValue):
        records.list("incident", build())

    assert pages == []
    assert len(instance.store.query("incident")) == 2


def test_query_with_own_order_rejected(records, pages):
    with pytest.raises(InvalidQueryValue, match="remove order_by"):
        list(records.list("incident", Query().equals("active", True).order_by("number")))

    assert pages == []
