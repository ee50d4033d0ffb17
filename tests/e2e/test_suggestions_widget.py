"""The suggestions widget in headless Chromium: load, preview, attach by keyboard, send with confirmation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.widgets.helpers import token_for

pytestmark = pytest.mark.browser

PANEL_WIDTH = 360
# The height of the side panel in a workspace on a laptop screen.
PANEL_HEIGHT = 740
# Tab presses allowed to reach an Attach button; each result has three focusable controls.
MAX_TABS = 30


def open_widget(browser, base_url, settings, case, user_name="alice.agent", height=900):
    """Open the widget for a case row; return the page and the list of console errors."""
    page = browser.new_page(viewport={"width": PANEL_WIDTH, "height": height})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    token = token_for(settings, user_name)
    table = case["sys_class_name"]
    page.goto(f"{base_url}/widgets/suggestions?table={table}&sys_id={case['sys_id']}&token={token}")
    page.wait_for_selector("#results .result")
    return page, errors


def horizontal_overflow(page) -> int:
    """Return how many pixels the widest of the document and the body extends past the viewport."""
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


def test_widget_attach_by_keyboard(browser, demo_sidecar, instance, artifacts):
    base_url, settings = demo_sidecar
    case = instance.store.query("sn_customerservice_case", "number=CS0010001")[0]
    page, errors = open_widget(browser, base_url, settings, case, user_name="daniel.kim")

    assert "token=" not in page.url
    assert page.locator("#case-label").inner_text().startswith("CS0010001")
    assert page.locator("#results .result").count() >= 1
    assert horizontal_overflow(page) <= 0

    # Tab from the top: search box, then the first result's title, which opens the preview.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "search-input"
    page.keyboard.press("Tab")
    first_title = page.locator("#results .result-title").first.inner_text()
    assert page.evaluate("document.activeElement.className") == "result-title"
    page.keyboard.press("Enter")
    page.wait_for_selector("#preview:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "preview-title"
    assert page.locator("#preview-title").inner_text() == first_title
    assert page.locator("#preview-body script").count() == 0
    assert horizontal_overflow(page) <= 0
    page.screenshot(path=str(artifacts / "suggestions-widget-preview.png"), full_page=True)

    # Escape closes the preview and returns focus to the title.
    page.keyboard.press("Escape")
    page.wait_for_selector("#preview", state="hidden")
    assert page.evaluate("document.activeElement.className") == "result-title"

    # Tab on to the first Attach button of an article not yet attached to the case.
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Attach":
            break
    assert page.evaluate("document.activeElement.textContent") == "Attach"
    article_sys_id = page.evaluate("document.activeElement.closest('.result').dataset.sysId")
    link_query = f"task={case['sys_id']}^kb_knowledge={article_sys_id}"
    assert instance.store.query("m2m_kb_task", link_query) == []
    page.keyboard.press("Space")
    expect(page.locator("#status")).to_contain_text("is attached to the case")
    assert page.evaluate("document.activeElement.textContent") == "Attached"

    assert len(instance.store.query("m2m_kb_task", link_query)) == 1
    page.screenshot(path=str(artifacts / "suggestions-widget.png"), full_page=True)
    assert errors == []


@pytest.mark.parametrize("query", ["charging port lint", "water resistance rating", "security code card"])
def test_demo_previews_fit_panel(browser, demo_sidecar, instance, query):
    base_url, settings = demo_sidecar
    case = instance.store.query("sn_customerservice_case", "number=CS0010001")[0]
    page, errors = open_widget(browser, base_url, settings, case, user_name="grace.mensah")

    page.locator("#search-input").fill(query)
    expect(page.locator("#results-heading")).to_contain_text(query)
    titles = page.locator("#results .result-title")
    assert titles.count() >= 1
    for position in range(titles.count()):
        titles.nth(position).click()
        page.wait_for_selector("#preview:not([hidden])")
        assert horizontal_overflow(page) <= 0, page.locator("#preview-title").inner_text()
        page.keyboard.press("Escape")
        page.wait_for_selector("#preview", state="hidden")
    assert errors == []


def test_demo_table_and_dates_fit_panel(browser, demo_sidecar, instance):
    base_url, settings = demo_sidecar
    case = instance.store.query("sn_customerservice_case", "number=CS0010001")[0]
    page, errors = open_widget(browser, base_url, settings, case, user_name="grace.mensah")

    page.locator("#search-input").fill("warranty periods battery")
    page.locator("#results .result-title", has_text="arrant").first.click()
    page.wait_for_selector("#preview:not([hidden])")

    assert page.locator("#preview-body table").count() >= 1
    table_right = page.evaluate(
        "Math.max(...Array.from(document.querySelectorAll('#preview-body table'))"
        ".map((table) => table.getBoundingClientRect().right))"
    )
    assert table_right <= page.evaluate("document.querySelector('#preview-body').getBoundingClientRect().right")
    # Each shown short meta part ("updated 2026-12-04") is laid out on one line.
    lines_per_part = page.evaluate("Array.from(document.querySelectorAll('#preview-meta .nowrap'))"
                                   ".map((part) => part.getClientRects().length)")
    assert lines_per_part
    assert set(lines_per_part) == {1}
    assert errors == []


def test_wide_article_fits_panel(browser, live_sidecar, seeded):
    base_url, settings = live_sidecar
    page, errors = open_widget(browser, base_url, settings, seeded.case)

    page.locator("#search-input").fill("return shipping rates")
    page.locator("#results .result-title", has_text="Return shipping rates by region").click()
    page.wait_for_selector("#preview:not([hidden])")

    assert page.locator("#preview-body table").count() == 1
    assert horizontal_overflow(page) <= 0
    assert errors == []


def test_widget_hides_restricted_article(browser, live_sidecar, seeded):
    base_url, settings = live_sidecar
    page, errors = open_widget(browser, base_url, settings, seeded.case)

    titles = page.locator("#results .result-title").all_inner_texts()
    assert "Reset a customer password" in titles
    assert not any("secret verification" in title for title in titles)
    assert errors == []


def test_widget_send_needs_confirmation(browser, live_sidecar, seeded, instance):
    base_url, settings = live_sidecar
    page, errors = open_widget(browser, base_url, settings, seeded.case, height=PANEL_HEIGHT)
    comments_query = f"element_id={seeded.case['sys_id']}^element=comments"

    page.locator("#results .result-title", has_text="Unlock an account").click()
    page.wait_for_selector("#preview:not([hidden])")
    page.locator("#open-send").click()
    page.locator("#send-summary").fill("Here is how to reset your password.")
    page.locator("#send-form button[type=submit]").click()
    page.wait_for_selector("#send-confirm:not([hidden])")

    confirmation_text = page.locator("#send-text").inner_text()
    assert confirmation_text.startswith("Here is how to reset your password.")
    assert "kb_view.do?sys_kb_id=" in confirmation_text
    assert instance.store.query("sys_journal_field", comments_query) == []
    assert horizontal_overflow(page) <= 0

    assert "[inward:" in confirmation_text.splitlines()[-1]
    # The hint sits under the confirm button, inside the panel's visible height.
    expect(page.locator("#send-status")).to_contain_text("confirm to send")
    expect(page.locator("#send-status")).to_be_in_viewport()

    page.locator("#send-confirm-button").click()
    confirmation = page.locator("#action-status")
    expect(confirmation).to_contain_text("was sent to the customer")
    expect(confirmation).to_be_in_viewport()
    assert confirmation.get_attribute("aria-live") == "polite"
    expect(page.locator("#open-send")).to_have_text("Sent")
    expect(page.locator("#open-send")).to_be_in_viewport()
    assert page.evaluate("document.activeElement.id") == "open-send"
    comments = instance.store.query("sys_journal_field", comments_query)
    assert len(comments) == 1
    assert comments[0]["value"] == confirmation_text
    assert errors == []


def test_widget_attach_confirmation_in_view(browser, live_sidecar, seeded, instance):
    base_url, settings = live_sidecar
    page, errors = open_widget(browser, base_url, settings, seeded.case, height=PANEL_HEIGHT)

    page.locator("#results .result-title", has_text="Unlock an account").click()
    page.wait_for_selector("#preview:not([hidden])")
    page.locator("#open-attach").click()
    page.locator("#attach-note").fill("Customer locked out after three attempts.")
    page.locator("#attach-form button[type=submit]").click()

    confirmation = page.locator("#action-status")
    expect(confirmation).to_contain_text("is attached to the case")
    expect(confirmation).to_be_in_viewport()
    expect(page.locator("#open-attach")).to_have_text("Attached")
    assert len(instance.store.query("m2m_kb_task", f"task={seeded.case['sys_id']}")) == 1
    assert errors == []


def test_widget_offers_no_send_for_internal_article(browser, live_sidecar, seeded):
    base_url, settings = live_sidecar
    page, errors = open_widget(browser, base_url, settings, seeded.case, user_name="frank.fraud")

    page.locator("#results .result-title", has_text="secret verification").click()
    page.wait_for_selector("#preview:not([hidden])")
    expect(page.locator("#open-send")).to_be_hidden()
    expect(page.locator("#send-unavailable")).to_be_visible()
    expect(page.locator("#send-unavailable")).to_contain_text("internal")
    expect(page.locator("#open-attach")).to_be_visible()

    # A public article opened next offers Send again.
    page.keyboard.press("Escape")
    page.wait_for_selector("#preview", state="hidden")
    page.locator("#results .result-title", has_text="Unlock an account").click()
    page.wait_for_selector("#preview:not([hidden])")
    expect(page.locator("#open-send")).to_be_visible()
    expect(page.locator("#send-unavailable")).to_be_hidden()
    assert errors == []


def test_preview_loads_platform_images(browser, live_sidecar, seeded):
    base_url, settings = live_sidecar
    page, errors = open_widget(browser, base_url, settings, seeded.case)

    # The browser only requests the platform image when the CSP allows its
    # origin; a blocked image never reaches the network.
    with page.expect_request(lambda request: "sys_attachment.do" in request.url):
        page.locator("#results .result-title", has_text="Reset a customer password").click()
    page.wait_for_selector("#preview:not([hidden])")

    sources = page.locator("#preview-body img").evaluate_all("images => images.map(image => image.src)")
    assert any(source.startswith("data:image/png") for source in sources)
    assert f"{settings.platform.url}/sys_attachment.do?sys_id=1" in sources
    assert not any("evil.example" in source for source in sources)
    # The page's CSP must list the platform's origin in img-src, or the browser blocks these images.
    assert [error for error in errors if "Content Security Policy" in error] == []


def test_widget_shows_error_for_expired_session(browser, live_sidecar, seeded):
    base_url, _ = live_sidecar
    page = browser.new_page(viewport={"width": PANEL_WIDTH, "height": 600})
    page.goto(f"{base_url}/widgets/suggestions?table=incident&sys_id={seeded.case['sys_id']}&token=not-a-jwt")
    page.wait_for_selector("#alert:not([hidden])")

    assert "session" in page.locator("#alert").inner_text()
    assert page.locator("#results .result").count() == 0


def test_workspace_preview_frames_widget(browser, live_sidecar, seeded):
    base_url, _ = live_sidecar
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{base_url}/dev/workspace?table=incident&sys_id={seeded.case['sys_id']}&user=frank.fraud")

    frame = page.frame_locator("iframe.widget-frame")
    frame.locator("#results .result").first.wait_for()
    titles = frame.locator("#results .result-title").all_inner_texts()
    assert any("secret verification" in title for title in titles)
    assert errors == []
