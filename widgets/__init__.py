"""Flask blueprints, templates and assets for the embeddable widgets.

``init_app(app)`` registers the ``/api/v1`` JSON API, the ``/widgets/...``
pages with their static files, and the ``/dev/workspace`` preview.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

logger = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Register the widget blueprints and the per-app widget state on ``app``."""
    from widgets.actions import CaseCache
    from widgets.api import api
    from widgets.pages import pages

    settings = app.extensions["inward"].settings
    app.extensions["widgets"] = {
        "cases": CaseCache(settings.knowledge.case_cache_ttl),
        "visibility": None,
        "rules_loaded_at": 0.0,
        "lock": threading.Lock(),
    }
    app.register_blueprint(api)
    app.register_blueprint(pages)
