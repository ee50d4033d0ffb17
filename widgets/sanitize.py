"""Sanitizing of platform HTML before a widget shows it.

Article bodies are written by knowledge authors on the platform, and search
snippets are built from them, so both are treated as untrusted. nh3 (the
Rust ammonia sanitizer) removes scripts, event handler attributes, styles
and unknown tags. The attribute filter below adds the widget's own rules on
URLs: images load only from ``data:`` image URLs or from the platform, and
links may point only at http, https or mailto targets.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urljoin, urlsplit

import nh3

logger = logging.getLogger(__name__)

# ammonia's default tags minus the image map tags, whose href the filter does not cover.
ARTICLE_TAGS = set(nh3.ALLOWED_TAGS) - {"map", "area"}
ARTICLE_URL_SCHEMES = {"http", "https", "mailto", "data"}
LINK_SCHEMES = {"http", "https", "mailto"}
# SVG is allowed because browsers render an SVG loaded by <img> without
# running its scripts or fetching what it links to.
DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]+$")


def sanitize_snippet(html: str) -> str:
    """Keep only ``<mark>`` elements and escaped text in a search snippet."""
    return nh3.clean(html or "", tags={"mark"}, attributes={}, strip_comments=True)


# A line break in a snippet with the sentence-ending character before it, if any.
SNIPPET_LINE_BREAK = re.compile(r"([.!?:;…])?[ \t]*\r?\n\s*")


def separate_snippet_lines(snippet: str) -> str:
    """Join the lines of a snippet so that a heading does not read as part of the next sentence.

    The index stores an article body with one heading, paragraph or list item
    per line. A line ending in sentence punctuation is followed by a space,
    and any other line (a heading or an item) by " · ".
    """
    return SNIPPET_LINE_BREAK.sub(lambda match: f"{match.group(1)} " if match.group(1) else " · ", snippet.strip())


def sanitize_article(html: str, *, platform_url: str) -> str:
    """Return article HTML that is safe to insert into a widget page.

    Relative URLs are made absolute against ``platform_url``, because they
    refer to the platform (``/sys_attachment.do?...``) and not to the sidecar.
    """
    platform_origin = _origin(platform_url)

    def filter_attribute(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in {"src", "href", "cite", "longdesc"}:
            return value
        if tag == "img" and attribute == "src":
            return _image_source(value, platform_url, platform_origin)
        return _link_target(value, platform_url)

    return nh3.clean(
        html or "",
        tags=ARTICLE_TAGS,
        clean_content_tags={"script", "style"},
        url_schemes=ARTICLE_URL_SCHEMES,
        attribute_filter=filter_attribute,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        link_rel="noopener noreferrer",
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def _image_source(value: str, platform_url: str, platform_origin: str) -> str | None:
    value = value.strip()
    if value.lower().startswith("data:"):
        return value if DATA_IMAGE.match(value) else None
    absolute = _absolute(value, platform_url)
    if absolute and platform_origin and _origin(absolute) == platform_origin:
        return absolute
    logger.debug("Dropped an image source outside the platform: %.80s", value)
    return None


def _link_target(value: str, platform_url: str) -> str | None:
    absolute = _absolute(value.strip(), platform_url)
    if absolute is None or urlsplit(absolute).scheme.lower() not in LINK_SCHEMES:
        return None
    return absolute


def _absolute(value: str, platform_url: str) -> str | None:
    """Resolve ``value`` against the platform; return None for an unusable URL."""
    if not value:
        return None
    if urlsplit(value).scheme:
        return value
    if not platform_url:
        return None
    return urljoin(platform_url.rstrip("/") + "/", value)
