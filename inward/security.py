"""Security headers sent with every response.

Widget pages run inside the platform's forms, so framing is controlled by
the CSP ``frame-ancestors`` directive alone. ``X-Frame-Options`` is never
sent, because browsers apply it in addition to the CSP and a ``SAMEORIGIN``
value would block the platform from framing the widgets.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response

from config.settings import Section

BASE_POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
)


def platform_origin(settings: Section) -> str:
    """Return the scheme://host[:port] of the platform, or of the embedded instance."""
    if settings.platform.url:
        parts = urlsplit(settings.platform.url)
        return f"{parts.scheme}://{parts.netloc}"
    return f"http://{settings.instance.host}:{settings.instance.port}"


def content_security_policy(settings: Section) -> str:
    """Build the CSP header value, allowing framing by ``server.frame_ancestors``.

    Article bodies embed images stored on the platform, so the platform's
    origin is allowed as an image source next to inline ``data:`` images.
    """
    images = f"img-src 'self' data: {platform_origin(settings)}"
    ancestors = " ".join(["'self'", *settings.server.frame_ancestors])
    return "; ".join([*BASE_POLICY, images, f"frame-ancestors {ancestors}"])


def security_headers(settings: Section) -> dict[str, str]:
    """Return the headers added to every response."""
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def init_app(app: Flask, settings: Section) -> None:
    """Add the security headers to every response of ``app``."""
    headers = security_headers(settings)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers[name] = value
        # A view or extension may have set it; it would override frame-ancestors.
        response.headers.pop("X-Frame-Options", None)
        return response
