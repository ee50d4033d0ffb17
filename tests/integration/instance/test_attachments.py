"""The Attachment API: upload, list, download and delete, with pysnow and requests."""

from __future__ import annotations

import hashlib

import pytest

from tests.integration.instance.conftest import table_url


def attachment_url(instance, suffix=""):
    return f"{instance.url}/api/now/attachment{suffix}"


@pytest.fixture
def incident(instance):
    return instance.store.insert("incident", {"short_description": "needs a log"})


def upload(instance, http, incident, content=b"line one\n", name="vpn.log"):
    return http.post(attachment_url(instance, "/file"), data=content, headers={"Content-Type": "text/plain"},
                     params={"table_name": "incident", "table_sys_id": incident["sys_id"], "file_name": name})


def test_raw_upload_returns_metadata(instance, http, incident):
    response = upload(instance, http, incident)

    result = response.json()["result"]
    assert response.status_code == 201
    assert response.headers["Location"] == attachment_url(instance, f"/{result['sys_id']}")
    assert result["file_name"] == "vpn.log"
    assert result["size_bytes"] == "9"
    assert result["table_sys_id"] == incident["sys_id"]
    assert result["hash"] == hashlib.sha256(b"line one\n").hexdigest()
    assert result["download_link"] == attachment_url(instance, f"/{result['sys_id']}/file")


def test_download_returns_the_bytes(instance, http, incident):
    sys_id = upload(instance, http, incident, content=b"\x00\x01binary").json()["result"]["sys_id"]

    response = http.get(attachment_url(instance, f"/{sys_id}/file"))

    assert response.content == b"\x00\x01binary"
    assert response.headers["Content-Type"].startswith("text/plain")


def test_multipart_upload(instance, http, incident):
    response = http.post(attachment_url(instance, "/upload"),
                         data={"table_name": "incident", "table_sys_id": incident["sys_id"]},
                         files={"uploadFile": ("notes.txt", b"hello", "text/plain")})

    assert response.status_code == 201
    assert response.json()["result"]["file_name"] == "notes.txt"


def test_pysnow_lists_attachments_of_a_record(instance, http, snow, incident):
    upload(instance, http, incident, name="a.log")
    upload(instance, http, incident, name="b.log")

    listed = snow.resource(api_path="/table/incident").attachments.get(incident["sys_id"])

    assert sorted(item["file_name"] for item in listed) == ["a.log", "b.log"]


def test_delete_removes_metadata_and_bytes(instance, http, incident):
    sys_id = upload(instance, http, incident).json()["result"]["sys_id"]

    deleted = http.delete(attachment_url(instance, f"/{sys_id}"))

    assert deleted.status_code == 204
    assert http.get(attachment_url(instance, f"/{sys_id}")).status_code == 404
    assert instance.store.attachment_content(sys_id) is None


def test_upload_to_missing_record_is_404(instance, http):
    response = upload(instance, http, {"sys_id": "0" * 32})

    assert response.status_code == 404
    assert instance.store.query("sys_attachment") == []


@pytest.mark.parametrize("missing", ["table_name", "table_sys_id", "file_name"])
def test_upload_without_parameter_is_400(instance, http, incident, missing):
    params = {"table_name": "incident", "table_sys_id": incident["sys_id"], "file_name": "x.txt"}
    del params[missing]

    response = http.post(attachment_url(instance, "/file"), data=b"x", params=params,
                         headers={"Content-Type": "text/plain"})

    assert response.status_code == 400
    assert missing in response.json()["error"]["message"]


def test_attachment_table_is_readable(instance, http, incident):
    upload(instance, http, incident)

    response = http.get(table_url(instance, "sys_attachment"), params={"sysparm_fields": "file_name"})

    assert response.json()["result"] == [{"file_name": "vpn.log"}]


def test_raw_upload_without_content_type_is_400(instance, http, incident):
    response = http.post(attachment_url(instance, "/file"), data=b"x", params={
        "table_name": "incident", "table_sys_id": incident["sys_id"], "file_name": "x.bin",
    })

    assert response.status_code == 400
    assert "Content-Type" in response.json()["error"]["message"]
    assert instance.store.query("sys_attachment") == []
