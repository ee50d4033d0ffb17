"""The widget page, its static assets and the development workspace preview."""

from __future__ import annotations

import re

import pytest

from tests.widgets.helpers import build_app, token_for, widget_settings


def widget_url(seeded, **extra):
    params = {"table": "incident", "sys_id": seeded.case["sys_id"], **extra}
    return "/widgets/suggestions?" + "&".join(f"{key}={value}" for key, value in params.items())


def test_widget_page_has_no_inline_script_or_style(client, seeded):
    response = client.get(widget_url(seeded))

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all("src=" in tag for tag in scripts)
    assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None
    assert "<style" not in html
    assert " style=" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_widget_page_does_not_echo_token(client, seeded, settings):
    token = token_for(settings, "alice.agent")
    response = client.get(widget_url(seeded, token=token))

    assert token not in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def test_widget_page_carries_case_in_data_attributes(client, seeded):
    html = client.get(widget_url(seeded)).get_data(as_text=True)

    assert 'data-table="incident"' in html
    assert f'data-sys-id="{seeded.case["sys_id"]}"' in html
    assert 'data-api-base="/api/v1"' in html


@pytest.mark.parametrize("query", [
    pytest.param("table=incident&sys_id=nothex", id="malformed-sys-id"),
    pytest.param("sys_id=" + "a" * 32, id="missing-table"),
    pytest.param("table=incident", id="missing-sys-id"),
])
def test_widget_page_with_bad_parameters_is_400(client, seeded, query):
    response = client.get("/widgets/suggestions?" + query)

    assert response.status_code == 400
    assert "role=\"alert\"" in response.get_data(as_text=True)


@pytest.mark.parametrize("asset, content_type", [
    ("widget.js", "text/javascript"),
    ("widget.css", "text/css"),
    ("workspace.css", "text/css"),
])
def test_static_assets_are_served(client, asset, content_type):
    response = client.get(f"/widgets/static/{asset}")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(content_type)


def test_workspace_is_404_outside_dev_mode(client, seeded):
    response = client.get(f"/dev/workspace?table=incident&sys_id={seeded.case['sys_id']}&user=alice.agent")

    assert response.status_code == 404


@pytest.fixture
def dev_client(instance, tmp_path, seeded):
    app, services = build_app(widget_settings(instance, tmp_path, dev_mode=True))
    yield app.test_client()
    services.close()


def test_workspace_frames_widget_with_token(dev_client, seeded):
    response = dev_client.get(f"/dev/workspace?table=incident&sys_id={seeded.case['sys_id']}&user=frank.fraud")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert seeded.case["number"] in html
    assert "card fraud alert" in html
    frame = re.search(r'<iframe[^>]*src="([^"]+)"', html)
    assert frame is not None
    src = frame.group(1).replace("&amp;", "&")
    assert src.startswith("/widgets/suggestions?")
    assert f"sys_id={seeded.case['sys_id']}" in src
    assert "token=" in src


def test_workspace_lists_agents_and_cases(dev_client, seeded):
    html = dev_client.get("/dev/workspace").get_data(as_text=True)

    for user_name in ("alice.agent", "frank.fraud", "ada.admin"):
        assert f'value="{user_name}"' in html
    assert 'value="carl.customer"' not in html
    assert seeded.other_case["number"] in html


def test_workspace_shows_case_comments(dev_client, seeded, instance):
    instance.store.insert("sys_journal_field", {"element": "comments", "element_id": seeded.case["sys_id"],
                                                "name": "incident", "value": "Customer replied <b>thanks</b>"})
    html = dev_client.get(f"/dev/workspace?table=incident&sys_id={seeded.case['sys_id']}&user=alice.agent") \
        .get_data(as_text=True)

    assert "Customer replied &lt;b&gt;thanks&lt;/b&gt;" in html


def case_numbers_listed(html):
    return re.findall(r'<a href="/dev/workspace\?[^"]*"\s*(?:aria-current="page")?>([A-Z]+\d+)</a>', html)


def test_workspace_lists_cases_by_number(dev_client, seeded, instance):
    for position in range(30):
        instance.store.insert("incident", {"short_description": f"Extra case {position}", "active": "true"})
    html = dev_client.get("/dev/workspace?user=alice.agent").get_data(as_text=True)

    numbers = case_numbers_listed(html)
    assert len(numbers) == 32
    assert numbers == sorted(numbers)
    assert numbers[0] == seeded.case["number"]


def test_workspace_shows_named_case_past_limit(dev_client, seeded, instance, monkeypatch):
    from widgets import pages

    monkeypatch.setattr(pages, "WORKSPACE_CASE_LIMIT", 1)
    html = dev_client.get(f"/dev/workspace?table=incident&sys_id={seeded.other_case['sys_id']}&user=alice.agent") \
        .get_data(as_text=True)

    assert case_numbers_listed(html) == [seeded.case["number"], seeded.other_case["number"]]
    assert f"<h1>{seeded.other_case['number']}</h1>" in html
    assert "Pick a case from the list." not in html
    assert "<iframe" in html


@pytest.mark.parametrize("sys_id", ["f" * 32, "not-a-sys-id"])
def test_workspace_with_unknown_case_asks_to_pick(dev_client, seeded, sys_id):
    response = dev_client.get(f"/dev/workspace?table=incident&sys_id={sys_id}&user=alice.agent")

    assert response.status_code == 200
    assert "Pick a case from the list." in response.get_data(as_text=True)


@pytest.fixture
def demo_dev_client(instance, tmp_path):
    from inward.demo.seed import seed

    seed(instance.store)
    app, services = build_app(widget_settings(instance, tmp_path, dev_mode=True))
    yield app.test_client()
    services.close()


def test_workspace_shows_demo_first_case(demo_dev_client, instance):
    case = instance.store.query("sn_customerservice_case", "number=CS0010001")[0]
    html = demo_dev_client.get(
        f"/dev/workspace?table=sn_customerservice_case&sys_id={case['sys_id']}&user=daniel.kim"
    ).get_data(as_text=True)

    assert "<h1>CS0010001</h1>" in html
    assert "Pick a case from the list." not in html
    assert "CS0010001" in case_numbers_listed(html)
