"""Sanitizing of article HTML and search snippets before a widget shows them."""

from __future__ import annotations

import pytest

from widgets.sanitize import sanitize_article, sanitize_snippet, separate_snippet_lines

PLATFORM = "https://acme.service-now.com"


@pytest.mark.parametrize("html, removed", [
    pytest.param("<p>a</p><script>alert(1)</script>", "alert", id="script"),
    pytest.param('<p onmouseover="steal()">a</p>', "onmouseover", id="event-handler"),
    pytest.param('<a href="javascript:alert(1)">a</a>', "javascript:", id="javascript-link"),
    pytest.param('<a href="JaVaScRiPt:alert(1)">a</a>', "alert", id="javascript-link-mixed-case"),
    pytest.param('<a href="data:text/html;base64,PHNjcmlwdD4=">a</a>', "data:", id="data-link"),
    pytest.param('<img src="https://evil.example/x.png">', "evil.example", id="foreign-image"),
    pytest.param('<img src="//evil.example/x.png">', "evil.example", id="protocol-relative-image"),
    pytest.param('<img src="data:text/html;base64,PHNjcmlwdD4=">', "data:", id="html-data-image"),
    pytest.param('<img src="data:image/png,not-base64<script>">', "data:", id="unencoded-data-image"),
    pytest.param('<iframe src="https://evil.example"></iframe>', "iframe", id="iframe"),
    pytest.param('<p style="position:fixed">a</p>', "position", id="inline-style"),
    pytest.param("<style>body{display:none}</style><p>a</p>", "display", id="style-element"),
    pytest.param('<form action="https://evil.example"><input name="q"></form>', "form", id="form"),
])
def test_article_loses_unsafe_markup(html, removed):
    assert removed not in sanitize_article(html, platform_url=PLATFORM)


@pytest.mark.parametrize("html, kept", [
    pytest.param('<img src="data:image/png;base64,iVBORw0KGgo=" alt="x">', 'src="data:image/png;base64,iVBORw0KGgo="',
                 id="data-png"),
    pytest.param('<img src="data:image/svg+xml;base64,PHN2Zz4=">', 'src="data:image/svg+xml;base64,PHN2Zz4="',
                 id="data-svg"),
    pytest.param(f'<img src="{PLATFORM}/sys_attachment.do?sys_id=1">', f'src="{PLATFORM}/sys_attachment.do?sys_id=1"',
                 id="platform-image"),
    pytest.param('<img src="/sys_attachment.do?sys_id=1">', f'src="{PLATFORM}/sys_attachment.do?sys_id=1"',
                 id="relative-image-made-absolute"),
    pytest.param('<a href="kb_view.do?sys_kb_id=1">a</a>', f'href="{PLATFORM}/kb_view.do?sys_kb_id=1"',
                 id="relative-link-made-absolute"),
    pytest.param('<a href="https://docs.example/x">a</a>', 'target="_blank"', id="link-opens-new-tab"),
    pytest.param('<a href="https://docs.example/x">a</a>', 'rel="noopener noreferrer"', id="link-has-noopener"),
    pytest.param("<table><tr><td>cell</td></tr></table>", "<td>cell</td>", id="table"),
])
def test_article_keeps_safe_markup(html, kept):
    assert kept in sanitize_article(html, platform_url=PLATFORM)


def test_relative_image_dropped_without_platform_url():
    assert "src=" not in sanitize_article('<img src="/x.png">', platform_url="")


def test_snippet_keeps_only_mark():
    snippet = 'reset the <mark>password</mark> <b>now</b> <img src=x onerror=alert(1)> &lt;tag&gt;'

    assert sanitize_snippet(snippet) == "reset the <mark>password</mark> now  &lt;tag&gt;"


@pytest.mark.parametrize("snippet, expected", [
    pytest.param("Usage.\nQuick fixes\nRestart the phone", "Usage. Quick fixes · Restart the phone", id="heading"),
    pytest.param("Quick <mark>fixes</mark>\nRestart", "Quick <mark>fixes</mark> · Restart", id="heading-ends-in-mark"),
    pytest.param("Unplug it:\n  Wait ten seconds", "Unplug it: Wait ten seconds", id="colon-and-indent"),
    pytest.param("First item\r\nSecond item", "First item · Second item", id="crlf"),
    pytest.param("One line only.", "One line only.", id="single-line"),
    pytest.param("Trailing line\n", "Trailing line", id="trailing-break"),
])
def test_snippet_lines_separated(snippet, expected):
    assert separate_snippet_lines(snippet) == expected
